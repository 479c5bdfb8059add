package machine

import (
	"encoding/binary"
	"errors"
	"fmt"

	"nestvm/abi"
)

// Page-table entry bits.
const (
	PTEPresent  = 1 << 0
	PTEWrite    = 1 << 1
	pteUser     = 1 << 2
	PTEAccessed = 1 << 5
	PTEDirty    = 1 << 6
	pteLarge    = 1 << 7 // in a PD entry: a 2 MiB page
	pteNX       = 1 << 63
	LargeSize   = 2 << 20
	pteAddrMask = 0x000f_ffff_ffff_f000
	// Intermediate entries allow everything; the leaf decides.
	pteTable = PTEPresent | PTEWrite | pteUser | PTEAccessed
)

// ErrPageTablesFull is returned when a space's page-table pool has no room
// for another table: the space maps more memory than the pool can describe.
var ErrPageTablesFull = errors.New("page-table pool exhausted")

// PageTables builds the 4-level, identity-mapped page tables of one space
// in a pool of guest-physical pages inside the system memory. The CPU walks
// them by physical address, so the pool itself is never mapped. Mappings
// the monitor makes itself (program segments, stack, heap) use 2 MiB pages
// where alignment allows, which keeps the pool small and launching fast;
// everything else (and any 2 MiB page whose part is later changed) uses
// 4 KiB pages, since per-page presence and permissions are what keepers,
// protect and dirty tracking need.
type PageTables struct {
	pool  []byte // host view of the pool; pool[0] is guest-physical ptPoolAddr
	Root  uint64 // guest-physical address of the PML4
	next  uint64 // bump pointer for never-used pool pages
	free  []uint64
	live  map[uint64]int // present entries per non-root table, to free empty ones
	useNX bool
}

// NewPageTables returns empty page tables that take their tables from pool,
// the host view of the guest-physical pool at PTPoolAddr; useNX sets the
// no-exec bit in entries without PermExec.
func NewPageTables(pool []byte, useNX bool) (*PageTables, error) {
	pt := &PageTables{pool: pool, next: PTPoolAddr, live: map[uint64]int{}, useNX: useNX}
	root, err := pt.alloc()
	if err != nil {
		return nil, err
	}
	pt.Root = root
	return pt, nil
}

func (pt *PageTables) alloc() (uint64, error) {
	if n := len(pt.free); n > 0 {
		p := pt.free[n-1]
		pt.free = pt.free[:n-1]
		clear(pt.table(p))
		return p, nil
	}
	if pt.next < PTPoolAddr+uint64(len(pt.pool)) {
		// Never used: still zero (the pool is fresh memfd memory), and not
		// touching it saves a host page fault.
		p := pt.next
		pt.next += abi.PageSize
		return p, nil
	}
	return 0, ErrPageTablesFull
}

// table returns the host view of the table page at guest-physical p.
func (pt *PageTables) table(p uint64) []byte {
	off := p - PTPoolAddr
	return pt.pool[off : off+abi.PageSize]
}

// Get reads entry i of the table at guest-physical table.
func (pt *PageTables) Get(table uint64, i int) uint64 {
	return binary.LittleEndian.Uint64(pt.table(table)[i*8:])
}

// Set writes entry i of the table at guest-physical table.
func (pt *PageTables) Set(table uint64, i int, v uint64) {
	binary.LittleEndian.PutUint64(pt.table(table)[i*8:], v)
}

// TableIndex is the entry that covers va in a table of the given level (0
// for the last).
func TableIndex(va uint64, level int) int { return int(va>>(12+9*uint(level))) & 511 }

// LeafTable returns the last-level table covering va, creating the tables
// on the way when create is set (and splitting a 2 MiB page that covers
// va); 0 when absent, or when va is in a 2 MiB page and create is not set.
func (pt *PageTables) LeafTable(va uint64, create bool) (uint64, error) {
	t := pt.Root
	for level := 3; level > 0; level-- {
		i := TableIndex(va, level)
		e := pt.Get(t, i)
		if level == 1 && e&(PTEPresent|pteLarge) == PTEPresent|pteLarge {
			if !create {
				return 0, nil
			}
			n, err := pt.split(t, i, e)
			if err != nil {
				return 0, err
			}
			return n, nil
		}
		if e&PTEPresent == 0 {
			if !create {
				return 0, nil
			}
			n, err := pt.alloc()
			if err != nil {
				return 0, err
			}
			pt.Set(t, i, n|pteTable)
			if t != pt.Root {
				pt.live[t]++
			}
			e = n | pteTable
		}
		t = e & pteAddrMask
	}
	return t, nil
}

// split replaces the 2 MiB page in entry i of page directory pd with a
// table of 512 4 KiB entries with the same permissions and dirty bit.
func (pt *PageTables) split(pd uint64, i int, e uint64) (uint64, error) {
	n, err := pt.alloc()
	if err != nil {
		return 0, err
	}
	base := e & pteAddrMask &^ (LargeSize - 1)
	flags := e &^ pteAddrMask &^ pteLarge
	for j := 0; j < 512; j++ {
		pt.Set(n, j, base+uint64(j)*abi.PageSize|flags)
	}
	pt.live[n] = 512
	pt.Set(pd, i, n|pteTable)
	return n, nil
}

// mapLarge maps the 2 MiB page at va if its page-directory slot is free
// (creating the upper tables), and reports whether it did; acc is the
// entry's Accessed bit (see mapPages).
func (pt *PageTables) mapLarge(va uint64, perm Perm, user bool, acc uint64) (bool, error) {
	t := pt.Root
	for level := 3; level > 1; level-- {
		i := TableIndex(va, level)
		e := pt.Get(t, i)
		if e&PTEPresent == 0 {
			n, err := pt.alloc()
			if err != nil {
				return false, err
			}
			pt.Set(t, i, n|pteTable)
			if t != pt.Root {
				pt.live[t]++
			}
			e = n | pteTable
		}
		t = e & pteAddrMask
	}
	i := TableIndex(va, 1)
	if pt.Get(t, i)&PTEPresent != 0 {
		return false, nil
	}
	e := pt.leaf(va, perm, user)
	if e&PTEPresent == 0 {
		return false, nil
	}
	pt.Set(t, i, e&^PTEAccessed|acc|pteLarge)
	pt.live[t]++
	return true, nil
}

// leaf computes the entry mapping va with perm.
func (pt *PageTables) leaf(va uint64, perm Perm, user bool) uint64 {
	e := va&pteAddrMask | PTEAccessed
	if perm&(PermRead|PermWrite|PermExec) != 0 {
		e |= PTEPresent
	}
	if perm&PermWrite != 0 {
		e |= PTEWrite
	}
	if user {
		e |= pteUser
	}
	if perm&PermExec == 0 && pt.useNX {
		e |= pteNX
	}
	return e
}

// MapRange maps [va, va+size) to itself with perm; user makes it
// accessible from ring 3; large allows 2 MiB pages where the range covers
// whole, unmapped 2 MiB slots. Existing entries are overwritten. On
// ErrPageTablesFull the pages mapped so far stay mapped; the caller unmaps.
// The entries come with the Accessed bit set, which spares the CPU setting
// it on first touch.
func (pt *PageTables) MapRange(va, size uint64, perm Perm, user, large bool) error {
	return pt.MapPages(va, size, perm, user, large, PTEAccessed)
}

// MapPages is mapRange with the leaf entries' Accessed bit acc (0 or
// PTEAccessed): region mappings start with it clear, so that the first
// touch of a page shows in region_accessed.
func (pt *PageTables) MapPages(va, size uint64, perm Perm, user, large bool, acc uint64) error {
	for a := va; a < va+size; {
		if large && a%LargeSize == 0 && va+size-a >= LargeSize {
			ok, err := pt.mapLarge(a, perm, user, acc)
			if err != nil {
				return fmt.Errorf("map %#x: %w", a, err)
			}
			if ok {
				a += LargeSize
				continue
			}
		}
		t, err := pt.LeafTable(a, true)
		if err != nil {
			return fmt.Errorf("map %#x: %w", a, err)
		}
		for i := TableIndex(a, 0); i < 512 && a < va+size; i, a = i+1, a+abi.PageSize {
			pt.setLeaf(t, i, pt.leaf(a, perm, user)&^PTEAccessed|acc)
		}
	}
	return nil
}

// UnmapRange removes the entries of [va, va+size) and frees tables that
// become empty.
func (pt *PageTables) UnmapRange(va, size uint64) {
	for a := va; a < va+size; {
		if pd, i, e := pt.largeEntry(a); e != 0 {
			if a%LargeSize == 0 && va+size-a >= LargeSize {
				pt.Set(pd, i, 0)
				pt.live[pd]--
				pt.releaseEmpty(a)
				a += LargeSize
				continue
			}
			pt.LeafTable(a, true) // split: part of the 2 MiB page stays
		}
		t, _ := pt.LeafTable(a, false)
		if t == 0 {
			a = (a | (512*abi.PageSize - 1)) + 1 // skip the whole absent table
			continue
		}
		for i := TableIndex(a, 0); i < 512 && a < va+size; i, a = i+1, a+abi.PageSize {
			pt.setLeaf(t, i, 0)
		}
		pt.releaseEmpty(a - abi.PageSize)
	}
}

// largeEntry returns the page directory, index and entry of the 2 MiB page
// covering va; e is 0 when va is not in one.
func (pt *PageTables) largeEntry(va uint64) (pd uint64, i int, e uint64) {
	t := pt.Root
	for level := 3; level > 1; level-- {
		x := pt.Get(t, TableIndex(va, level))
		if x&PTEPresent == 0 {
			return 0, 0, 0
		}
		t = x & pteAddrMask
	}
	i = TableIndex(va, 1)
	if x := pt.Get(t, i); x&(PTEPresent|pteLarge) == PTEPresent|pteLarge {
		return t, i, x
	}
	return 0, 0, 0
}

// releaseEmpty frees the tables on the path to va that hold no entries.
func (pt *PageTables) releaseEmpty(va uint64) {
	var path [4]uint64
	path[3] = pt.Root
	first := 0
	for level := 3; level > 0; level-- {
		e := pt.Get(path[level], TableIndex(va, level))
		if e&PTEPresent == 0 {
			if level == 1 {
				first = 1 // the leaf table is gone already (a 2 MiB page was unmapped)
				break
			}
			return
		}
		if level == 1 && e&pteLarge != 0 {
			return
		}
		path[level-1] = e & pteAddrMask
	}
	for level := first; level < 3; level++ {
		t := path[level]
		if pt.live[t] > 0 {
			return
		}
		delete(pt.live, t)
		pt.free = append(pt.free, t)
		parent := path[level+1]
		pt.Set(parent, TableIndex(va, level+1), 0)
		if parent != pt.Root {
			pt.live[parent]--
		}
	}
}

// ProtectRange changes the permission of the present entries of
// [va, va+size), keeping their dirty bits.
func (pt *PageTables) ProtectRange(va, size uint64, perm Perm, user bool) error {
	for a := va; a < va+size; a += abi.PageSize {
		if pd, i, e := pt.largeEntry(a); e != 0 {
			if a%LargeSize == 0 && va+size-a >= LargeSize {
				if n := pt.leaf(a, perm, user); n&PTEPresent != 0 {
					pt.Set(pd, i, n&^PTEAccessed|pteLarge|e&(PTEDirty|PTEAccessed))
					a += LargeSize - abi.PageSize
					continue
				}
			}
			if _, err := pt.LeafTable(a, true); err != nil { // split
				return fmt.Errorf("protect %#x: %w", a, err)
			}
		}
		t, _ := pt.LeafTable(a, false)
		if t == 0 {
			continue
		}
		i := TableIndex(a, 0)
		if old := pt.Get(t, i); old&PTEPresent != 0 {
			pt.setLeaf(t, i, pt.leaf(a, perm, user)&^PTEAccessed|old&(PTEDirty|PTEAccessed))
		}
	}
	return nil
}

// setLeaf writes entry i of leaf table t, keeping the table's count of
// present entries.
func (pt *PageTables) setLeaf(t uint64, i int, e uint64) {
	was := pt.Get(t, i)&PTEPresent != 0
	is := e&PTEPresent != 0
	switch {
	case is && !was:
		pt.live[t]++
	case was && !is:
		pt.live[t]--
	}
	pt.Set(t, i, e)
}

// Lookup returns the leaf entry for va (a 2 MiB page's entry, with
// pteLarge set, when va is in one), or 0.
func (pt *PageTables) Lookup(va uint64) uint64 {
	if _, _, e := pt.largeEntry(va); e != 0 {
		return e
	}
	t, _ := pt.LeafTable(va, false)
	if t == 0 {
		return 0
	}
	return pt.Get(t, TableIndex(va, 0))
}

// Used reports how many pool pages hold tables.
func (pt *PageTables) used() int {
	return int((pt.next-PTPoolAddr)/abi.PageSize) - len(pt.free)
}

// takeDirty reports whether the page at va was written since the last
// call, and clears the record (see takeBits).
func (pt *PageTables) takeDirty(va uint64) bool {
	found := false
	pt.TakeBits(va, abi.PageSize, PTEDirty, false, func(uint64, uint64) { found = true })
	return found
}

// TakeBits clears bit (pteAccessed or pteDirty) in the present entries of
// [va, va+size) and calls found with each range whose entry had it set: a
// 4 KiB page, or the part of a 2 MiB page in the range (its one bit stands
// for all its pages; with split, a 2 MiB page with the bit becomes 512
// 4 KiB ones without it, so the next time tells them apart). Bits are
// cleared atomically, since a CPU may set another bit of the same entry
// meanwhile (region_accessed asks while threads run).
func (pt *PageTables) TakeBits(va, size, bit uint64, split bool, found func(va, size uint64)) {
	end := va + size
	for a := va; a < end; {
		if pd, i, e := pt.largeEntry(a); e != 0 {
			next := min((a|(LargeSize-1))+1, end)
			if e&bit == 0 {
				a = next
				continue
			}
			// A written 2 MiB page becomes 512 clean 4 KiB ones, so the
			// next harvest tells which of them were written: one dirty
			// bit for 512 pages made every incremental save read all of
			// them again. Only where the caller asks (region_dirty, with
			// every other thread stopped, so no CPU sets the large
			// entry's bits meanwhile); where the pool has no room for
			// another table, the bit is cleared in place.
			if split {
				if _, err := pt.split(pd, i, e&^PTEDirty); err == nil {
					found(a, next-a)
					a = next
					continue
				}
			}
			if pt.clearBit(pd, i, bit)&bit != 0 {
				found(a, next-a)
			}
			a = next
			continue
		}
		t, _ := pt.LeafTable(a, false)
		if t == 0 {
			a = (a | (512*abi.PageSize - 1)) + 1 // the whole table is absent
			continue
		}
		for i := TableIndex(a, 0); i < 512 && a < end; i, a = i+1, a+abi.PageSize {
			if e := pt.Get(t, i); e&PTEPresent != 0 && e&bit != 0 && pt.clearBit(t, i, bit)&bit != 0 {
				found(a, abi.PageSize)
			}
		}
	}
}
