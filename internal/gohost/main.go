// Command gohost writes vmm's typed host-side wrappers of the ABI: one
// Caller method per operation, generated from abi.Ops as the C header is,
// so Go code and guests see the same operations with the same arguments.
// go generate ./vmm runs it; a vmm test fails when the file is stale.
package main

import (
	"flag"
	"fmt"
	"os"

	"nestvm/internal/gohost/gen"
)

func main() {
	out := flag.String("o", "hostapi_ops.go", "the Go file to write")
	flag.Parse()
	src, err := gen.Generate()
	if err == nil {
		err = os.WriteFile(*out, src, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gohost:", err)
		os.Exit(1)
	}
}
