package interpose_test

import (
	"testing"

	"nestvm/abi"
	"nestvm/interpose"
	"nestvm/machine"
	"nestvm/vmm"
)

type nopBackend struct{}

func (nopBackend) Name() string                                              { return "none" }
func (nopBackend) Available() error                                          { return nil }
func (nopBackend) Describe() string                                          { return "no machine" }
func (nopBackend) CPUFeatures() machine.CPUFeatures                          { return machine.CPUFeatures{} }
func (b nopBackend) WithCPU(string) (machine.Backend, error)                 { return b, nil }
func (nopBackend) NewMachine(machine.MachineConfig) (machine.Machine, error) { return nil, nil }

// BenchmarkClockRead measures what one level of interposition adds to an
// operation, host side (no guest trap): clock_read on the clock itself,
// then through one and two Forwarder stand-ins.
func BenchmarkClockRead(b *testing.B) {
	mon := vmm.NewMonitor(nopBackend{}, nil)
	host := mon.NewHost("bench", vmm.DefaultQuota)
	defer host.Kill("done")
	c := host.NewCaller()
	clock := interpose.Cap{Obj: vmm.NewHostPort("clock", vmm.ClockServer()), Rights: abi.RightRead | abi.RightGrant | abi.RightDerive}
	caps := []interpose.Cap{clock}
	for i := 0; i < 2; i++ {
		w := &interpose.Wrapper{Host: mon.NewHost("layer", vmm.DefaultQuota), Handler: interpose.Forwarder, Layer: "bench"}
		next, err := w.Wrap(caps[len(caps)-1], "clock")
		if err != nil {
			b.Fatal(err)
		}
		caps = append(caps, next)
	}
	for depth, cp := range caps {
		h, err := c.Insert(cp.Obj, cp.Rights, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Run([]string{"direct", "depth1", "depth2"}[depth], func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, _, err := c.ClockRead(h, abi.ClockMonotonic); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestStandInIdentity: handle_identify on a stand-in reports the identity
// of what it stands for, through stand-ins of stand-ins, so two stand-ins
// a deep layer made for one object, one from each call it came out of,
// compare equal, as handles to the object itself do; a stand-in for
// another object does not.
func TestStandInIdentity(t *testing.T) {
	mon := vmm.NewMonitor(nopBackend{}, nil)
	host := mon.NewHost("test", vmm.DefaultQuota)
	defer host.Kill("done")
	c := host.NewCaller()
	rights := abi.RightRead | abi.RightGrant | abi.RightDerive
	clock := interpose.Cap{Obj: vmm.NewHostPort("clock", vmm.ClockServer()), Rights: rights}
	other := interpose.Cap{Obj: vmm.NewHostPort("other", vmm.ClockServer()), Rights: rights}
	w1 := &interpose.Wrapper{Host: mon.NewHost("layer1", vmm.DefaultQuota), Handler: interpose.Forwarder, Deep: true, Layer: "one"}
	w2 := &interpose.Wrapper{Host: mon.NewHost("layer2", vmm.DefaultQuota), Handler: interpose.Forwarder, Deep: true, Layer: "two"}
	identify := func(cp interpose.Cap) abi.HandleIdentity {
		t.Helper()
		h, err := c.Insert(cp.Obj, cp.Rights, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.HandleClose(h)
		id, err := c.Identify(h)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	wrap := func(w *interpose.Wrapper, cp interpose.Cap) interpose.Cap {
		t.Helper()
		s, err := w.Wrap(cp, "clock")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := identify(clock).Object
	a, b := wrap(w1, clock), wrap(w1, clock)
	if a.Obj == b.Obj {
		t.Fatal("two wraps made one stand-in: the test shows nothing")
	}
	for name, cp := range map[string]interpose.Cap{"first": a, "second": b, "of a stand-in": wrap(w2, a)} {
		if id := identify(cp); id.Object != want || id.Type != uint64(abi.ObjPort) {
			t.Errorf("%s stand-in: identity %d type %d, want the clock's %d, port", name, id.Object, id.Type, want)
		}
	}
	if id := identify(wrap(w1, other)); id.Object == want {
		t.Errorf("a stand-in for another port has the clock's identity %d", want)
	}
}
