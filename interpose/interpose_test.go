package interpose_test

import (
	"testing"

	"nestvm/abi"
	"nestvm/interpose"
	"nestvm/vmm"
)

type nopBackend struct{}

func (nopBackend) Name() string                                      { return "none" }
func (nopBackend) Available() error                                  { return nil }
func (nopBackend) Describe() string                                  { return "no machine" }
func (nopBackend) CPUFeatures() vmm.CPUFeatures                      { return vmm.CPUFeatures{} }
func (b nopBackend) WithCPU(string) (vmm.Backend, error)             { return b, nil }
func (nopBackend) NewMachine(vmm.MachineConfig) (vmm.Machine, error) { return nil, nil }

// BenchmarkClockRead measures what one level of interposition adds to an
// operation, host side (no guest trap): clock_read on the clock itself,
// then through one and two Forwarder stand-ins.
func BenchmarkClockRead(b *testing.B) {
	mon := vmm.NewMonitor(nopBackend{}, nil)
	host := mon.NewHostSpace("bench", vmm.DefaultQuota)
	defer host.Kill("done")
	c := host.NewCaller()
	clock := interpose.Cap{Obj: vmm.NewHostPort("clock", vmm.ClockServer()), Rights: abi.RightRead | abi.RightGrant | abi.RightDerive}
	caps := []interpose.Cap{clock}
	for i := 0; i < 2; i++ {
		w := &interpose.Wrapper{Space: mon.NewHostSpace("layer", vmm.DefaultQuota), Handler: interpose.Forwarder, Layer: "bench"}
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
