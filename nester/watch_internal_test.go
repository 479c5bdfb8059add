package nester

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

// TestWatchLeavesTheNoticeToServe: when a program's space ends and its
// exit notice goes to the run's exception port, the watcher leaves the
// end for serve to report, with what the notice says, however long serve
// takes to read it (a loaded host): it does not end the run itself after
// a fixed wait. Here serve answers the fault and is then held back until
// the watcher has seen the space end. Both backends.
func TestWatchLeavesTheNoticeToServe(t *testing.T) {
	data, err := os.ReadFile(testutil.Guest(t, "crash-null"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := vmm.ParseELF(data, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		host := mon.NewHost("test", vmm.Quota{Handles: 64, Children: 1})
		c := host.NewCaller()
		self, err := c.Self(abi.RightsAll)
		if err != nil {
			t.Fatal(err)
		}
		ep, _, err := c.PortCreate(self)
		if err != nil {
			t.Fatal(err)
		}
		var child uint64
		s, err := mon.LaunchWith(vmm.Program{Name: "crash-null", Image: img, Args: []string{"crash-null"}}, vmm.Env{Console: io.Discard}, func(s *vmm.Space) {
			if child, err = c.Insert(s, abi.RightsAll, 0); err == nil {
				_, _, err = c.SpaceSetExceptionPort(child, ep)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Kill("test over")

		// serve's first part: the fault, answered with the status a
		// page fault gives.
		msg := make([]byte, binary.Size(abi.Msg{}))
		if _, _, err := c.PortReceive(ep, msg, nil); err != nil {
			t.Fatal(err)
		}
		var m abi.Msg
		binary.Read(bytes.NewReader(msg), binary.LittleEndian, &m)
		if m.Kind != abi.MsgFault {
			t.Fatalf("first message of kind %d, want a fault", m.Kind)
		}
		if _, _, err := c.PortReply(ep, m.CallID, abi.FaultKill, 139, nil, 0); err != nil {
			t.Fatal(err)
		}

		r := &Run{caller: c, host: host, child: child, done: make(chan struct{})}
		r.watch(child, ep) // returns once the space has ended
		select {
		case <-r.done:
			t.Fatalf("the watcher ended the run (%s) though the exit notice is on the run's port", r.Wait())
		default:
		}
		go r.serve(ep)
		if res := r.Wait(); res.Killed == "" || res.KilledStatus != 139 {
			t.Errorf("the run ended with %s (status %d), want the notice's kill with 139", res, res.KilledStatus)
		}
	})
}
