package interpose_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/interpose"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// TestProgramsKeptAndEnded: a Wrapper keeps a handle to each space made
// through its stand-in for the environment's space capability, drops
// those of spaces that ended as more are made (a loader that makes
// program after program does not fill the layer's table), and
// EndPrograms ends those still running, and any made after it, with its
// reason.
func TestProgramsKeptAndEnded(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		root, seat := nester.Root(mon, nester.RootConfig{Console: &strings.Builder{}, Memory: 64 << 20, Children: 256})
		defer seat.Kill("test over")
		w := &interpose.Wrapper{Host: mon.NewHost("layer", vmm.DefaultQuota), Handler: interpose.Forwarder, Deep: true, Layer: "keeper"}
		defer w.Host.Kill("test over")
		env, err := root.WrapAll(w)
		if err != nil {
			t.Fatal(err)
		}
		user := mon.NewHost("user", vmm.DefaultQuota)
		defer user.Kill("test over")
		c := user.NewCaller()
		sp := env.Caps[nester.CapSpace]
		h, err := c.Insert(sp.Obj, sp.Rights, sp.Badge)
		if err != nil {
			t.Fatal(err)
		}
		create := func() *vmm.Space {
			t.Helper()
			child, _, err := c.SpaceCreate(h, 16, 0, 0, 0)
			if err != nil {
				t.Fatalf("space_create: %v", err)
			}
			obj, _, _, err := c.Lookup(child)
			if err != nil {
				t.Fatal(err)
			}
			c.HandleClose(child)
			return layertest.Underlying(obj).(*vmm.Space)
		}
		const made = 100
		for range made {
			s := create()
			s.Kill("made and ended")
			<-s.Done()
		}
		if kept := interpose.ProgramsKept(w); kept > 32 {
			t.Errorf("after %d programs made and ended the layer keeps %d handles, want those of ended ones dropped", made, kept)
		}
		live := []*vmm.Space{create(), create()}
		w.EndPrograms("layer keeper gave up")
		for _, s := range live {
			if r := s.Wait(); r.Killed != "layer keeper gave up" {
				t.Errorf("a program running when the layer ended its programs ended as %s, want killed with its reason", r)
			}
		}
		if r := create().Wait(); r.Killed != "layer keeper gave up" {
			t.Errorf("a program made after the layer ended its programs ended as %s, want killed with its reason", r)
		}
		if n := interpose.ProgramsKept(w); n != 0 {
			t.Errorf("the layer keeps %d handles after ending its programs, want none", n)
		}
	})
}

// panicky forwards everything but panics on the program's second console
// write.
type panicky struct {
	writes atomic.Int32
}

func (p *panicky) Name() string { return "panicky" }
func (p *panicky) Close() error { return nil }
func (p *panicky) Handle(c *interpose.Call) {
	if c.Op() == abi.OpConsoleWrite && p.writes.Add(1) == 2 {
		panic("boom")
	}
	c.Forward()
}

func (p *panicky) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	return parent.WrapAll(&interpose.Wrapper{Host: mon.NewHost("panicky", vmm.DefaultQuota), Handler: p, Deep: true, Layer: "panicky"})
}

// TestPanicEndsPrograms: a handler that panics fails the call and ends the
// program below the layer (killed; the reason, naming the panic, is in the
// log, as the run's result carries no text); the monitor goes on: the
// test's own process is the monitor, and runs hello next.
func TestPanicEndsPrograms(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		out, r := layertest.Run(t, b, []nester.Layer{&panicky{}}, "", "counter", "1000000")
		if r.Exited || r.Killed == "" {
			t.Fatalf("counter under a layer that panics: %s, want killed; output %q", r, out)
		}
		if out, r := layertest.Run(t, b, nil, "", "hello", "after"); !r.Exited || r.Status != 0 || out != "Hello, after!\n" {
			t.Errorf("hello after a layer panicked: %s, output %q", r, out)
		}
	})
}
