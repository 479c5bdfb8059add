package interpose_test

import (
	"sync"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/interpose"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// identLayer keeps, under border control, the handles to the program's
// space and threads (Wrapper.Keep), and notes who invoked each
// space_create and console_write (Invocation.Invoker).
type identLayer struct {
	caller *vmm.Caller

	mu      sync.Mutex
	spaces  []uint64
	threads []uint64
	created []vmm.Invoker
	writes  []vmm.Invoker
}

func (l *identLayer) Name() string { return "ident" }
func (l *identLayer) Close() error { return nil }

func (l *identLayer) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	host := mon.NewHostSpace("ident", vmm.DefaultQuota)
	l.caller = host.NewCaller()
	w := &interpose.Wrapper{Space: host, Handler: l, Deep: true, Layer: "ident", Keep: l.keep}
	return parent.WrapAll(w)
}

func (l *identLayer) keep(c *interpose.Call, h uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case c.Op() == abi.OpSpaceCreate && c.Name == nester.CapSpace:
		l.spaces = append(l.spaces, h)
	case c.Op() == abi.OpThreadCreate:
		l.threads = append(l.threads, h)
	default:
		return false
	}
	return true
}

// Handle implements interpose.Handler.
func (l *identLayer) Handle(c *interpose.Call) {
	from := c.Inv.Invoker()
	c.Forward()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch c.Op() {
	case abi.OpSpaceCreate:
		l.created = append(l.created, from)
	case abi.OpConsoleWrite:
		l.writes = append(l.writes, from)
	}
}

// TestKeepAndInvoker: a layer keeps the handles Keep chooses, and they
// stay usable after the call (the program's space reads as ended once
// it has); Invoker names the guest thread behind a call by the identity
// handle_identify reports for a handle to that thread, and names no
// thread for the loader's calls, which host code makes.
func TestKeepAndInvoker(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l := &identLayer{}
		out, r := layertest.Run(t, b, []nester.Layer{l}, "", "hello", "world")
		if !r.Exited || r.Status != 0 || out != "Hello, world!\n" {
			t.Fatalf("hello under the layer: %s, output %q", r, out)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.spaces) != 1 || len(l.threads) != 1 {
			t.Fatalf("kept %d spaces and %d threads, want the program's one of each", len(l.spaces), len(l.threads))
		}
		if st, status, err := l.caller.SpaceStatus(l.spaces[0]); err != nil || st != abi.SpaceExited || status != 0 {
			t.Errorf("space_status of the kept program space: %d, %d, %v; want exited, 0", st, status, err)
		}
		if len(l.created) != 1 || l.created[0] != (vmm.Invoker{}) {
			t.Errorf("space_create invoked by %+v, want host code (no thread) once", l.created)
		}
		id, err := l.caller.Identify(l.threads[0])
		if err != nil {
			t.Fatal(err)
		}
		if len(l.writes) == 0 {
			t.Fatal("no console_write seen")
		}
		for _, w := range l.writes {
			if w.Identity != id.Object || w.Thread != 0 || w.Space == "" {
				t.Errorf("console_write invoked by %+v, want thread 0 of the program, identity %d", w, id.Object)
			}
		}
	})
}
