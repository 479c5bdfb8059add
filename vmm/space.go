package vmm

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
)

// Quota bounds what a space may hold.
type Quota struct {
	// Memory is the most bytes of user memory the space may map.
	Memory uint64
	// Threads is the most threads it may run at once (at most MaxVCPUs).
	Threads int
	// Handles is the most handles its table may hold.
	Handles int
}

// DefaultQuota is the quota of a space created without one.
var DefaultQuota = Quota{Memory: 256 << 20, Threads: MaxVCPUs, Handles: 1024}

// Space is an address space with its handle table and threads: one KVM VM,
// or one emulator memory map.
type Space struct {
	mon     *Monitor
	id      uint64
	name    string
	log     hclog.Logger
	machine Machine
	sys     *Memory
	trap    TrapMechanism
	win     *window // host view of guest addresses [0, abi.UserTop)
	quota   Quota

	mu       sync.Mutex
	pt       *pageTables
	as       addrSpace
	memUsed  uint64
	handles  handleTable
	threads  map[*Thread]struct{}
	vcpuUsed [MaxVCPUs]bool
	live     int // threads started and not yet ended
	dying    bool
	onFault  FaultHandler

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
	// Killed is set when the monitor ended the space, and says why.
	Killed string
	// Err is set when the monitor failed to run the space.
	Err error
}

// FaultReport is an unhandled fault: which thread, what fault.
type FaultReport struct {
	Thread int
	Fault  Fault
}

// String describes the result in one line.
func (r Result) String() string {
	switch {
	case r.Err != nil:
		return "monitor error: " + r.Err.Error()
	case r.Fault != nil:
		return fmt.Sprintf("thread %d: %s", r.Fault.Thread, r.Fault.Fault)
	case r.Killed != "":
		return "killed: " + r.Killed
	}
	return fmt.Sprintf("exited with status %d", r.Status)
}

// NewSpace creates an empty space: the system pages in place, no user
// memory, no handles, no threads.
func (m *Monitor) NewSpace(name string, q Quota) (s *Space, err error) {
	if q.Threads <= 0 || q.Threads > MaxVCPUs {
		q.Threads = MaxVCPUs
	}
	id := m.nextSpace.Add(1)
	log := m.log.Named(fmt.Sprintf("space%d", id)).With("program", name)
	machine, err := m.backend.NewMachine(MachineConfig{Log: log})
	if err != nil {
		return nil, fmt.Errorf("new space %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			machine.Close()
		}
	}()
	sys, err := NewMemory(fmt.Sprintf("space%d-system", id), SysSize)
	if err != nil {
		return nil, fmt.Errorf("new space %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			sys.Unref()
		}
	}()
	trap := trapOf(machine)
	buildSystem(sys.Bytes(), trap)
	_, noNX := machine.(NoPageTableNX)
	pt, err := newPageTables(sys.Bytes()[ptPoolAddr-SysBase:], !noNX)
	if err != nil {
		return nil, fmt.Errorf("new space %s: %w", name, err)
	}
	// The system pages: only the ABI page is reachable from ring 3.
	sysMaps := []struct {
		addr, size uint64
		perm       Perm
		user       bool
	}{
		{abi.ABIPage, pageSize, PermRead | PermExec, true},
		{ring0TextAddr, pageSize, PermRead | PermExec, false},
		{idtAddr, pageSize, PermRead, false},
		{vcpuAreaAddr, MaxVCPUs * vcpuAreaSize, PermRead | PermWrite, false},
	}
	if trap == TrapMMIO {
		sysMaps = append(sysMaps, struct {
			addr, size uint64
			perm       Perm
			user       bool
		}{TrapPageAddr, pageSize, PermWrite, true})
	}
	for _, sm := range sysMaps {
		if err := pt.mapRange(sm.addr, sm.size, sm.perm, sm.user, false); err != nil {
			return nil, fmt.Errorf("new space %s: system pages: %w", name, err)
		}
	}
	for _, r := range sysRanges {
		b := sys.Bytes()[r.addr-SysBase : r.addr-SysBase+r.size]
		if err := machine.MapMemory(r.addr, b, PermRead|PermWrite|PermExec); err != nil {
			return nil, fmt.Errorf("new space %s: map system memory: %w", name, err)
		}
	}
	win, err := newWindow(abi.UserTop)
	if err != nil {
		return nil, fmt.Errorf("new space %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			win.close()
		}
	}()
	if err := machine.MapMemory(abi.UserBase, win.bytes(abi.UserBase, abi.UserTop-abi.UserBase), PermRead|PermWrite); err != nil {
		return nil, fmt.Errorf("new space %s: map user window: %w", name, err)
	}
	s = &Space{
		mon: m, id: id, name: name, log: log, machine: machine, sys: sys, trap: trap, win: win, quota: q,
		pt: pt, handles: newHandleTable(q.Handles), threads: map[*Thread]struct{}{},
		done: make(chan struct{}),
	}
	log.Debug("space created", "backend", m.backend.Name(), "trap", trap)
	return s, nil
}

// sysRanges are the two mappings of the system memory, around the trap
// page, which nothing backs.
var sysRanges = [2]struct{ addr, size uint64 }{
	{SysBase, TrapPageAddr - SysBase},
	{TrapPageAddr + pageSize, abi.ReservedTop - TrapPageAddr - pageSize},
}

// Name returns the name the space was created with.
func (s *Space) Name() string { return s.name }

// Map makes size bytes of mem, from offset off, appear at addr with perm.
func (s *Space) Map(addr uint64, mem *Memory, off, size uint64, perm Perm) error {
	return s.mapMemory(addr, mem, off, size, perm, false)
}

// mapMemory is Map; large allows 2 MiB pages (for mappings whose pages are
// all present from the start).
func (s *Space) mapMemory(addr uint64, mem *Memory, off, size uint64, perm Perm, large bool) error {
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
	if s.memUsed+size > s.quota.Memory {
		return fmt.Errorf("map %s: %#x bytes more would exceed the memory quota of %#x bytes: %w", mem.Name(), size, s.quota.Memory, abi.ErrQuota)
	}
	// Host pages first, then the exec hint, then the page tables: a
	// present entry must never point at window pages that are not there.
	if err := s.win.mapMemory(addr, mem, off, size); err != nil {
		return err
	}
	if err := s.machine.ProtectMemory(addr, size, perm); err != nil {
		s.win.unmap(addr, size)
		return fmt.Errorf("map %s at %#x: %w", mem.Name(), addr, err)
	}
	if err := s.pt.mapRange(addr, size, perm, true, large); err != nil {
		s.pt.unmapRange(addr, size)
		s.win.unmap(addr, size)
		return fmt.Errorf("map %s at %#x: %w", mem.Name(), addr, err)
	}
	s.as.insert(&mapping{addr: addr, size: size, mem: mem.Ref(), off: off, perm: perm})
	s.memUsed += size
	s.log.Debug("mapped", "memory", mem.Name(), "addr", hexAddr(addr), "size", hexAddr(size), "perm", perm)
	return nil
}

type hexAddr uint64

func (h hexAddr) String() string { return fmt.Sprintf("%#x", uint64(h)) }

// InsertHandle adds a handle naming obj to the space's table and returns
// its number.
func (s *Space) InsertHandle(obj Object, rights abi.Rights, badge uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, e := s.handles.insert(handleEntry{obj: obj, rights: rights, badge: badge})
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
	Fault  Fault
	vcpu   VCPU
}

// Regs returns the thread's registers at the fault (RIP at the faulting
// instruction).
func (c *FaultContext) Regs() (Regs, error) { return c.vcpu.Regs() }

// SetRegs changes the registers the thread resumes with. RFLAGS is forced
// to what user code may hold.
func (c *FaultContext) SetRegs(r Regs) error {
	r.RFLAGS = r.RFLAGS&RFlagsUserMask | RFlagsUser
	return c.vcpu.SetRegs(&r)
}

// FPU returns the thread's x87/SSE state.
func (c *FaultContext) FPU() (FPU, error) { return c.vcpu.FPU() }

// SetFPU changes the x87/SSE state the thread resumes with.
func (c *FaultContext) SetFPU(f FPU) error { return c.vcpu.SetFPU(&f) }

// SetFaultHandler makes h decide about every fault of the space's threads
// from now on. Without one, a fault ends the space.
func (s *Space) SetFaultHandler(h FaultHandler) {
	s.mu.Lock()
	s.onFault = h
	s.mu.Unlock()
}

// Kill ends every thread of the space; the space ends with Result.Killed
// set to reason, unless it already ended.
func (s *Space) Kill(reason string) {
	s.end(Result{Killed: reason})
}

// end records r as the space's result (the first result wins) and stops
// every thread.
func (s *Space) end(r Result) {
	s.mu.Lock()
	if !s.dying {
		s.dying = true
		s.result = r
		s.log.Debug("space ending", "result", r.String())
	}
	threads := make([]*Thread, 0, len(s.threads))
	for t := range s.threads {
		threads = append(threads, t)
	}
	live := s.live
	s.mu.Unlock()
	for _, t := range threads {
		t.stop()
	}
	if live == 0 {
		s.finish()
	}
}

// threadEnded is called by each thread's goroutine when it has closed its
// vCPU; the last one finishes the space.
func (s *Space) threadEnded(t *Thread) {
	s.mu.Lock()
	delete(s.threads, t)
	s.vcpuUsed[t.id] = false
	s.live--
	last := s.live == 0
	s.mu.Unlock()
	if last {
		s.finish()
	}
}

var errNoThreads = errors.New("space ended with no threads left")

// finish releases the space's resources once and reports its result.
func (s *Space) finish() {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return
	default:
	}
	if !s.dying {
		s.dying = true
		s.result = Result{Err: errNoThreads}
	}
	maps := s.as.maps
	s.as.maps = nil
	s.mu.Unlock()
	for _, addr := range []uint64{sysRanges[0].addr, sysRanges[1].addr, abi.UserBase} {
		if err := s.machine.UnmapMemory(addr); err != nil {
			s.log.Warn("unmap at exit", "addr", hexAddr(addr), "error", err)
		}
	}
	if err := s.machine.Close(); err != nil {
		s.log.Warn("close machine", "error", err)
	}
	if err := s.win.close(); err != nil {
		s.log.Warn("release window", "error", err)
	}
	for _, m := range maps {
		m.mem.Unref()
	}
	s.sys.Unref()
	close(s.done)
}

// Done is closed when the space has ended and released its resources.
func (s *Space) Done() <-chan struct{} { return s.done }

// Wait blocks until the space ends and returns how.
func (s *Space) Wait() Result {
	<-s.done
	return s.result
}
