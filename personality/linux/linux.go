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
// The package holds capabilities only (DESIGN.md §6): handles in its host
// space's table, and the registers of a faulting thread through
// vmm.FaultCall. What it keeps about a process (descriptors, memory map,
// brk, signal dispositions) is Linux's view, which the monitor does not
// hold.
package linux

import (
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
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
func (p *Personality) Start(c *vmm.Caller, caps map[string]uint64, env nester.Env, prog nester.Program) (uint64, func() vmm.Result, error) {
	log := p.Log
	if log == nil {
		log = env.Log
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	k := &kernel{
		host:    c.Space(),
		caps:    caps,
		log:     log.Named("linux"),
		memory:  env.Memory,
		procs:   map[int]*process{},
		done:    make(chan vmm.Result, 1),
		unknown: map[uint64]bool{},
	}
	k.callers.New = func() any { return k.host.NewCaller() }
	port := vmm.NewHostPort("linux", k)
	ep, err := c.Insert(port, abi.RightsAll, 0)
	if err != nil {
		return 0, nil, err
	}
	k.ep = ep
	exe := p.Exe
	if exe == "" {
		exe = prog.Name
	}
	proc, err := k.spawn(c, prog.Image, exe, prog.Args, p.Environ)
	if err != nil {
		return 0, nil, err
	}
	return proc.space, func() vmm.Result { return <-k.done }, nil
}

// kernel is the Linux personality of one run: its processes and the
// capabilities it performs their calls with.
type kernel struct {
	host   *vmm.Space
	caps   map[string]uint64
	log    hclog.Logger
	memory uint64 // the memory quota of each process's space
	ep     uint64 // the exception port every process's faults come to

	callers sync.Pool // of *vmm.Caller in host

	mu      sync.Mutex
	procs   map[int]*process // by pid, which is also the exception port's badge
	nextPID int
	ended   bool
	unknown map[uint64]bool // system calls logged as unsupported

	futexMu sync.Mutex
	futex   map[futexKey][]*futexWaiter

	done chan vmm.Result
}

// caller returns a Caller of the personality's host space.
func (k *kernel) caller() *vmm.Caller { return k.callers.Get().(*vmm.Caller) }

func (k *kernel) release(c *vmm.Caller) { k.callers.Put(c) }

// Serve implements vmm.Server: the personality's port answers no
// operation, only faults.
func (k *kernel) Serve(inv *vmm.Invocation) { inv.Fail(abi.ErrInvalidOp) }

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
		k.exit(p, status, "")
		return
	}
	k.exit(p, status, "killed")
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
	tc := &task{k: k, p: p, t: t, fc: fc, c: c}
	if fc.Fault.Vector != vmm.VecSyscall {
		tc.fault()
		return
	}
	tc.syscall()
}

// exit ends process p with status (a wait status's exit code, or 128+N
// for a fatal signal), and the run with it when p is the first process.
func (k *kernel) exit(p *process, status int, why string) {
	k.mu.Lock()
	if p.exited {
		k.mu.Unlock()
		return
	}
	p.exited = true
	delete(k.procs, p.pid)
	first := p.pid == 1
	k.mu.Unlock()
	c := k.caller()
	c.SpaceKill(p.space, uint64(status&0xff))
	p.closeAll(c)
	c.HandleClose(p.space)
	k.release(c)
	if !first {
		return
	}
	var res vmm.Result
	switch {
	case why != "":
		res = vmm.Result{Killed: why, KilledStatus: status}
	default:
		res = vmm.Result{Exited: true, Status: status}
	}
	select {
	case k.done <- res:
	default:
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
