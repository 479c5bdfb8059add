package vmm

import (
	"fmt"
	"slices"
	"sync"

	"nestvm/abi"
	"nestvm/machine"
)

// Region is a memory object: pages that one or several spaces map (sharing
// them), with an optional keeper that supplies pages on first touch.
type Region struct {
	objectID
	mon   *Monitor
	mem   *machine.Memory
	owner *Space // charged for its pages

	// pagesMu orders what changes the pages' contents or their records
	// as a whole: an eviction (which must save, then release, pages no
	// one writes meanwhile), supplies and writes, and the harvests of
	// the page tables' dirty and accessed bits. Lock order: pagesMu, a
	// space's mu, mu.
	pagesMu sync.Mutex

	mu         sync.Mutex
	keeper     *Port
	keepBadge  uint64
	keepRights abi.Rights // of the handle it was set through: what region_get_state's copy gets
	present    []uint64   // bitmap of supplied pages; nil when every page is present
	dirty      pageTrack  // pages written: region_write, region_supply, and page tables' dirty bits
	accessed   pageTrack  // pages touched through a mapping since supplied: page tables' accessed bits
	maps       []*mapping
	freed      bool
}

// maxReaders is how many spaces keep a record of one region's pages, for
// region_dirty and for region_accessed each.
const maxReaders = 16

// pageTrack is what each space asking about a region's pages has not been
// told yet (region_dirty's and region_accessed's records), one bitmap per
// space, so two readers never take pages from each other. Guarded by the
// region's mu.
type pageTrack struct {
	ever  []uint64   // every page marked since the region was created: a new reader's first answer
	logs  []*pageLog // one per reader
	pages uint64
}

// pageLog is one space's record.
type pageLog struct {
	space *Space
	bits  []uint64
}

func newPageTrack(pages uint64) pageTrack {
	return pageTrack{ever: make([]uint64, (pages+63)/64), pages: pages}
}

// mark adds bits (a bitmap as long as ever) to every record.
func (k *pageTrack) mark(bits []uint64) {
	for i, b := range bits {
		if b == 0 {
			continue
		}
		k.ever[i] |= b
		for _, l := range k.logs {
			l.bits[i] |= b
		}
	}
}

// markPages marks pages [lo, hi) in every record.
func (k *pageTrack) markPages(lo, hi uint64) {
	for p := lo; p < hi; p++ {
		setBit(k.ever, p)
		for _, l := range k.logs {
			setBit(l.bits, p)
		}
	}
}

// forget clears pages [lo, hi) from every record.
func (k *pageTrack) forget(lo, hi uint64) {
	for p := lo; p < hi; p++ {
		k.ever[p/64] &^= 1 << (p % 64)
		for _, l := range k.logs {
			l.bits[p/64] &^= 1 << (p % 64)
		}
	}
}

// take returns s's record and clears it; s's first ask gets ever.
// ErrQuota when maxReaders other spaces, none of them ended, keep records.
func (k *pageTrack) take(s *Space) ([]uint64, abi.Error) {
	var l *pageLog
	for _, x := range k.logs {
		if x.space == s {
			l = x
			break
		}
	}
	if l == nil {
		if len(k.logs) >= maxReaders {
			live := k.logs[:0]
			for _, x := range k.logs {
				if !x.space.ended() {
					live = append(live, x)
				}
			}
			clear(k.logs[len(live):])
			k.logs = live
		}
		if len(k.logs) >= maxReaders {
			return nil, abi.ErrQuota
		}
		l = &pageLog{space: s, bits: append([]uint64(nil), k.ever...)}
		k.logs = append(k.logs, l)
	}
	bits := append([]uint64(nil), l.bits...)
	clear(l.bits)
	return bits, abi.OK
}

// ObjectType implements Object.
func (r *Region) ObjectType() abi.ObjectType { return abi.ObjRegion }

// Size returns the region's size in bytes.
func (r *Region) Size() uint64 { return r.mem.Size() }

// newRegion creates a zero-filled region of size bytes charged to s (and
// its ancestors).
func (s *Space) newRegion(size uint64) (*Region, error) {
	if size == 0 || size%pageSize != 0 || size > abi.UserTop {
		return nil, fmt.Errorf("new region of %#x bytes: size must be whole pages, at most %#x: %w", size, uint64(abi.UserTop), abi.ErrInvalidArg)
	}
	if err := s.charge(size); err != nil {
		return nil, fmt.Errorf("new region: %w", err)
	}
	mem, err := machine.NewMemory(fmt.Sprintf("space%d-region", s.id), size)
	if err != nil {
		s.uncharge(size)
		s.mon.hostLimit(err)
		return nil, fmt.Errorf("new region: %v: %w", err, abi.ErrNoMemory)
	}
	r := &Region{mon: s.mon, mem: mem, owner: s, dirty: newPageTrack(size / pageSize), accessed: newPageTrack(size / pageSize)}
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
func (r *Region) hold() (*machine.Memory, abi.Error) {
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
	r.pagesMu.Lock()
	defer r.pagesMu.Unlock()
	n := copy(mem.Bytes()[off:], data)
	r.mu.Lock()
	r.dirty.markPages(off/pageSize, (off+uint64(n)+pageSize-1)/pageSize)
	r.mu.Unlock()
	r.codeChanged(off, uint64(n))
	return n, abi.OK
}

// codeChanged tells the machine of every space r is mapped in that the
// monitor wrote [off, off+n) of r, where the guest may run code
// (machine.Machine.CodeChanged): a backend that translates guest code
// must not run what it translated from there before. Whether code ran
// there is the backend's to know.
func (r *Region) codeChanged(off, n uint64) {
	type at struct {
		win        *machine.Window
		addr, size uint64
	}
	var changed []at
	r.mu.Lock()
	for _, m := range r.maps {
		lo, hi := max(off, m.off), min(off+n, m.off+m.size)
		if lo < hi && m.space != nil && m.space.win.TranslatesCode() {
			changed = append(changed, at{m.space.win, m.addr + lo - m.off, hi - lo})
		}
	}
	r.mu.Unlock()
	for _, c := range changed {
		c.win.CodeChanged(c.addr, c.size)
	}
}

// markWritten records that the monitor wrote [off, off+n) of r for a
// guest (a result into its buffer), for region_dirty's readers.
func (r *Region) markWritten(off, n uint64) {
	r.mu.Lock()
	r.dirty.markPages(off/pageSize, (off+n+pageSize-1)/pageSize)
	r.mu.Unlock()
}

// SetKeeper makes p (through a handle with badge) the keeper of the
// region: every page becomes absent until supplied. The region must be
// mapped nowhere yet.
func (r *Region) SetKeeper(p *Port, badge uint64) abi.Error {
	return r.setKeeper(p, badge, abi.RightsAll)
}

// setKeeper is SetKeeper through a handle with rights, of which the copy
// region_get_state hands out keeps call, grant, derive and read at most.
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
	// Read too: a keeper that sets itself with it serves region_read on
	// its port, the pages it keeps (services/pager does).
	r.keepRights = rights & (abi.RightCall | abi.RightGrant | abi.RightDerive | abi.RightRead)
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
	r.pagesMu.Lock()
	defer r.pagesMu.Unlock()
	if len(data) > 0 {
		copy(mem.Bytes()[off:], data)
	} else {
		clear(mem.Bytes()[off : off+pageSize])
	}
	r.mu.Lock()
	for p := off / pageSize; p < (off+n)/pageSize; p++ {
		if r.present != nil {
			setBit(r.present, p)
		}
	}
	r.dirty.markPages(off/pageSize, (off+n)/pageSize)
	spaces := spacesOf(r.maps)
	r.mu.Unlock()
	// The mappings are read again under each space's lock: one split or
	// unmapped since holds that lock, and a mapping made since found the
	// pages present.
	for s := range spaces {
		s.mu.Lock()
		for _, m := range r.mapsIn(s) {
			lo, hi := max(off, m.off), min(off+n, m.off+m.size)
			if lo >= hi || m.perm == 0 {
				continue
			}
			if err := s.pt.MapPages(m.addr+lo-m.off, hi-lo, m.perm, true, false, 0); err != nil {
				s.log.Warn("supply: map pages", "error", err)
			}
		}
		s.mu.Unlock()
	}
	return abi.OK
}

// takeDirty returns the pages written since caller's space last asked
// (as bytes, page 0 in bit 0 of byte 0) and how many, and clears that
// space's record. Pages the spaces mapping the region wrote are found from
// the page tables' dirty bits, which go to every reader's record; every
// thread of those spaces but caller must be stopped, so that no stale TLB
// entry hides a later write.
func (r *Region) takeDirty(caller *Thread, ever bool) ([]byte, uint64, abi.Error) {
	maps := r.mappings()
	for _, m := range maps {
		if m.space.runningOthers(caller) {
			return nil, 0, abi.ErrBusy
		}
	}
	r.pagesMu.Lock()
	defer r.pagesMu.Unlock()
	found := r.harvest(maps, machine.PTEDirty, true, 0, r.mem.Size())
	for s := range spacesOf(maps) {
		s.flushTLBs(caller)
	}
	r.mu.Lock()
	r.dirty.mark(found)
	bits, e := r.dirty.take(caller.space)
	if ever && e == abi.OK {
		bits = append(bits[:0], r.dirty.ever...)
	}
	r.mu.Unlock()
	if e != abi.OK {
		return nil, 0, e
	}
	return r.bitmapBytes(bits)
}

// takeAccessed is takeDirty for the page tables' accessed bits, and
// threads may run: they drop their translations after (Space.shootdown),
// so that their next touch of a page sets its bit again.
func (r *Region) takeAccessed(caller *Thread) ([]byte, uint64, abi.Error) {
	maps := r.mappings()
	r.pagesMu.Lock()
	defer r.pagesMu.Unlock()
	found := r.harvest(maps, machine.PTEAccessed, false, 0, r.mem.Size())
	for s := range spacesOf(maps) {
		s.shootdown(caller)
	}
	r.mu.Lock()
	r.accessed.mark(found)
	bits, e := r.accessed.take(caller.space)
	r.mu.Unlock()
	if e != abi.OK {
		return nil, 0, e
	}
	return r.bitmapBytes(bits)
}

// mappings returns the region's mappings now.
func (r *Region) mappings() []*mapping {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*mapping(nil), r.maps...)
}

// spacesOf returns the spaces of maps, each once.
func spacesOf(maps []*mapping) map[*Space]bool {
	spaces := map[*Space]bool{}
	for _, m := range maps {
		spaces[m.space] = true
	}
	return spaces
}

// harvest clears bit (pteDirty or pteAccessed) in the page-table entries
// of maps for region offsets [lo, hi), and returns the pages that had it,
// as a bitmap of the region's pages; with split, 2 MiB pages that had it
// become 4 KiB ones (pageTables.takeBits). The caller holds pagesMu.
func (r *Region) harvest(maps []*mapping, bit uint64, split bool, lo, hi uint64) []uint64 {
	bits := r.bitmap()
	for s := range spacesOf(maps) {
		s.mu.Lock()
		for _, m := range r.mapsIn(s) {
			m.takeBits(s.pt, bit, split, lo, hi, bits)
		}
		s.mu.Unlock()
	}
	return bits
}

// mapsIn returns r's mappings in s that s still holds: a space that
// ended has taken its own (and harvests them then). The caller holds
// s.mu, which every change to s's mappings holds, so the answer stays
// true until it lets go; mappings split or unmapped before are not in
// it, their pieces are.
func (r *Region) mapsIn(s *Space) []*mapping {
	var out []*mapping
	r.mu.Lock()
	for _, m := range r.maps {
		if m.space == s && !s.dying && s.as.find(m.addr) == m {
			out = append(out, m)
		}
	}
	r.mu.Unlock()
	return out
}

// bitmap returns an empty bitmap of r's pages.
func (r *Region) bitmap() []uint64 { return make([]uint64, (r.mem.Size()/pageSize+63)/64) }

// takeBits clears bit in the entries of pt mapping region offsets
// [lo, hi) through m, and sets the pages that had it in bits. The caller
// keeps pt from changing (holds the space's mu, or the space is ending).
func (m *mapping) takeBits(pt *machine.PageTables, bit uint64, split bool, lo, hi uint64, bits []uint64) {
	a, b := max(lo, m.off), min(hi, m.off+m.size)
	if a >= b {
		return
	}
	pt.TakeBits(m.addr+a-m.off, b-a, bit, split, func(va, size uint64) {
		for p := (m.off + va - m.addr) / pageSize; p < (m.off+va+size-m.addr)/pageSize; p++ {
			setBit(bits, p)
		}
	})
}

// Allocated returns how many bytes of host memory the region's pages
// hold now (evicted pages hold none); 0 once its owner has ended.
func (r *Region) Allocated() (uint64, error) {
	mem, e := r.hold()
	if e != abi.OK {
		return 0, nil
	}
	defer mem.Unref()
	return mem.Allocated()
}

// bitmapBytes returns bits as bytes, page 0 in bit 0 of byte 0, one bit per
// page of r, and how many are set.
func (r *Region) bitmapBytes(bits []uint64) ([]byte, uint64, abi.Error) {
	out := make([]byte, (r.mem.Size()/pageSize+7)/8)
	var count uint64
	for i := range out {
		out[i] = byte(bits[i/8] >> (8 * (i % 8)))
		count += uint64(bitsSet(out[i]))
	}
	return out, count, abi.OK
}

func bitsSet(v byte) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}

// mapRegion maps [off, off+size) of r at addr in s with perm. Only present
// pages get page-table entries; the others fault to the keeper. With perm
// 0 no page has one: the range is reserved, and inaccessible until
// protected.
func (s *Space) mapRegion(r *Region, addr, off, size uint64, perm machine.Perm, rights abi.Rights) error {
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
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
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
	if err := s.win.MapMemory(addr, r.mem, off, size); err != nil {
		s.mon.hostLimit(err)
		return fmt.Errorf("%v: %w", err, abi.ErrNoMemory)
	}
	if err := s.win.Protect(addr, size, perm); err != nil {
		s.win.Unmap(addr, size)
		return fmt.Errorf("map region at %#x: %v: %w", addr, err, abi.ErrNoMemory)
	}
	m := &mapping{addr: addr, size: size, mem: r.mem.Ref(), off: off, perm: perm, limit: limit, region: r, space: s, rights: rights}
	// Entries start not accessed: region_accessed reports the first
	// touch through this mapping.
	var err error
	switch {
	case perm == 0:
		// No access: no entries until a protect grants some.
	case r.present == nil:
		err = s.pt.MapPages(addr, size, perm, true, true, 0) // 2 MiB pages where aligned: every page is there from the start
	default:
		for a := addr; a < addr+size && err == nil; a += pageSize {
			if r.isPresent((off + a - addr) / pageSize) {
				err = s.pt.MapPages(a, pageSize, perm, true, false, 0)
			}
		}
	}
	if err != nil {
		s.pt.UnmapRange(addr, size)
		s.win.Unmap(addr, size)
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
		if t.inline.Load() {
			// Its goroutine serves a fault inline and may wait for a lock
			// our caller holds: it flushes on its way back to guest code.
			t.flushReq.Store(true)
			continue
		}
		t.onVCPU(func(v machine.VCPU, _ *machine.Regs, _ *machine.FPU) abi.Error {
			if v != nil {
				v.FlushTLB()
			}
			return abi.OK
		})
	}
}

// splitAt makes a the boundary of two mappings where a mapping crosses
// it: the mapping becomes two of the same memory, at the same offsets,
// with the same permissions. The page tables keep their entries (and
// their dirty and accessed bits, which the pieces now stand for), and the
// window keeps its host mapping; it counts one piece more, because
// unmapping either piece later returns that piece alone. The caller holds
// s.mu; ErrNoMemory when the host's mapping budget is spent.
func (s *Space) splitAt(a uint64) abi.Error {
	m := s.as.find(a)
	if m == nil || m.addr == a {
		return abi.OK
	}
	if err := s.win.Split(); err != nil {
		s.log.Warn("split mapping", "addr", hexAddr(a), "error", err)
		return abi.ErrNoMemory
	}
	lo, hi := m.cut(m.addr, a), m.cut(a, m.end())
	s.as.remove(m)
	s.as.insert(lo)
	s.as.insert(hi)
	if r := m.region; r != nil {
		r.mu.Lock()
		for i, o := range r.maps {
			if o == m {
				r.maps[i] = lo
				r.maps = append(r.maps, hi)
				break
			}
		}
		r.mu.Unlock()
	}
	m.mem.Unref()
	return abi.OK
}

// carve splits the mappings that cross the ends of [addr, addr+size) and
// returns those inside it, in address order. The caller holds s.mu.
func (s *Space) carve(addr, size uint64) ([]*mapping, abi.Error) {
	if e := s.splitAt(addr); e != abi.OK {
		return nil, e
	}
	if e := s.splitAt(addr + size); e != abi.OK {
		return nil, e
	}
	var in []*mapping
	for _, m := range s.as.maps {
		if m.addr >= addr && m.end() <= addr+size {
			in = append(in, m)
		}
	}
	return in, abi.OK
}

// unmapRange removes what is mapped in [addr, addr+size): whole mappings,
// and the parts of those that cross its ends, whose other parts stay
// mapped. Other threads of s may run meanwhile: they drop their cached
// translations (Space.shootdown) before the host memory goes from the
// window, so none touches it afterwards. ErrNotFound when nothing is
// mapped there.
func (s *Space) unmapRange(caller *Thread, addr, size uint64) abi.Error {
	if checkUserRange(addr, size) != nil {
		return abi.ErrInvalidArg
	}
	// mapMu keeps the range from being mapped again before the window
	// lets go of it.
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	s.mu.Lock()
	if s.dying {
		s.mu.Unlock()
		return abi.ErrPeerGone
	}
	if !s.as.overlaps(addr, size) {
		s.mu.Unlock()
		return abi.ErrNotFound
	}
	gone, e := s.carve(addr, size)
	if e != abi.OK {
		s.mu.Unlock()
		return e
	}
	for _, m := range gone {
		if r := m.region; r != nil {
			// Writes through the mapping since its last harvest are
			// recorded only in its entries' dirty bits: they go to the
			// region's readers.
			written := r.bitmap()
			m.takeBits(s.pt, machine.PTEDirty, false, m.off, m.off+m.size, written)
			r.mu.Lock()
			r.dirty.mark(written)
			r.mu.Unlock()
		} else {
			s.unchargeLocked(m.size)
		}
		s.pt.UnmapRange(m.addr, m.size)
		s.as.remove(m)
	}
	dropFromRegions(gone)
	s.mu.Unlock()
	s.shootdown(caller)
	others := s.threadsBut(caller)
	for _, m := range gone {
		if err := s.win.Unmap(m.addr, m.size); err != nil {
			s.log.Warn("unmap", "error", err)
		}
		if m.region == nil {
			// A thread in a call may hold a buffer in the monitor's
			// memory, which nothing but the mapping keeps: it keeps it
			// too, until the call ends. (A region keeps its own.)
			for _, t := range others {
				t.keepIfInCall(m.mem)
			}
		}
		m.mem.Unref()
	}
	return abi.OK
}

// dropFromRegions takes the mappings ms out of their regions' lists,
// each region's in one pass: a space may map one region tens of
// thousands of times, and removing them one by one would cost the square
// of that. Mappings of no region are passed over.
func dropFromRegions(ms []*mapping) {
	gone := map[*Region]map[*mapping]bool{}
	for _, m := range ms {
		if r := m.region; r != nil {
			if gone[r] == nil {
				gone[r] = map[*mapping]bool{}
			}
			gone[r][m] = true
		}
	}
	for r, set := range gone {
		r.mu.Lock()
		r.maps = slices.DeleteFunc(r.maps, func(o *mapping) bool { return set[o] })
		r.mu.Unlock()
	}
}

// threadsBut returns the threads of s other than caller.
func (s *Space) threadsBut(caller *Thread) []*Thread {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Thread, 0, len(s.threads))
	for t := range s.threads {
		if t != caller {
			out = append(out, t)
		}
	}
	return out
}

// protectRange gives [addr, addr+size) the permissions perm, within what
// the region handles its mappings were made through allowed. Mappings
// that cross its ends are split there. perm 0 makes the range
// inaccessible while its memory keeps its contents: its page-table
// entries go (their dirty and accessed bits to the region's readers
// first), so any touch is a not-present page fault, and a later protect
// maps the pages again. Other threads of s may run meanwhile: they drop
// their cached translations before it returns (Space.shootdown).
func (s *Space) protectRange(caller *Thread, addr, size uint64, perm machine.Perm) abi.Error {
	if checkUserRange(addr, size) != nil {
		return abi.ErrInvalidArg
	}
	if perm&^(machine.PermRead|machine.PermWrite|machine.PermExec) != 0 || s.hostSpace() {
		return abi.ErrInvalidArg
	}
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	s.mu.Lock()
	if s.dying {
		s.mu.Unlock()
		return abi.ErrPeerGone
	}
	for a := addr; a < addr+size; {
		m := s.as.find(a)
		if m == nil {
			s.mu.Unlock()
			return abi.ErrBadAddress
		}
		if perm&^m.limit != 0 {
			s.mu.Unlock()
			return abi.ErrRights
		}
		a = m.end()
	}
	ms, e := s.carve(addr, size)
	if e != abi.OK {
		s.mu.Unlock()
		return e
	}
	var err error
	for _, m := range ms {
		if err = s.reprotect(m, perm); err != nil {
			break
		}
	}
	s.mu.Unlock()
	s.shootdown(caller)
	if err != nil {
		s.log.Warn("protect", "addr", hexAddr(addr), "error", err)
		return abi.ErrNoMemory
	}
	return abi.OK
}

// reprotect gives mapping m permissions perm, in the machine (the exec
// hint) and the page tables. A kept region's absent pages stay without
// entries. The caller holds s.mu.
func (s *Space) reprotect(m *mapping, perm machine.Perm) error {
	if err := s.win.Protect(m.addr, m.size, perm); err != nil {
		return err
	}
	r := m.region
	switch {
	case perm == 0:
		if r != nil {
			written, touched := r.bitmap(), r.bitmap()
			m.takeBits(s.pt, machine.PTEDirty, false, m.off, m.off+m.size, written)
			m.takeBits(s.pt, machine.PTEAccessed, false, m.off, m.off+m.size, touched)
			r.mu.Lock()
			r.dirty.mark(written)
			r.accessed.mark(touched)
			r.mu.Unlock()
		}
		s.pt.UnmapRange(m.addr, m.size)
	case m.perm == 0 && r == nil:
		if err := s.pt.MapRange(m.addr, m.size, perm, true, true); err != nil {
			return err
		}
	case m.perm == 0:
		// As when first mapped: entries for the present pages only, not
		// accessed yet.
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.present == nil {
			if err := s.pt.MapPages(m.addr, m.size, perm, true, true, 0); err != nil {
				return err
			}
			break
		}
		for a := m.addr; a < m.end(); a += pageSize {
			if r.isPresent((m.off + a - m.addr) / pageSize) {
				if err := s.pt.MapPages(a, pageSize, perm, true, false, 0); err != nil {
					return err
				}
			}
		}
	default:
		// Only present entries change: absent pages of kept regions stay
		// absent.
		if err := s.pt.ProtectRange(m.addr, m.size, perm, true); err != nil {
			return err
		}
	}
	m.perm = perm
	return nil
}

// Evict makes pages [off, off+size) of a kept region absent again: their
// page-table entries go in every space that maps them, and those spaces'
// threads drop their cached translations before they next run guest code
// (Space.shootdown). Then, with no thread able to write them, the pages'
// contents go to data (when it is not empty) and their host memory is
// released: they read as zeros until supplied again. A region without a
// keeper has nobody to supply the pages again, so it refuses; so does
// a data buffer shorter than size (ErrTooBig).
func (r *Region) Evict(caller *Thread, off, size uint64, data *userBuffer) abi.Error {
	total := r.mem.Size()
	if off%pageSize != 0 || size%pageSize != 0 || size == 0 || off > total || size > total-off {
		return abi.ErrInvalidArg
	}
	if data != nil && data.Len() > 0 && data.Len() < size {
		return abi.ErrTooBig
	}
	mem, e := r.hold()
	if e != abi.OK {
		return e
	}
	defer mem.Unref()
	r.pagesMu.Lock()
	defer r.pagesMu.Unlock()
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
	// The entries' dirty bits are the only record of writes through them
	// since the last harvest: they go to the readers before the entries go.
	// Accessed bits of pages made absent mean nothing any more.
	dirty := r.harvest(maps, machine.PTEDirty, false, off, off+size)
	r.mu.Lock()
	r.dirty.mark(dirty)
	r.accessed.forget(off/pageSize, (off+size)/pageSize)
	r.mu.Unlock()
	touched := map[*Space]bool{}
	for s := range spacesOf(maps) {
		s.mu.Lock()
		for _, m := range r.mapsIn(s) {
			lo, hi := max(off, m.off), min(off+size, m.off+m.size)
			if lo < hi {
				s.pt.UnmapRange(m.addr+lo-m.off, hi-lo)
				touched[s] = true
			}
		}
		s.mu.Unlock()
	}
	for s := range touched {
		s.shootdown(caller)
	}
	if data != nil && data.Len() > 0 {
		data.Write(mem.Bytes()[off : off+size])
	}
	if err := mem.Discard(off, size); err != nil {
		r.owner.log.Warn("evict: memory kept", "error", err)
	}
	return abi.OK
}
