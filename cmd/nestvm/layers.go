package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"nestvm/nester"
)

// cmdLayers lists the layers --layer can stack, with their arguments.
func cmdLayers(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("nestvm layers", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), "Usage: nestvm layers\n\nLists the layers `nestvm run --layer NAME[=ARGS]` can stack, and their arguments.\n")
	}
	if err := fl.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return exitUsage
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "nestvm layers: unexpected argument %q\n", fl.Arg(0))
		return exitUsage
	}
	fmt.Fprintln(stdout, "Layers for nestvm run --layer NAME[=ARGS] (the first --layer is nearest the monitor):")
	for _, k := range nester.Kinds() {
		fmt.Fprintf(stdout, "\n  %-10s %s\n", k.Name, k.Summary)
		if k.Usage == "" {
			fmt.Fprintf(stdout, "  %-10s takes no arguments\n", "")
			continue
		}
		for _, line := range strings.Split(strings.TrimRight(k.Usage, "\n"), "\n") {
			fmt.Fprintf(stdout, "  %-10s %s\n", "", line)
		}
	}
	return 0
}
