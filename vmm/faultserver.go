package vmm

import (
	"fmt"
	"time"

	"nestvm/abi"
	"nestvm/machine"
)

// FaultServer is a host Server that also serves, inline, the faults of the
// spaces whose exception port it is: a fault reaches ServeFault on the
// faulting thread's own goroutine, with no message, no hand-off to another
// goroutine and no copy of the FPU state unless the server asks for it. A
// system-call personality is one: every system call of its programs is a
// VecSyscall fault, and costs about what a call to a host port costs.
//
// Set it with space_set_exception_port like any port; a host port whose
// server is not a FaultServer cannot be an exception port. What a
// FaultServer can do is what a guest handler of MsgFault can do: read and
// change the thread's state, resume it, or end its space.
type FaultServer interface {
	Server
	// ServeFault decides about one fault. The thread is stopped at the
	// fault; when ServeFault returns it resumes with the registers fc
	// holds then, unless fc.Kill was called or fc.Sleep said it must stop
	// or end.
	ServeFault(fc *FaultCall)
	// SpaceEnded is the exit notice (MsgExit) of a space whose exception
	// port this is: badge is the badge of the handle it was set through;
	// exited is false for a space killed, or ended by a fault.
	SpaceEnded(badge uint64, exited bool, status int)
}

// FaultCall is one fault as a FaultServer sees it. It is valid only until
// ServeFault returns.
type FaultCall struct {
	// Badge is the badge of the exception port's handle.
	Badge uint64
	// Fault is what the thread did.
	Fault machine.Fault
	// Thread is the thread's number in its space (abi.FaultWordThread).
	Thread int

	t      *Thread
	vcpu   machine.VCPU
	regs   machine.Regs
	loaded bool
	dirty  bool
	killed bool
	status int
	why    string
	gone   bool // a Sleep ended because the thread must stop or end
}

// Regs returns the thread's general registers (RIP at the faulting
// instruction; for VecSyscall, RCX and R11 as syscall leaves them).
func (fc *FaultCall) Regs() (machine.Regs, error) {
	if !fc.loaded {
		r, err := fc.vcpu.Regs()
		if err != nil {
			return machine.Regs{}, err
		}
		fc.regs, fc.loaded = r, true
	}
	return fc.regs, nil
}

// SetRegs sets the registers the thread resumes with. RFLAGS is forced to
// what user code may hold; a non-canonical RIP, RSP or segment base is
// refused (the thread would fault on it in the host's kernel on some
// backends, and run on others).
func (fc *FaultCall) SetRegs(r machine.Regs) error {
	if !machine.Canonical(r.RIP) || !machine.Canonical(r.RSP) || !machine.Canonical(r.FSBase) || !machine.Canonical(r.GSBase) {
		return fmt.Errorf("thread %d: non-canonical address in its registers: %w", fc.Thread, abi.ErrInvalidArg)
	}
	r.RFLAGS = r.RFLAGS&machine.RFlagsUserMask | machine.RFlagsUser
	fc.regs, fc.loaded, fc.dirty = r, true, true
	return nil
}

// FPU returns the thread's x87/SSE state. Only servers that need it (a
// signal frame) pay for reading it.
func (fc *FaultCall) FPU() (machine.FPU, error) { return fc.vcpu.FPU() }

// SetFPU sets the x87/SSE state the thread resumes with.
func (fc *FaultCall) SetFPU(f machine.FPU) error { return fc.vcpu.SetFPU(&f) }

// Kill ends the thread's space with status when ServeFault returns; why
// says what happened, for the monitor's report.
func (fc *FaultCall) Kill(status int, why string) {
	fc.killed, fc.status, fc.why = true, status, why
}

// SleepResult is how FaultCall.Sleep ended.
type SleepResult int

// Sleep results.
const (
	// SleepReady: ready reported true.
	SleepReady SleepResult = iota
	// SleepTimeout: the deadline passed first.
	SleepTimeout
	// SleepStop: the thread was asked to stop while it ran. Return
	// without changing its state: when it is resumed it issues the same
	// call again.
	SleepStop
	// SleepExit: the thread is ending. Return at once.
	SleepExit
)

// Sleep holds the fault, blocking the thread until ready reports true,
// the deadline (when not zero) passes, or the thread must end. ready is
// called without locks held; whoever makes it true calls the function
// Waker returned. While it sleeps the thread counts as running, as one
// blocked in an operation: thread_stop ends the sleep with SleepStop and
// waits for the server to return, and the thread then stops at the
// faulting instruction with the registers it faulted with, so resumed (or
// restored from a checkpoint) it issues the call again.
func (fc *FaultCall) Sleep(ready func() bool, deadline time.Time) SleepResult {
	switch fc.t.sleep(ready, true, deadline, fc.vcpu) {
	case wakeReady:
		return SleepReady
	case wakeTimeout:
		return SleepTimeout
	case wakeStop:
		fc.gone = true
		return SleepStop
	}
	fc.gone = true
	return SleepExit
}

// Released reports whether the thread has been asked to stop or to end,
// for a server whose operation made for the thread (acting for it) ended
// with ErrPeerGone: when it reports true, the server returns as after
// SleepStop or SleepExit, and a stopped thread issues its call again when
// resumed.
func (fc *FaultCall) Released() bool {
	fc.t.mu.Lock()
	r := fc.t.exitReq || fc.t.stopReq
	fc.t.mu.Unlock()
	if r {
		fc.gone = true
	}
	return r
}

// Waker returns what wakes a Sleep of this thread, from any goroutine, at
// any time (waking a thread that does not sleep makes its next Sleep look
// at ready once more, nothing else).
func (fc *FaultCall) Waker() func() { return fc.t.kick }

// ActFor makes c's operations act for the faulting thread until the
// returned function is called: an operation that blocks then sleeps as
// that thread, so stopping or killing it ends the wait, and operations on
// its own space (unmapping memory it runs on) treat it as the caller.
func (c *Caller) ActFor(fc *FaultCall) (done func()) {
	c.t.actingFor = fc.t
	return func() { c.t.actingFor = nil }
}

// serveInline hands the fault to a FaultServer on the thread's goroutine.
// false means the thread must end.
func (t *Thread) serveInline(vcpu machine.VCPU, fs FaultServer, badge uint64, f machine.Fault) bool {
	s := t.space
	fc := FaultCall{Badge: badge, Fault: f, Thread: t.id, t: t, vcpu: vcpu}
	// inline changes under t.mu with inFault: a stop (servedInline) never
	// sees the one without the other, as a thread stopped in its fault.
	t.mu.Lock()
	t.state, t.inFault = abi.ThreadStopped, true
	t.inline.Store(true)
	t.mu.Unlock()
	fs.ServeFault(&fc)
	t.mu.Lock()
	t.inline.Store(false)
	t.inFault = false
	if t.state == abi.ThreadStopped {
		t.state = abi.ThreadRunning
	}
	exit := t.exitReq
	t.mu.Unlock()
	t.answerReqs(vcpu)
	switch {
	case fc.killed:
		s.end(Result{Killed: fc.why, KilledStatus: fc.status})
		return false
	case exit:
		return false
	case fc.dirty:
		// Set even after a Sleep a stop ended: the server completed the
		// call all the same (what it did cannot be undone: a vfork's
		// child, a partial pipe write), so issuing it again would do it
		// twice.
		if err := vcpu.SetRegs(&fc.regs); err != nil {
			s.end(Result{Err: fmt.Errorf("thread %d: %w", t.id, err)})
			return false
		}
	case fc.gone:
		return true // unchanged: the run loop parks it, and it re-issues the call when resumed
	}
	return true
}
