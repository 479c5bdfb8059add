package linux

import (
	"fmt"
	"sort"
	"sync"

	"nestvm/abi"
	"nestvm/machine"
	"nestvm/vmm"
)

// mm is a process's memory map as Linux sees it: areas backed by regions
// the personality created and mapped, and reservations (PROT_NONE areas)
// that hold no memory and cost no quota until committed.
type mm struct {
	space uint64

	mu   sync.Mutex
	vmas []*vma // sorted by start, not overlapping
	// refs counts the areas each region handle backs: the handle is
	// closed when the last goes.
	refs map[uint64]int
	// brk: the heap runs from brkStart to brk; [brkStart, brkMapped) is
	// mapped.
	brkStart, brk, brkMapped uint64
	// vdso is where the vDSO image is mapped (AT_SYSINFO_EHDR); 0: none.
	vdso uint64
}

// vma is one area. region is 0 where nothing is mapped yet: a
// reservation (prot 0), or an anonymous private area the program has
// not touched there, committed a chunk at a time (lazyChunk) when it is
// touched, so that the memory quota is charged for what a program uses,
// as Linux charges its RSS, not for what it maps (a Go heap arena, a big
// buffer used in part). Several areas may share a region (the image, and
// what a partial munmap or mprotect split), which refs counts.
type vma struct {
	start, end uint64
	prot       int
	region     uint64 // handle in the personality's table; 0: reserved only
	off        uint64 // of start in the region
}

func newMM(space uint64) *mm { return &mm{space: space, refs: map[uint64]int{}} }

// Linux memory protections and mmap flags (include/uapi/asm-generic/mman*.h).
const (
	protRead  = 0x1
	protWrite = 0x2
	protExec  = 0x4

	mapShared    = 0x01
	mapPrivate   = 0x02
	mapFixed     = 0x10
	mapAnonymous = 0x20
	mapFixedNoRe = 0x100000
)

func permOf(prot int) uint64 {
	var p uint64
	if prot&protRead != 0 {
		p |= abi.PermRead
	}
	if prot&protWrite != 0 {
		p |= abi.PermWrite | abi.PermRead
	}
	if prot&protExec != 0 {
		p |= abi.PermExec | abi.PermRead
	}
	return p
}

// ioChunk is the most bytes one region or file operation moves: well
// under abi.MaxBuffer.
const ioChunk = 1 << 20

func pageUp(n uint64) uint64   { return (n + pageSize - 1) &^ (pageSize - 1) }
func pageDown(n uint64) uint64 { return n &^ (pageSize - 1) }

// insert adds v to the map, counting its region. Callers hold m.mu.
func (m *mm) insert(v *vma) {
	if v.region != 0 {
		m.refs[v.region]++
	}
	i := sort.Search(len(m.vmas), func(i int) bool { return m.vmas[i].start >= v.start })
	m.vmas = append(m.vmas, nil)
	copy(m.vmas[i+1:], m.vmas[i:])
	m.vmas[i] = v
}

// find returns the area holding addr. Callers hold m.mu.
func (m *mm) find(addr uint64) *vma {
	i := sort.Search(len(m.vmas), func(i int) bool { return m.vmas[i].end > addr })
	if i < len(m.vmas) && m.vmas[i].start <= addr {
		return m.vmas[i]
	}
	return nil
}

// free reports whether [addr, addr+size) touches no area. Callers hold
// m.mu.
func (m *mm) free(addr, size uint64) bool {
	if addr < abi.UserBase || addr+size > stackTop-stackSize || addr+size < addr {
		return false
	}
	i := sort.Search(len(m.vmas), func(i int) bool { return m.vmas[i].end > addr })
	return i == len(m.vmas) || m.vmas[i].start >= addr+size
}

// place finds room for size bytes, top-down from mmapTop. Callers hold
// m.mu.
func (m *mm) place(size uint64) (uint64, bool) {
	top := uint64(mmapTop)
	for i := len(m.vmas) - 1; i >= 0; i-- {
		v := m.vmas[i]
		if v.start >= top {
			continue
		}
		if v.end <= top && top-v.end >= size {
			return top - size, true
		}
		top = min(top, v.start)
	}
	floor := max(pageUp(m.brkStart)+1<<30, abi.UserBase)
	if top >= floor+size {
		return top - size, true
	}
	return 0, false
}

// rw is a piece of a guest range within one region-backed area.
type rw struct {
	region, off uint64
	lo, hi      uint64 // offsets into the caller's buffer
}

// How pieces treats the part of a range not committed yet.
type access int

const (
	accRead  access = iota // needs read; uncommitted pieces come with region 0 (zeros)
	accWrite               // needs write; uncommitted parts are committed first
	accDrop                // needs write; uncommitted parts are left out (zero already)
)

// pieces splits [addr, addr+n) into its region-backed pieces, or fails
// with EFAULT where an address is not the program's memory or the area
// does not allow the access.
func (m *mm) pieces(c *vmm.Caller, addr, n uint64, how access) ([]rw, errno) {
	if addr+n < addr {
		return nil, eFAULT
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []rw
	for a := addr; a < addr+n; {
		v := m.find(a)
		if v == nil || v.prot == 0 || (how != accRead && v.prot&protWrite == 0) || (how == accRead && v.prot&protRead == 0) {
			return nil, eFAULT
		}
		if v.region == 0 && how == accWrite {
			var e errno
			if v, e = m.commitLocked(c, a); e != 0 {
				return nil, e
			}
		}
		end := min(v.end, addr+n)
		if v.region != 0 || how == accRead {
			out = append(out, rw{region: v.region, off: v.off + (a - v.start), lo: a - addr, hi: end - addr})
		}
		a = end
	}
	return out, 0
}

// lazyChunk is how much of a lazy area one touch commits (a region of
// its own): big enough that a program streaming through memory faults
// once a MiB, small enough that one touching a few pages of a big
// mapping is charged little more than them.
const lazyChunk = 1 << 20

// lazyArea reports whether mmap leaves an anonymous area of size bytes
// uncommitted until touched: every area of more than one chunk. A
// smaller one is committed at once, which costs no faults.
func lazyArea(size uint64) bool { return size > lazyChunk }

// commit commits the chunk of a lazy area that addr lies in, as a touch
// there needs; ok is false when addr lies in no lazy area the access
// (write or not) is allowed in: the touch is a fault of the program's.
func (m *mm) commit(c *vmm.Caller, addr uint64, write bool) (ok bool, e errno) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.find(addr)
	if v == nil || v.prot == 0 || (write && v.prot&protWrite == 0) {
		return false, 0
	}
	if v.region != 0 {
		return true, 0 // another thread committed it meanwhile
	}
	_, e = m.commitLocked(c, addr)
	return e == 0, e
}

// commitLocked maps a new region over the chunk of the uncommitted area
// at addr (a lazyChunk-aligned piece of it) and returns the area it
// becomes. Callers hold m.mu.
func (m *mm) commitLocked(c *vmm.Caller, addr uint64) (*vma, errno) {
	v := m.find(addr)
	lo := max(v.start, addr&^(lazyChunk-1))
	hi := min(v.end, lo&^(lazyChunk-1)+lazyChunk)
	r, _, err := c.RegionCreate(m.space, hi-lo)
	if err != nil {
		return nil, errnoOf(err, eNOMEM)
	}
	if _, _, err := c.SpaceMap(m.space, r, lo, 0, hi-lo, permOf(v.prot)); err != nil {
		c.HandleClose(r)
		return nil, errnoOf(err, eNOMEM)
	}
	prot := v.prot
	m.cut(lo, hi)
	nv := &vma{start: lo, end: hi, prot: prot, region: r}
	m.insert(nv)
	return nv, 0
}

// read copies guest memory at addr into b.
func (m *mm) read(c *vmm.Caller, addr uint64, b []byte) errno {
	ps, e := m.pieces(c, addr, uint64(len(b)), accRead)
	if e != 0 {
		return e
	}
	for _, p := range ps {
		if p.region == 0 {
			clear(b[p.lo:p.hi]) // not touched yet: zeros
			continue
		}
		if _, _, err := c.RegionRead(p.region, p.off, b[p.lo:p.hi]); err != nil {
			return eFAULT
		}
	}
	return 0
}

// write copies b into guest memory at addr.
func (m *mm) write(c *vmm.Caller, addr uint64, b []byte) error {
	if e := m.writeErr(c, addr, b); e != 0 {
		return fmt.Errorf("write %d bytes at %#x: %w", len(b), addr, e)
	}
	return nil
}

func (m *mm) writeErr(c *vmm.Caller, addr uint64, b []byte) errno {
	ps, e := m.pieces(c, addr, uint64(len(b)), accWrite)
	if e != 0 {
		return e
	}
	for _, p := range ps {
		if _, _, err := c.RegionWrite(p.region, p.off, b[p.lo:p.hi]); err != nil {
			return eFAULT
		}
	}
	return 0
}

// readString reads a NUL-terminated string of at most max bytes.
func (m *mm) readString(c *vmm.Caller, addr uint64, max int) (string, errno) {
	var out []byte
	var chunk [256]byte
	for len(out) < max {
		// Never read across a page boundary at once: the next page may
		// not be the program's.
		n := min(uint64(len(chunk)), pageSize-(addr&(pageSize-1)))
		if e := m.read(c, addr, chunk[:n]); e != 0 {
			return "", e
		}
		for i := uint64(0); i < n; i++ {
			if chunk[i] == 0 {
				return string(append(out, chunk[:i]...)), 0
			}
		}
		out = append(out, chunk[:n]...)
		addr += n
	}
	return "", eNAMETOOLONG
}

// newArea creates a region of size bytes, maps it at addr with prot and
// records it.
func (m *mm) newArea(c *vmm.Caller, addr, size uint64, prot int) (*vma, errno) {
	r, _, err := c.RegionCreate(m.space, size)
	if err != nil {
		return nil, errnoOf(err, eNOMEM)
	}
	if _, _, err := c.SpaceMap(m.space, r, addr, 0, size, permOf(prot)); err != nil {
		c.HandleClose(r)
		return nil, errnoOf(err, eNOMEM)
	}
	v := &vma{start: addr, end: addr + size, prot: prot, region: r}
	m.mu.Lock()
	m.insert(v)
	m.mu.Unlock()
	return v, 0
}

// loadImage maps the program's segments: one region, mapped in runs of one
// permission, as nestvm's own loader does.
func (m *mm) loadImage(c *vmm.Caller, img *vmm.Image) error {
	runs, lo, hi := img.Runs()
	r, _, err := c.RegionCreate(m.space, hi-lo)
	if err != nil {
		return fmt.Errorf("region_create: %w", err)
	}
	// Only the file's bytes are written: the rest of a new region is
	// zero already, and stays unwritten (a fork need not copy it).
	for _, s := range img.Segments {
		for off := 0; off < len(s.Data); off += ioChunk {
			piece := s.Data[off:min(len(s.Data), off+ioChunk)]
			if _, _, err := c.RegionWrite(r, s.Addr-lo+uint64(off), piece); err != nil {
				c.HandleClose(r)
				return fmt.Errorf("region_write: %w", err)
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, run := range runs {
		var prot int
		if run.Perm&machine.PermRead != 0 {
			prot |= protRead
		}
		if run.Perm&machine.PermWrite != 0 {
			prot |= protWrite
		}
		if run.Perm&machine.PermExec != 0 {
			prot |= protExec
		}
		if _, _, err := c.SpaceMap(m.space, r, run.Addr, run.Addr-lo, run.Size, permOf(prot)); err != nil {
			return fmt.Errorf("segment at %#x: %w", run.Addr, err)
		}
		// The areas share the region: closeAll closes it once.
		m.insert(&vma{start: run.Addr, end: run.Addr + run.Size, prot: prot, region: r, off: run.Addr - lo})
	}
	m.brkStart = pageUp(hi)
	m.brk, m.brkMapped = m.brkStart, m.brkStart
	return nil
}

// mapStack maps the stack: stackSize bytes below stackTop, committed as
// it is touched (a program uses a few pages of it, and Linux charges no
// more).
func (m *mm) mapStack() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.insert(&vma{start: stackTop - stackSize, end: stackTop, prot: protRead | protWrite})
}

// closeAll closes every region handle the map holds.
func (m *mm) closeAll(c *vmm.Caller) {
	m.mu.Lock()
	refs := m.refs
	m.vmas, m.refs = nil, map[uint64]int{}
	m.mu.Unlock()
	for r := range refs {
		c.HandleClose(r)
	}
}

// setBrk moves the program break, as brk(2) does: it returns the new
// break, or the old one when addr is out of range or memory runs out.
func (m *mm) setBrk(c *vmm.Caller, addr uint64) uint64 {
	m.mu.Lock()
	cur, mapped, start := m.brk, m.brkMapped, m.brkStart
	m.mu.Unlock()
	if addr < start {
		return cur
	}
	if addr <= mapped {
		m.mu.Lock()
		m.brk = addr
		m.mu.Unlock()
		return addr
	}
	want := (addr - mapped + brkChunk - 1) &^ (brkChunk - 1)
	m.mu.Lock()
	ok := m.free(mapped, want)
	m.mu.Unlock()
	if !ok {
		return cur
	}
	if _, e := m.newArea(c, mapped, want, protRead|protWrite); e != 0 {
		return cur
	}
	m.mu.Lock()
	m.brk, m.brkMapped = addr, mapped+want
	m.mu.Unlock()
	return addr
}

// mmap maps anonymous memory, or a private copy of a file's bytes (data,
// already read), as mmap(2) does.
func (m *mm) mmap(c *vmm.Caller, addr, length uint64, prot, flags int, data []byte) (uint64, errno) {
	if length == 0 || length > 1<<40 {
		return 0, eINVAL
	}
	size := pageUp(length)
	fixed := flags&(mapFixed|mapFixedNoRe) != 0
	if fixed && addr&(pageSize-1) != 0 {
		return 0, eINVAL
	}
	m.mu.Lock()
	switch {
	case fixed:
		if addr < abi.UserBase || addr+size > stackTop-stackSize || addr+size < addr {
			m.mu.Unlock()
			return 0, eNOMEM
		}
	case addr != 0 && addr&(pageSize-1) == 0 && m.free(addr, size):
		// The hint is free: take it.
	default:
		var ok bool
		if addr, ok = m.place(size); !ok {
			m.mu.Unlock()
			return 0, eNOMEM
		}
	}
	m.mu.Unlock()
	if fixed {
		if flags&mapFixedNoRe != 0 {
			m.mu.Lock()
			free := m.free(addr, size)
			m.mu.Unlock()
			if !free {
				return 0, eEXIST
			}
		}
		if e := m.munmap(c, addr, size); e != 0 {
			return 0, e
		}
	}
	if data == nil && (prot == 0 || (flags&mapShared == 0 && lazyArea(size))) {
		// A reservation (no memory until it is made accessible), or an
		// area committed a chunk at a time as it is touched.
		m.mu.Lock()
		m.insert(&vma{start: addr, end: addr + size, prot: prot})
		m.mu.Unlock()
		return addr, 0
	}
	v, e := m.newArea(c, addr, size, prot)
	if e != 0 {
		return 0, e
	}
	if len(data) > 0 {
		if _, _, err := c.RegionWrite(v.region, 0, data); err != nil {
			return 0, eFAULT
		}
	}
	return addr, 0
}

// cut removes [addr, end) from the map: areas are split at its ends.
// It returns the pieces removed and the region handles no area uses any
// more. Callers hold m.mu.
func (m *mm) cut(addr, end uint64) (gone []vma, unused []uint64) {
	var keep []*vma
	for _, v := range m.vmas {
		if v.end <= addr || v.start >= end {
			keep = append(keep, v)
			continue
		}
		if v.start < addr {
			left := *v
			left.end = addr
			keep = append(keep, &left)
			m.refs[v.region]++
		}
		if v.end > end {
			right := *v
			right.start, right.off = end, v.off+(end-v.start)
			keep = append(keep, &right)
			m.refs[v.region]++
		}
		mid := *v
		mid.start, mid.end = max(v.start, addr), min(v.end, end)
		mid.off = v.off + (mid.start - v.start)
		gone = append(gone, mid)
		if v.region != 0 {
			if m.refs[v.region]--; m.refs[v.region] == 0 {
				delete(m.refs, v.region)
				unused = append(unused, v.region)
			}
		}
	}
	delete(m.refs, 0)
	sort.Slice(keep, func(i, j int) bool { return keep[i].start < keep[j].start })
	m.vmas = keep
	return gone, unused
}

// munmap removes the program's mappings in [addr, addr+size), as
// munmap(2) does: the space's mappings are split where the range cuts
// them, and a region no area uses any more is closed.
func (m *mm) munmap(c *vmm.Caller, addr, size uint64) errno {
	if addr&(pageSize-1) != 0 || size == 0 || addr+size < addr {
		return eINVAL
	}
	end := addr + pageUp(size)
	m.mu.Lock()
	gone, unused := m.cut(addr, end)
	m.mu.Unlock()
	for _, v := range gone {
		if v.region != 0 {
			c.SpaceUnmap(m.space, v.start, v.end-v.start)
		}
	}
	for _, r := range unused {
		c.HandleClose(r)
	}
	return 0
}

// mprotect changes protections over [addr, addr+size), splitting areas
// (and the space's mappings) at its ends; PROT_NONE keeps the memory but
// denies every access. What is not committed yet (a reservation that
// becomes accessible too) is committed when touched.
func (m *mm) mprotect(c *vmm.Caller, addr, size uint64, prot int) errno {
	if addr&(pageSize-1) != 0 || addr+size < addr {
		return eINVAL
	}
	end := addr + pageUp(size)
	m.mu.Lock()
	for a := addr; a < end; {
		v := m.find(a)
		if v == nil {
			m.mu.Unlock()
			return eNOMEM // part of the range is not mapped
		}
		a = v.end
	}
	var changed []vma
	gone, _ := m.cut(addr, end)
	for _, v := range gone {
		if v.region != 0 {
			changed = append(changed, v)
		}
		v.prot = prot
		m.insert(&v)
	}
	m.mu.Unlock()
	for _, v := range changed {
		if _, _, err := c.SpaceProtect(m.space, v.start, v.end-v.start, permOf(prot)); err != nil {
			return errnoOf(err, eACCES)
		}
	}
	return 0
}
