// Package pager is a layer that keeps its program's memory: it makes
// itself the keeper (region_set_keeper) of every region created in the
// program's space, keeps at most max-pages of them resident, writes the
// pages it evicts to a swap file and supplies them back when they are
// touched again.
//
// It uses the ABI's own keeper path, not userfaultfd: page requests are
// NV_MSG_PAGE messages on a port the layer serves, pages go back with
// region_supply and out with region_evict, which hands over their contents
// and releases their host memory. That works the
// same on every backend (the emulator has no host page faults to catch),
// under any number of layers, and the pager stays an ordinary program of
// the ABI: a guest nester could do the same (examples/nest does).
//
// Policy: clock (second chance) over the resident pages. As the hand
// starts a sweep of the ring, the pager reads the pages touched since the
// last sweep (region_accessed, one call a region, from the page tables'
// accessed bits); a frame whose page was touched, or supplied, since the
// hand last passed is spared once. One bit a page cannot tell a hot page
// from a scan that touches every page once a sweep: under memtouch's scans
// the clock still evicts the hot code page now and then, only less often
// than FIFO did.
//
// A page's first contents are the region's own (zeros, or what the loader
// wrote with region_write before the program ran), read with region_read
// when first touched; after an eviction they come from the swap file. A
// swap write that fails ends the program with the error, and the run
// reports it: a page is never dropped silently.
//
// Only the program's own space is kept: spaces the program creates are its
// own to page (as examples/nest does), and their regions pass through. The
// program's regions reach it as stand-ins that forward every operation.
// An evicted page reads as zeros in the region, so before forwarding the
// program's region_read or region_write the pager writes the swapped
// contents of the pages it reaches back into the region, and evicts them
// again after (saving them, for a write); before the program's own
// region_evict it saves what the region holds of those pages, to supply
// them when touched again.
//
// Victims are evicted in batches, a run of neighbouring pages per
// region_evict, and a fault at the page after the last ones supplied (a
// sequential scan) brings in a window of following pages in one
// region_supply.
package pager

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/interpose"
	"nestvm/nester"
	"nestvm/vmm"
)

// MinPages is the smallest max-pages accepted: one instruction may touch
// several pages (code, stack, source, destination, each possibly across a
// page boundary), and an operation's buffer must fit resident at once.
const MinPages = 64

// DefaultPages is max-pages when not given (1 MiB).
const DefaultPages = 256

// Usage describes the layer's arguments, one per line.
const Usage = `FILE          swap file (created, or truncated); required, first
max-pages=N   most pages of the program resident at once (default 256, at least 64)`

// Stats are the pager's counts.
type Stats struct {
	Faults    uint64 // page requests received
	PageIns   uint64 // pages supplied
	PageOuts  uint64 // pages evicted (each written to the swap file)
	SwapIns   uint64 // page-ins read back from the swap file
	ReadAhead uint64 // pages supplied along with a sequential fault's
	Peak      uint64 // most pages resident at once
	Resident  uint64 // pages resident now
}

// Layer is the pager.
type Layer struct {
	path     string
	maxPages int
	file     *os.File
	out      io.Writer
	log      hclog.Logger

	// writeAt and readAt reach the swap file (tests replace them).
	writeAt func(b []byte, off int64) (int, error)
	readAt  func(b []byte, off int64) (int, error)
	// evicted, when set, is called after each batch of evictions (tests
	// watch the host memory the program holds).
	evicted func()

	host *vmm.Host
	port uint64 // the keeper port, in host's table
	kc   *vmm.Caller
	// programs are the program's spaces, ended when the pager fails.
	programs *interpose.Programs
	served   chan struct{}

	// pmu orders page-ins and evictions with the region operations the
	// program invokes on the regions the pager keeps.
	pmu sync.Mutex

	mu      sync.Mutex
	regions map[uint64]*kept // by badge
	badges  uint64           // the last badge given
	err     error            // the first failure
	stats   Stats

	// The keeper goroutine's own.
	ring   []frame // the clock's frames, max-pages of them
	free   []int   // unused frames of ring
	hand   int
	sweeps uint64 // Stats.Faults when the hand last started a sweep
	slots  int64
	buf    []byte
	inbuf  []byte

	once sync.Once
	cerr error
}

// kept is a region the pager keeps.
type kept struct {
	h        uint64 // in host's table
	badge    uint64
	slot     []int32 // swap slot of each page, -1 for none
	resident []bool
	acc      []byte // region_accessed's bits, read as the clock's hand starts a sweep
	next     uint32 // the page after the last ones supplied
	foreign  bool   // the program made another port its keeper
}

// accessed reports whether page p was touched, by the bits last read, and
// clears its bit: the hand passes once per sweep.
func (r *kept) accessed(p uint32) bool {
	if int(p/8) >= len(r.acc) {
		return false
	}
	b := r.acc[p/8]&(1<<(p%8)) != 0
	r.acc[p/8] &^= 1 << (p % 8)
	return b
}

// frame is a resident page, in the clock's ring.
type frame struct {
	r    *kept
	page uint32
	ref  bool
	used bool
}

// Parse parses the layer's arguments: FILE[,max-pages=N].
func Parse(args string) (path string, maxPages int, err error) {
	parts := strings.Split(args, ",")
	path = strings.TrimSpace(parts[0])
	if path == "" || strings.Contains(path, "=") {
		return "", 0, fmt.Errorf("pager needs a swap file first: pager=FILE[,max-pages=N], got %q", args)
	}
	maxPages = DefaultPages
	seen := false
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		switch {
		case !ok:
			return "", 0, fmt.Errorf("pager: %q is not key=value (the only key is max-pages)", p)
		case k != "max-pages":
			return "", 0, fmt.Errorf("pager: unknown option %q (the only one is max-pages)", k)
		case seen:
			return "", 0, errors.New("pager: max-pages given twice")
		}
		seen = true
		n, err := strconv.Atoi(v)
		if err != nil || n < MinPages {
			return "", 0, fmt.Errorf("pager: max-pages=%s: want a whole number of pages, at least %d", v, MinPages)
		}
		maxPages = n
	}
	return path, maxPages, nil
}

// New makes a pager from its --layer arguments. The swap file is created
// (or truncated) here, so one that cannot be opened for writing fails
// before anything runs. Its report goes to out.
func New(args string, out io.Writer, log hclog.Logger) (*Layer, error) {
	path, n, err := Parse(args)
	if err != nil {
		return nil, err
	}
	return Open(path, n, out, log)
}

// Open makes a pager swapping to path with at most maxPages resident.
func Open(path string, maxPages int, out io.Writer, log hclog.Logger) (*Layer, error) {
	if maxPages < MinPages {
		return nil, fmt.Errorf("pager: max-pages=%d: at least %d", maxPages, MinPages)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pager: swap file: %w", err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if out == nil {
		out = io.Discard
	}
	l := &Layer{path: path, maxPages: maxPages, file: f, out: out, log: log,
		writeAt: f.WriteAt, readAt: f.ReadAt, regions: map[uint64]*kept{}}
	return l, nil
}

// Name implements nester.Layer.
func (l *Layer) Name() string { return "pager" }

// Stats returns the counts so far.
func (l *Layer) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Err returns the failure that ended the program, if any.
func (l *Layer) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Wrap implements nester.Layer: the child's space capability becomes a
// stand-in whose space_create wraps the program's space, so that regions
// created in it get the pager as keeper. Everything else passes through.
func (l *Layer) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	l.host = mon.NewHost("pager", vmm.Quota{Handles: 1 << 16, Children: 1})
	l.programs = interpose.NewPrograms(l.host, "pager")
	c := l.host.NewCaller()
	env, err := parent.StandIn(c, nester.CapSpace, "pager:space", func(target uint64) vmm.Server { return l.newServer(target, true) })
	if err != nil {
		return nester.Env{}, fmt.Errorf("pager: %w", err)
	}
	self, err := c.Self(abi.RightsAll)
	if err != nil {
		return nester.Env{}, err
	}
	if l.port, _, err = c.PortCreate(self); err != nil {
		return nester.Env{}, fmt.Errorf("pager: port_create: %w", err)
	}
	l.kc = l.host.NewCaller()
	l.served = make(chan struct{})
	go l.serve()
	return env, nil
}

// server stands in for a space: the environment's (top: where the
// program's space is created) or the program's own. Every operation goes
// on to the space through relay, whose hook is the server's OnResult.
type server struct {
	l     *Layer
	top   bool
	relay interpose.Relay
}

// newServer returns the stand-in's server for space target, a handle in
// the pager's table.
func (l *Layer) newServer(target uint64, top bool) *server {
	s := &server{l: l, top: top}
	s.relay = interpose.Relay{Host: l.host, Target: target, Options: vmm.ForwardOptions{Lend: l.lend}, Hook: s}
	return s
}

// Serve implements vmm.Server.
func (s *server) Serve(inv *vmm.Invocation) { s.relay.Serve(inv) }

// StandsFor implements vmm.StandIn: a program sees its space as a space.
func (s *server) StandsFor() abi.ObjectType { return abi.ObjSpace }

// OnResult implements interpose.ResultHook: the program's space, and each
// region created in it, reach the program as a stand-in whose target the
// pager keeps; anything else as it is.
func (s *server) OnResult(r interpose.Result) (interpose.Cap, bool, error) {
	l := s.l
	switch {
	case s.top && r.Inv.Op == abi.OpSpaceCreate:
		// The program's space. (A layer above may hand out a stand-in
		// for it: it is wrapped all the same.)
		// The record of programs holds a handle of its own: r.H is the
		// stand-in's target as long as the stand-in lives.
		kept, err := r.Caller.Insert(r.Cap.Obj, r.Cap.Rights, r.Cap.Badge)
		if err != nil {
			return interpose.Cap{}, false, fmt.Errorf("pager: keep the program's space: %w", err)
		}
		l.programs.Keep(kept)
		port := vmm.NewHostPort("pager:program", l.newServer(r.H, false))
		return interpose.Cap{Obj: port, Rights: r.Cap.Rights}, true, nil
	case !s.top && r.Inv.Op == abi.OpRegionCreate:
		k, err := l.keep(r.Caller, r.H)
		if err != nil {
			l.log.Error("region_set_keeper failed", "error", err)
			return interpose.Cap{}, false, fmt.Errorf("%w: region_set_keeper: %w", abi.ErrIO, err)
		}
		// The program gets a stand-in (the pager keeps the region), so
		// that a region_write to a page out in the swap file is not lost.
		port := vmm.NewHostPort("pager:region", &regionServer{l: l, r: k, obj: r.Cap.Obj, rights: r.Cap.Rights})
		return interpose.Cap{Obj: port, Rights: r.Cap.Rights}, true, nil
	}
	return r.Cap, false, nil
}

// keep makes the pager the keeper of region h (in its table).
func (l *Layer) keep(c *vmm.Caller, h uint64) (*kept, error) {
	size, _, err := c.RegionSize(h)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.badges++
	badge := l.badges
	l.mu.Unlock()
	// With read: a saver holding a copy of it (region_get_state hands one
	// out) may ask for the region's pages with region_read (readKept).
	bp, _, err := c.HandleDerive(l.port, uint64(abi.RightCall|abi.RightRead), badge)
	if err != nil {
		return nil, err
	}
	defer c.HandleClose(bp)
	n := size / abi.PageSize
	r := &kept{h: h, badge: badge, slot: make([]int32, n), resident: make([]bool, n), acc: make([]byte, (n+7)/8)}
	for i := range r.slot {
		r.slot[i] = -1
	}
	l.mu.Lock()
	l.regions[badge] = r
	l.mu.Unlock()
	if _, _, err := c.RegionSetKeeper(h, bp); err != nil {
		l.mu.Lock()
		delete(l.regions, badge)
		l.mu.Unlock()
		return nil, err
	}
	return r, nil
}

// lend turns the pager's region stand-ins, passed to an operation the
// pager forwards (space_map), back into the regions they stand for.
func (l *Layer) lend(obj vmm.Object, rights abi.Rights, badge uint64, transfer bool) (vmm.Object, abi.Rights, uint64) {
	if rs, ok := vmm.ServerOf(obj).(*regionServer); ok && rs.l == l && !transfer {
		return rs.obj, rights & rs.rights, badge
	}
	return obj, rights, badge
}

// regionServer stands in for a region the pager keeps. Every operation
// is forwarded; the pager takes note of those that change what it knows.
type regionServer struct {
	l      *Layer
	r      *kept
	obj    vmm.Object
	rights abi.Rights
}

// StandsFor implements vmm.StandIn: a program sees its region as a region.
func (rs *regionServer) StandsFor() abi.ObjectType { return abi.ObjRegion }

// Serve implements vmm.Server.
func (rs *regionServer) Serve(inv *vmm.Invocation) {
	l, r := rs.l, rs.r
	c := l.host.NewCaller()
	l.pmu.Lock()
	defer l.pmu.Unlock()
	pages := func(off, n uint64) (uint32, uint32) {
		if off >= uint64(len(r.slot))*abi.PageSize {
			return 0, 0
		}
		lo, hi := off/abi.PageSize, (off+min(n, abi.MaxBuffer)+abi.PageSize-1)/abi.PageSize
		return uint32(lo), uint32(min(hi, uint64(len(r.slot))))
	}
	// Pages out in the swap file read as zeros in the region: a
	// region_read or region_write of the program's reaches their contents
	// only once they are back in the region's memory. They go out again
	// after, so that host memory stays within max-pages.
	var back []uint32
	var fail error
	switch inv.Op {
	case abi.OpRegionRead, abi.OpRegionWrite:
		if !r.foreign {
			lo, hi := pages(inv.Slots[0], inv.Slots[2])
			back, fail = l.bringBack(c, r, lo, hi)
		}
	case abi.OpRegionEvict:
		// The program evicts pages itself: the pager, their keeper,
		// saves what the region holds of them first, as it would
		// evicting them, to supply them again when touched. Only an
		// eviction the kernel will do: a refused one must leave the
		// pager's picture as it is.
		off, size, dataLen := inv.Slots[0], inv.Slots[1], inv.Slots[3]
		whole := uint64(len(r.slot)) * abi.PageSize
		valid := off%abi.PageSize == 0 && size%abi.PageSize == 0 && size > 0 && off < whole && size <= whole-off &&
			(dataLen == 0 || dataLen >= size)
		if valid && !r.foreign {
			lo, hi := pages(inv.Slots[0], inv.Slots[1])
			fail = l.saveOwn(c, r, lo, hi)
		}
	}
	if fail != nil {
		l.fail(fail)
		inv.Fail(abi.ErrIO)
		return
	}
	r0, r1, err := inv.ForwardWith(c, r.h, l.lend)
	if len(back) > 0 {
		// Written or not, the region holds the pages' newest contents:
		// evicting saves them again.
		if ferr := l.sendBack(c, r, back, inv.Op == abi.OpRegionWrite); ferr != nil {
			l.fail(ferr)
		}
	}
	if err == nil && inv.Op == abi.OpRegionSetKeeper {
		r.foreign = true // the program keeps it now
	}
	inv.Complete(r0, r1, err)
}

// bringBack writes the swapped contents of the pages of [lo, hi) that are
// out in the swap file into the region's memory (they stay absent), and
// returns them.
func (l *Layer) bringBack(c *vmm.Caller, r *kept, lo, hi uint32) ([]uint32, error) {
	var back []uint32
	page := make([]byte, abi.PageSize)
	for p := lo; p < hi; p++ {
		if r.resident[p] || r.slot[p] < 0 {
			continue
		}
		if _, err := l.readAt(page, int64(r.slot[p])*abi.PageSize); err != nil {
			return back, fmt.Errorf("reading page %d of region %d from swap file %s: %w", p, r.badge, l.path, err)
		}
		if _, _, err := c.RegionWrite(r.h, uint64(p)*abi.PageSize, page); err != nil {
			return back, fmt.Errorf("region_write of swapped page %d of region %d: %w", p, r.badge, err)
		}
		back = append(back, p)
	}
	return back, nil
}

// sendBack evicts again pages bringBack brought back, in runs, saving
// them to their swap slots when save is set (the program wrote them).
func (l *Layer) sendBack(c *vmm.Caller, r *kept, pages []uint32, save bool) error {
	for i := 0; i < len(pages); {
		j := i + 1
		for j < len(pages) && pages[j] == pages[j-1]+1 && !r.resident[pages[j]] {
			j++
		}
		if r.resident[pages[i]] { // supplied meanwhile (it cannot be: pmu is held)
			i = j
			continue
		}
		if save {
			if err := l.evictRun(c, r, pages[i], j-i); err != nil {
				return err
			}
		} else if _, _, err := c.RegionEvict(r.h, uint64(pages[i])*abi.PageSize, uint64(j-i)*abi.PageSize, nil); err != nil && !errors.Is(err, abi.ErrPeerGone) {
			return fmt.Errorf("region_evict of swapped pages %d-%d of region %d: %w", pages[i], pages[j-1], r.badge, err)
		}
		i = j
	}
	return nil
}

// saveOwn saves to swap the pages of [lo, hi) whose contents are in the
// region's memory (resident ones, and those never supplied), before the
// program's own region_evict releases it. A write the program makes to
// them while it evicts them itself may or may not be in the copy.
func (l *Layer) saveOwn(c *vmm.Caller, r *kept, lo, hi uint32) error {
	for p := lo; p < hi; {
		if !r.resident[p] && r.slot[p] >= 0 {
			p++
			continue
		}
		q := p + 1
		for q < hi && (r.resident[q] || r.slot[q] < 0) {
			q++
		}
		buf := l.evictBuf(int(q - p))
		if _, _, err := c.RegionRead(r.h, uint64(p)*abi.PageSize, buf); err != nil {
			if errors.Is(err, abi.ErrPeerGone) {
				return nil
			}
			return fmt.Errorf("region_read pages %d-%d of region %d: %w", p, q-1, r.badge, err)
		}
		for k := p; k < q; k++ {
			r.resident[k] = false // its frame is freed as the hand passes
		}
		if err := l.writeSwap(r, p, buf); err != nil {
			return err
		}
		p = q
	}
	return nil
}

// serve is the keeper: it answers page requests until the layer closes.
func (l *Layer) serve() {
	defer close(l.served)
	c := l.kc
	msg := make([]byte, binary.Size(abi.Msg{}))
	for {
		if _, _, err := c.PortReceive(l.port, msg, nil); err != nil {
			return
		}
		var m abi.Msg
		binary.Read(bytes.NewReader(msg), binary.LittleEndian, &m)
		for i := uint64(0); i < m.NHandles && i < abi.MsgHandles; i++ {
			c.HandleClose(m.Handles[i])
		}
		if m.Kind == abi.MsgCall && m.Op == uint64(abi.OpRegionRead) {
			l.pmu.Lock()
			data, err := l.readKept(c, &m)
			l.pmu.Unlock()
			r0 := uint64(len(data))
			if err != nil {
				r0 = err.(abi.Error).Result()
			}
			c.PortReply(l.port, m.CallID, r0, 0, data, abi.NoHandle)
			continue
		}
		if m.Kind != abi.MsgPage {
			if m.CallID != 0 {
				c.PortReply(l.port, m.CallID, abi.ErrInvalidOp.Result(), 0, nil, abi.NoHandle)
			}
			continue
		}
		reply := uint64(abi.FaultResume)
		l.pmu.Lock()
		err := l.pageIn(c, &m)
		l.pmu.Unlock()
		if err != nil {
			l.fail(err)
			reply = abi.FaultKill
		}
		c.PortReply(l.port, m.CallID, reply, 0, nil, abi.NoHandle)
	}
}

// readKept answers region_read invoked on the keeper port, by whoever
// holds a copy of it (region_get_state hands one out): a checkpoint above
// the layer saving the program's memory. It returns the region's bytes
// from the offset asked, wherever they are now (the region's memory, or
// the swap file for pages that are out), paging nothing in: a save must
// not disturb the program it saves. Callers hold pmu.
func (l *Layer) readKept(c *vmm.Caller, m *abi.Msg) ([]byte, error) {
	l.mu.Lock()
	r := l.regions[m.Badge]
	l.mu.Unlock()
	if r == nil {
		return nil, abi.ErrNotFound
	}
	size := uint64(len(r.slot)) * abi.PageSize
	off := m.Words[0]
	if off > size {
		return nil, abi.ErrInvalidArg
	}
	n := min(m.ReplyCap, size-off, abi.MaxBuffer)
	data := make([]byte, n)
	if n == 0 {
		return data, nil
	}
	if _, _, err := c.RegionRead(r.h, off, data); err != nil {
		return nil, abi.ErrPeerGone
	}
	page := make([]byte, abi.PageSize)
	for p := off / abi.PageSize; p*abi.PageSize < off+n; p++ {
		if r.resident[p] || r.slot[p] < 0 {
			continue // the region's memory has it
		}
		if _, err := l.readAt(page, int64(r.slot[p])*abi.PageSize); err != nil {
			l.log.Error("region_read through the keeper: swap file", "error", err)
			return nil, abi.ErrIO
		}
		lo, hi := max(off, p*abi.PageSize), min(off+n, (p+1)*abi.PageSize)
		copy(data[lo-off:hi-off], page[lo-p*abi.PageSize:hi-p*abi.PageSize])
	}
	return data, nil
}

// pageIn supplies the page m asks for, evicting a batch first when
// max-pages are resident.
func (l *Layer) pageIn(c *vmm.Caller, m *abi.Msg) error {
	l.mu.Lock()
	r := l.regions[m.Badge]
	failed := l.err != nil
	l.stats.Faults++
	l.mu.Unlock()
	if failed {
		return l.Err()
	}
	off := m.Words[abi.FaultWordOffset]
	if r == nil || off/abi.PageSize >= uint64(len(r.slot)) {
		return fmt.Errorf("page request for offset %#x of unknown region %d", off, m.Badge)
	}
	p := uint32(off / abi.PageSize)
	if r.resident[p] {
		return nil // supplied for another thread meanwhile
	}
	if l.ring == nil {
		l.ring = make([]frame, l.maxPages)
		l.free = make([]int, 0, l.maxPages)
		for i := l.maxPages - 1; i >= 0; i-- {
			l.free = append(l.free, i)
		}
	}
	// A fault at the page after the last one supplied is a sequential
	// scan: supply a window of the following absent pages with it.
	want := 1
	if p == r.next && p > 0 {
		want = l.window()
	}
	for len(l.free) < want {
		if err := l.evict(c); err != nil {
			return err
		}
	}
	n := 1
	for n < want && int(p)+n < len(r.slot) && !r.resident[int(p)+n] {
		n++
	}
	size := uint64(n) * abi.PageSize
	if cap(l.inbuf) < int(size) {
		l.inbuf = make([]byte, size)
	}
	buf := l.inbuf[:size]
	swapped := 0
	first := false
	for k := range n {
		first = first || r.slot[int(p)+k] < 0
	}
	if first {
		if _, _, err := c.RegionRead(r.h, off, buf); err != nil {
			return fmt.Errorf("reading the first contents of pages %d-%d of region %d: %w", p, int(p)+n-1, r.badge, err)
		}
	}
	for k := range n {
		q := int(p) + k
		if r.slot[q] < 0 {
			continue // never swapped out: the region's first contents
		}
		swapped++
		if _, err := l.readAt(buf[k*abi.PageSize:(k+1)*abi.PageSize], int64(r.slot[q])*abi.PageSize); err != nil {
			return fmt.Errorf("reading page %d of region %d from swap file %s: %w", q, r.badge, l.path, err)
		}
	}
	if _, _, err := c.RegionSupply(r.h, off, buf); err != nil {
		if errors.Is(err, abi.ErrPeerGone) {
			return nil // the program is ending
		}
		return fmt.Errorf("region_supply: %w", err)
	}
	for k := range n {
		q := p + uint32(k)
		r.resident[q] = true
		i := l.free[len(l.free)-1]
		l.free = l.free[:len(l.free)-1]
		l.ring[i] = frame{r: r, page: q, ref: true, used: true}
	}
	r.next = p + uint32(n)
	l.mu.Lock()
	l.stats.PageIns += uint64(n)
	l.stats.SwapIns += uint64(swapped)
	if n > 1 {
		l.stats.ReadAhead += uint64(n - 1)
	}
	l.stats.Resident = uint64(l.maxPages - len(l.free))
	l.stats.Peak = max(l.stats.Peak, l.stats.Resident)
	l.mu.Unlock()
	return nil
}

// window is how many pages a sequential fault brings in at most.
func (l *Layer) window() int { return min(16, max(1, l.maxPages/16)) }

// batch is how many pages evict frees at once: a region_evict makes every
// thread of the program leave guest code to drop its translations, so
// victims are evicted together, a run of neighbouring pages in one call.
func (l *Layer) batch() int { return min(64, max(1, l.maxPages/16)) }

// evict chooses victims with the clock, evicts them and writes each to its
// swap slot.
func (l *Layer) evict(c *vmm.Caller) error {
	var victims []frame
	for n := l.batch(); len(victims) < n && len(l.free) < len(l.ring); {
		if l.hand == 0 && l.sweeps != l.stats.Faults {
			// A new sweep: the bits read for the last one are spent.
			// (Not again within one eviction, when every frame had its
			// second chance: no thread has run in between.)
			l.sweeps = l.stats.Faults
			l.readAccessed(c)
		}
		f := &l.ring[l.hand]
		switch {
		case !f.used:
		case f.r.foreign || !f.r.resident[f.page]:
			// Evicted by the program, or kept by it now: nothing to save.
			*f = frame{}
			l.free = append(l.free, l.hand)
			n--
		case f.r.accessed(f.page) || f.ref:
			// Touched since the hand last passed (or supplied since):
			// a second chance.
			f.ref = false
		default:
			victims = append(victims, *f)
			*f = frame{}
			l.free = append(l.free, l.hand)
		}
		l.hand = (l.hand + 1) % len(l.ring)
	}
	sort.Slice(victims, func(i, j int) bool {
		a, b := victims[i], victims[j]
		if a.r.badge != b.r.badge {
			return a.r.badge < b.r.badge
		}
		return a.page < b.page
	})
	for i := 0; i < len(victims); {
		j := i + 1
		for j < len(victims) && victims[j].r == victims[i].r && victims[j].page == victims[j-1].page+1 {
			j++
		}
		if err := l.evictRun(c, victims[i].r, victims[i].page, j-i); err != nil {
			return err
		}
		i = j
	}
	l.mu.Lock()
	l.stats.Resident = uint64(l.maxPages - len(l.free))
	l.mu.Unlock()
	if l.evicted != nil {
		l.evicted()
	}
	return nil
}

// readAccessed reads the pages touched since the last sweep, for every
// region the pager keeps: one region_accessed a region a sweep, not one a
// page, since each makes the program's threads leave guest code to drop
// their translations.
func (l *Layer) readAccessed(c *vmm.Caller) {
	l.mu.Lock()
	regions := slices.Collect(maps.Values(l.regions))
	l.mu.Unlock()
	for _, r := range regions {
		if r.foreign {
			continue
		}
		if _, _, err := c.RegionAccessed(r.h, r.acc); err != nil {
			// An ended space's region: its frames go as the hand
			// passes. Without bits the clock is FIFO, no worse.
			clear(r.acc)
		}
	}
}

// evictBuf returns the pager's buffer for n pages.
func (l *Layer) evictBuf(n int) []byte {
	size := n * abi.PageSize
	if cap(l.buf) < size {
		l.buf = make([]byte, size)
	}
	return l.buf[:size]
}

// evictRun evicts n pages of r from page first and saves them.
func (l *Layer) evictRun(c *vmm.Caller, r *kept, first uint32, n int) error {
	for k := range n {
		r.resident[first+uint32(k)] = false
	}
	off, size := uint64(first)*abi.PageSize, uint64(n)*abi.PageSize
	// The kernel hands out the contents once no thread can write them,
	// and releases their memory.
	buf := l.evictBuf(n)
	if _, _, err := c.RegionEvict(r.h, off, size, buf); err != nil {
		if errors.Is(err, abi.ErrPeerGone) {
			return nil // its space has ended: nothing to save
		}
		return fmt.Errorf("region_evict pages %d-%d of region %d: %w", first, first+uint32(n)-1, r.badge, err)
	}
	return l.writeSwap(r, first, buf)
}

// writeSwap writes buf, the contents of pages of r from first, to their
// swap slots, giving slots to pages that have none.
func (l *Layer) writeSwap(r *kept, first uint32, buf []byte) error {
	n := len(buf) / abi.PageSize
	// Write runs of consecutive slots at once; pages swapped out for the
	// first time get consecutive slots.
	for k := 0; k < n; {
		p := first + uint32(k)
		if r.slot[p] < 0 {
			r.slot[p] = int32(l.slots)
			l.slots++
		}
		e := k + 1
		for ; e < n; e++ {
			q := first + uint32(e)
			if r.slot[q] < 0 && r.slot[q-1] == int32(l.slots-1) {
				r.slot[q] = int32(l.slots)
				l.slots++
			}
			if r.slot[q] != r.slot[q-1]+1 {
				break
			}
		}
		if _, err := l.writeAt(buf[k*abi.PageSize:e*abi.PageSize], int64(r.slot[p])*abi.PageSize); err != nil {
			return fmt.Errorf("writing page %d of region %d to swap file %s: %w", p, r.badge, l.path, err)
		}
		l.mu.Lock()
		l.stats.PageOuts += uint64(e - k)
		l.mu.Unlock()
		k = e
	}
	return nil
}

// fail records the first failure and ends the program.
func (l *Layer) fail(err error) {
	l.mu.Lock()
	first := l.err == nil
	if first {
		l.err = err
	}
	l.mu.Unlock()
	if !first {
		return
	}
	l.log.Error("pager failed; ending the program", "error", err)
	// Through whatever the pager holds: the space, or a stand-in of a
	// layer above, which passes it on.
	l.programs.End(fmt.Sprintf("layer pager failed: %v", err))
}

// Report writes the counts: one line.
func (l *Layer) Report(w io.Writer) {
	s := l.Stats()
	fmt.Fprintf(w, "[pager] max-pages=%d page-ins=%d page-outs=%d swap-ins=%d faults=%d read-ahead=%d peak-resident=%d swap=%s (%d KiB)\n",
		l.maxPages, s.PageIns, s.PageOuts, s.SwapIns, s.Faults, s.ReadAhead, s.Peak, l.path, l.slots*abi.PageSize>>10)
}

// Close implements nester.Layer: it stops the keeper, reports the counts
// and closes the swap file; a failure that ended the program is its error.
func (l *Layer) Close() error {
	l.once.Do(func() {
		if l.kc != nil {
			l.kc.Kill()
			<-l.served
		}
		if l.host != nil {
			l.host.Kill("layer closed")
		}
		if l.kc != nil {
			l.Report(l.out)
		}
		errs := []error{l.Err()}
		if err := l.file.Close(); err != nil {
			errs = append(errs, fmt.Errorf("pager: closing swap file %s: %w", l.path, err))
		}
		l.cerr = errors.Join(errs...)
	})
	return l.cerr
}

func init() {
	nester.Register(nester.Kind{
		Name:    "pager",
		Summary: "keeps at most max-pages of the program's memory resident, swapping the rest to a file",
		Usage:   Usage,
		New: nester.Maker(func(args string, h nester.Host) (*Layer, error) {
			return New(args, h.Stderr, h.Log)
		}),
	})
}
