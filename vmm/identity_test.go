package vmm_test

import (
	"errors"
	"io"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/vmm"
)

// TestHandleIdentify checks what a layer relies on to save and compare
// objects through handles alone: one object, one identity, whichever
// handle or space it is seen through; distinct objects, distinct
// identities; ports the monitor serves flagged; a short buffer refused
// with the size it needs.
func TestHandleIdentify(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		host := mon.NewHostSpace("host", vmm.DefaultQuota)
		defer func() { host.Kill("test over"); host.Wait() }()
		c := host.NewCaller()
		must := func(r0, _ uint64, err error) uint64 {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return r0
		}
		id := func(h uint64) abi.HandleIdentity {
			t.Helper()
			rec, err := c.Identify(h)
			if err != nil {
				t.Fatalf("handle_identify(%d): %v", h, err)
			}
			return rec
		}
		self, err := c.Insert(host, abi.RightsAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		child := must(c.SpaceCreate(self, 64, 4, 16, 0))
		r1 := must(c.RegionCreate(self, 4096))
		r2 := must(c.RegionCreate(self, 4096))
		port := must(c.PortCreate(self))
		con, err := c.Insert(vmm.NewHostPort("console", vmm.ConsoleServer(io.Discard)), abi.RightWrite|abi.RightGrant|abi.RightDerive, 0)
		if err != nil {
			t.Fatal(err)
		}
		derived := must(c.HandleDerive(r1, uint64(abi.RightRead|abi.RightDerive), 7))

		a, d := id(r1), id(derived)
		if a.Object == 0 || a.Object != d.Object {
			t.Fatalf("a region and a handle derived from it: identities %d and %d, want one nonzero", a.Object, d.Object)
		}
		if d.Badge != 7 || abi.Rights(d.Rights) != abi.RightRead|abi.RightDerive || d.Type != uint64(abi.ObjRegion) {
			t.Errorf("derived handle: %+v, want badge 7, read|derive, a region", d)
		}
		seen := map[uint64]string{}
		for name, h := range map[string]uint64{"self": self, "child": child, "region": r1, "region2": r2, "port": port, "console": con} {
			rec := id(h)
			if other, dup := seen[rec.Object]; dup {
				t.Errorf("%s and %s share identity %d", name, other, rec.Object)
			}
			seen[rec.Object] = name
			if served := rec.Flags&abi.IdentServed != 0; served != (name == "console") {
				t.Errorf("%s: served flag %v", name, served)
			}
		}
		if again := id(r1); again != a {
			t.Errorf("asked twice: %+v then %+v", a, again)
		}

		// A copy that space_get_state hands out names the same object.
		if _, _, err := c.SpaceInsert(child, r1, uint64(abi.RightRead)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		if _, _, err := c.SpaceGetState(child, buf); err != nil {
			t.Fatal(err)
		}
		_, _, handles, _, err := abi.DecodeSpaceState(buf)
		if err != nil || len(handles) != 1 {
			t.Fatalf("space_get_state: %d handles, %v", len(handles), err)
		}
		if got := id(handles[0].Handle); got.Object != a.Object {
			t.Errorf("the child's copy of the region: identity %d, want %d", got.Object, a.Object)
		}

		r0, r1n, err := c.HandleIdentify(r1, make([]byte, 8))
		if !errors.Is(err, abi.ErrTooBig) || r1n != 40 {
			t.Errorf("8-byte buffer: r0 %#x r1 %d err %v, want NV_ETOOBIG and 40", r0, r1n, err)
		}
	})
}

// TestStateIdentities checks that space_get_state reports the space's
// and each thread's identity as handle_identify does for handles to them,
// so a reader of the state knows them across reads and spaces.
func TestStateIdentities(t *testing.T) {
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
		want := map[uint64]uint64{} // thread number: identity
		for range 2 {
			th, num, err := c.ThreadCreate(child, entry, stack, 0)
			if err != nil {
				t.Fatal(err)
			}
			id, err := c.Identify(th)
			if err != nil {
				t.Fatal(err)
			}
			want[num] = id.Object
		}
		if want[0] == want[1] || want[0] == 0 {
			t.Fatalf("thread identities %v: want two distinct, not 0", want)
		}
		buf := make([]byte, 4096)
		n := must("space_get_state")(c.SpaceGetState(child, buf))
		st, _, _, threads, err := abi.DecodeSpaceState(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		sp, err := c.Identify(child)
		if err != nil {
			t.Fatal(err)
		}
		if st.Identity != sp.Object {
			t.Errorf("space_get_state: space identity %d, handle_identify %d", st.Identity, sp.Object)
		}
		if len(threads) != 2 {
			t.Fatalf("space_get_state lists %d threads, want 2", len(threads))
		}
		for _, th := range threads {
			if th.Identity != want[th.Number] {
				t.Errorf("thread %d: identity %d in the state, %d by handle_identify", th.Number, th.Identity, want[th.Number])
			}
			if id, err := c.Identify(th.Handle); err != nil || id.Object != th.Identity {
				t.Errorf("thread %d: the state's copy identifies as %d (%v), the state says %d", th.Number, id.Object, err, th.Identity)
			}
		}
	})
}
