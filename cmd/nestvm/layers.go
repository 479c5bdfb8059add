package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"

	"nestvm/control"
	"nestvm/nester"
)

// makeLayers makes the layers --layer names, in order, before anything
// runs: a bad name or argument, or a file a layer cannot write, is the
// user's to fix first. They log on log, report on stderr and take their
// triggers from triggers. On an error the layers made so far are closed.
func makeLayers(specs []string, log hclog.Logger, stderr io.Writer, triggers *nester.Triggers) ([]nester.Layer, error) {
	var layers []nester.Layer
	for _, spec := range specs {
		l, err := nester.New(spec, nester.Host{Log: log.Named("layer"), Stderr: stderr, Triggers: triggers})
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

// saver is a layer that saves the program below it (checkpoint): the
// command lets the control socket ask it for a save, and reports how its
// saves went. The command finds such layers by what they do, never by
// their type.
type saver interface {
	nester.Layer
	control.Checkpointer
	// Stopped reports whether the layer ended the run after saving.
	Stopped() bool
	// Err returns why a save a trigger asked for was not written.
	Err() error
}

// saversIn returns the savers among layers, in order.
func saversIn(layers []nester.Layer) []saver {
	var out []saver
	for _, l := range layers {
		if s, ok := l.(saver); ok {
			out = append(out, s)
		}
	}
	return out
}

// layersHelp is what nestvm layers -help prints; newFlagSet lists its flags after it.
const layersHelp = "Usage: nestvm layers\n\nLists the layers `nestvm run --layer NAME[=ARGS]` can stack, and their arguments.\n"

// cmdLayers lists the layers --layer can stack, with their arguments.
func cmdLayers(args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("nestvm layers", stderr, layersHelp)
	if status, done := parseNoArgs(fl, args); done {
		return status
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
