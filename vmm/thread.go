package vmm

import (
	"fmt"
	"runtime"
	"sync"

	"nestvm/abi"
)

// Thread is a guest thread: one vCPU, driven by one goroutine locked to its
// OS thread, running in one space.
type Thread struct {
	space *Space
	id    int // vCPU number within the space

	regs Regs // initial registers, until the vCPU exists
	fpu  FPU

	mu      sync.Mutex
	vcpu    VCPU
	exited  bool
	status  uint64
	stopped bool
}

// ObjectType implements Object.
func (t *Thread) ObjectType() abi.ObjectType { return abi.ObjThread }

// Space returns the space the thread runs in.
func (t *Thread) Space() *Space { return t.space }

// ID returns the thread's number within its space.
func (t *Thread) ID() int { return t.id }

// NewThread creates a thread that will start with regs (RFLAGS is forced to
// the user value) and a reset FPU. It does not run until Start.
func (s *Space) NewThread(regs Regs) (*Thread, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dying {
		return nil, fmt.Errorf("new thread: space %s is ending", s.name)
	}
	if len(s.threads) >= s.quota.Threads {
		return nil, fmt.Errorf("new thread: %d threads is the space's quota: %w", s.quota.Threads, abi.ErrQuota)
	}
	id := -1
	for i, used := range s.vcpuUsed {
		if !used {
			id = i
			break
		}
	}
	if id < 0 {
		return nil, fmt.Errorf("new thread: all %d vCPUs in use: %w", MaxVCPUs, abi.ErrQuota)
	}
	s.vcpuUsed[id] = true
	regs.RFLAGS = regs.RFLAGS&RFlagsUserMask | RFlagsUser
	t := &Thread{space: s, id: id, regs: regs, fpu: ResetFPU()}
	s.threads[t] = struct{}{}
	return t, nil
}

// Start runs the thread on a goroutine of its own.
func (t *Thread) Start() {
	s := t.space
	s.mu.Lock()
	s.live++
	s.mu.Unlock()
	go t.run()
}

// run is the thread's goroutine: it owns the vCPU from creation to close.
func (t *Thread) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s := t.space
	defer s.threadEnded(t)

	buildVCPUArea(s.sys.Bytes(), t.id)
	vcpu, err := s.machine.NewVCPU(VCPUConfig{
		ID: t.id, CPU: cpuSetup(t.id, s.pt.root, s.trap), Handler: t,
		Log: s.log.With("thread", t.id),
	})
	if err != nil {
		s.end(Result{Err: fmt.Errorf("thread %d: %w", t.id, err)})
		return
	}
	defer vcpu.Close()
	if err := vcpu.SetRegs(&t.regs); err != nil {
		s.end(Result{Err: fmt.Errorf("thread %d: %w", t.id, err)})
		return
	}
	if err := vcpu.SetFPU(&t.fpu); err != nil {
		s.end(Result{Err: fmt.Errorf("thread %d: %w", t.id, err)})
		return
	}
	t.mu.Lock()
	t.vcpu = vcpu
	stopped := t.stopped
	t.mu.Unlock()
	if stopped {
		return
	}
	s.log.Debug("thread started", "thread", t.id, "rip", hexAddr(t.regs.RIP))

	for {
		exit, err := vcpu.Run()
		if err != nil {
			s.end(Result{Err: fmt.Errorf("thread %d: %w", t.id, err)})
			return
		}
		switch exit.Kind {
		case ExitStopped:
			t.mu.Lock()
			done := t.exited || t.stopped
			t.mu.Unlock()
			if done {
				return
			}
		case ExitFault, ExitIllegalIO:
			f := exit.Fault
			if exit.Kind == ExitIllegalIO {
				// The guest used an I/O port behind the ABI's back: to it,
				// that is a general-protection fault, as without IOPL.
				f = Fault{Vector: VecGP, RIP: exit.RIP}
				s.log.Debug("thread used an I/O port", "thread", t.id, "port", exit.Port, "rip", hexAddr(exit.RIP))
			}
			s.log.Debug("thread faulted", "thread", t.id, "fault", f.String())
			s.mu.Lock()
			h := s.onFault
			s.mu.Unlock()
			if h != nil && h(&FaultContext{Thread: t, Fault: f, vcpu: vcpu}) {
				continue
			}
			s.end(Result{Fault: &FaultReport{Thread: t.id, Fault: f}})
			return
		default:
			s.end(Result{Err: fmt.Errorf("thread %d: unexpected exit %s", t.id, exit)})
			return
		}
	}
}

// stop makes the thread's goroutine end at its next exit.
func (t *Thread) stop() {
	t.mu.Lock()
	t.stopped = true
	v := t.vcpu
	t.mu.Unlock()
	if v != nil {
		v.Stop()
	}
}

// exit ends the thread with status; the last thread to end ends the space.
func (t *Thread) exit(status uint64) {
	t.mu.Lock()
	t.exited, t.status = true, status
	t.mu.Unlock()
	s := t.space
	s.mu.Lock()
	last := true
	for o := range s.threads {
		if o != t {
			o.mu.Lock()
			if !o.exited {
				last = false
			}
			o.mu.Unlock()
		}
	}
	s.mu.Unlock()
	if last {
		s.end(Result{Exited: true, Status: int(status & 0xff)})
	}
}
