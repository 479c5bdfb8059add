package vmm

import (
	"fmt"
	"sync"

	"nestvm/abi"
)

// Region is a memory object: pages that one or several spaces map (sharing
// them), with an optional keeper that supplies pages on first touch.
type Region struct {
	mon   *Monitor
	mem   *Memory
	owner *Space // charged for its pages

	mu         sync.Mutex
	keeper     *Port
	keepBadge  uint64
	keepRights abi.Rights // of the handle it was set through: what region_get_state's copy gets
	present    []uint64   // bitmap of supplied pages; nil when every page is present
	dirty      []uint64   // pages written through region_write or region_supply since the last region_dirty
	maps       []*mapping
	freed      bool
}

// ObjectType implements Object.
func (r *Region) ObjectType() abi.ObjectType { return abi.ObjRegion }

// Size returns the region's size in bytes.
func (r *Region) Size() uint64 { return r.mem.Size() }

// NewRegion creates a zero-filled region of size bytes charged to s (and
// its ancestors).
func (s *Space) NewRegion(size uint64) (*Region, error) {
	if size == 0 || size%pageSize != 0 || size > abi.UserTop {
		return nil, fmt.Errorf("new region of %#x bytes: size must be whole pages, at most %#x: %w", size, uint64(abi.UserTop), abi.ErrInvalidArg)
	}
	if err := s.charge(size); err != nil {
		return nil, fmt.Errorf("new region: %w", err)
	}
	mem, err := NewMemory(fmt.Sprintf("space%d-region", s.id), size)
	if err != nil {
		s.uncharge(size)
		return nil, fmt.Errorf("new region: %v: %w", err, abi.ErrNoMemory)
	}
	r := &Region{mon: s.mon, mem: mem, owner: s, dirty: make([]uint64, (size/pageSize+63)/64)}
	s.mu.Lock()
	if s.dying {
		// finish takes s.regions once to free them: a region added after
		// would keep its memory and its charge to the ancestors forever.
		s.mu.Unlock()
		s.uncharge(size)
		mem.Unref()
		return nil, fmt.Errorf("new region: space %s is ending: %w", s.name, abi.ErrPeerGone)
	}
	s.regions = append(s.regions, r)
	s.mu.Unlock()
	return r, nil
}

// pageIndex returns the page number of offset off; ok is false outside the
// region.
func (r *Region) pageIndex(off uint64) (uint64, bool) {
	if off >= r.mem.Size() {
		return 0, false
	}
	return off / pageSize, true
}

func bitSet(b []uint64, i uint64) bool { return b[i/64]&(1<<(i%64)) != 0 }
func setBit(b []uint64, i uint64)      { b[i/64] |= 1 << (i % 64) }

// isPresent reports whether page i has been supplied. Callers hold r.mu.
func (r *Region) isPresent(i uint64) bool { return r.present == nil || bitSet(r.present, i) }

// hold returns the region's memory with a reference of the caller's, to
// drop when done: the owner's end frees the region's memory (another
// space may still hold a handle to it), and a copy in progress must not
// find it unmapped. ErrPeerGone once the owner has ended.
func (r *Region) hold() (*Memory, abi.Error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.freed {
		return nil, abi.ErrPeerGone
	}
	return r.mem.Ref(), abi.OK
}

// Read copies region bytes from off into buf.
func (r *Region) Read(off uint64, buf []byte) (int, abi.Error) {
	mem, e := r.hold()
	if e != abi.OK {
		return 0, e
	}
	defer mem.Unref()
	size := mem.Size()
	if off > size {
		return 0, abi.ErrInvalidArg
	}
	return copy(buf, mem.Bytes()[off:]), abi.OK
}

// Write copies data into the region at off.
func (r *Region) Write(off uint64, data []byte) (int, abi.Error) {
	mem, e := r.hold()
	if e != abi.OK {
		return 0, e
	}
	defer mem.Unref()
	size := mem.Size()
	if off > size || uint64(len(data)) > size-off {
		return 0, abi.ErrInvalidArg
	}
	n := copy(mem.Bytes()[off:], data)
	r.mu.Lock()
	for p := off / pageSize; p < (off+uint64(n)+pageSize-1)/pageSize; p++ {
		setBit(r.dirty, p)
	}
	r.mu.Unlock()
	return n, abi.OK
}

// SetKeeper makes p (through a handle with badge) the keeper of the
// region: every page becomes absent until supplied. The region must be
// mapped nowhere yet.
func (r *Region) SetKeeper(p *Port, badge uint64) abi.Error {
	return r.setKeeper(p, badge, abi.RightsAll)
}

// setKeeper is SetKeeper through a handle with rights, of which the copy
// region_get_state hands out keeps call, grant and derive at most.
func (r *Region) setKeeper(p *Port, badge uint64, rights abi.Rights) abi.Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.maps) > 0 {
		return abi.ErrBusy
	}
	if r.present == nil {
		r.present = make([]uint64, (r.mem.Size()/pageSize+63)/64)
	}
	r.keeper, r.keepBadge = p, badge
	r.keepRights = rights & (abi.RightCall | abi.RightGrant | abi.RightDerive)
	return abi.OK
}

// Supply fills pages from off with data (one zero page when data is empty)
// and makes them present in every space that maps them.
func (r *Region) Supply(off uint64, data []byte) abi.Error {
	n := uint64(len(data))
	if n == 0 {
		n = pageSize
	}
	mem, e := r.hold()
	if e != abi.OK {
		return e
	}
	defer mem.Unref()
	size := mem.Size()
	if off%pageSize != 0 || n%pageSize != 0 || off > size || n > size-off {
		return abi.ErrInvalidArg
	}
	if len(data) > 0 {
		copy(mem.Bytes()[off:], data)
	} else {
		clear(mem.Bytes()[off : off+pageSize])
	}
	r.mu.Lock()
	maps := append([]*mapping(nil), r.maps...)
	for p := off / pageSize; p < (off+n)/pageSize; p++ {
		if r.present != nil {
			setBit(r.present, p)
		}
		setBit(r.dirty, p)
	}
	r.mu.Unlock()
	for _, m := range maps {
		lo, hi := max(off, m.off), min(off+n, m.off+m.size)
		if lo >= hi {
			continue
		}
		s := m.space
		s.mu.Lock()
		if !s.dying && s.as.find(m.addr) == m {
			if err := s.pt.mapRange(m.addr+lo-m.off, hi-lo, m.perm, true, false); err != nil {
				s.log.Warn("supply: map pages", "error", err)
			}
		}
		s.mu.Unlock()
	}
	return abi.OK
}

// takeDirty returns the dirty bitmap (as bytes, page 0 in bit 0 of byte 0)
// and how many pages it marks, and clears it. Pages the spaces mapping the
// region wrote are found from the page tables' dirty bits, which are
// cleared too; every thread of those spaces but caller must be stopped, so
// that no stale TLB entry hides a later write.
func (r *Region) takeDirty(caller *Thread) ([]byte, uint64, abi.Error) {
	r.mu.Lock()
	maps := append([]*mapping(nil), r.maps...)
	r.mu.Unlock()
	for _, m := range maps {
		if m.space.runningOthers(caller) {
			return nil, 0, abi.ErrBusy
		}
	}
	r.mu.Lock()
	bits := append([]uint64(nil), r.dirty...)
	clear(r.dirty)
	r.mu.Unlock()
	for _, m := range maps {
		s := m.space
		s.mu.Lock()
		for a := m.addr; a < m.end(); a += pageSize {
			if s.pt.takeDirty(a) {
				setBit(bits, (m.off+a-m.addr)/pageSize)
			}
		}
		s.mu.Unlock()
		s.flushTLBs(caller)
	}
	out := make([]byte, (r.mem.Size()/pageSize+7)/8)
	var count uint64
	for i := range out {
		out[i] = byte(bits[i/8] >> (8 * (i % 8)))
		for v := out[i]; v != 0; v &= v - 1 {
			count++
		}
	}
	return out, count, abi.OK
}

// mapRegion maps [off, off+size) of r at addr in s with perm. Only present
// pages get page-table entries; the others fault to the keeper.
func (s *Space) mapRegion(r *Region, addr, off, size uint64, perm Perm, rights abi.Rights) error {
	limit := allowedPerm(rights)
	if err := checkUserRange(addr, size); err != nil {
		return fmt.Errorf("map region: %v: %w", err, abi.ErrInvalidArg)
	}
	if off%pageSize != 0 || off+size < off || off+size > r.mem.Size() {
		return fmt.Errorf("map region: offset %#x size %#x outside its %#x bytes: %w", off, size, r.mem.Size(), abi.ErrInvalidArg)
	}
	if s.hostSpace() {
		return fmt.Errorf("map region: a host space has no memory: %w", abi.ErrInvalidArg)
	}
	// Lock order: the space, then the region (as guest buffers are
	// checked).
	s.mu.Lock()
	defer s.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.freed {
		return fmt.Errorf("map region: %w", abi.ErrPeerGone)
	}
	if s.dying {
		return fmt.Errorf("map region: %w", abi.ErrPeerGone)
	}
	if s.as.overlaps(addr, size) {
		return fmt.Errorf("map region at %#x-%#x: overlaps an existing mapping: %w", addr, addr+size, abi.ErrExists)
	}
	if err := s.win.mapMemory(addr, r.mem, off, size); err != nil {
		return fmt.Errorf("%v: %w", err, abi.ErrNoMemory)
	}
	if err := s.machine.ProtectMemory(addr, size, perm); err != nil {
		s.win.unmap(addr, size)
		return fmt.Errorf("map region at %#x: %v: %w", addr, err, abi.ErrNoMemory)
	}
	m := &mapping{addr: addr, size: size, mem: r.mem.Ref(), off: off, perm: perm, limit: limit, region: r, space: s, rights: rights}
	var err error
	if r.present == nil {
		err = s.pt.mapRange(addr, size, perm, true, true) // 2 MiB pages where aligned: every page is there from the start
	} else {
		for a := addr; a < addr+size && err == nil; a += pageSize {
			if r.isPresent((off + a - addr) / pageSize) {
				err = s.pt.mapRange(a, pageSize, perm, true, false)
			}
		}
	}
	if err != nil {
		s.pt.unmapRange(addr, size)
		s.win.unmap(addr, size)
		m.mem.Unref()
		return fmt.Errorf("map region at %#x: %v: %w", addr, err, abi.ErrNoMemory)
	}
	s.as.insert(m)
	r.maps = append(r.maps, m)
	s.log.Debug("mapped region", "addr", hexAddr(addr), "size", hexAddr(size), "perm", perm, "kept", r.keeper != nil)
	return nil
}

// runningOthers reports whether a thread of s other than caller is
// running guest code (or may be about to).
func (s *Space) runningOthers(caller *Thread) bool {
	s.mu.Lock()
	threads := make([]*Thread, 0, len(s.threads))
	for t := range s.threads {
		threads = append(threads, t)
	}
	s.mu.Unlock()
	for _, t := range threads {
		if t == caller {
			continue
		}
		t.mu.Lock()
		running := t.state == abi.ThreadRunning && !t.inFault
		t.mu.Unlock()
		if running {
			return true
		}
	}
	return false
}

// flushTLBs makes every vCPU of s drop cached translations before it next
// runs guest code: the caller's directly (it is in a call, on its own
// goroutine), the others' through their goroutines (they are stopped).
func (s *Space) flushTLBs(caller *Thread) {
	s.mu.Lock()
	threads := make([]*Thread, 0, len(s.threads))
	for t := range s.threads {
		threads = append(threads, t)
	}
	s.mu.Unlock()
	for _, t := range threads {
		if t == caller {
			t.mu.Lock()
			v := t.vcpu
			t.mu.Unlock()
			if v != nil {
				v.FlushTLB()
			}
			continue
		}
		t.onVCPU(func(v VCPU, _ *Regs, _ *FPU) abi.Error {
			if v != nil {
				v.FlushTLB()
			}
			return abi.OK
		})
	}
}

// unmapRange removes the mappings that [addr, addr+size) covers exactly.
// No thread of s but caller may be running: a running vCPU could hold
// translations to the pages being removed.
func (s *Space) unmapRange(caller *Thread, addr, size uint64) abi.Error {
	if checkUserRange(addr, size) != nil {
		return abi.ErrInvalidArg
	}
	if s.runningOthers(caller) {
		return abi.ErrBusy
	}
	s.mu.Lock()
	var gone []*mapping
	for _, m := range s.as.maps {
		if m.addr < addr+size && addr < m.end() {
			if m.addr < addr || m.end() > addr+size {
				s.mu.Unlock()
				return abi.ErrInvalidArg // would split a mapping
			}
			gone = append(gone, m)
		}
	}
	if len(gone) == 0 {
		s.mu.Unlock()
		return abi.ErrNotFound
	}
	for _, m := range gone {
		s.pt.unmapRange(m.addr, m.size)
		s.as.remove(m)
		if m.region == nil {
			s.memUsed -= m.size
		}
	}
	s.mu.Unlock()
	s.flushTLBs(caller)
	for _, m := range gone {
		s.win.unmap(m.addr, m.size)
		if r := m.region; r != nil {
			r.mu.Lock()
			for i, o := range r.maps {
				if o == m {
					r.maps = append(r.maps[:i], r.maps[i+1:]...)
					break
				}
			}
			r.mu.Unlock()
		}
		m.mem.Unref()
	}
	return abi.OK
}

// protectRange changes the permissions of whole mappings covering
// [addr, addr+size), within what the region handles they were mapped
// through allowed.
func (s *Space) protectRange(caller *Thread, addr, size uint64, perm Perm) abi.Error {
	if checkUserRange(addr, size) != nil {
		return abi.ErrInvalidArg
	}
	if s.runningOthers(caller) {
		return abi.ErrBusy
	}
	if perm == 0 || perm&^(PermRead|PermWrite|PermExec) != 0 || s.hostSpace() {
		return abi.ErrInvalidArg
	}
	s.mu.Lock()
	var ms []*mapping
	for a := addr; a < addr+size; {
		m := s.as.find(a)
		if m == nil {
			s.mu.Unlock()
			return abi.ErrBadAddress
		}
		if m.addr < addr || m.end() > addr+size {
			s.mu.Unlock()
			return abi.ErrInvalidArg // would split a mapping
		}
		if perm&^m.limit != 0 {
			s.mu.Unlock()
			return abi.ErrRights
		}
		ms = append(ms, m)
		a = m.end()
	}
	for _, m := range ms {
		m.perm = perm
	}
	if err := s.machine.ProtectMemory(addr, size, perm); err != nil {
		s.mu.Unlock()
		return abi.ErrInvalidArg // spans two mappings of the machine: refused
	}
	err := s.pt.protectRange(addr, size, perm, true)
	// Absent pages of kept regions must stay absent: protectRange only
	// rewrites present entries.
	s.mu.Unlock()
	s.flushTLBs(caller)
	if err != nil {
		return abi.ErrNoMemory
	}
	return abi.OK
}

// Evict makes pages [off, off+size) of a kept region absent again: their
// page-table entries go in every space that maps them, and those spaces'
// threads drop their cached translations before they next run guest code
// (Space.shootdown). A region without a keeper has nobody to supply the
// pages again, so it refuses.
func (r *Region) Evict(caller *Thread, off, size uint64) abi.Error {
	total := r.mem.Size()
	if off%pageSize != 0 || size%pageSize != 0 || size == 0 || off > total || size > total-off {
		return abi.ErrInvalidArg
	}
	r.mu.Lock()
	if r.present == nil || r.keeper == nil {
		r.mu.Unlock()
		return abi.ErrInvalidArg
	}
	for p := off / pageSize; p < (off+size)/pageSize; p++ {
		r.present[p/64] &^= 1 << (p % 64)
	}
	maps := append([]*mapping(nil), r.maps...)
	r.mu.Unlock()
	touched := map[*Space]bool{}
	for _, m := range maps {
		lo, hi := max(off, m.off), min(off+size, m.off+m.size)
		if lo >= hi {
			continue
		}
		s := m.space
		s.mu.Lock()
		if !s.dying && s.as.find(m.addr) == m {
			s.pt.unmapRange(m.addr+lo-m.off, hi-lo)
			touched[s] = true
		}
		s.mu.Unlock()
	}
	for s := range touched {
		s.shootdown(caller)
	}
	return abi.OK
}
