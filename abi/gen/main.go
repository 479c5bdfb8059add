// Command gen writes the C header of the nestvm guest ABI (go generate
// ./abi runs it).
package main

import (
	"flag"
	"fmt"
	"os"

	"nestvm/abi/internal/cheader"
)

func main() {
	out := flag.String("o", "nestvm_abi.h", "the header to write")
	flag.Parse()
	if err := os.WriteFile(*out, cheader.Generate(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
