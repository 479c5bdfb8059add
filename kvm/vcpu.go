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

	"nestvm/vmm"
)

// vcpu is one KVM vCPU running one guest thread.
type vcpu struct {
	m       *machine
	log     hclog.Logger
	cfg     vmm.CPUSetup
	handler vmm.TrapHandler
	fd      uintptr
	run     *runArea

	regs       vmm.Regs // valid when regsValid
	regsValid  bool
	regsDirty  bool // regs must be written before the next KVM_RUN
	sregsDirty bool // the user sregs must be written (after a fault, or to flush the TLB)
	ioPending  bool // an I/O exit KVM completes only at the next KVM_RUN

	tid     atomic.Int32 // the OS thread inside Run, for Stop's signal
	inRun   atomic.Bool
	stopReq atomic.Bool
	mu      sync.Mutex // orders Stop against Close
	closed  bool
}

// NewVCPU implements vmm.Machine.
func (m *machine) NewVCPU(cfg vmm.VCPUConfig) (vmm.VCPU, error) {
	if cfg.Handler == nil {
		return nil, errors.New("new vcpu: no trap handler")
	}
	fd, err := gokvm.CreateVCPU(m.fd, cfg.ID)
	if err != nil {
		return nil, fmt.Errorf("new vcpu %d: %w", cfg.ID, err)
	}
	log := cfg.Log
	if log == nil {
		log = m.log
	}
	v := &vcpu{m: m, log: log, cfg: cfg.CPU, handler: cfg.Handler, fd: fd}
	fail := func(what string, err error) (vmm.VCPU, error) {
		if v.run != nil {
			v.run.unmap()
		}
		unix.Close(int(fd))
		return nil, fmt.Errorf("new vcpu %d: %s: %w", cfg.ID, what, err)
	}
	if v.run, err = mapRunArea(int(fd), m.dev.runSize); err != nil {
		return fail("run area", err)
	}
	if err := gokvm.SetCPUID2(fd, m.dev.cpuid); err != nil {
		return fail("set cpuid", err)
	}
	sregs, err := gokvm.GetSregs(fd)
	if err != nil {
		return fail("get sregs", err)
	}
	us := userSregs(*sregs, v.cfg, 0, 0)
	if err := gokvm.SetSregs(fd, &us); err != nil {
		return fail("set sregs", err)
	}
	m.mu.Lock()
	m.cpus[v] = struct{}{}
	m.mu.Unlock()
	return v, nil
}

// SetRegs implements vmm.VCPU.
func (v *vcpu) SetRegs(r *vmm.Regs) error {
	if err := v.completeIO(); err != nil {
		return err
	}
	if !v.regsValid || r.FSBase != v.regs.FSBase || r.GSBase != v.regs.GSBase {
		v.sregsDirty = true // FS and GS bases live in the segment registers
	}
	v.regs, v.regsValid, v.regsDirty = *r, true, true
	return nil
}

// Regs implements vmm.VCPU.
func (v *vcpu) Regs() (vmm.Regs, error) {
	if err := v.completeIO(); err != nil {
		return vmm.Regs{}, err
	}
	if !v.regsValid {
		if err := v.loadRegs(); err != nil {
			return vmm.Regs{}, err
		}
	}
	return v.regs, nil
}

func (v *vcpu) loadRegs() error {
	k, err := gokvm.GetRegs(v.fd)
	if err != nil {
		return fmt.Errorf("get regs: %w", err)
	}
	s, err := gokvm.GetSregs(v.fd)
	if err != nil {
		return fmt.Errorf("get sregs: %w", err)
	}
	v.regs = fromKVMRegs(k, s.FS.Base, s.GS.Base)
	v.regsValid = true
	return nil
}

// SetFPU implements vmm.VCPU.
func (v *vcpu) SetFPU(f *vmm.FPU) error {
	k := toKVMFPU(f)
	if err := setFPU(v.fd, &k); err != nil {
		return fmt.Errorf("set fpu: %w", err)
	}
	return nil
}

// FPU implements vmm.VCPU.
func (v *vcpu) FPU() (vmm.FPU, error) {
	var k kvmFPU
	if err := getFPU(v.fd, &k); err != nil {
		return vmm.FPU{}, fmt.Errorf("get fpu: %w", err)
	}
	return fromKVMFPU(&k), nil
}

// FlushTLB implements vmm.VCPU: writing the segment and control registers
// with KVM_SET_SREGS resets KVM's MMU context, which drops cached
// translations. (To be confirmed on more KVM hosts: the monitor only relies
// on it once it unmaps memory from running spaces.)
func (v *vcpu) FlushTLB() { v.sregsDirty = true }

// Stop implements vmm.VCPU.
func (v *vcpu) Stop() {
	v.stopReq.Store(true)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.run.setImmediateExit(true)
	if v.inRun.Load() {
		if tid := v.tid.Load(); tid != 0 {
			unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
		}
	}
}

// Close implements vmm.VCPU.
func (v *vcpu) Close() error {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	err := v.run.unmap()
	if cerr := unix.Close(int(v.fd)); err == nil {
		err = cerr
	}
	v.m.mu.Lock()
	delete(v.m.cpus, v)
	v.m.mu.Unlock()
	return err
}

// completeIO lets KVM finish an I/O exit without running guest code: it
// enters KVM_RUN with immediate_exit set, which completes the pending
// operation (advancing RIP past the out when RIP is unchanged) and returns
// EINTR. Registers read before it may be stale, so they are dropped.
func (v *vcpu) completeIO() error {
	if !v.ioPending {
		return nil
	}
	if v.regsDirty {
		// Registers set while the I/O was pending (a hypercall's results)
		// go in first, with RIP as KVM left it.
		if err := v.writeRegs(); err != nil {
			return err
		}
	}
	v.run.setImmediateExit(true)
	err := runKVM(v.fd)
	v.ioPending = false
	v.regsValid = false
	if !v.stopReq.Load() {
		v.run.setImmediateExit(false)
	}
	if err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("complete i/o: %w", err)
	}
	return nil
}

func (v *vcpu) writeRegs() error {
	k := toKVMRegs(&v.regs)
	if err := gokvm.SetRegs(v.fd, &k); err != nil {
		return fmt.Errorf("set regs: %w", err)
	}
	v.regsDirty = false
	return nil
}

// flush writes what changed since the last exit before KVM_RUN.
func (v *vcpu) flush() error {
	if v.sregsDirty {
		s, err := gokvm.GetSregs(v.fd)
		if err != nil {
			return fmt.Errorf("get sregs: %w", err)
		}
		fs, gs := s.FS.Base, s.GS.Base
		if v.regsValid {
			fs, gs = v.regs.FSBase, v.regs.GSBase
		}
		us := userSregs(*s, v.cfg, fs, gs)
		if err := gokvm.SetSregs(v.fd, &us); err != nil {
			return fmt.Errorf("set sregs: %w", err)
		}
		v.sregsDirty = false
	}
	if v.regsDirty {
		v.regs.RFLAGS = v.regs.RFLAGS&vmm.RFlagsUserMask | vmm.RFlagsUser
		return v.writeRegs()
	}
	return nil
}

// Run implements vmm.VCPU.
func (v *vcpu) Run() (vmm.Exit, error) {
	v.tid.Store(int32(unix.Gettid()))
	v.inRun.Store(true)
	defer v.inRun.Store(false)
	if err := v.flush(); err != nil {
		return vmm.Exit{}, fmt.Errorf("run: %w", err)
	}
	for {
		if v.stopReq.Load() {
			if err := v.completeIO(); err != nil {
				return vmm.Exit{}, err
			}
			v.stopReq.Store(false)
			v.run.setImmediateExit(false)
			return vmm.Exit{Kind: vmm.ExitStopped}, nil
		}
		if v.regsDirty {
			if err := v.writeRegs(); err != nil {
				return vmm.Exit{}, err
			}
		}
		err := runKVM(v.fd)
		v.ioPending = false
		v.regsValid = false
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue // a signal (the Go runtime's, or Stop's): look at stopReq
		case errors.Is(err, unix.EFAULT):
			return vmm.Exit{}, errors.New("run: KVM_RUN: the guest reached guest-physical memory with no host pages behind it (a monitor bug)")
		case err != nil:
			return vmm.Exit{}, fmt.Errorf("run: KVM_RUN: %w", err)
		}
		exit, done, err := v.exit()
		if err != nil || done {
			return exit, err
		}
	}
}

// exit handles the exit KVM_RUN just reported; done means Run returns.
func (v *vcpu) exit() (vmm.Exit, bool, error) {
	r := v.run.r
	switch r.ExitReason {
	case exitIO:
		io := decodeIO(r.Data[0], r.Data[1])
		v.ioPending = true
		switch {
		case io.out && io.port == v.cfg.NullPort:
			return vmm.Exit{}, false, nil // the raw-trap benchmark: straight back in
		case io.out && io.port == v.cfg.HypercallPort:
			return v.hypercall()
		case io.out && io.port == v.cfg.FaultPort:
			return v.fault()
		}
		return v.illegalIO(io.port)
	case exitIntr:
		return vmm.Exit{}, false, nil
	case exitShutdown:
		return vmm.Exit{}, true, &ExitError{exitShutdown, "the vCPU shut down (a triple fault: the ring-0 stub itself could not run)"}
	case exitFailEntry:
		return vmm.Exit{}, true, &ExitError{exitFailEntry, fmt.Sprintf("hardware refused to enter the guest (reason %#x)", r.Data[0])}
	case exitInternalError:
		return vmm.Exit{}, true, &ExitError{exitInternalError, fmt.Sprintf("suberror %d", uint32(r.Data[0]))}
	case exitMMIO:
		return vmm.Exit{}, true, &ExitError{exitMMIO, fmt.Sprintf("access to guest-physical %#x, where no memory is mapped (a monitor bug: the page tables point there)", r.Data[0])}
	case exitHLT:
		return vmm.Exit{}, true, &ExitError{exitHLT, "the vCPU halted, which ring-3 code cannot do"}
	}
	return vmm.Exit{}, true, &ExitError{r.ExitReason, "not expected from a ring-3 guest"}
}

// hypercall serves a trap from the ABI page inline.
func (v *vcpu) hypercall() (vmm.Exit, bool, error) {
	if err := v.loadRegs(); err != nil {
		return vmm.Exit{}, true, err
	}
	// Recent kernels leave RIP at the out until the I/O completes; older
	// ones advanced it before exiting.
	if v.regs.RIP != v.cfg.TrapAddr && v.regs.RIP != v.cfg.TrapAddr+vmm.TrapLen {
		return v.illegalIO(uint16(v.cfg.HypercallPort))
	}
	c := vmm.Call{
		Args: [6]uint64{v.regs.RDI, v.regs.RSI, v.regs.RDX, v.regs.RCX, v.regs.R8, v.regs.R9},
		RSP:  v.regs.RSP,
	}
	action := v.handler.Hypercall(&c)
	if action == vmm.CallRestart {
		if err := v.completeIO(); err != nil {
			return vmm.Exit{}, true, err
		}
		if err := v.loadRegs(); err != nil {
			return vmm.Exit{}, true, err
		}
		v.regs.RIP = v.cfg.TrapAddr // re-issue the call when resumed
		v.regsDirty = true
		return vmm.Exit{Kind: vmm.ExitStopped}, true, nil
	}
	// RAX and RDX only; RIP stays where KVM left it, so the completion of
	// the out moves it past the trap.
	v.regs.RAX, v.regs.RDX = c.Ret[0], c.Ret[1]
	v.regsDirty = true
	if action == vmm.CallStop {
		if err := v.completeIO(); err != nil {
			return vmm.Exit{}, true, err
		}
		return vmm.Exit{Kind: vmm.ExitStopped}, true, nil
	}
	return vmm.Exit{}, false, nil
}

// fault turns the ring-0 stub's trap into the fault it reports, and puts
// the thread back in ring 3 at the faulting instruction.
func (v *vcpu) fault() (vmm.Exit, bool, error) {
	if err := v.loadRegs(); err != nil {
		return vmm.Exit{}, true, err
	}
	want := v.cfg.KernelStackTop - vmm.FrameSize
	if v.regs.RSP != want {
		return vmm.Exit{}, true, fmt.Errorf("fault trap with the ring-0 stack at %#x, not %#x", v.regs.RSP, want)
	}
	var b [vmm.FrameSize]byte
	if err := v.m.read(want, b[:]); err != nil {
		return vmm.Exit{}, true, fmt.Errorf("read fault frame: %w", err)
	}
	fr := parseFrame(b[:])
	if fr.cs&3 != 3 {
		return vmm.Exit{}, true, fmt.Errorf("exception %d in ring 0 at %#x (the ring-0 stub faulted)", fr.vector, fr.rip)
	}
	s, err := gokvm.GetSregs(v.fd)
	if err != nil {
		return vmm.Exit{}, true, fmt.Errorf("get sregs: %w", err)
	}
	user := v.regs
	if err := v.completeIO(); err != nil {
		return vmm.Exit{}, true, err
	}
	user.RIP, user.RSP, user.RFLAGS = fr.rip, fr.rsp, fr.rflags
	user.FSBase, user.GSBase = s.FS.Base, s.GS.Base
	v.regs, v.regsValid, v.regsDirty, v.sregsDirty = user, true, true, true
	f := vmm.Fault{Vector: vmm.Vector(fr.vector), ErrorCode: uint32(fr.errorCode), RIP: fr.rip}
	if f.Vector == vmm.VecPage {
		f.Addr = s.CR2
	}
	return vmm.Exit{Kind: vmm.ExitFault, Fault: f}, true, nil
}

// illegalIO reports an in or out that is not the ABI's trap; the thread
// stays at the instruction.
func (v *vcpu) illegalIO(port uint16) (vmm.Exit, bool, error) {
	if !v.regsValid {
		if err := v.loadRegs(); err != nil {
			return vmm.Exit{}, true, err
		}
	}
	rip := v.regs.RIP
	regs := v.regs
	if err := v.completeIO(); err != nil {
		return vmm.Exit{}, true, err
	}
	v.regs, v.regsValid, v.regsDirty = regs, true, true
	return vmm.Exit{Kind: vmm.ExitIllegalIO, Port: port, RIP: rip}, true, nil
}
