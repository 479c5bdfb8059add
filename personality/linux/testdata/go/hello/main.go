// Command hello prints its arguments and an environment variable and ends
// with the exit status its first argument names.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	fmt.Printf("hello from Go, args %q\n", os.Args[1:])
	fmt.Printf("CORPUS=%q\n", os.Getenv("CORPUS"))
	fmt.Fprintln(os.Stderr, "to stderr")
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(n)
	}
}
