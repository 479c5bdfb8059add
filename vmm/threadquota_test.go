package vmm_test

import (
	"errors"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/vmm"
)

// TestThreadQuotaCountsSubtree checks that a space's thread quota bounds
// the threads of every space below it together, as its children quota
// bounds spaces, and that a thread's place comes back when its space is
// killed.
func TestThreadQuotaCountsSubtree(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		q := vmm.DefaultQuota
		q.Threads = 3
		host := mon.NewHostSpace("host", q)
		defer func() { host.Kill("test over"); host.Wait() }()
		c := host.NewCaller()
		must := mustOK(t)
		self, err := c.Insert(host, abi.RightsAll, 0)
		if err != nil {
			t.Fatal(err)
		}

		if _, _, err := c.SpaceCreate(self, 0, 4, 0, 0); !errors.Is(err, abi.ErrQuota) {
			t.Errorf("a child with more threads than its parent: %v, want %v", err, abi.ErrQuota)
		}
		child := must("space_create")(c.SpaceCreate(self, 0, 0, 0, 0))
		grand := must("space_create grandchild")(c.SpaceCreate(child, 0, 0, 0, 0))
		entry, stack := uint64(abi.UserBase), uint64(abi.UserTop-64)
		must("thread_create 1")(c.ThreadCreate(child, entry, stack, 0))
		must("thread_create 2")(c.ThreadCreate(child, entry, stack, 0))
		must("thread_create in the grandchild")(c.ThreadCreate(grand, entry, stack, 0))
		if _, _, err := c.ThreadCreate(grand, entry, stack, 0); !errors.Is(err, abi.ErrQuota) {
			t.Fatalf("a fourth thread below a quota of 3: %v, want %v", err, abi.ErrQuota)
		}
		if _, _, err := c.ThreadCreate(child, entry, stack, 0); !errors.Is(err, abi.ErrQuota) {
			t.Fatalf("a fourth thread in the child: %v, want %v", err, abi.ErrQuota)
		}
		must("space_kill grandchild")(c.SpaceKill(grand, 0))
		must("thread_create after the grandchild's end")(c.ThreadCreate(child, entry, stack, 0))
		if _, _, err := c.ThreadCreate(child, entry, stack, 0); !errors.Is(err, abi.ErrQuota) {
			t.Fatalf("a fourth thread after the grandchild's end: %v, want %v", err, abi.ErrQuota)
		}
	})
}

// TestThreadQuotaPerSpace checks that one space runs at most MaxVCPUs
// threads whatever its quota says.
func TestThreadQuotaPerSpace(t *testing.T) {
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
		entry, stack := uint64(abi.UserBase), uint64(abi.UserTop-64)
		for i := 0; i < machine.MaxVCPUs; i++ {
			must("thread_create")(c.ThreadCreate(child, entry, stack, 0))
		}
		if _, _, err := c.ThreadCreate(child, entry, stack, 0); !errors.Is(err, abi.ErrQuota) {
			t.Fatalf("thread %d of one space: %v, want %v", machine.MaxVCPUs+1, err, abi.ErrQuota)
		}
		other := must("space_create")(c.SpaceCreate(self, 0, 0, 0, 0))
		must("thread_create in another space")(c.ThreadCreate(other, entry, stack, 0))
	})
}
