//go:build linux && amd64

package kvm

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"nestvm/machine"
)

// Model-specific registers the backend sets: syscall's entry point, so
// that on a host that enters ring 0 for syscall even with EFER.SCE clear
// (PVM) it lands in the ring-0 stub instead of at address 0.
const (
	msrSTAR   = 0xc0000081
	msrLSTAR  = 0xc0000082
	msrCSTAR  = 0xc0000083
	msrSFMASK = 0xc0000084
)

// vcpu is one KVM vCPU running one guest thread.
//
// Registers travel through the run area (KVM_CAP_SYNC_REGS): KVM stores
// them there at every exit and loads what is marked dirty at the next
// KVM_RUN, so a hypercall costs one exit and no register ioctls.
type vcpu struct {
	m       *kvmMachine
	id      int
	log     hclog.Logger
	cfg     machine.CPUSetup
	handler machine.TrapHandler
	fd      uintptr
	run     *runArea
	syncR   *gokvm.Regs  // the run area's copy of the registers
	syncS   *gokvm.Sregs // and of the segment and control registers
	synced  bool         // KVM_RUN has returned at least once: syncR and syncS are current
	initS   *gokvm.Sregs // the segment and control registers NewVCPU left, until synced
	// fpuReset is set while the vCPU holds the reset x87/SSE state and
	// has not run: setting that state again is skipped.
	fpuReset bool

	regs       machine.Regs // valid when regsValid
	regsValid  bool
	sregsDirty bool // the user sregs must be written (after a fault, or to flush the TLB)
	flushTLB   bool // the next sregs write must flush the TLB
	cr3Flip    bool // CR3 carries machine.CR3FlushBit
	ioPending  bool // an exit KVM completes only at the next KVM_RUN

	tid     atomic.Int32 // the OS thread inside Run, for Stop's signal
	inRun   atomic.Bool
	stopReq atomic.Bool
	// mu orders Stop against Close, and makes a stop's two marks (stopReq
	// and the run area's immediate_exit) change together: Stop sets both,
	// Run taking the stop clears both. Set apart, a Run taking the stop
	// between a Stop's two writes would leave immediate_exit set with no
	// stop pending: every later KVM_RUN would return EINTR at once, and
	// the thread spin in Run, never running guest code, until some later
	// Stop.
	mu     sync.Mutex
	closed bool
}

// stopping, when set (by tests), runs at the start of Stop: where the
// caller of Stop may be preempted before it takes mu.
var stopping func(*vcpu)

// NewVCPU implements machine.Machine.
func (m *kvmMachine) NewVCPU(cfg machine.VCPUConfig) (machine.VCPU, error) {
	if cfg.Handler == nil {
		return nil, errors.New("new vcpu: no trap handler")
	}
	// KVM never frees a vCPU before its VM, and refuses to create one
	// with a number in use, so a closed vCPU's number is reused by
	// taking the vCPU back.
	m.mu.Lock()
	spare, reuse := m.spare[cfg.ID]
	delete(m.spare, cfg.ID)
	m.mu.Unlock()
	var fd uintptr
	var err error
	if reuse {
		fd = spare.fd
	} else if fd, err = retryValue(func() (uintptr, error) { return gokvm.CreateVCPU(m.fd, cfg.ID) }); err != nil {
		return nil, fmt.Errorf("new vcpu %d: %w", cfg.ID, err)
	}
	log := cfg.Log
	if log == nil {
		log = m.log
	}
	v := &vcpu{m: m, id: cfg.ID, log: log, cfg: cfg.CPU, handler: cfg.Handler, fd: fd}
	fail := func(what string, err error) (machine.VCPU, error) {
		if v.run != nil {
			v.run.unmap()
		}
		unix.Close(int(fd))
		return nil, fmt.Errorf("new vcpu %d: %s: %w", cfg.ID, what, err)
	}
	if reuse {
		v.run = spare.run
		v.run.setImmediateExit(false)
		*v.run.word(runDirtyRegs) = 0
	} else if v.run, err = mapRunArea(int(fd), m.dev.runSize); err != nil {
		return fail("run area", err)
	}
	v.syncR, v.syncS = v.run.syncArea()
	*v.run.word(runValidRegs) = syncRegs | syncSregs
	// CPUID can be set only before a vCPU first runs; a reused one keeps it.
	if !reuse {
		if err := retry(func() error { return gokvm.SetCPUID2(fd, m.cpuid) }); err != nil {
			return fail("set cpuid", err)
		}
		// Where the host cannot (before Linux 5.16), a guest's
		// counter starts near 0: time-page readers find it before
		// the record's base, beyond max_delta, and make the call.
		if err := zeroTSCOffset(fd); err != nil {
			log.Debug("guest TSC offset not set", "error", err)
		}
	}
	// A vCPU recycled for this setup was reset to it in the background
	// (machine.Recycle); any other is reset now.
	if reuse && spare.prepared && spare.setup == cfg.CPU {
		v.initS, v.fpuReset = &spare.sregs, true
	} else {
		us, err := resetVCPU(fd, cfg.CPU)
		if err != nil {
			return fail("reset", err)
		}
		v.initS = &us
	}
	m.mu.Lock()
	m.cpus[v] = struct{}{}
	m.mu.Unlock()
	return v, nil
}

// resetVCPU sets what a thread cannot reach but runs under: the
// segment and control registers (CR2 cleared: a reused vCPU's last fault
// address is not the new thread's) and the syscall MSRs. It returns the
// segment and control registers set.
func resetVCPU(fd uintptr, setup machine.CPUSetup) (gokvm.Sregs, error) {
	sregs, err := retryValue(func() (*gokvm.Sregs, error) { return gokvm.GetSregs(fd) })
	if err != nil {
		return gokvm.Sregs{}, fmt.Errorf("get sregs: %w", err)
	}
	us := userSregs(*sregs, setup, 0, 0)
	us.CR2 = 0
	if err := retry(func() error { return gokvm.SetSregs(fd, &us) }); err != nil {
		return gokvm.Sregs{}, fmt.Errorf("set sregs: %w", err)
	}
	msrs := &gokvm.MSRS{NMSRs: 4, Entries: []gokvm.MSREntry{
		{Index: msrSTAR, Data: uint64(setup.KernelCS) << 32},
		{Index: msrLSTAR, Data: setup.SyscallEntry},
		{Index: msrCSTAR, Data: setup.SyscallEntry},
		{Index: msrSFMASK, Data: 0x47700}, // TF DF IF IOPL AC NT
	}}
	if err := retry(func() error { return gokvm.SetMSRs(fd, msrs) }); err != nil {
		return gokvm.Sregs{}, fmt.Errorf("set syscall msrs: %w", err)
	}
	return us, nil
}

// SetRegs implements machine.VCPU.
func (v *vcpu) SetRegs(r *machine.Regs) error {
	if err := v.completeIO(); err != nil {
		return err
	}
	if !v.regsValid || r.FSBase != v.regs.FSBase || r.GSBase != v.regs.GSBase {
		v.sregsDirty = true // FS and GS bases live in the segment registers
	}
	v.regs, v.regsValid = *r, true
	v.writeRegs()
	return nil
}

// Regs implements machine.VCPU.
func (v *vcpu) Regs() (machine.Regs, error) {
	if err := v.completeIO(); err != nil {
		return machine.Regs{}, err
	}
	if !v.regsValid {
		if err := v.loadRegs(); err != nil {
			return machine.Regs{}, err
		}
	}
	return v.regs, nil
}

// loadRegs reads the registers: from the run area once KVM has filled it,
// by ioctl before the first KVM_RUN.
func (v *vcpu) loadRegs() error {
	if v.synced {
		v.regs = fromKVMRegs(v.syncR, v.syncS.FS.Base, v.syncS.GS.Base)
		v.regsValid = true
		return nil
	}
	k, err := retryValue(func() (*gokvm.Regs, error) { return gokvm.GetRegs(v.fd) })
	if err != nil {
		return fmt.Errorf("get regs: %w", err)
	}
	s, err := retryValue(func() (*gokvm.Sregs, error) { return gokvm.GetSregs(v.fd) })
	if err != nil {
		return fmt.Errorf("get sregs: %w", err)
	}
	v.regs = fromKVMRegs(k, s.FS.Base, s.GS.Base)
	v.regsValid = true
	return nil
}

// sregs returns the segment and control registers as KVM last reported
// them.
func (v *vcpu) sregs() (gokvm.Sregs, error) {
	if v.synced {
		return *v.syncS, nil
	}
	if v.initS != nil {
		return *v.initS, nil
	}
	s, err := retryValue(func() (*gokvm.Sregs, error) { return gokvm.GetSregs(v.fd) })
	if err != nil {
		return gokvm.Sregs{}, fmt.Errorf("get sregs: %w", err)
	}
	return *s, nil
}

// writeRegs puts v.regs in the run area for the next KVM_RUN to load, with
// RFLAGS forced to what user code runs with.
func (v *vcpu) writeRegs() {
	v.regs.RFLAGS = v.regs.RFLAGS&machine.RFlagsUserMask | machine.RFlagsReserved
	*v.syncR = toKVMRegs(&v.regs)
	*v.run.word(runDirtyRegs) |= syncRegs
}

// SetFPU implements machine.VCPU.
func (v *vcpu) SetFPU(f *machine.FPU) error {
	if v.fpuReset && *f == resetFPU {
		return nil
	}
	v.fpuReset = false
	k := toKVMFPU(f)
	if err := setFPU(v.fd, &k); err != nil {
		return fmt.Errorf("set fpu: %w", err)
	}
	return nil
}

// FPU implements machine.VCPU.
func (v *vcpu) FPU() (machine.FPU, error) {
	var k kvmFPU
	if err := getFPU(v.fd, &k); err != nil {
		return machine.FPU{}, fmt.Errorf("get fpu: %w", err)
	}
	return fromKVMFPU(&k), nil
}

// FlushTLB implements machine.VCPU: writing the segment and control registers
// (KVM_SET_SREGS, here through the run area) resets KVM's MMU context,
// which drops cached translations.
func (v *vcpu) FlushTLB() { v.sregsDirty, v.flushTLB = true, true }

// Stop implements machine.VCPU.
func (v *vcpu) Stop() {
	if stopping != nil {
		stopping(v)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stopReq.Store(true)
	if v.closed {
		return
	}
	v.run.setImmediateExit(true)
	if v.inRun.Load() {
		// The vCPU's own thread, stopping itself (a last thread's
		// thread_exit ends its space), is between two KVM_RUNs: the
		// immediate-exit mark is read by the next, and a signal would
		// only cost its delivery, once for every space that ends.
		if tid := v.tid.Load(); tid != 0 && int(tid) != unix.Gettid() {
			unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
		}
	}
}

// Close implements machine.VCPU.
func (v *vcpu) Close() error {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	// An exit KVM completes at the next KVM_RUN would be completed over
	// the registers of the vCPU's next thread: finish it now.
	if err := v.completeIO(); err != nil {
		v.log.Debug("complete i/o at close", "error", err)
	}
	// The vCPU goes back to the machine, for the next NewVCPU with its
	// number (see NewVCPU); the machine closes it.
	v.m.mu.Lock()
	delete(v.m.cpus, v)
	if v.m.spare == nil {
		v.m.spare = map[int]spareVCPU{}
	}
	v.m.spare[v.id] = spareVCPU{fd: v.fd, run: v.run, setup: v.cfg}
	v.m.mu.Unlock()
	return nil
}

// spareVCPU is a closed vCPU kept for reuse.
type spareVCPU struct {
	fd    uintptr
	run   *runArea
	setup machine.CPUSetup // what its last thread ran under
	// prepared is set when machine.Recycle has reset the vCPU to setup
	// (sregs holds what it set) with the reset x87/SSE state and no
	// pending events: NewVCPU for the same setup has nothing left to do.
	prepared bool
	sregs    gokvm.Sregs
}

// resetFPU is the x87/SSE state of a new thread.
var resetFPU = machine.ResetFPU()

// enter runs KVM_RUN once; afterwards the run area holds the vCPU's
// registers and the cached copy is stale.
func (v *vcpu) enter() error {
	v.fpuReset = false
	err := runKVM(v.fd)
	v.synced = true
	v.regsValid = false
	return err
}

// completeIO lets KVM finish an exit it completes only at the next
// KVM_RUN (a port write, an MMIO read) without running guest code: it
// enters KVM_RUN with immediate_exit set, which completes the pending
// operation and returns EINTR, as the KVM API documentation prescribes.
// Registers written before it are loaded first; the completion may then
// move RIP past the instruction.
func (v *vcpu) completeIO() error {
	if !v.ioPending {
		return nil
	}
	v.run.setImmediateExit(true)
	err := v.enter()
	v.ioPending = false
	v.mu.Lock()
	if !v.stopReq.Load() {
		v.run.setImmediateExit(false) // a Stop that came meanwhile keeps its own
	}
	v.mu.Unlock()
	if err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("complete i/o: %w", err)
	}
	return nil
}

// flushSregs writes the user segment registers (with the thread's FS and
// GS bases) for the next KVM_RUN to load.
func (v *vcpu) flushSregs() error {
	if !v.sregsDirty {
		return nil
	}
	s, err := v.sregs()
	if err != nil {
		return err
	}
	fs, gs := s.FS.Base, s.GS.Base
	if v.regsValid {
		fs, gs = v.regs.FSBase, v.regs.GSBase
	}
	us := userSregs(s, v.cfg, fs, gs)
	// The monitor edits the page tables from the host, where KVM cannot
	// see it: with shadow paging (PVM) KVM's copies of the entries stay
	// as they were until its shadow pages are zapped, which a memory-slot
	// deletion does; with EPT or NPT the CPU's TLB keeps translations
	// until the MMU context resets, which a CR3 change does (a rewrite
	// with the same value does not), so a flush also flips CR3's
	// page-level write-through bit, which changes nothing else.
	if v.flushTLB {
		if err := v.m.zapShadow(); err != nil {
			return fmt.Errorf("flush tlb: %w", err)
		}
		v.cr3Flip, v.flushTLB = !v.cr3Flip, false
	}
	if v.cr3Flip {
		us.CR3 |= machine.CR3FlushBit
	}
	*v.syncS = us
	*v.run.word(runDirtyRegs) |= syncSregs
	v.sregsDirty = false
	return nil
}

// Run implements machine.VCPU. A vCPU that fails leaves its VM unfit for
// recycling: KVM may hold state for it (a shutdown, an emulation failure)
// that no register write resets.
func (v *vcpu) Run() (machine.Exit, error) {
	exit, err := v.runLoop()
	if err != nil {
		v.m.mu.Lock()
		v.m.tainted = true
		v.m.mu.Unlock()
	}
	return exit, err
}

func (v *vcpu) runLoop() (machine.Exit, error) {
	v.tid.Store(int32(unix.Gettid()))
	v.inRun.Store(true)
	defer v.inRun.Store(false)
	for {
		if v.stopReq.Load() {
			// A stop that lands inside the ring-0 stub, between an
			// exception and the stub's trap, would leave the thread
			// with the stub's registers (RIP in ring-0 text, RSP on the
			// ring-0 stack): resumed at CPL3 from there, it faults on
			// the stub's page. On a paravirtual host, which emulates
			// ring 0 one instruction at a time, that window is wide.
			// The stub runs on to its trap instead, which reports the
			// fault with the thread's own state; the stop is answered
			// at the next Run.
			ring0, err := v.inRing0()
			if err != nil {
				return machine.Exit{}, fmt.Errorf("run: %w", err)
			}
			if ring0 {
				v.run.setImmediateExit(false)
			} else {
				if err := v.completeIO(); err != nil {
					return machine.Exit{}, err
				}
				// Both marks change together (see Stop).
				v.mu.Lock()
				v.stopReq.Store(false)
				v.run.setImmediateExit(false)
				v.mu.Unlock()
				return machine.Exit{Kind: machine.ExitStopped}, nil
			}
		}
		if err := v.flushSregs(); err != nil {
			return machine.Exit{}, fmt.Errorf("run: %w", err)
		}
		err := v.enter()
		v.ioPending = false
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue // a signal (the Go runtime's, or Stop's): look at stopReq
		case errors.Is(err, unix.EFAULT):
			return machine.Exit{}, errors.New("run: KVM_RUN: the guest reached guest-physical memory with no host pages behind it (a monitor bug)")
		case err != nil:
			return machine.Exit{}, fmt.Errorf("run: KVM_RUN: %w", err)
		}
		exit, done, err := v.exit()
		if err != nil || done {
			return exit, err
		}
	}
}

// exit handles the exit KVM_RUN just reported; done means Run returns.
func (v *vcpu) exit() (machine.Exit, bool, error) {
	r := v.run.r
	switch r.ExitReason {
	case exitIO:
		// Only the ring-0 stub does port I/O: an `out` to the fault port
		// (ring 3 runs with IOPL 0, so a guest's in or out is a #GP).
		io := decodeIO(r.Data[0], r.Data[1])
		v.ioPending = true
		if !io.out || io.port != v.cfg.FaultPort {
			return v.illegalIO(io.port)
		}
		return v.fault()
	case exitMMIO:
		mm := decodeMMIO(r.Data[0], r.Data[2])
		// A read completes (and moves RIP) only at the next KVM_RUN; a
		// write has retired before KVM exits.
		v.ioPending = !mm.write
		page := v.cfg.TrapPage
		if mm.write && mm.addr >= page && mm.addr-page < 4096 {
			return v.trap(uint16(mm.addr - page))
		}
		return v.mmio(mm)
	case exitIntr:
		return machine.Exit{}, false, nil
	case exitShutdown:
		return machine.Exit{}, true, &ExitError{exitShutdown, "the vCPU shut down (a triple fault: the ring-0 stub itself could not run)"}
	case exitFailEntry:
		return machine.Exit{}, true, &ExitError{exitFailEntry, fmt.Sprintf("hardware refused to enter the guest (reason %#x)", r.Data[0])}
	case exitInternalError:
		return machine.Exit{}, true, &ExitError{exitInternalError, fmt.Sprintf("suberror %d", uint32(r.Data[0]))}
	case exitHLT:
		return machine.Exit{}, true, &ExitError{exitHLT, "the vCPU halted, which ring-3 code cannot do"}
	}
	return machine.Exit{}, true, &ExitError{r.ExitReason, "not expected from a ring-3 guest"}
}

// trap serves a store to the trap page at port's offset.
func (v *vcpu) trap(port uint16) (machine.Exit, bool, error) {
	switch port {
	case v.cfg.NullPort:
		return machine.Exit{}, false, nil // the raw-trap benchmark: straight back in
	case v.cfg.HypercallPort:
		return v.hypercall()
	case v.cfg.SyscallPort:
		return v.syscall()
	}
	return v.illegalIO(port)
}

// hypercall serves a trap from the ABI page inline.
func (v *vcpu) hypercall() (machine.Exit, bool, error) {
	if err := v.loadRegs(); err != nil {
		return machine.Exit{}, true, err
	}
	// After the trap RIP is past it (a store to the trap page retires
	// before KVM exits): the instruction must be the ABI page's, or the
	// guest wrote to the trap port from code of its own.
	if v.regs.RIP != v.cfg.TrapAddr+v.cfg.TrapInsnLen {
		return v.illegalIO(v.cfg.HypercallPort)
	}
	c := machine.Call{
		Args: [6]uint64{v.regs.RDI, v.regs.RSI, v.regs.RDX, v.regs.RCX, v.regs.R8, v.regs.R9},
		RSP:  v.regs.RSP,
	}
	action := v.handler.Hypercall(&c)
	if action == machine.CallRestart {
		if err := v.completeIO(); err != nil {
			return machine.Exit{}, true, err
		}
		if err := v.loadRegs(); err != nil {
			return machine.Exit{}, true, err
		}
		v.regs.RIP = v.cfg.TrapAddr // re-issue the call when resumed
		v.writeRegs()
		return machine.Exit{Kind: machine.ExitStopped}, true, nil
	}
	// RAX and RDX only: RIP is already past the trap.
	v.regs.RAX, v.regs.RDX = c.Ret[0], c.Ret[1]
	v.writeRegs()
	if action == machine.CallStop {
		if err := v.completeIO(); err != nil {
			return machine.Exit{}, true, err
		}
		return machine.Exit{Kind: machine.ExitStopped}, true, nil
	}
	return machine.Exit{}, false, nil
}

// inRing0 reports whether the exit came from the ring-0 stub (the only
// code that runs at CPL0), not from a guest poking at the stub's ports.
func (v *vcpu) inRing0() (bool, error) {
	s, err := v.sregs()
	if err != nil {
		return false, err
	}
	return s.CS.Selector&3 == 0 && s.CS.DPL == 0, nil
}

// toUser puts the thread back in ring 3 with user (RIP, RSP, RFLAGS and
// the other registers as the thread left them), after an exit from the
// ring-0 stub. The pending port write is completed first: completing it
// later would run the emulator over the new state on some hosts.
func (v *vcpu) toUser(user machine.Regs) error {
	s, err := v.sregs()
	if err != nil {
		return err
	}
	if err := v.completeIO(); err != nil {
		return err
	}
	user.FSBase, user.GSBase = s.FS.Base, s.GS.Base
	v.regs, v.regsValid, v.sregsDirty = user, true, true
	v.writeRegs()
	return nil
}

// fault turns the ring-0 stub's trap into the fault it reports, and puts
// the thread back in ring 3 at the faulting instruction.
func (v *vcpu) fault() (machine.Exit, bool, error) {
	if err := v.loadRegs(); err != nil {
		return machine.Exit{}, true, err
	}
	if ok, err := v.inRing0(); err != nil {
		return machine.Exit{}, true, err
	} else if !ok {
		return v.illegalIO(v.cfg.FaultPort)
	}
	want := v.cfg.KernelStackTop - machine.FrameSize
	if v.regs.RSP != want {
		return machine.Exit{}, true, fmt.Errorf("fault trap with the ring-0 stack at %#x, not %#x", v.regs.RSP, want)
	}
	var b [machine.FrameSize]byte
	if err := v.m.read(want, b[:]); err != nil {
		return machine.Exit{}, true, fmt.Errorf("read fault frame: %w", err)
	}
	fr := parseFrame(b[:])
	if fr.cs&3 != 3 {
		return machine.Exit{}, true, fmt.Errorf("exception %d in ring 0 at %#x (the ring-0 stub faulted)", fr.vector, fr.rip)
	}
	cr2 := v.syncS.CR2
	user := v.regs
	user.RIP, user.RSP, user.RFLAGS = fr.rip, fr.rsp, fr.rflags
	if fr.vector == uint64(machine.VecInvalidOp) && v.isSyscall(fr.rip) {
		// A CPU that honours EFER.SCE=0 raises #UD for syscall: report it
		// as the system call it is, with RCX and R11 as syscall sets them.
		user.RCX, user.R11 = fr.rip+2, fr.rflags&machine.RFlagsUserMask|machine.RFlagsUser
		if err := v.toUser(user); err != nil {
			return machine.Exit{}, true, err
		}
		return machine.Exit{Kind: machine.ExitFault, Fault: machine.Fault{Vector: machine.VecSyscall, RIP: fr.rip}}, true, nil
	}
	if err := v.toUser(user); err != nil {
		return machine.Exit{}, true, err
	}
	f := machine.Fault{Vector: machine.Vector(fr.vector), ErrorCode: uint32(fr.errorCode), RIP: fr.rip}
	if f.Vector == machine.VecPage {
		f.Addr = cr2
	}
	if f.Vector == machine.VecInvalidOp {
		v.intGate(&f)
	}
	return machine.Exit{Kind: machine.ExitFault, Fault: f}, true, nil
}

// intGate reports "int $n" through a gate the IDT does not have (n of 32
// and up) as the #GP a CPU raises, with the gate's selector-style error
// code, where the host raised #UD: PVM does, for int $0x80 at least. A
// program then ends the same way on every host and on emu.
func (v *vcpu) intGate(f *machine.Fault) {
	var insn [2]byte
	if v.m.read(f.RIP, insn[:]) != nil || insn[0] != 0xcd || insn[1] < 32 {
		return
	}
	f.Vector = machine.VecGP
	f.ErrorCode = uint32(insn[1])<<3 | 2
}

// syscall reports a syscall instruction, which jumped to the syscall entry
// (MSR_LSTAR), as a VecSyscall fault at the instruction. Hosts that raise
// #UD for it (EFER.SCE=0) never get here (fault tells their #UD apart);
// PVM does, and stays at CPL3 (other hosts would enter CPL0, and the entry
// is safe there too). syscall has already replaced RCX and R11 with the
// return address and RFLAGS, as a Linux system call would.
func (v *vcpu) syscall() (machine.Exit, bool, error) {
	if err := v.loadRegs(); err != nil {
		return machine.Exit{}, true, err
	}
	if v.regs.RIP != v.cfg.SyscallEntry+v.cfg.TrapInsnLen {
		return v.illegalIO(v.cfg.SyscallPort)
	}
	user := v.regs
	user.RIP, user.RFLAGS = v.regs.RCX-2, v.regs.R11 // syscall is 2 bytes: 0f 05
	// R11 holds RFLAGS as the thread sees it, as on every backend (the
	// CPU saved its interrupt flag there too).
	user.R11 = user.RFLAGS&machine.RFlagsUserMask | machine.RFlagsUser
	if err := v.toUser(user); err != nil {
		return machine.Exit{}, true, err
	}
	return machine.Exit{Kind: machine.ExitFault, Fault: machine.Fault{Vector: machine.VecSyscall, RIP: user.RIP}}, true, nil
}

// isSyscall reports whether the instruction at rip is syscall (0f 05).
func (v *vcpu) isSyscall(rip uint64) bool {
	var insn [2]byte
	return v.m.read(rip, insn[:]) == nil && insn == [2]byte{0x0f, 0x05}
}

// mmio reports an access to guest-physical memory nothing backs. The page
// tables point there only for the trap page, so this is a guest reading
// the trap page (or writing it with its own code), reported as the
// protection fault it would be on a page it may not touch.
func (v *vcpu) mmio(mm mmioExit) (machine.Exit, bool, error) {
	if mm.addr < v.cfg.TrapPage || mm.addr-v.cfg.TrapPage >= 4096 {
		return machine.Exit{}, true, &ExitError{exitMMIO, fmt.Sprintf("access to guest-physical %#x, where no memory is mapped (a monitor bug: the page tables point there)", mm.addr)}
	}
	if mm.write {
		// The store has retired; RIP is past it. Stop the thread there.
		return v.illegalIO(uint16(mm.addr - v.cfg.TrapPage))
	}
	if err := v.loadRegs(); err != nil {
		return machine.Exit{}, true, err
	}
	regs := v.regs // RIP at the load, which completes at the next KVM_RUN
	if err := v.completeIO(); err != nil {
		return machine.Exit{}, true, err
	}
	v.regs, v.regsValid = regs, true
	v.writeRegs()
	f := machine.Fault{Vector: machine.VecPage, ErrorCode: machine.PFPresent | machine.PFUser, RIP: regs.RIP, Addr: mm.addr}
	return machine.Exit{Kind: machine.ExitFault, Fault: f}, true, nil
}

// illegalIO reports an in or out that is not the ABI's trap; the thread
// stays at the instruction.
func (v *vcpu) illegalIO(port uint16) (machine.Exit, bool, error) {
	if !v.regsValid {
		if err := v.loadRegs(); err != nil {
			return machine.Exit{}, true, err
		}
	}
	regs := v.regs
	if err := v.completeIO(); err != nil {
		return machine.Exit{}, true, err
	}
	v.regs, v.regsValid = regs, true
	v.writeRegs()
	return machine.Exit{Kind: machine.ExitIllegalIO, Port: port, RIP: regs.RIP}, true, nil
}
