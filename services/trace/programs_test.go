package trace

import (
	"errors"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// TestProgramsKeptAndEnded: the layer keeps a handle to each space made
// through its environment's space capability, drops those of spaces that
// ended as more are made (a loader that makes program after program does
// not fill its table), and ends the ones still running when it fails.
func TestProgramsKeptAndEnded(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		var out syncBuffer
		root, rootSpace := nester.Root(mon, nester.RootConfig{Console: &out, Stderr: &out, Memory: 64 << 20, Children: 256})
		defer rootSpace.Kill("test over")
		l := newTrace(t, "ops=console_write", &out)
		env, err := l.Wrap(mon, root)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		user := mon.NewHostSpace("user", vmm.DefaultQuota)
		defer user.Kill("test over")
		c := user.NewCaller()
		sp := env.Caps[nester.CapSpace]
		h, err := c.Insert(sp.Obj, sp.Rights, sp.Badge)
		if err != nil {
			t.Fatal(err)
		}
		create := func() uint64 {
			t.Helper()
			child, _, err := c.SpaceCreate(h, 16, 0, 0, 0)
			if err != nil {
				t.Fatalf("space_create: %v", err)
			}
			return child
		}
		const made = 100
		for range made {
			child := create()
			if _, _, err := c.SpaceKill(child, 0); err != nil {
				t.Fatalf("space_kill: %v", err)
			}
			c.HandleClose(child)
		}
		l.mu.Lock()
		kept := len(l.programs)
		l.mu.Unlock()
		if kept > 32 {
			t.Errorf("after %d programs made and ended the layer keeps %d handles, want those of ended ones dropped", made, kept)
		}

		create()
		create()
		// What the layer keeps are its own handles to the spaces; the
		// user's stand-ins for them go through the layer, which refuses
		// every call once failed. So the test looks at the spaces.
		var live []*vmm.Space
		hc := l.host.NewCaller()
		l.mu.Lock()
		for _, p := range l.programs {
			obj, _, _, err := hc.Lookup(p)
			if err != nil {
				t.Fatal(err)
			}
			if s := obj.(*vmm.Space); statusOf(s) == abi.SpaceRunning {
				live = append(live, s)
			}
		}
		l.mu.Unlock()
		if len(live) != 2 {
			t.Fatalf("the layer keeps %d running programs, want 2", len(live))
		}
		l.fail(errors.New("test failure"))
		for _, s := range live {
			if r := s.Wait(); r.Killed != "layer trace failed: test failure" {
				t.Errorf("a program running when the layer failed ended as %s, want killed by the layer", r)
			}
		}
		if _, _, err := c.SpaceCreate(h, 16, 0, 0, 0); !errors.Is(err, abi.ErrIO) {
			t.Errorf("space_create after the layer failed: %v, want %v", err, abi.ErrIO)
		}
		if err := l.Close(); err == nil || err.Error() != "test failure" {
			t.Errorf("Close: %v, want the failure", err)
		}
	})
}

func statusOf(s *vmm.Space) int {
	st, _ := s.Status()
	return st
}
