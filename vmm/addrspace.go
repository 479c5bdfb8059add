package vmm

import (
	"fmt"
	"sort"

	"nestvm/abi"
	"nestvm/machine"
)

const pageSize = abi.PageSize

func pageDown(a uint64) uint64 { return a &^ (pageSize - 1) }

// pageUp rounds a up to a page boundary; ok is false on overflow.
func pageUp(a uint64) (uint64, bool) {
	r := (a + pageSize - 1) &^ (pageSize - 1)
	return r, r >= a
}

// mapping is a range of a space's user address range backed by a Memory.
type mapping struct {
	addr, size uint64
	mem        *machine.Memory
	off        uint64 // offset of addr within mem
	perm       machine.Perm
	limit      machine.Perm // the most space_protect may grant
	region     *Region      // the region mapped; nil for memory the monitor mapped itself
	// rights are those of the handle the region was mapped through: the
	// most a copy space_get_state hands out may have.
	rights abi.Rights
	space  *Space
}

func (m *mapping) end() uint64 { return m.addr + m.size }

// cut returns a mapping of [lo, hi), a part of m's range, that is m in
// everything else: the same memory (with a reference of its own) at the
// same offset, permissions, region and space.
func (m *mapping) cut(lo, hi uint64) *mapping {
	n := *m
	n.addr, n.size, n.off = lo, hi-lo, m.off+lo-m.addr
	n.mem = m.mem.Ref()
	return &n
}

// bytes returns the host view of [addr, addr+n) inside the mapping.
func (m *mapping) bytes(addr, n uint64) []byte {
	o := m.off + addr - m.addr
	return m.mem.Bytes()[o : o+n : o+n]
}

// addrSpace is the monitor's record of a space's user mappings, kept sorted
// by address. It is what guest pointers are checked against; the page
// tables are built from it.
type addrSpace struct {
	maps []*mapping
}

// find returns the mapping containing addr, or nil.
func (as *addrSpace) find(addr uint64) *mapping {
	i := sort.Search(len(as.maps), func(i int) bool { return as.maps[i].end() > addr })
	if i < len(as.maps) && as.maps[i].addr <= addr {
		return as.maps[i]
	}
	return nil
}

// overlaps reports whether [addr, addr+size) meets an existing mapping.
func (as *addrSpace) overlaps(addr, size uint64) bool {
	i := sort.Search(len(as.maps), func(i int) bool { return as.maps[i].end() > addr })
	return i < len(as.maps) && as.maps[i].addr < addr+size
}

// remove takes m out of the list.
func (as *addrSpace) remove(m *mapping) {
	for i, o := range as.maps {
		if o == m {
			as.maps = append(as.maps[:i], as.maps[i+1:]...)
			return
		}
	}
}

func (as *addrSpace) insert(m *mapping) {
	i := sort.Search(len(as.maps), func(i int) bool { return as.maps[i].addr > m.addr })
	as.maps = append(as.maps, nil)
	copy(as.maps[i+1:], as.maps[i:])
	as.maps[i] = m
}

// checkUserRange validates that [addr, addr+size) is page-aligned and inside
// the user range.
func checkUserRange(addr, size uint64) error {
	end := addr + size
	switch {
	case addr%pageSize != 0 || size%pageSize != 0:
		return fmt.Errorf("range %#x+%#x is not page-aligned", addr, size)
	case size == 0 || end < addr:
		return fmt.Errorf("range %#x+%#x is empty or wraps", addr, size)
	case addr < abi.UserBase || end > abi.UserTop:
		return fmt.Errorf("range %#x-%#x is outside the user range %#x-%#x", addr, end, uint64(abi.UserBase), uint64(abi.UserTop))
	}
	return nil
}

// userBuffer is a guest buffer checked for one access: its pieces are
// host views of the guest bytes, one per mapping it crosses.
type userBuffer struct {
	pieces [][]byte
	// regions says, per piece, which region it lies in and where: the
	// monitor's writes through it never set a page table's dirty bit, so
	// Write marks the pages in the region's records itself.
	regions []pieceRegion
	n       uint64
}

// buffer checks that the guest may access [addr, addr+n) with need
// (PermRead or PermWrite) and returns host views of it. A zero-length
// buffer is always valid, whatever its address.
func (as *addrSpace) buffer(addr, n uint64, need machine.Perm) (userBuffer, abi.Error) {
	if n == 0 {
		return userBuffer{}, abi.OK
	}
	end := addr + n
	if end < addr || addr < abi.UserBase || end > abi.UserTop {
		return userBuffer{}, abi.ErrBadAddress
	}
	var b userBuffer
	for a := addr; a < end; {
		m := as.find(a)
		if m == nil || m.perm&need != need {
			return userBuffer{}, abi.ErrBadAddress
		}
		e := min(end, m.end())
		b.pieces = append(b.pieces, m.bytes(a, e-a))
		pr := pieceRegion{r: m.region, off: m.off + a - m.addr, addr: a}
		if m.perm&machine.PermExec != 0 && m.space != nil && m.space.win.TranslatesCode() {
			pr.code = m.space.win
		}
		b.regions = append(b.regions, pr)
		a = e
	}
	b.n = n
	return b, abi.OK
}

// absent returns the first page of [addr, addr+n) that lies in a kept
// region and has not been supplied: the monitor must not read or write it
// for the guest before its keeper has supplied it. Callers hold the
// space's lock.
func (as *addrSpace) absent(addr, n uint64) (uint64, bool) {
	end := addr + n
	for a := pageDown(addr); a < end; {
		m := as.find(a)
		if m == nil {
			return 0, false
		}
		r := m.region
		if r == nil {
			a = m.end()
			continue
		}
		r.mu.Lock()
		kept := r.present != nil
		for ; kept && a < min(end, m.end()); a += pageSize {
			if !r.isPresent((m.off + a - m.addr) / pageSize) {
				r.mu.Unlock()
				return a, true
			}
		}
		r.mu.Unlock()
		a = m.end()
	}
	return 0, false
}

// Len returns the buffer's length.
func (b userBuffer) Len() uint64 { return b.n }

// Bytes returns the buffer as one slice: a direct view when it lies in one
// mapping (the usual case), else a copy.
func (b userBuffer) Bytes() []byte {
	switch len(b.pieces) {
	case 0:
		return nil
	case 1:
		return b.pieces[0]
	}
	out := make([]byte, 0, b.n)
	for _, p := range b.pieces {
		out = append(out, p...)
	}
	return out
}

// Write copies src into the buffer, up to its length, and returns the
// number of bytes copied.
func (b userBuffer) Write(src []byte) int {
	n := 0
	for i, p := range b.pieces {
		if n == len(src) {
			break
		}
		c := copy(p, src[n:])
		if i < len(b.regions) && c > 0 {
			pr := b.regions[i]
			if pr.r != nil {
				pr.r.markWritten(pr.off, uint64(c))
			}
			if pr.code != nil {
				pr.code.CodeChanged(pr.addr, uint64(c))
			}
		}
		n += c
	}
	return n
}

// pieceRegion is where a piece of a userBuffer lies: a region (nil for
// memory the monitor mapped itself) and the offset in it, and its guest
// address; code is the space's window when the piece is mapped
// executable, to tell the machine of code the monitor writes there.
type pieceRegion struct {
	r    *Region
	off  uint64
	addr uint64
	code *machine.Window
}

// Read copies the buffer into dst, up to its length, and returns the
// number of bytes copied.
func (b userBuffer) Read(dst []byte) int {
	n := 0
	for _, p := range b.pieces {
		if n == len(dst) {
			break
		}
		n += copy(dst[n:], p)
	}
	return n
}
