package vmm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"nestvm/abi"
)

// Page-table entry bits.
const (
	ptePresent  = 1 << 0
	pteWrite    = 1 << 1
	pteUser     = 1 << 2
	pteAccessed = 1 << 5
	pteDirty    = 1 << 6
	pteLarge    = 1 << 7 // in a PD entry: a 2 MiB page
	pteNX       = 1 << 63
	largeSize   = 2 << 20
	pteAddrMask = 0x000f_ffff_ffff_f000
	// Intermediate entries allow everything; the leaf decides.
	pteTable = ptePresent | pteWrite | pteUser | pteAccessed
)

// ErrPageTablesFull is returned when a space's page-table pool has no room
// for another table: the space maps more memory than the pool can describe.
var ErrPageTablesFull = errors.New("page-table pool exhausted")

// pageTables builds the 4-level, identity-mapped page tables of one space
// in a pool of guest-physical pages inside the system memory. The CPU walks
// them by physical address, so the pool itself is never mapped. Mappings
// the monitor makes itself (program segments, stack, heap) use 2 MiB pages
// where alignment allows, which keeps the pool small and launching fast;
// everything else (and any 2 MiB page whose part is later changed) uses
// 4 KiB pages, since per-page presence and permissions are what keepers,
// protect and dirty tracking need.
type pageTables struct {
	pool  []byte // host view of the pool; pool[0] is guest-physical ptPoolAddr
	root  uint64 // guest-physical address of the PML4
	next  uint64 // bump pointer for never-used pool pages
	free  []uint64
	live  map[uint64]int // present entries per non-root table, to free empty ones
	useNX bool
}

func newPageTables(pool []byte, useNX bool) (*pageTables, error) {
	pt := &pageTables{pool: pool, next: ptPoolAddr, live: map[uint64]int{}, useNX: useNX}
	root, err := pt.alloc()
	if err != nil {
		return nil, err
	}
	pt.root = root
	return pt, nil
}

func (pt *pageTables) alloc() (uint64, error) {
	if n := len(pt.free); n > 0 {
		p := pt.free[n-1]
		pt.free = pt.free[:n-1]
		clear(pt.table(p))
		return p, nil
	}
	if pt.next < ptPoolAddr+uint64(len(pt.pool)) {
		// Never used: still zero (the pool is fresh memfd memory), and not
		// touching it saves a host page fault.
		p := pt.next
		pt.next += abi.PageSize
		return p, nil
	}
	return 0, ErrPageTablesFull
}

// table returns the host view of the table page at guest-physical p.
func (pt *pageTables) table(p uint64) []byte {
	off := p - ptPoolAddr
	return pt.pool[off : off+abi.PageSize]
}

func (pt *pageTables) get(table uint64, i int) uint64 {
	return binary.LittleEndian.Uint64(pt.table(table)[i*8:])
}

func (pt *pageTables) set(table uint64, i int, v uint64) {
	binary.LittleEndian.PutUint64(pt.table(table)[i*8:], v)
}

func index(va uint64, level int) int { return int(va>>(12+9*uint(level))) & 511 }

// leafTable returns the last-level table covering va, creating the tables
// on the way when create is set (and splitting a 2 MiB page that covers
// va); 0 when absent, or when va is in a 2 MiB page and create is not set.
func (pt *pageTables) leafTable(va uint64, create bool) (uint64, error) {
	t := pt.root
	for level := 3; level > 0; level-- {
		i := index(va, level)
		e := pt.get(t, i)
		if level == 1 && e&(ptePresent|pteLarge) == ptePresent|pteLarge {
			if !create {
				return 0, nil
			}
			n, err := pt.split(t, i, e)
			if err != nil {
				return 0, err
			}
			return n, nil
		}
		if e&ptePresent == 0 {
			if !create {
				return 0, nil
			}
			n, err := pt.alloc()
			if err != nil {
				return 0, err
			}
			pt.set(t, i, n|pteTable)
			if t != pt.root {
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
func (pt *pageTables) split(pd uint64, i int, e uint64) (uint64, error) {
	n, err := pt.alloc()
	if err != nil {
		return 0, err
	}
	base := e & pteAddrMask &^ (largeSize - 1)
	flags := e &^ pteAddrMask &^ pteLarge
	for j := 0; j < 512; j++ {
		pt.set(n, j, base+uint64(j)*abi.PageSize|flags)
	}
	pt.live[n] = 512
	pt.set(pd, i, n|pteTable)
	return n, nil
}

// mapLarge maps the 2 MiB page at va if its page-directory slot is free
// (creating the upper tables), and reports whether it did; acc is the
// entry's Accessed bit (see mapPages).
func (pt *pageTables) mapLarge(va uint64, perm Perm, user bool, acc uint64) (bool, error) {
	t := pt.root
	for level := 3; level > 1; level-- {
		i := index(va, level)
		e := pt.get(t, i)
		if e&ptePresent == 0 {
			n, err := pt.alloc()
			if err != nil {
				return false, err
			}
			pt.set(t, i, n|pteTable)
			if t != pt.root {
				pt.live[t]++
			}
			e = n | pteTable
		}
		t = e & pteAddrMask
	}
	i := index(va, 1)
	if pt.get(t, i)&ptePresent != 0 {
		return false, nil
	}
	e := pt.leaf(va, perm, user)
	if e&ptePresent == 0 {
		return false, nil
	}
	pt.set(t, i, e&^pteAccessed|acc|pteLarge)
	pt.live[t]++
	return true, nil
}

// leaf computes the entry mapping va with perm.
func (pt *pageTables) leaf(va uint64, perm Perm, user bool) uint64 {
	e := va&pteAddrMask | pteAccessed
	if perm&(PermRead|PermWrite|PermExec) != 0 {
		e |= ptePresent
	}
	if perm&PermWrite != 0 {
		e |= pteWrite
	}
	if user {
		e |= pteUser
	}
	if perm&PermExec == 0 && pt.useNX {
		e |= pteNX
	}
	return e
}

// mapRange maps [va, va+size) to itself with perm; user makes it
// accessible from ring 3; large allows 2 MiB pages where the range covers
// whole, unmapped 2 MiB slots. Existing entries are overwritten. On
// ErrPageTablesFull the pages mapped so far stay mapped; the caller unmaps.
// The entries come with the Accessed bit set, which spares the CPU setting
// it on first touch.
func (pt *pageTables) mapRange(va, size uint64, perm Perm, user, large bool) error {
	return pt.mapPages(va, size, perm, user, large, pteAccessed)
}

// mapPages is mapRange with the leaf entries' Accessed bit acc (0 or
// pteAccessed): region mappings start with it clear, so that the first
// touch of a page shows in region_accessed.
func (pt *pageTables) mapPages(va, size uint64, perm Perm, user, large bool, acc uint64) error {
	for a := va; a < va+size; {
		if large && a%largeSize == 0 && va+size-a >= largeSize {
			ok, err := pt.mapLarge(a, perm, user, acc)
			if err != nil {
				return fmt.Errorf("map %#x: %w", a, err)
			}
			if ok {
				a += largeSize
				continue
			}
		}
		t, err := pt.leafTable(a, true)
		if err != nil {
			return fmt.Errorf("map %#x: %w", a, err)
		}
		for i := index(a, 0); i < 512 && a < va+size; i, a = i+1, a+abi.PageSize {
			pt.setLeaf(t, i, pt.leaf(a, perm, user)&^pteAccessed|acc)
		}
	}
	return nil
}

// unmapRange removes the entries of [va, va+size) and frees tables that
// become empty.
func (pt *pageTables) unmapRange(va, size uint64) {
	for a := va; a < va+size; {
		if pd, i, e := pt.largeEntry(a); e != 0 {
			if a%largeSize == 0 && va+size-a >= largeSize {
				pt.set(pd, i, 0)
				pt.live[pd]--
				pt.releaseEmpty(a)
				a += largeSize
				continue
			}
			pt.leafTable(a, true) // split: part of the 2 MiB page stays
		}
		t, _ := pt.leafTable(a, false)
		if t == 0 {
			a = (a | (512*abi.PageSize - 1)) + 1 // skip the whole absent table
			continue
		}
		for i := index(a, 0); i < 512 && a < va+size; i, a = i+1, a+abi.PageSize {
			pt.setLeaf(t, i, 0)
		}
		pt.releaseEmpty(a - abi.PageSize)
	}
}

// largeEntry returns the page directory, index and entry of the 2 MiB page
// covering va; e is 0 when va is not in one.
func (pt *pageTables) largeEntry(va uint64) (pd uint64, i int, e uint64) {
	t := pt.root
	for level := 3; level > 1; level-- {
		x := pt.get(t, index(va, level))
		if x&ptePresent == 0 {
			return 0, 0, 0
		}
		t = x & pteAddrMask
	}
	i = index(va, 1)
	if x := pt.get(t, i); x&(ptePresent|pteLarge) == ptePresent|pteLarge {
		return t, i, x
	}
	return 0, 0, 0
}

// releaseEmpty frees the tables on the path to va that hold no entries.
func (pt *pageTables) releaseEmpty(va uint64) {
	var path [4]uint64
	path[3] = pt.root
	first := 0
	for level := 3; level > 0; level-- {
		e := pt.get(path[level], index(va, level))
		if e&ptePresent == 0 {
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
		pt.set(parent, index(va, level+1), 0)
		if parent != pt.root {
			pt.live[parent]--
		}
	}
}

// protectRange changes the permission of the present entries of
// [va, va+size), keeping their dirty bits.
func (pt *pageTables) protectRange(va, size uint64, perm Perm, user bool) error {
	for a := va; a < va+size; a += abi.PageSize {
		if pd, i, e := pt.largeEntry(a); e != 0 {
			if a%largeSize == 0 && va+size-a >= largeSize {
				if n := pt.leaf(a, perm, user); n&ptePresent != 0 {
					pt.set(pd, i, n&^pteAccessed|pteLarge|e&(pteDirty|pteAccessed))
					a += largeSize - abi.PageSize
					continue
				}
			}
			if _, err := pt.leafTable(a, true); err != nil { // split
				return fmt.Errorf("protect %#x: %w", a, err)
			}
		}
		t, _ := pt.leafTable(a, false)
		if t == 0 {
			continue
		}
		i := index(a, 0)
		if old := pt.get(t, i); old&ptePresent != 0 {
			pt.setLeaf(t, i, pt.leaf(a, perm, user)&^pteAccessed|old&(pteDirty|pteAccessed))
		}
	}
	return nil
}

// setLeaf writes entry i of leaf table t, keeping the table's count of
// present entries.
func (pt *pageTables) setLeaf(t uint64, i int, e uint64) {
	was := pt.get(t, i)&ptePresent != 0
	is := e&ptePresent != 0
	switch {
	case is && !was:
		pt.live[t]++
	case was && !is:
		pt.live[t]--
	}
	pt.set(t, i, e)
}

// lookup returns the leaf entry for va (a 2 MiB page's entry, with
// pteLarge set, when va is in one), or 0.
func (pt *pageTables) lookup(va uint64) uint64 {
	if _, _, e := pt.largeEntry(va); e != 0 {
		return e
	}
	t, _ := pt.leafTable(va, false)
	if t == 0 {
		return 0
	}
	return pt.get(t, index(va, 0))
}

// used reports how many pool pages hold tables.
func (pt *pageTables) used() int {
	return int((pt.next-ptPoolAddr)/abi.PageSize) - len(pt.free)
}

// takeDirty reports whether the page at va was written since the last
// call, and clears the record (see takeBits).
func (pt *pageTables) takeDirty(va uint64) bool {
	found := false
	pt.takeBits(va, abi.PageSize, pteDirty, false, func(uint64, uint64) { found = true })
	return found
}

// takeBits clears bit (pteAccessed or pteDirty) in the present entries of
// [va, va+size) and calls found with each range whose entry had it set: a
// 4 KiB page, or the part of a 2 MiB page in the range (its one bit stands
// for all its pages; with split, a 2 MiB page with the bit becomes 512
// 4 KiB ones without it, so the next time tells them apart). Bits are
// cleared atomically, since a CPU may set another bit of the same entry
// meanwhile (region_accessed asks while threads run).
func (pt *pageTables) takeBits(va, size, bit uint64, split bool, found func(va, size uint64)) {
	end := va + size
	for a := va; a < end; {
		if pd, i, e := pt.largeEntry(a); e != 0 {
			next := min((a|(largeSize-1))+1, end)
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
				if _, err := pt.split(pd, i, e&^pteDirty); err == nil {
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
		t, _ := pt.leafTable(a, false)
		if t == 0 {
			a = (a | (512*abi.PageSize - 1)) + 1 // the whole table is absent
			continue
		}
		for i := index(a, 0); i < 512 && a < end; i, a = i+1, a+abi.PageSize {
			if e := pt.get(t, i); e&ptePresent != 0 && e&bit != 0 && pt.clearBit(t, i, bit)&bit != 0 {
				found(a, abi.PageSize)
			}
		}
	}
}
