package vmm

import (
	"encoding/binary"
	"errors"
	"testing"

	"nestvm/abi"
)

// cpuWalk translates va the way the CPU does, reading the pool directly.
func cpuWalk(pt *pageTables, va uint64) (uint64, bool) {
	t := pt.root
	for level := 3; level >= 0; level-- {
		e := binary.LittleEndian.Uint64(pt.table(t)[index(va, level)*8:])
		if e&ptePresent == 0 {
			return e, false
		}
		if level == 0 {
			return e, true
		}
		t = e & pteAddrMask
	}
	panic("unreachable")
}

func newTestTables(t *testing.T, pages int, nx bool) *pageTables {
	t.Helper()
	pt, err := newPageTables(make([]byte, pages*pageSize), nx)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

func TestPageTablesMapIdentity(t *testing.T) {
	pt := newTestTables(t, 64, true)
	const base = abi.UserBase + 0x1ff000 // crosses a 2 MiB table boundary
	if err := pt.mapRange(base, 4*pageSize, PermRead|PermWrite, true); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 4; i++ {
		va := base + i*pageSize
		e, ok := cpuWalk(pt, va)
		if !ok {
			t.Fatalf("%#x not present", va)
		}
		if e&pteAddrMask != va {
			t.Errorf("%#x maps to %#x, want identity", va, e&pteAddrMask)
		}
		if e&(pteWrite|pteUser) != pteWrite|pteUser || e&pteNX == 0 {
			t.Errorf("%#x entry %#x: want user, writable, no-exec", va, e)
		}
	}
	if _, ok := cpuWalk(pt, base+4*pageSize); ok {
		t.Errorf("page past the range is mapped")
	}
	if _, ok := cpuWalk(pt, base-pageSize); ok {
		t.Errorf("page before the range is mapped")
	}
}

func TestPageTablesPermissions(t *testing.T) {
	for _, tc := range []struct {
		perm         Perm
		user, nx     bool
		write, exec  bool
		wantPresent  bool
		wantUserFlag bool
	}{
		{PermRead, true, true, false, false, true, true},
		{PermRead | PermExec, true, true, false, true, true, true},
		{PermRead | PermWrite, false, true, true, false, true, false},
		{PermRead, true, false, false, true, true, true}, // without NX everything executes
		{0, true, true, false, false, false, true},
	} {
		pt := newTestTables(t, 8, tc.nx)
		if err := pt.mapRange(abi.UserBase, pageSize, tc.perm, tc.user); err != nil {
			t.Fatal(err)
		}
		e, ok := cpuWalk(pt, abi.UserBase)
		if ok != tc.wantPresent {
			t.Errorf("perm %s: present=%v, want %v", tc.perm, ok, tc.wantPresent)
			continue
		}
		if !ok {
			continue
		}
		if got := e&pteWrite != 0; got != tc.write {
			t.Errorf("perm %s: writable=%v", tc.perm, got)
		}
		if got := e&pteNX == 0; got != tc.exec {
			t.Errorf("perm %s nx=%v: executable=%v", tc.perm, tc.nx, got)
		}
		if got := e&pteUser != 0; got != tc.wantUserFlag {
			t.Errorf("perm %s: user=%v", tc.perm, got)
		}
	}
}

func TestPageTablesUnmapFreesTables(t *testing.T) {
	pt := newTestTables(t, 16, true)
	before := pt.used()
	const va = 0x8_0000_0000 // needs a fresh PDPT, PD and PT
	if err := pt.mapRange(va, 3*pageSize, PermRead, true); err != nil {
		t.Fatal(err)
	}
	if got := pt.used() - before; got != 3 {
		t.Fatalf("mapping used %d tables, want 3", got)
	}
	pt.unmapRange(va, pageSize)
	if pt.used()-before != 3 {
		t.Fatalf("partial unmap freed tables still in use")
	}
	if _, ok := cpuWalk(pt, va+pageSize); !ok {
		t.Fatalf("unmapping one page removed its neighbour")
	}
	pt.unmapRange(va+pageSize, 2*pageSize)
	if got := pt.used(); got != before {
		t.Fatalf("after unmapping everything %d tables are in use, want %d", got, before)
	}
	if e := pt.get(pt.root, index(va, 3)); e != 0 {
		t.Fatalf("root still points at a freed table: %#x", e)
	}
	// Freed pages are reused.
	if err := pt.mapRange(va, pageSize, PermRead, true); err != nil {
		t.Fatal(err)
	}
	if pt.used()-before != 3 || pt.next != ptPoolAddr+4*pageSize {
		t.Fatalf("freed tables were not reused (next %#x)", pt.next)
	}
}

func TestPageTablesProtectKeepsDirty(t *testing.T) {
	pt := newTestTables(t, 8, true)
	if err := pt.mapRange(abi.UserBase, 2*pageSize, PermRead|PermWrite, true); err != nil {
		t.Fatal(err)
	}
	// Pretend the CPU wrote the first page.
	tb, _ := pt.leafTable(abi.UserBase, false)
	pt.set(tb, index(abi.UserBase, 0), pt.get(tb, index(abi.UserBase, 0))|pteDirty)
	pt.protectRange(abi.UserBase, 2*pageSize, PermRead, true)
	e0, e1 := pt.lookup(abi.UserBase), pt.lookup(abi.UserBase+pageSize)
	if e0&pteWrite != 0 || e1&pteWrite != 0 {
		t.Fatalf("protect left pages writable: %#x %#x", e0, e1)
	}
	if e0&pteDirty == 0 || e1&pteDirty != 0 {
		t.Fatalf("protect changed dirty bits: %#x %#x", e0, e1)
	}
	pt.protectRange(abi.UserBase, pageSize, 0, true)
	if _, ok := cpuWalk(pt, abi.UserBase); ok {
		t.Fatalf("protect to no access left the page present")
	}
}

func TestPageTablesPoolExhausted(t *testing.T) {
	pt := newTestTables(t, 4, true) // root + one path of three tables
	if err := pt.mapRange(abi.UserBase, pageSize, PermRead, true); err != nil {
		t.Fatal(err)
	}
	err := pt.mapRange(abi.UserBase+512*pageSize, pageSize, PermRead, true)
	if !errors.Is(err, ErrPageTablesFull) {
		t.Fatalf("want ErrPageTablesFull, got %v", err)
	}
}
