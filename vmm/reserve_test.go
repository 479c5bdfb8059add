package vmm_test

import (
	"errors"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/vmm"
)

// TestCreateNeverHalfWay fills a space's handle table and checks that
// every operation that makes an object fails with NV_EQUOTA before making
// it: no thread, region, port or space is left behind, nobody holding it
// yet charged to a quota, so once a handle is free each quota still has
// the room it had.
func TestCreateNeverHalfWay(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		host := mon.NewHostSpace("host", vmm.Quota{Memory: 1 << 20, Threads: 8, Handles: 3, Children: 2})
		defer func() { host.Kill("test over"); host.Wait() }()
		c := host.NewCaller()
		self, err := c.Insert(host, abi.RightsAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		// A child that may hold one thread, and no space below it.
		child, _, err := c.SpaceCreate(self, 16, 1, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		filler, err := c.Insert(host, abi.RightRead, 0)
		if err != nil {
			t.Fatal(err)
		}
		makers := []struct {
			name string
			call func() (uint64, uint64, error)
		}{
			{"thread_create", func() (uint64, uint64, error) { return c.ThreadCreate(child, abi.UserBase, 0, 0) }},
			{"region_create", func() (uint64, uint64, error) { return c.RegionCreate(self, 1<<20) }},
			{"port_create", func() (uint64, uint64, error) { return c.PortCreate(self) }},
			{"port_set_create", func() (uint64, uint64, error) { return c.PortSetCreate(self) }},
			{"space_create", func() (uint64, uint64, error) { return c.SpaceCreate(self, 16, 1, 2, 0) }},
		}
		for _, m := range makers {
			if _, _, err := m.call(); !errors.Is(err, abi.ErrQuota) {
				t.Fatalf("%s with a full handle table: %v, want NV_EQUOTA", m.name, err)
			}
		}
		// With one handle free, each quota has the room it had: the
		// child's one thread, the host's whole megabyte, its second space.
		for _, m := range makers {
			if _, _, err := c.HandleClose(filler); err != nil {
				t.Fatal(err)
			}
			h, _, err := m.call()
			if err != nil {
				t.Fatalf("%s with a handle free: %v (an earlier refusal left an object behind)", m.name, err)
			}
			filler = h
		}
	})
}
