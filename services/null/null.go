// Package null is the control layer: it passes every capability through
// untouched, so the program below holds what the layer above holds and the
// monitor serves it directly. Stacking any number of them must cost
// nothing measurable.
package null

import (
	"fmt"

	"nestvm/nester"
	"nestvm/vmm"
)

// Layer is the null layer.
type Layer struct{}

// Name implements nester.Layer.
func (Layer) Name() string { return "null" }

// Wrap implements nester.Layer: the child's environment is the parent's.
func (Layer) Wrap(_ *vmm.Monitor, parent nester.Env) (nester.Env, error) { return parent, nil }

// Close implements nester.Layer.
func (Layer) Close() error { return nil }

func init() {
	nester.Register(nester.Kind{
		Name:    "null",
		Summary: "passes everything through untouched (the control: it costs nothing)",
		New: func(args string, _ nester.Host) (nester.Layer, error) {
			if args != "" {
				return nil, fmt.Errorf("null takes no arguments, got %q", args)
			}
			return Layer{}, nil
		},
	})
}
