package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"

	"nestvm/nester"
)

// makeLayers makes the layers --layer names, in order, before anything
// runs: a bad name or argument, or a file a layer cannot write, is the
// user's to fix first. On an error the layers made so far are closed.
func makeLayers(specs []string, log hclog.Logger, stderr io.Writer) ([]nester.Layer, error) {
	var layers []nester.Layer
	for _, spec := range specs {
		l, err := nester.New(spec, nester.Host{Log: log.Named("layer"), Stderr: stderr})
		if err != nil {
			for i := len(layers) - 1; i >= 0; i-- {
				layers[i].Close()
			}
			return nil, err
		}
		layers = append(layers, l)
	}
	return layers, nil
}

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
