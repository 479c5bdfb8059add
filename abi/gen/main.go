// Command gen writes the C header of the nestvm guest ABI and its
// reference page (go generate ./abi runs it).
package main

import (
	"flag"
	"fmt"
	"os"

	"nestvm/abi/internal/cheader"
)

func main() {
	out := flag.String("o", "nestvm_abi.h", "the header to write")
	md := flag.String("md", "", "the Markdown reference page to write, if any")
	flag.Parse()
	err := os.WriteFile(*out, cheader.Generate(), 0o644)
	if err == nil && *md != "" {
		err = os.WriteFile(*md, cheader.Markdown(), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
