package checkpoint

import (
	"errors"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/vmm"
)

// TestSaveRunnerBusy: a runner that answers server_get_state with
// NV_EBUSY (a personality half way through ending a process, whose record
// and the subtree do not agree yet) makes the save fail as one whose
// runner changed, which the layer takes again, not as a failure; asked
// again, once the runner answers, the save carries its record.
func TestSaveRunnerBusy(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		host, err := mon.NewSpace("host", vmm.DefaultQuota)
		if err != nil {
			t.Fatal(err)
		}
		defer host.Kill("test over")
		c := host.NewCaller()
		runner := vmm.NewHostPort("runner", &busyRunner{busy: 1})
		self, err := c.Insert(host, abi.RightsAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		ep, err := c.Insert(runner, abi.RightCall, 0)
		if err != nil {
			t.Fatal(err)
		}
		top, _, err := c.SpaceCreate(self, 16, 1, 16, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.SpaceSetExceptionPort(top, ep); err != nil {
			t.Fatal(err)
		}
		if _, err := Save(c, top, nil, nil); !errors.Is(err, ErrRunnerChanged) {
			t.Fatalf("save while the runner is busy: %v, want %v", err, ErrRunnerChanged)
		}
		ck, err := Save(c, top, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ck.Runner == nil || ck.Runner.Name != "test" || string(ck.Runner.Record) != "the record" {
			t.Fatalf("the saved runner: %+v", ck.Runner)
		}
	})
}

// busyRunner is a runner that answers server_get_state with NV_EBUSY its
// first busy times, then with a record; it serves no faults.
type busyRunner struct{ busy int }

func (r *busyRunner) Serve(inv *vmm.Invocation) {
	if inv.Op != abi.OpServerGetState {
		inv.Fail(abi.ErrInvalidOp)
		return
	}
	if r.busy > 0 {
		r.busy--
		inv.Fail(abi.ErrBusy)
		return
	}
	inv.ReturnRecord([]byte("test\x00the record"))
}

func (r *busyRunner) ServeFault(fc *vmm.FaultCall) { fc.Kill(1, "no faults served here") }

func (r *busyRunner) SpaceEnded(uint64, bool, int) {}
