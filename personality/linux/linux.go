// Package linux runs unmodified static x86-64 Linux programs on nestvm's
// ABI: it is their loader and the server of their faults. A program's
// syscall instruction reaches it as a VecSyscall fault, served inline on
// the faulting thread's goroutine (vmm.FaultServer); it performs the call
// with ABI operations on its own handles (regions for memory, the files
// handle for open/read/stat, the clock for time, the console for output)
// and resumes the thread with the result in RAX. Layers above it (trace,
// refmon, pager) see and govern what it does for the program: a Linux
// open is a files_open through whatever stands between it and the files
// root.
//
// The package holds capabilities only (DESIGN.md §6): handles in its
// seat's table (a vmm.Host), and the registers of a faulting thread through
// vmm.FaultCall. What it keeps about a process (descriptors, memory map,
// brk, signal dispositions) is Linux's view, which the monitor does not
// hold.
package linux

import (
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// Personality runs Linux programs: nester.Program's Personality.
type Personality struct {
	// Environ is the program's environment, as NAME=value strings.
	Environ []string
	// Exe is the path the program was started as, for AT_EXECFN and
	// /proc/self/exe.
	Exe string
	// Log is where the personality logs (unsupported calls, once each).
	Log hclog.Logger
}

// Start implements nester.Personality: it loads prog as the first Linux
// process and returns a function serving it until it ends.
func (p *Personality) Start(c *vmm.Caller, caps map[string]uint64, env nester.Env, prog nester.Program) (nester.Started, error) {
	log := p.Log
	if log == nil {
		log = env.Log
	}
	k, err := newKernel(c, caps, env, log)
	if err != nil {
		return nil, err
	}
	if err := k.makeContainer(c); err != nil {
		return nil, err
	}
	exe := p.Exe
	if exe == "" {
		exe = prog.Name
	}
	if _, err := k.spawn(c, prog.Image, exe, prog.Args, p.Environ); err != nil {
		return nil, err
	}
	return k, nil
}

// newKernel makes the personality of one run, for Start and for a
// restore alike: its state empty, its port (every process's exception
// port) in c's table.
func newKernel(c *vmm.Caller, caps map[string]uint64, env nester.Env, log hclog.Logger) (*kernel, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	k := &kernel{
		host:    c.Host(),
		caps:    caps,
		log:     log.Named("linux"),
		memory:  env.Memory,
		procs:   map[int]*process{},
		done:    make(chan vmm.Result, 1),
		unknown: map[uint64]bool{},
	}
	k.callers.New = func() any { return k.host.NewCaller() }
	var err error
	if k.ep, err = c.Insert(vmm.NewHostPort("linux", k), abi.RightsAll, 0); err != nil {
		return nil, err
	}
	return k, nil
}

// Wait implements nester.Started: it returns how the first process
// ended, once it has.
func (k *kernel) Wait() vmm.Result {
	k.waitOnce.Do(func() { k.result = <-k.done })
	return k.result
}

// Kill implements nester.Started: every process ends, and the run with
// the first one's end, reported as killed for reason.
func (k *kernel) Kill(status int, reason string) {
	k.mu.Lock()
	init := k.procs[1]
	k.killStatus = status
	k.mu.Unlock()
	if init == nil {
		return
	}
	k.exit(init, sigKILL, reason)
}

// kernel is the Linux personality of one run: its processes and the
// capabilities it performs their calls with.
type kernel struct {
	host   *vmm.Host
	caps   map[string]uint64
	log    hclog.Logger
	memory uint64 // the memory quota of each process's space
	ep     uint64 // the exception port every process's faults come to
	// container is the space every process's space is created in (see
	// makeContainer).
	container uint64

	callers sync.Pool // of *vmm.Caller in host

	mu      sync.Mutex
	procs   map[int]*process // by pid, which is also the exception port's badge
	nextPID int
	ended   bool
	// exiting counts processes that exit has marked ended and whose
	// slots in the container it has not yet removed: the record and the
	// container's table disagree about them until it has.
	exiting int
	// killStatus is the status Kill gave, for the run's result.
	killStatus int

	roOnce  sync.Once
	ro      bool            // the files root refuses writes
	unknown map[uint64]bool // system calls logged as unsupported

	timeOnce   sync.Once
	timeHandle uint64 // the clock's time page, for the vDSO; 0: none

	futexMu sync.Mutex
	futex   map[futexKey][]*futexWaiter

	done     chan vmm.Result
	waitOnce sync.Once
	result   vmm.Result
}

// caller returns a Caller of the personality's seat.
func (k *kernel) caller() *vmm.Caller { return k.callers.Get().(*vmm.Caller) }

func (k *kernel) release(c *vmm.Caller) { k.callers.Put(c) }

// SpaceEnded implements vmm.FaultServer: a process's space ended without
// the process calling exit (killed from above, or by its quota).
func (k *kernel) SpaceEnded(badge uint64, exited bool, status int) {
	k.mu.Lock()
	p := k.procs[int(badge)]
	k.mu.Unlock()
	if p == nil {
		return
	}
	if exited {
		k.exit(p, status<<8, "")
		return
	}
	k.exit(p, sigKILL, "killed")
}

// ServeFault implements vmm.FaultServer: a system call, or a fault Linux
// turns into a signal.
func (k *kernel) ServeFault(fc *vmm.FaultCall) {
	k.mu.Lock()
	p := k.procs[int(fc.Badge)]
	k.mu.Unlock()
	if p == nil {
		fc.Kill(128+sigKILL, "a fault of a process the personality no longer knows")
		return
	}
	t := p.thread(fc.Thread)
	if t == nil {
		fc.Kill(128+sigKILL, fmt.Sprintf("a fault of thread %d, which process %d never created", fc.Thread, p.pid))
		return
	}
	c := k.caller()
	defer k.release(c)
	done := c.ActFor(fc)
	defer done()
	t.kick.entries.Add(1)
	t.kick.serving.Store(true)
	defer t.kick.serving.Store(false)
	tc := &task{k: k, p: p, t: t, fc: fc, c: c}
	// A bug of the personality's ends the process it served, not the
	// monitor.
	defer func() {
		if r := recover(); r != nil {
			k.log.Error("personality failed serving a fault; ending the process", "pid", p.pid, "fault", fc.Fault.String(), "panic", fmt.Sprint(r))
			fc.Kill(128+sigKILL, fmt.Sprintf("the Linux personality failed: %v", r))
			go k.exit(p, sigKILL, "")
		}
	}()
	if fc.Fault.Vector != machine.VecSyscall {
		tc.fault()
		return
	}
	tc.syscall()
}

// exit ends process p with the wait status ws (code<<8 for an exit, the
// signal number for a death by signal). Its parent can then reap it; the
// first process's end is the run's. why is set when p was killed from
// above (its space killed by a layer or the monitor), not by Linux.
func (k *kernel) exit(p *process, ws int, why string) {
	k.mu.Lock()
	if p.exited {
		k.mu.Unlock()
		return
	}
	p.exited, p.wstatus = true, ws
	k.exiting++
	parent := k.procs[p.ppid]
	if parent == nil || parent.exited {
		delete(k.procs, p.pid)
	}
	// Orphans are the first process's to reap, as init's.
	for _, q := range k.procs {
		if q.ppid == p.pid {
			q.ppid = 1
		}
	}
	first := p.pid == 1
	var rest []*process
	if first {
		k.ended = true
		for _, q := range k.procs {
			if q != p && !q.exited {
				rest = append(rest, q)
			}
		}
	}
	k.mu.Unlock()
	c := k.caller()
	code := uint64(ws >> 8 & 0xff)
	if ws&0x7f != 0 {
		code = uint64(128 + ws&0x7f)
	}
	sp := p.spaceNow()
	k.disown(c, p.slotNow())
	c.SpaceKill(sp, code)
	p.closeAll(c)
	c.HandleClose(sp)
	k.release(c)
	k.mu.Lock()
	k.exiting--
	k.mu.Unlock()
	p.ended.notify()
	if parent != nil && !first {
		info := sigInfo{signo: sigCHLD, code: cldExited, pid: int32(p.pid), status: int32(ws >> 8 & 0xff)}
		if ws&0x7f != 0 {
			info.code, info.status = cldKilled, int32(ws&0x7f)
		}
		k.signal(parent, info)
		parent.children.notify()
	}
	for _, q := range rest {
		k.exit(q, sigKILL, "its init ended")
	}
	if !first {
		return
	}
	c = k.caller()
	c.SpaceKill(k.container, code)
	k.release(c)
	res := vmm.Result{Exited: true, Status: ws >> 8 & 0xff}
	switch sig := ws & 0x7f; {
	case why != "":
		res = vmm.Result{Killed: why, KilledStatus: int(code)}
		k.mu.Lock()
		if k.killStatus != 0 {
			res.KilledStatus = k.killStatus
		}
		k.mu.Unlock()
	case sig != 0:
		res = vmm.Result{Signal: sig}
	}
	select {
	case k.done <- res:
	default:
	}
}

// makeContainer creates the space every process's space is a child of.
// It runs no thread; its table holds a handle to each process's space and
// thread. So a checkpoint taken above the personality, which saves the
// subtree of the one space it sees created, saves every process, and the
// personality finds them again, by their numbers in that table, when it
// is rebuilt on restore. Its exception port is the personality's port
// with badge 0: server_get_state on it, and on no other handle, reads the
// personality's state (see state.go).
func (k *kernel) makeContainer(c *vmm.Caller) error {
	sp, _, err := c.SpaceCreate(k.caps[nester.CapSpace], 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("space_create (the processes' container): %w", err)
	}
	ep, _, err := c.HandleDerive(k.ep, uint64(abi.RightCall|abi.RightGrant|abi.RightDerive), 0)
	if err == nil {
		_, _, err = c.SpaceSetExceptionPort(sp, ep)
		c.HandleClose(ep)
	}
	if err != nil {
		discardSpace(c, sp)
		return fmt.Errorf("space_set_exception_port (the processes' container): %w", err)
	}
	k.container = sp
	return nil
}

// adopt copies h (a process's space or thread) into the container's
// table and returns its number there.
func (k *kernel) adopt(c *vmm.Caller, h uint64) (uint64, error) {
	n, _, err := c.SpaceInsert(k.container, h, uint64(abi.RightsAll))
	if err != nil {
		return 0, fmt.Errorf("space_insert (into the processes' container): %w", err)
	}
	return n, nil
}

// disown removes what adopt put at number n of the container's table.
func (k *kernel) disown(c *vmm.Caller, n uint64) {
	if n != abi.NoHandle {
		c.SpaceRemove(k.container, n)
	}
}

// unsupported logs a system call the personality does not implement, once
// per number.
func (k *kernel) unsupported(nr uint64) {
	k.mu.Lock()
	seen := k.unknown[nr]
	k.unknown[nr] = true
	k.mu.Unlock()
	if !seen {
		k.log.Warn("unsupported system call: ENOSYS", "nr", nr, "name", syscallName(nr))
	}
}
