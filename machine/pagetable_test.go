package machine

import (
	"encoding/binary"
	"errors"
	"testing"

	"nestvm/abi"
)

// cpuWalk translates va the way the CPU does, reading the pool directly:
// it returns the leaf entry and the physical address va maps to.
func cpuWalk(pt *PageTables, va uint64) (uint64, bool) {
	e, _, ok := cpuTranslate(pt, va)
	return e, ok
}

func cpuTranslate(pt *PageTables, va uint64) (uint64, uint64, bool) {
	t := pt.Root
	for level := 3; level >= 0; level-- {
		e := binary.LittleEndian.Uint64(pt.table(t)[TableIndex(va, level)*8:])
		if e&PTEPresent == 0 {
			return e, 0, false
		}
		if level == 1 && e&pteLarge != 0 {
			return e, e&pteAddrMask&^(LargeSize-1) | va&(LargeSize-1), true
		}
		if level == 0 {
			return e, e&pteAddrMask | va&0xfff, true
		}
		t = e & pteAddrMask
	}
	panic("unreachable")
}

func newTestTables(t *testing.T, pages int, nx bool) *PageTables {
	t.Helper()
	pt, err := NewPageTables(make([]byte, pages*abi.PageSize), nx)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

func TestPageTablesMapIdentity(t *testing.T) {
	pt := newTestTables(t, 64, true)
	const base = abi.UserBase + 0x1ff000 // crosses a 2 MiB table boundary
	if err := pt.MapRange(base, 4*abi.PageSize, PermRead|PermWrite, true, false); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 4; i++ {
		va := base + i*abi.PageSize
		e, ok := cpuWalk(pt, va)
		if !ok {
			t.Fatalf("%#x not present", va)
		}
		if e&pteAddrMask != va {
			t.Errorf("%#x maps to %#x, want identity", va, e&pteAddrMask)
		}
		if e&(PTEWrite|pteUser) != PTEWrite|pteUser || e&pteNX == 0 {
			t.Errorf("%#x entry %#x: want user, writable, no-exec", va, e)
		}
	}
	if _, ok := cpuWalk(pt, base+4*abi.PageSize); ok {
		t.Errorf("page past the range is mapped")
	}
	if _, ok := cpuWalk(pt, base-abi.PageSize); ok {
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
		if err := pt.MapRange(abi.UserBase, abi.PageSize, tc.perm, tc.user, false); err != nil {
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
		if got := e&PTEWrite != 0; got != tc.write {
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
	if err := pt.MapRange(va, 3*abi.PageSize, PermRead, true, false); err != nil {
		t.Fatal(err)
	}
	if got := pt.used() - before; got != 3 {
		t.Fatalf("mapping used %d tables, want 3", got)
	}
	pt.UnmapRange(va, abi.PageSize)
	if pt.used()-before != 3 {
		t.Fatalf("partial unmap freed tables still in use")
	}
	if _, ok := cpuWalk(pt, va+abi.PageSize); !ok {
		t.Fatalf("unmapping one page removed its neighbour")
	}
	pt.UnmapRange(va+abi.PageSize, 2*abi.PageSize)
	if got := pt.used(); got != before {
		t.Fatalf("after unmapping everything %d tables are in use, want %d", got, before)
	}
	if e := pt.Get(pt.Root, TableIndex(va, 3)); e != 0 {
		t.Fatalf("root still points at a freed table: %#x", e)
	}
	// Freed pages are reused.
	if err := pt.MapRange(va, abi.PageSize, PermRead, true, false); err != nil {
		t.Fatal(err)
	}
	if pt.used()-before != 3 || pt.next != PTPoolAddr+4*abi.PageSize {
		t.Fatalf("freed tables were not reused (next %#x)", pt.next)
	}
}

func TestPageTablesProtectKeepsDirty(t *testing.T) {
	pt := newTestTables(t, 8, true)
	if err := pt.MapRange(abi.UserBase, 2*abi.PageSize, PermRead|PermWrite, true, false); err != nil {
		t.Fatal(err)
	}
	// Pretend the CPU wrote the first page.
	tb, _ := pt.LeafTable(abi.UserBase, false)
	pt.Set(tb, TableIndex(abi.UserBase, 0), pt.Get(tb, TableIndex(abi.UserBase, 0))|PTEDirty)
	if err := pt.ProtectRange(abi.UserBase, 2*abi.PageSize, PermRead, true); err != nil {
		t.Fatal(err)
	}
	e0, e1 := pt.Lookup(abi.UserBase), pt.Lookup(abi.UserBase+abi.PageSize)
	if e0&PTEWrite != 0 || e1&PTEWrite != 0 {
		t.Fatalf("protect left pages writable: %#x %#x", e0, e1)
	}
	if e0&PTEDirty == 0 || e1&PTEDirty != 0 {
		t.Fatalf("protect changed dirty bits: %#x %#x", e0, e1)
	}
	if err := pt.ProtectRange(abi.UserBase, abi.PageSize, 0, true); err != nil {
		t.Fatal(err)
	}
	if _, ok := cpuWalk(pt, abi.UserBase); ok {
		t.Fatalf("protect to no access left the page present")
	}
}

func TestPageTablesPoolExhausted(t *testing.T) {
	pt := newTestTables(t, 4, true) // root + one path of three tables
	if err := pt.MapRange(abi.UserBase, abi.PageSize, PermRead, true, false); err != nil {
		t.Fatal(err)
	}
	err := pt.MapRange(abi.UserBase+512*abi.PageSize, abi.PageSize, PermRead, true, false)
	if !errors.Is(err, ErrPageTablesFull) {
		t.Fatalf("want ErrPageTablesFull, got %v", err)
	}
}

func TestPageTablesLargePages(t *testing.T) {
	pt := newTestTables(t, 32, true)
	const base = 0x40_0000_0000 - 0x1000 // unaligned start: 4 KiB pages up to the boundary
	size := uint64(abi.PageSize + 3*LargeSize + 2*abi.PageSize)
	before := pt.used()
	if err := pt.MapRange(base, size, PermRead|PermWrite, true, true); err != nil {
		t.Fatal(err)
	}
	// Every page maps to itself, whatever its size.
	for a := uint64(base); a < base+size; a += abi.PageSize {
		_, phys, ok := cpuTranslate(pt, a+0x123)
		if !ok || phys != a+0x123 {
			t.Fatalf("%#x translates to %#x (ok %v)", a+0x123, phys, ok)
		}
	}
	if e := pt.Lookup(base + abi.PageSize); e&pteLarge == 0 {
		t.Fatalf("an aligned 2 MiB run was not mapped with a large page: %#x", e)
	}
	if e := pt.Lookup(base); e&pteLarge != 0 {
		t.Fatalf("the unaligned head used a large page")
	}
	// Protect a page inside a large page: it is split, only that page changes.
	mid := uint64(base + abi.PageSize + LargeSize + 5*abi.PageSize)
	if err := pt.ProtectRange(mid, abi.PageSize, PermRead, true); err != nil {
		t.Fatal(err)
	}
	if e, _ := cpuWalk(pt, mid); e&PTEWrite != 0 {
		t.Fatalf("protected page still writable")
	}
	for _, a := range []uint64{mid - abi.PageSize, mid + abi.PageSize, base + abi.PageSize + LargeSize} {
		if e, ok := cpuWalk(pt, a); !ok || e&PTEWrite == 0 {
			t.Fatalf("neighbour %#x changed: %#x", a, e)
		}
		if _, phys, _ := cpuTranslate(pt, a); phys != a {
			t.Fatalf("neighbour %#x now maps to %#x", a, phys)
		}
	}
	// Unmap part of another large page, then everything: tables are freed.
	pt.UnmapRange(base+abi.PageSize+2*LargeSize, abi.PageSize)
	if _, ok := cpuWalk(pt, base+abi.PageSize+2*LargeSize); ok {
		t.Fatalf("unmapped page still present")
	}
	if _, ok := cpuWalk(pt, base+abi.PageSize+2*LargeSize+abi.PageSize); !ok {
		t.Fatalf("unmapping one page of a large page removed the rest")
	}
	pt.UnmapRange(base, size)
	for a := uint64(base); a < base+size; a += abi.PageSize {
		if _, ok := cpuWalk(pt, a); ok {
			t.Fatalf("%#x still mapped", a)
		}
	}
	if got := pt.used(); got != before {
		t.Fatalf("%d tables in use after unmapping everything, want %d", got, before)
	}
}
