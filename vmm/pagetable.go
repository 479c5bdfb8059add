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
	pteNX       = 1 << 63
	pteAddrMask = 0x000f_ffff_ffff_f000
	// Intermediate entries allow everything; the leaf decides.
	pteTable = ptePresent | pteWrite | pteUser | pteAccessed
)

// ErrPageTablesFull is returned when a space's page-table pool has no room
// for another table: the space maps more memory than the pool can describe.
var ErrPageTablesFull = errors.New("page-table pool exhausted")

// NoPageTableNX is implemented by a Machine whose CPU treats the page-table
// no-execute bit as reserved (the emulator ignores EFER.NXE, and a PTE with
// bit 63 set raises a reserved-bit page fault on every access). The monitor
// then leaves the bit clear and relies on the mapping's permission hint.
type NoPageTableNX interface {
	NoPageTableNX()
}

// pageTables builds the 4-level, identity-mapped page tables of one space
// in a pool of guest-physical pages inside the system memory. The CPU walks
// them by physical address, so the pool itself is never mapped. Only 4 KiB
// leaves are used: per-page presence and permissions are what keepers,
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
	var p uint64
	if n := len(pt.free); n > 0 {
		p, pt.free = pt.free[n-1], pt.free[:n-1]
	} else if pt.next < ptPoolAddr+uint64(len(pt.pool)) {
		p = pt.next
		pt.next += abi.PageSize
	} else {
		return 0, ErrPageTablesFull
	}
	clear(pt.table(p))
	return p, nil
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
// on the way when create is set; 0 when absent.
func (pt *pageTables) leafTable(va uint64, create bool) (uint64, error) {
	t := pt.root
	for level := 3; level > 0; level-- {
		i := index(va, level)
		e := pt.get(t, i)
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
// accessible from ring 3. Existing entries are overwritten. On
// ErrPageTablesFull the pages mapped so far stay mapped; the caller unmaps.
func (pt *pageTables) mapRange(va, size uint64, perm Perm, user bool) error {
	for a := va; a < va+size; {
		t, err := pt.leafTable(a, true)
		if err != nil {
			return fmt.Errorf("map %#x: %w", a, err)
		}
		for i := index(a, 0); i < 512 && a < va+size; i, a = i+1, a+abi.PageSize {
			pt.setLeaf(t, i, pt.leaf(a, perm, user))
		}
	}
	return nil
}

// unmapRange removes the entries of [va, va+size) and frees tables that
// become empty.
func (pt *pageTables) unmapRange(va, size uint64) {
	for a := va; a < va+size; {
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

// releaseEmpty frees the tables on the path to va that hold no entries.
func (pt *pageTables) releaseEmpty(va uint64) {
	var path [4]uint64
	path[3] = pt.root
	for level := 3; level > 0; level-- {
		e := pt.get(path[level], index(va, level))
		if e&ptePresent == 0 {
			return
		}
		path[level-1] = e & pteAddrMask
	}
	for level := 0; level < 3; level++ {
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
func (pt *pageTables) protectRange(va, size uint64, perm Perm, user bool) {
	for a := va; a < va+size; a += abi.PageSize {
		t, _ := pt.leafTable(a, false)
		if t == 0 {
			continue
		}
		i := index(a, 0)
		if old := pt.get(t, i); old&ptePresent != 0 {
			pt.setLeaf(t, i, pt.leaf(a, perm, user)|old&pteDirty)
		}
	}
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

// lookup returns the leaf entry for va, or 0.
func (pt *pageTables) lookup(va uint64) uint64 {
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
