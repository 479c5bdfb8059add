package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"

	"nestvm/abi"
	"nestvm/machine"
)

// infoHelp is what nestvm info -help prints; newFlagSet lists its flags after it.
const infoHelp = "Usage: nestvm info\n\nShows this build's ABI version and which backends can run here, and why not.\n"

func cmdInfo(args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("nestvm info", stderr, infoHelp)
	if status, done := parseNoArgs(fl, args); done {
		return status
	}
	fmt.Fprintf(stdout, "nestvm: ABI version %d, %s/%s, %s\n", abi.Version, runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintln(stdout, "backends (auto tries them in this order):")
	for _, name := range machine.Preference {
		b, err := machine.Lookup(name)
		switch {
		case err != nil:
			fmt.Fprintf(stdout, "  %-4s unavailable: %v\n", name, errors.Unwrap(err))
		default:
			fmt.Fprintf(stdout, "  %-4s available: %s\n", name, b.Describe())
		}
	}
	if b, err := machine.Lookup("auto"); err == nil {
		fmt.Fprintf(stdout, "auto picks: %s\n", b.Name())
	} else {
		fmt.Fprintln(stdout, "auto picks: nothing; no backend can run here")
	}
	return 0
}
