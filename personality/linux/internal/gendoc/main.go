// Command gendoc writes docs/linux.md's table of system calls from the
// Linux personality's own table, so the page never disagrees with the
// code: go generate in personality/linux runs it.
package main

import (
	"flag"
	"log"
	"os"

	"nestvm/personality/linux"
)

func main() {
	out := flag.String("o", "", "output file")
	flag.Parse()
	if err := os.WriteFile(*out, linux.SyscallDoc(), 0o644); err != nil {
		log.Fatal(err)
	}
}
