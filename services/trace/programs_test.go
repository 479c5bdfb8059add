package trace

import (
	"errors"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/machine"
	"nestvm/vmm"
)

// TestProgramsKeptAndEnded: a trace that fails ends the programs made
// through its environment's space capability (interpose keeps them), with
// its failure as the reason, and refuses to make more.
func TestProgramsKeptAndEnded(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		var out syncBuffer
		l := newTrace(t, "ops=console_write", &out)
		c, h := layertest.Below(t, b, l, &out)
		create := func() uint64 {
			t.Helper()
			child, _, err := c.SpaceCreate(h, 16, 0, 0, 0)
			if err != nil {
				t.Fatalf("space_create: %v", err)
			}
			return child
		}
		// What the layer keeps are its own handles to the spaces; the
		// user's stand-ins for them go through the layer, which refuses
		// every call once failed. So the test looks at the spaces.
		var live []*vmm.Space
		for range 2 {
			obj, _, _, err := c.Lookup(create())
			if err != nil {
				t.Fatal(err)
			}
			live = append(live, layertest.Underlying(obj).(*vmm.Space))
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
