package vmm_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/vmm"
)

// TestSpaceAbort ends a running program and the space below it with
// space_abort, from a layer's host space holding only a handle to it:
// the program ends as killed with the reason as its result, as
// Space.Kill ends it; a handle without control is refused.
func TestSpaceAbort(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		img, _ := snippetImage(t, "spin")
		q := vmm.DefaultQuota
		q.Memory = 16 << 20
		prog, err := mon.Launch(vmm.Program{Name: "spin", Image: img, Args: []string{"spin"}, Quota: q}, vmm.Env{Console: &bytes.Buffer{}})
		if err != nil {
			t.Fatalf("launch: %v", err)
		}
		defer prog.Kill("test over")
		layer := mon.NewHostSpace("layer", vmm.DefaultQuota)
		defer func() { layer.Kill("test over"); layer.Wait() }()
		c := layer.NewCaller()
		must := mustOK(t)
		h, err := c.Insert(prog, abi.RightsAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		below := must("space_create below the program")(c.SpaceCreate(h, 0, 0, 0, 0))
		readOnly := must("handle_derive")(c.HandleDerive(h, uint64(abi.RightRead), 0))

		if _, _, err := c.SpaceAbort(readOnly, []byte("no control")); !errors.Is(err, abi.ErrRights) {
			t.Errorf("space_abort without control: %v, want %v", err, abi.ErrRights)
		}
		if st := must("space_status")(c.SpaceStatus(h)); st != abi.SpaceRunning {
			t.Fatalf("after a refused abort the program's status is %d, want running", st)
		}

		// A reason is text, and only its first MaxReason bytes are kept.
		reason := "layer test failed: writing trace.jsonl: disk full \xff " + strings.Repeat("x", abi.MaxReason)
		must("space_abort")(c.SpaceAbort(h, []byte(reason)))
		r := wait(t, prog)
		want := strings.ToValidUTF8(reason[:abi.MaxReason], "\uFFFD")
		if r.Killed != want || r.Exited || r.KilledStatus != 0 {
			t.Errorf("result %s (killed %q), want killed with %q", r, r.Killed, want)
		}
		for name, sp := range map[string]uint64{"the program": h, "the space below it": below} {
			st, status, err := c.SpaceStatus(sp)
			if err != nil || st != abi.SpaceKilled || status != 137 {
				t.Errorf("space_status of %s: %d, %d, %v; want killed, 137", name, st, status, err)
			}
		}
		// An ended space keeps how it ended.
		must("space_abort again")(c.SpaceAbort(h, []byte("again")))
		if r := prog.Wait(); r.Killed != want {
			t.Errorf("after a second abort the result is %s, want it kept", r)
		}
	})
}

// TestSpaceAbortNoReason checks that a space aborted with an empty reason
// still reads as killed, with a reason saying by what.
func TestSpaceAbortNoReason(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		host := mon.NewHostSpace("host", vmm.DefaultQuota)
		defer func() { host.Kill("test over"); host.Wait() }()
		c := host.NewCaller()
		must := mustOK(t)
		self, err := c.Insert(host, abi.RightsAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		child := must("space_create")(c.SpaceCreate(self, 0, 0, 0, 0))
		obj, _, _, err := c.Lookup(child)
		if err != nil {
			t.Fatal(err)
		}
		must("space_abort")(c.SpaceAbort(child, nil))
		if st, status, err := c.SpaceStatus(child); err != nil || st != abi.SpaceKilled || status != 137 {
			t.Errorf("space_status: %d, %d, %v; want killed, 137", st, status, err)
		}
		if r := obj.(*vmm.Space).Wait(); r.Killed != "aborted by space_abort" {
			t.Errorf("result %s, want killed by space_abort", r)
		}
	})
}
