package vmm

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/machine"
)

// Quota bounds what a space may hold.
type Quota struct {
	// Memory is the most bytes of user memory the space may map.
	Memory uint64
	// Threads is the most threads it and the spaces below it may have
	// at once (each thread counts against every ancestor's quota, as a
	// space does against Children); one space holds at most MaxVCPUs.
	Threads int
	// Handles is the most handles its table may hold.
	Handles int
	// Children is the most spaces it may have below it at once: its
	// children, their children, and so on (each counts against every
	// ancestor's quota, as memory does).
	Children int
}

// DefaultQuota is the quota of a space created without one.
// Its Threads let the program and its default 64 children each run all
// MaxVCPUs threads a space can.
var DefaultQuota = Quota{Memory: 1 << 30, Threads: machine.MaxVCPUs * 65, Handles: 1024, Children: 64}

// MaxThreadsQuota is the most a Threads quota may say: the monitor runs
// each guest thread on an OS thread of its own while it runs, and Go ends
// a process that passes its limit of OS threads (debug.SetMaxThreads),
// so the monitor refuses to grow past that rather than crash.
const MaxThreadsQuota = 8192

// The most a Handles or Children quota may say, as space_create takes
// them: bounds on what a space may ask the monitor to hold for it, far
// above what a program needs.
const (
	MaxHandlesQuota  = 1 << 20
	MaxChildrenQuota = 1 << 20
)

// Space is an address space with its handle table and threads: one KVM VM,
// or one emulator memory map.
type Space struct {
	objectID
	mon     *Monitor
	id      uint64
	name    string
	log     hclog.Logger
	shell   *machine.Shell // nil in a host space
	machine machine.Machine
	sys     *machine.Memory
	win     *machine.Window // host view of guest addresses [0, abi.UserTop)
	quota   Quota

	mapMu    sync.Mutex // held by what changes the mappings (region.go); taken before mu
	mu       sync.Mutex
	pt       *machine.PageTables
	as       addrSpace
	memUsed  uint64
	handles  handleTable
	threads  map[*Thread]struct{}
	vcpuUsed [machine.MaxVCPUs]bool
	live     int // threads started and not yet ended
	dying    bool
	onFault  FaultHandler

	parent      *Space
	children    map[*Space]struct{}
	descendants int // spaces below s not yet finished: what quota.Children bounds
	// subThreads are the threads of s and of the spaces below it not yet
	// ended (or dropped unstarted): what quota.Threads bounds.
	subThreads int
	// goneWaiters are the threads in space_kill waiting for s and every
	// space below it to finish; finish and uncountDescendant kick them.
	goneWaiters map[*Thread]struct{}
	regions     []*Region // regions charged to the space
	owned       []Object  // ports and port sets closed when the space ends
	excPort     *Port
	excBadge    uint64
	excRights   abi.Rights // of the handle it was set through (see setExceptionPort)
	closedTable bool
	finishing   bool
	// One-way messages of the space's waiting in queues, and their
	// bytes (guarded by the monitor's IPC lock; see sendlimit.go).
	queuedSends int
	queuedBytes uint64

	done   chan struct{}
	result Result
}

// ObjectType implements Object.
func (s *Space) ObjectType() abi.ObjectType { return abi.ObjSpace }

// Result is how a space ended.
type Result struct {
	// Exited is set when the space's last thread exited; Status is the low
	// 8 bits of its status.
	Exited bool
	Status int
	// Fault is set when a thread faulted and nobody handled it.
	Fault *FaultReport
	// Killed is set when the space was killed (by the monitor, by
	// space_kill, or by its fault handler), and says why; KilledStatus is
	// the status its killer gave, 0 when none.
	Killed       string
	KilledStatus int
	// Signal is set when a program run by a personality (Linux's) died
	// of a signal, by its number: its status is 128+Signal, as a shell
	// shows it.
	Signal int
	// Err is set when the monitor failed to run the space.
	Err error
}

// FaultReport is an unhandled fault: which thread, what fault.
type FaultReport struct {
	Thread int
	Fault  machine.Fault
}

// String describes the result in one line.
func (r Result) String() string {
	switch {
	case r.Err != nil:
		return "monitor error: " + r.Err.Error()
	case r.Fault != nil:
		return fmt.Sprintf("thread %d: %s", r.Fault.Thread, r.Fault.Fault)
	case r.Signal != 0:
		return fmt.Sprintf("died of signal %d", r.Signal)
	case r.Killed != "":
		return "killed: " + r.Killed
	}
	return fmt.Sprintf("exited with status %d", r.Status)
}

// NewSpace creates an empty space: the system pages in place, no user
// memory, no handles, no threads.
func (m *Monitor) NewSpace(name string, q Quota) (s *Space, err error) {
	if q.Threads <= 0 || q.Threads > MaxThreadsQuota {
		q.Threads = DefaultQuota.Threads
	}
	id := m.nextSpace.Add(1)
	log := m.log.Named(fmt.Sprintf("space%d", id)).With("program", name)
	sh := m.shells.Take()
	if sh == nil {
		if sh, err = machine.NewShell(m.backend, m.log.Named("machine"), fmt.Sprintf("space%d", id)); err != nil {
			return nil, fmt.Errorf("new space %s: %w", name, err)
		}
	}
	defer func() {
		if err != nil {
			m.shells.Put(sh)
		}
	}()
	pt, err := machine.NewPageTables(sh.Sys.Bytes()[machine.PTPoolAddr-machine.SysBase:], !sh.NoNX)
	if err != nil {
		return nil, fmt.Errorf("new space %s: %w", name, err)
	}
	// The system pages: only the ABI page (to run) and the trap page (to
	// store to, which exits) are reachable from ring 3.
	sysMaps := []struct {
		addr, size uint64
		perm       machine.Perm
		user       bool
	}{
		{abi.ABIPage, pageSize, machine.PermRead | machine.PermExec, true},
		{machine.Ring0TextAddr, pageSize, machine.PermRead | machine.PermExec, false},
		{machine.IDTAddr, pageSize, machine.PermRead, false},
		{machine.VCPUAreaAddr, machine.MaxVCPUs * machine.VCPUAreaSize, machine.PermRead | machine.PermWrite, false},
		{machine.TrapPageAddr, pageSize, machine.PermWrite, true},
	}
	for _, sm := range sysMaps {
		if err := pt.MapRange(sm.addr, sm.size, sm.perm, sm.user, false); err != nil {
			return nil, fmt.Errorf("new space %s: system pages: %w", name, err)
		}
	}
	s = &Space{
		mon: m, id: id, name: name, log: log, shell: sh, machine: sh.Machine, sys: sh.Sys, win: sh.Win, quota: q,
		pt: pt, handles: newHandleTable(q.Handles), threads: map[*Thread]struct{}{},
		done: make(chan struct{}),
	}
	log.Debug("space created", "backend", m.backend.Name())
	return s, nil
}

// Name returns the name the space was created with.
func (s *Space) Name() string { return s.name }

// mapAt makes size bytes of mem, from offset off, appear at addr with perm.
func (s *Space) mapAt(addr uint64, mem *machine.Memory, off, size uint64, perm machine.Perm) error {
	return s.mapMemory(addr, mem, off, size, perm, false)
}

// mapMemory is Map; large allows 2 MiB pages (for mappings whose pages are
// all present from the start).
func (s *Space) mapMemory(addr uint64, mem *machine.Memory, off, size uint64, perm machine.Perm, large bool) error {
	if s.hostSpace() {
		return fmt.Errorf("map %s: a host space has no memory: %w", mem.Name(), abi.ErrInvalidArg)
	}
	if err := checkUserRange(addr, size); err != nil {
		return fmt.Errorf("map %s: %w", mem.Name(), err)
	}
	if off%pageSize != 0 || off+size < off || off+size > mem.Size() {
		return fmt.Errorf("map %s: offset %#x size %#x outside the memory's %#x bytes", mem.Name(), off, size, mem.Size())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.as.overlaps(addr, size) {
		return fmt.Errorf("map %s at %#x-%#x: overlaps an existing mapping", mem.Name(), addr, addr+size)
	}
	if err := s.chargeLocked(size); err != nil {
		return fmt.Errorf("map %s: %w", mem.Name(), err)
	}
	// Host pages first, then the exec hint, then the page tables: a
	// present entry must never point at window pages that are not there.
	if err := s.win.MapMemory(addr, mem, off, size); err != nil {
		s.unchargeLocked(size)
		return err
	}
	if err := s.win.Protect(addr, size, perm); err != nil {
		s.unchargeLocked(size)
		s.win.Unmap(addr, size)
		return fmt.Errorf("map %s at %#x: %w", mem.Name(), addr, err)
	}
	if err := s.pt.MapRange(addr, size, perm, true, large); err != nil {
		s.unchargeLocked(size)
		s.pt.UnmapRange(addr, size)
		s.win.Unmap(addr, size)
		return fmt.Errorf("map %s at %#x: %w", mem.Name(), addr, err)
	}
	s.as.insert(&mapping{addr: addr, size: size, mem: mem.Ref(), off: off, perm: perm, limit: machine.PermRead | machine.PermWrite | machine.PermExec, space: s})
	s.log.Debug("mapped", "memory", mem.Name(), "addr", hexAddr(addr), "size", hexAddr(size), "perm", perm)
	return nil
}

type hexAddr uint64

func (h hexAddr) String() string { return fmt.Sprintf("%#x", uint64(h)) }

// insertHandle adds a handle naming obj to the space's table and returns
// its number.
func (s *Space) insertHandle(obj Object, rights abi.Rights, badge uint64) (uint64, error) {
	h, e := s.addHandle(handleEntry{obj: obj, rights: rights, badge: badge}, nil)
	if e != abi.OK {
		return 0, fmt.Errorf("insert handle: %w", e)
	}
	return h, nil
}

// FaultHandler decides what happens to a thread that faulted. It runs on
// the thread's goroutine with the thread stopped at the fault; through ctx
// it may read and change the thread's state. Returning true resumes the
// thread with its (possibly changed) state; false ends the space with the
// fault as its result.
type FaultHandler func(ctx *FaultContext) (resume bool)

// FaultContext is a faulted thread as a FaultHandler sees it.
type FaultContext struct {
	Thread *Thread
	Fault  machine.Fault
	vcpu   machine.VCPU
}

// Regs returns the thread's registers at the fault (RIP at the faulting
// instruction).
func (c *FaultContext) Regs() (machine.Regs, error) { return c.vcpu.Regs() }

// SetRegs changes the registers the thread resumes with. RFLAGS is forced
// to what user code may hold; non-canonical addresses are refused.
func (c *FaultContext) SetRegs(r machine.Regs) error {
	if err := machine.CheckUserRegs(&r); err != nil {
		return err
	}
	r.RFLAGS = r.RFLAGS&machine.RFlagsUserMask | machine.RFlagsUser
	return c.vcpu.SetRegs(&r)
}

// FPU returns the thread's x87/SSE state.
func (c *FaultContext) FPU() (machine.FPU, error) { return c.vcpu.FPU() }

// SetFPU changes the x87/SSE state the thread resumes with.
func (c *FaultContext) SetFPU(f machine.FPU) error { return c.vcpu.SetFPU(&f) }

// setFaultHandler makes h decide about every fault of the space's threads
// from now on. Without one, a fault ends the space.
func (s *Space) setFaultHandler(h FaultHandler) {
	s.mu.Lock()
	s.onFault = h
	s.mu.Unlock()
}

// Kill ends every thread of the space; the space ends with Result.Killed
// set to reason, unless it already ended.
func (s *Space) Kill(reason string) {
	s.end(Result{Killed: reason})
}

// end records r as the space's result (the first result wins), ends its
// child spaces and stops every thread.
func (s *Space) end(r Result) {
	s.mu.Lock()
	if !s.dying {
		s.dying = true
		s.result = r
		if s.log.IsDebug() {
			// Only when logged: formatting it was 2 to 4% of the CPU
			// of a child that exits at once (BenchmarkSpawn's profile).
			s.log.Debug("space ending", "result", r.String())
		}
	}
	threads := make([]*Thread, 0, len(s.threads))
	for t := range s.threads {
		threads = append(threads, t)
	}
	children := make([]*Space, 0, len(s.children))
	for c := range s.children {
		children = append(children, c)
	}
	live := s.live
	s.mu.Unlock()
	for _, c := range children {
		c.Kill("its parent ended")
	}
	for _, t := range threads {
		t.kill()
	}
	if live == 0 {
		s.finish()
	}
}

// threadEnded is called by each thread's goroutine when it has closed its
// vCPU; the last one finishes the space.
func (s *Space) threadEnded(t *Thread) {
	s.mon.dropHeld(t)
	t.mu.Lock()
	t.state = abi.ThreadExited
	t.running = false
	t.vcpu = nil
	t.mu.Unlock()
	s.mu.Lock()
	delete(s.threads, t)
	s.vcpuUsed[t.id] = false
	s.live--
	last := s.live == 0 && s.dying
	s.mu.Unlock()
	s.uncountThread()
	if last {
		s.finish()
	}
}

var errNoThreads = errors.New("space ended with no threads left")

// finish releases the space's resources once, tells its exception port
// how it ended, and reports its result.
func (s *Space) finish() {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return
	default:
	}
	if s.finishing {
		s.mu.Unlock()
		return
	}
	s.finishing = true
	if !s.dying {
		s.dying = true
		s.result = Result{Err: errNoThreads}
	}
	maps := s.as.maps
	s.as.maps = nil
	regions := s.regions
	s.regions = nil
	exc, badge := s.excPort, s.excBadge
	parent := s.parent
	s.mu.Unlock()

	// Its threads are gone: the page tables' dirty bits are the last
	// record of their writes, for the regions' readers, who may ask as
	// soon as they hear of the end.
	for _, m := range maps {
		if r := m.region; r != nil {
			written := r.bitmap()
			m.takeBits(s.pt, machine.PTEDirty, false, m.off, m.off+m.size, written)
			r.mu.Lock()
			r.dirty.mark(written)
			r.mu.Unlock()
		}
	}
	s.mon.closePorts(s)
	s.dropTable()
	// The parent learns of the end before the shell is torn down or
	// reset (closing a KVM VM takes about a millisecond): a nester waits
	// on it.
	if exc != nil {
		s.notifyExit(exc, badge)
	}
	dropFromRegions(maps)
	for _, m := range maps {
		m.mem.Unref()
	}
	for _, r := range regions {
		r.mu.Lock()
		r.freed = true
		r.mu.Unlock()
		s.uncharge(r.mem.Size())
		r.mem.Unref()
	}
	// Only now is no mapping of the space left where a region's reader
	// could find it and read the page tables: the shell may serve another
	// space.
	if s.shell != nil {
		s.mon.shells.Put(s.shell)
	}
	if parent != nil {
		parent.mu.Lock()
		delete(parent.children, s)
		parent.mu.Unlock()
		parent.uncountDescendant()
	}
	close(s.done)
	s.mu.Lock()
	s.kickGoneWaitersLocked()
	s.mu.Unlock()
}

// gone reports whether s and every space below it have finished: their
// places in every ancestor's children quota, and their pages in every
// ancestor's memory quota, are given back.
func (s *Space) gone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended() && s.descendants == 0
}

// kickGoneWaitersLocked wakes the threads waiting for s to be gone once
// it is; they check again. s.mu is held.
func (s *Space) kickGoneWaitersLocked() {
	if !s.ended() || s.descendants != 0 {
		return
	}
	for t := range s.goneWaiters {
		t.kick()
	}
}

// awaitGone sleeps until sp is gone (see gone). It is stoppable: a
// space_kill stopped here is re-issued when resumed, and kills nothing
// more, the space being dead already.
func (t *Thread) awaitGone(sp *Space) wakeReason {
	ready := func() bool {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		if sp.ended() && sp.descendants == 0 {
			delete(sp.goneWaiters, t)
			return true
		}
		if sp.goneWaiters == nil {
			sp.goneWaiters = map[*Thread]struct{}{}
		}
		sp.goneWaiters[t] = struct{}{}
		return false
	}
	r := t.sleep(ready, true, time.Time{}, nil)
	if r != wakeReady {
		sp.mu.Lock()
		delete(sp.goneWaiters, t)
		sp.mu.Unlock()
	}
	return r
}

// within reports whether s is sp or a space below it.
func (s *Space) within(sp *Space) bool {
	for a := s; a != nil; a = a.parent {
		if a == sp {
			return true
		}
	}
	return false
}

// Done is closed when the space has ended and released its resources.
func (s *Space) Done() <-chan struct{} { return s.done }

// Wait blocks until the space ends and returns how.
func (s *Space) Wait() Result {
	<-s.done
	return s.result
}

// charge counts size bytes against the memory quota of s and of every
// ancestor, so that no descendant holds more than any ancestor allows.
func (s *Space) charge(size uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chargeLocked(size)
}

// chargeLocked is charge with s.mu held. Locks go child before parent.
func (s *Space) chargeLocked(size uint64) error {
	if s.memUsed+size > s.quota.Memory || s.memUsed+size < s.memUsed {
		return fmt.Errorf("%#x bytes more would exceed the memory quota of %#x bytes of %s: %w", size, s.quota.Memory, s.name, abi.ErrQuota)
	}
	var done []*Space
	for a := s.parent; a != nil; a = a.parent {
		a.mu.Lock()
		ok := a.memUsed+size <= a.quota.Memory && a.memUsed+size >= a.memUsed
		if ok {
			a.memUsed += size
		}
		a.mu.Unlock()
		if !ok {
			for _, d := range done {
				d.mu.Lock()
				d.memUsed -= size
				d.mu.Unlock()
			}
			return fmt.Errorf("%#x bytes more would exceed the memory quota of %#x bytes of %s, an ancestor: %w", size, a.quota.Memory, a.name, abi.ErrQuota)
		}
		done = append(done, a)
	}
	s.memUsed += size
	return nil
}

// uncharge gives back what charge took.
func (s *Space) uncharge(size uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unchargeLocked(size)
}

func (s *Space) unchargeLocked(size uint64) {
	s.memUsed -= size
	for a := s.parent; a != nil; a = a.parent {
		a.mu.Lock()
		a.memUsed -= size
		a.mu.Unlock()
	}
}

// newChild creates a child space of s with quota q, where each limit of 0
// means s's own; no limit may exceed s's.
func (s *Space) newChild(q Quota) (*Space, error) {
	s.mu.Lock()
	own := s.quota
	dying := s.dying
	s.mu.Unlock()
	if dying {
		return nil, fmt.Errorf("new child of %s: %w", s.name, abi.ErrPeerGone)
	}
	inherit := func(v, limit uint64) (uint64, bool) {
		if v == 0 {
			return limit, true
		}
		return v, v <= limit
	}
	var ok [4]bool
	var mem, th, h, ch uint64
	mem, ok[0] = inherit(q.Memory, own.Memory)
	th, ok[1] = inherit(uint64(q.Threads), uint64(own.Threads))
	h, ok[2] = inherit(uint64(q.Handles), uint64(own.Handles))
	ch, ok[3] = inherit(uint64(q.Children), uint64(own.Children))
	if !ok[0] || !ok[1] || !ok[2] || !ok[3] {
		return nil, fmt.Errorf("new child of %s: a quota above the parent's: %w", s.name, abi.ErrQuota)
	}
	if a := s.countDescendant(); a != nil {
		return nil, fmt.Errorf("new child of %s: %d spaces below %s is its quota: %w", s.name, a.quota.Children, a.name, abi.ErrQuota)
	}
	child, err := s.mon.NewSpace(s.name+"/child", Quota{Memory: mem, Threads: int(th), Handles: int(h), Children: int(ch)})
	if err != nil {
		s.uncountDescendant()
		s.mon.hostLimit(err)
		return nil, fmt.Errorf("%v: %w", err, abi.ErrNoMemory)
	}
	child.parent = s // from now on its finish gives back what countDescendant took
	s.mu.Lock()
	if s.dying {
		s.mu.Unlock()
		child.Kill("parent ended")
		return nil, fmt.Errorf("new child of %s: %w", s.name, abi.ErrPeerGone)
	}
	if s.children == nil {
		s.children = map[*Space]struct{}{}
	}
	s.children[child] = struct{}{}
	s.mu.Unlock()
	return child, nil
}

// countDescendant counts a new space below s against the children quota
// of s and of every ancestor, as charge does memory: the quota bounds
// every space below, not only children, or a program holding a child's
// handle could grow a tree of spaces (each a machine, memory and address
// space of the monitor's) as wide and deep as it liked. It returns the
// space whose quota is full, or nil when the new space is counted.
func (s *Space) countDescendant() *Space {
	var done []*Space
	for a := s; a != nil; a = a.parent {
		a.mu.Lock()
		full := a.descendants >= a.quota.Children
		if !full {
			a.descendants++
		}
		a.mu.Unlock()
		if full {
			for _, d := range done {
				d.mu.Lock()
				d.descendants--
				// A space_kill of d may have seen the count this
				// took back, and sleeps until it is gone.
				d.kickGoneWaitersLocked()
				d.mu.Unlock()
			}
			return a
		}
		done = append(done, a)
	}
	return nil
}

// uncountDescendant gives back what countDescendant took.
func (s *Space) uncountDescendant() {
	for a := s; a != nil; a = a.parent {
		a.mu.Lock()
		a.descendants--
		a.kickGoneWaitersLocked()
		a.mu.Unlock()
	}
}

// setExceptionPort names the port that receives the space's faults, its
// page requests for regions without a keeper, and its exit notice,
// through a handle with rights: the copy of the port space_get_state
// hands out keeps no more of them than call, grant and derive, so reading
// a space's state never gives more than was given to set it.
func (s *Space) setExceptionPort(p *Port, badge uint64, rights abi.Rights) {
	s.mu.Lock()
	s.excPort, s.excBadge = p, badge
	s.excRights = rights & (abi.RightCall | abi.RightGrant | abi.RightDerive)
	s.mu.Unlock()
}

// Status reports the space's state (abi.Space*) and, once ended, its
// status.
func (s *Space) Status() (int, int) {
	select {
	case <-s.done:
	default:
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.dying {
			return abi.SpaceRunning, 0
		}
		// Ending: report how, as finish will.
		return s.result.state()
	}
	return s.result.state()
}

// state is the abi.Space* value and status of a result.
func (r Result) state() (int, int) {
	switch {
	case r.Exited:
		return abi.SpaceExited, r.Status
	case r.Fault != nil:
		return abi.SpaceKilled, r.Fault.Fault.ExitStatus()
	case r.KilledStatus != 0:
		return abi.SpaceKilled, r.KilledStatus
	}
	return abi.SpaceKilled, 137
}

// ended reports whether s has finished: its threads are gone and its
// objects freed. It takes no lock, so holders of any lock may ask.
func (s *Space) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// running counts the threads of s and of the spaces below it that do not
// wait (space_running): running guest code or a server's work for them,
// held stopped (by thread_stop, or in a fault whose handler has not
// answered), or not yet started; and those that wait, asleep in an
// operation.
func (s *Space) running() (busy, waiting uint64) {
	s.mu.Lock()
	threads := make([]*Thread, 0, len(s.threads))
	for t := range s.threads {
		threads = append(threads, t)
	}
	children := make([]*Space, 0, len(s.children))
	for c := range s.children {
		children = append(children, c)
	}
	s.mu.Unlock()
	for _, t := range threads {
		switch t.activity() {
		case threadRuns, threadHeld, threadNew:
			busy++
		case threadWaits:
			waiting++
		}
	}
	for _, c := range children {
		b, w := c.running()
		busy, waiting = busy+b, waiting+w
	}
	return busy, waiting
}
