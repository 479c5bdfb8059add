package refmon_test

import (
	"io"
	"strings"
	"testing"

	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/services/refmon"
	"nestvm/services/trace"
)

// stacks are the layer stacks a program must not be able to tell apart
// from none: a trace, a reference monitor, and both.
func stacks(t *testing.T) map[string]func() []nester.Layer {
	pol, err := refmon.ParsePolicy(nil, "allow.hcl")
	if err != nil {
		t.Fatal(err)
	}
	mkTrace := func() nester.Layer {
		l, err := trace.New("ops=handle_info", io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	mkRefmon := func() nester.Layer { return refmon.New(pol, refmon.Options{Audit: io.Discard}) }
	return map[string]func() []nester.Layer{
		"trace":        func() []nester.Layer { return []nester.Layer{mkTrace()} },
		"refmon":       func() []nester.Layer { return []nester.Layer{mkRefmon()} },
		"trace,refmon": func() []nester.Layer { return []nester.Layer{mkTrace(), mkRefmon()} },
	}
}

// TestReplyHandleUnderLayers: a port_call answered with a handle gives the
// caller a handle in its own table, naming what the server gave, through
// any layer, for as many calls as the program likes: more than a layer's
// table holds (refmon's takes 65536), so a layer that kept what it wrapped
// for each reply would run out. On kvm, where each of the six exits a
// round costs tens of microseconds on a PVM host, fewer rounds check the
// same path; the layers' tables are the same on both backends.
func TestReplyHandleUnderLayers(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		n := "70000"
		if b.Name() == "kvm" {
			n = "2000"
		}
		for name, mk := range stacks(t) {
			out, r := layertest.Run(t, b, mk(), "", "layered", "replies", n)
			if !r.Exited || r.Status != 0 || !strings.Contains(out, "PASS replies") {
				t.Errorf("layered replies %s under %s: %s\n%s", n, name, r, out)
			}
		}
	})
}

// TestStateUnderLayers: space_get_state read through layers shows the
// program's handles with the types it sees without them (its own space a
// space, its thread a thread, not the layers' ports).
func TestStateUnderLayers(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		bare, r := layertest.Run(t, b, nil, "", "layered", "state")
		if !r.Exited || r.Status != 0 || !strings.Contains(bare, "PASS state") {
			t.Fatalf("layered state: %s\n%s", r, bare)
		}
		for name, mk := range stacks(t) {
			out, r := layertest.Run(t, b, mk(), "", "layered", "state")
			if !r.Exited || r.Status != 0 || out != bare {
				t.Errorf("layered state under %s: %s\n%s\nwithout layers:\n%s", name, r, out, bare)
			}
		}
	})
}
