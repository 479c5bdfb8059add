package vmm

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"nestvm/abi"
	"nestvm/machine"
)

// Thread is a guest thread: one vCPU, driven by one goroutine locked to its
// OS thread, running in one space.
//
// All blocking a thread does in the kernel (a call waiting for its reply, a
// receive, a futex, a fault waiting for its handler, being stopped) is a
// sleep on its own wake channel, so stopping or killing a thread never
// needs to know what it waits for.
type Thread struct {
	objectID
	space *Space
	id    int

	wake chan struct{} // one pending wakeup; see kick

	mu      sync.Mutex
	regs    machine.Regs // the state while the thread has no vCPU (new)
	fpu     machine.FPU
	state   int // abi.ThreadNew, ThreadRunning, ThreadStopped, ThreadExited
	inFault bool
	running bool // its goroutine runs
	vcpu    machine.VCPU
	stopReq bool // stop at the next chance
	exitReq bool // end at the next chance
	status  uint64
	reqs    []func(machine.VCPU) // work for its goroutine while it is stopped

	// holding counts the calls it received and has not answered (guarded
	// by the monitor's IPC lock). A stop waits for it to reach zero, so
	// that a call exchange is never caught half done.
	holding int

	// inKernel is set while the thread is in a call (Hypercall);
	// flushReq asks it to drop its vCPU's cached translations before it
	// next runs guest code, and flushGen counts the flushes it did (see
	// shootdown).
	inKernel atomic.Bool
	flushReq atomic.Bool
	flushGen atomic.Uint64
	// inline is set while a FaultServer serves the thread's fault on its
	// goroutine (serveInline): the goroutine runs Go code then, not a
	// sleep that answers requests.
	inline atomic.Bool

	// op is the operation the thread performs (0 outside one), and
	// asleep is set while it sleeps: together they are what
	// thread_status reports a running thread blocked in, so that a
	// program can wait for another thread to be blocked (a receiver
	// registered on its port) rather than for a time.
	op     atomic.Uint32
	asleep atomic.Bool
	// woken is set by every kick and cleared as the sleep looks at what
	// it waits for: a thread kicked since it last looked is about to
	// run, and space_running counts it as running, not waiting.
	woken atomic.Bool
	// serverHeld counts the holds of a server (Invocation.Hold) the
	// thread is in: held, it does not wait, for space_running.
	serverHeld atomic.Int32

	// kept are memory objects unmapped while the thread was in a call,
	// whose buffers may lie in them: they are released when a call of
	// the thread ends (releaseKept), or the thread does. keeps says there
	// are some, so a call's end looks at kept only then. kept is guarded
	// by mu.
	kept  []*machine.Memory
	keeps atomic.Bool

	// actingFor is the guest thread a host Caller forwards a call for
	// (see Invocation.Forward): operations that mean "the caller itself"
	// (thread_exit of one's own thread, space_kill of one's own space,
	// unmapping one's own memory) mean that thread.
	actingFor *Thread
	// received, while it forwards a call, maps the handles a message
	// brings before they go to the thread acted for (ForwardOptions).
	received Lend
}

// who is the thread an operation performed by t is performed for.
func (t *Thread) who() *Thread {
	if t.actingFor != nil {
		return t.actingFor
	}
	return t
}

// ObjectType implements Object.
func (t *Thread) ObjectType() abi.ObjectType { return abi.ObjThread }

// Space returns the space the thread runs in.
func (t *Thread) Space() *Space { return t.space }

// ID returns the thread's number within its space.
func (t *Thread) ID() int { return t.id }

// NewThread creates a thread that will start with regs (RFLAGS is forced to
// the user value) and a reset FPU. It does not run until Start.
func (s *Space) NewThread(regs machine.Regs) (*Thread, error) {
	if s.hostSpace() {
		return nil, fmt.Errorf("new thread: %s is a host space, which runs no guest code: %w", s.name, abi.ErrInvalidArg)
	}
	if err := machine.CheckUserRegs(&regs); err != nil {
		return nil, fmt.Errorf("new thread: %w", err)
	}
	if a := s.countThread(); a != nil {
		return nil, fmt.Errorf("new thread: %d threads in %s and below is its quota: %w", a.quota.Threads, a.name, abi.ErrQuota)
	}
	t, err := s.newThread(regs)
	if err != nil {
		s.uncountThread()
	}
	return t, err
}

// newThread is NewThread once the thread is counted.
func (s *Space) newThread(regs machine.Regs) (*Thread, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dying {
		return nil, fmt.Errorf("new thread: space %s is ending: %w", s.name, abi.ErrPeerGone)
	}
	id := -1
	for i, used := range s.vcpuUsed {
		if !used {
			id = i
			break
		}
	}
	if id < 0 {
		return nil, fmt.Errorf("new thread: all %d vCPUs of space %s in use: %w", machine.MaxVCPUs, s.name, abi.ErrQuota)
	}
	s.vcpuUsed[id] = true
	regs.RFLAGS = regs.RFLAGS&machine.RFlagsUserMask | machine.RFlagsUser
	t := &Thread{space: s, id: id, regs: regs, fpu: machine.ResetFPU(), wake: make(chan struct{}, 1)}
	s.threads[t] = struct{}{}
	return t, nil
}

// dropUnstarted takes a thread that is ended before it ever started out of
// s. It has no goroutine to end it, so nothing else gives back its place
// in the thread quota and its vCPU number.
func (s *Space) dropUnstarted(t *Thread) {
	s.mu.Lock()
	_, ok := s.threads[t]
	if ok {
		delete(s.threads, t)
		s.vcpuUsed[t.id] = false
	}
	s.mu.Unlock()
	if ok {
		s.uncountThread()
	}
}

// countThread counts a new thread of s against the thread quota of s and
// of every ancestor, as countDescendant does spaces, so that no subtree
// runs more threads (each an OS thread of the monitor's while it runs)
// than any ancestor allows. It returns the space whose quota is full, or
// nil when the thread is counted. It takes each space's lock alone, so a
// caller may hold none or s.mu's child-side locks only.
func (s *Space) countThread() *Space {
	var done []*Space
	for a := s; a != nil; a = a.parent {
		a.mu.Lock()
		full := a.subThreads >= a.quota.Threads
		if !full {
			a.subThreads++
		}
		a.mu.Unlock()
		if full {
			for _, d := range done {
				d.mu.Lock()
				d.subThreads--
				d.mu.Unlock()
			}
			return a
		}
		done = append(done, a)
	}
	return nil
}

// uncountThread gives back what countThread took; the caller holds no
// space's lock.
func (s *Space) uncountThread() {
	for a := s; a != nil; a = a.parent {
		a.mu.Lock()
		a.subThreads--
		a.mu.Unlock()
	}
}

// kick wakes the thread if it sleeps; a kick while it runs is kept for its
// next sleep, which then rechecks what it waits for.
func (t *Thread) kick() {
	t.woken.Store(true)
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Start runs a new thread, or resumes a stopped one.
func (t *Thread) Start() error {
	if e := t.start(); e != abi.OK {
		return fmt.Errorf("start thread %d: %w", t.id, e)
	}
	return nil
}

func (t *Thread) start() abi.Error {
	s := t.space
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.state == abi.ThreadExited || t.exitReq:
		return abi.ErrBusy
	case t.state == abi.ThreadRunning:
		t.stopReq = false // a stop not yet taken is cancelled
		return abi.OK
	case t.state == abi.ThreadStopped:
		if t.inFault {
			return abi.ErrBusy // its handler resumes it by replying
		}
		t.state = abi.ThreadRunning
		t.stopReq = false
		t.kick()
		return abi.OK
	}
	s.mu.Lock()
	if s.dying {
		s.mu.Unlock()
		return abi.ErrPeerGone
	}
	s.live++
	s.mu.Unlock()
	t.state = abi.ThreadRunning
	t.running = true
	go t.run()
	return abi.OK
}

// requestStop asks a running thread to stop, and returns its vCPU (nil if
// it has none yet, or none to interrupt) so the caller can interrupt it.
// A thread whose fault a FaultServer serves inline is asked too: its
// server's Sleep, or a Hold acting for it, lets it go, and it stops as the
// server returns (servedInline).
func (t *Thread) requestStop() machine.VCPU {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.servedInline() {
		t.stopReq = true
		t.kick()
		return nil // it is not in guest code
	}
	if t.state != abi.ThreadRunning {
		return nil
	}
	t.stopReq = true
	t.kick()
	return t.vcpu
}

// stopAndWait stops another thread and returns once it has stopped (or
// ended). A caller asked to stop meanwhile gets wakeStop and re-issues
// the call when resumed (the request to t stands): a target that cannot
// stop yet (inside a call a server holds) must not make its stopper
// unstoppable, or a parent stopping a whole subtree would wait on itself.
func (t *Thread) stopAndWait(caller *Thread) (abi.Error, wakeReason) {
	if v := t.requestStop(); v != nil {
		v.Stop()
	}
	if t == caller {
		return abi.OK, wakeReady // it stops when this call returns
	}
	for {
		t.mu.Lock()
		st, inline, asked := t.state, t.servedInline(), t.stopReq
		t.mu.Unlock()
		if st != abi.ThreadRunning && !inline {
			return abi.OK, wakeReady
		}
		if !asked {
			// A thread_start meanwhile (whoever stopped the thread before
			// and resumes it now) cancelled the request: this stopper
			// still waits for a stop, so it asks again.
			if v := t.requestStop(); v != nil {
				v.Stop()
			}
		}
		if caller != nil {
			caller.mu.Lock()
			quit, stop := caller.exitReq, caller.stopReq
			caller.mu.Unlock()
			if quit {
				return abi.ErrBusy, wakeReady
			}
			if stop && !caller.holdsCalls() {
				return abi.OK, wakeStop
			}
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// servedInline reports whether a FaultServer is serving the thread's
// fault on its goroutine: it counts as running (thread_status), as a
// thread blocked in an operation does, since the server may let it go on
// at any moment; a stop waits for the server to let it go. Callers hold
// t.mu.
func (t *Thread) servedInline() bool { return t.inFault && t.inline.Load() }

// reportedStatus is the thread's run state as thread_status reports it, and its
// exit status once exited.
func (t *Thread) reportedStatus() (int, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.servedInline() {
		return abi.ThreadRunning, 0
	}
	return t.state, t.status
}

// shouldQuit reports whether the thread has been asked to end.
func (t *Thread) shouldQuit() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.exitReq
}

// kill makes the thread end at its next chance, whatever it is doing.
func (t *Thread) kill() {
	t.mu.Lock()
	t.exitReq = true
	v := t.vcpu
	unstarted := t.state == abi.ThreadNew
	if unstarted {
		t.state = abi.ThreadExited
	}
	t.mu.Unlock()
	if unstarted {
		t.space.dropUnstarted(t)
	}
	t.kick()
	if v != nil {
		v.Stop()
	}
}

// wakeReason is why a sleep ended.
type wakeReason int

const (
	wakeReady   wakeReason = iota // what it waited for happened
	wakeStop                      // the thread is to stop (and re-issue its call later)
	wakeExit                      // the thread is to end
	wakeTimeout                   // the deadline passed
)

// sleep blocks the thread's goroutine until ready reports true, the thread
// is asked to stop (when stoppable) or to end, or the deadline (if not
// zero) passes. ready is called without t.mu held; whoever makes it true
// must kick the thread. While it sleeps stopped (serve non-nil), it
// performs the state requests queued for it on serve.
func (t *Thread) sleep(ready func() bool, stoppable bool, deadline time.Time, serve machine.VCPU) wakeReason {
	var timer <-chan time.Time
	if !deadline.IsZero() {
		tm := time.NewTimer(time.Until(deadline))
		defer tm.Stop()
		timer = tm.C
	}
	for {
		t.woken.Store(false)
		if ready() {
			return wakeReady
		}
		t.mu.Lock()
		exit, stop := t.exitReq, t.stopReq
		// Requests are queued only while the thread is stopped, that is
		// in a sleep with a vCPU to serve them on, or just out of one
		// (answerReqs takes those).
		var reqs []func(machine.VCPU)
		if serve != nil {
			reqs, t.reqs = t.reqs, nil
		}
		t.mu.Unlock()
		// Answer them before leaving too, or their callers wait forever.
		for _, r := range reqs {
			r(serve)
		}
		if exit {
			return wakeExit
		}
		if stop && stoppable {
			return wakeStop
		}
		if len(reqs) > 0 {
			continue
		}
		// ready was false: whoever makes it true kicks, so from here
		// the thread is blocked in its operation.
		t.asleep.Store(true)
		select {
		case <-t.wake:
		case <-timer:
			if !ready() {
				t.asleep.Store(false)
				return wakeTimeout
			}
		}
		t.asleep.Store(false)
	}
}

// blockedIn is the operation the thread sleeps in, 0 when it does not.
func (t *Thread) blockedIn() abi.Op {
	if !t.asleep.Load() {
		return 0
	}
	return abi.Op(t.op.Load())
}

// onVCPU runs f on the thread's goroutine while it is stopped, or directly
// on the saved state of a thread that never started. It fails with ErrBusy
// when the thread runs (or is ending).
func (t *Thread) onVCPU(f func(v machine.VCPU, r *machine.Regs, fp *machine.FPU) abi.Error) abi.Error {
	t.mu.Lock()
	switch {
	case t.state == abi.ThreadNew && !t.running:
		defer t.mu.Unlock()
		return f(nil, &t.regs, &t.fpu)
	case t.state != abi.ThreadStopped || t.exitReq:
		t.mu.Unlock()
		return abi.ErrBusy
	}
	done := make(chan abi.Error, 1)
	t.reqs = append(t.reqs, func(v machine.VCPU) {
		if v == nil {
			// The thread was resumed before it got to the request, and
			// takes it in a sleep that has no vCPU to offer: it runs.
			done <- abi.ErrBusy
			return
		}
		done <- f(v, nil, nil)
	})
	t.mu.Unlock()
	t.kick()
	return <-done
}

// answerReqs performs on v, the thread's vCPU, the state requests still
// queued when it leaves a stopped sleep (resumed before it took them):
// they must not wait for a next stopped sleep, which may never come.
func (t *Thread) answerReqs(v machine.VCPU) {
	t.mu.Lock()
	reqs := t.reqs
	t.reqs = nil
	t.mu.Unlock()
	for _, r := range reqs {
		r(v)
	}
}

// State returns the thread's registers and FPU state, the registers as
// machine.Resumable reports them. The thread must be stopped (or never
// started).
func (t *Thread) State() (machine.Regs, machine.FPU, error) {
	var regs machine.Regs
	var fpu machine.FPU
	e := t.onVCPU(func(v machine.VCPU, r *machine.Regs, fp *machine.FPU) abi.Error {
		if v == nil {
			regs, fpu = *r, *fp
			return abi.OK
		}
		var err error
		if regs, err = v.Regs(); err != nil {
			return abi.ErrIO
		}
		if fpu, err = v.FPU(); err != nil {
			return abi.ErrIO
		}
		return abi.OK
	})
	if e != abi.OK {
		return machine.Regs{}, machine.FPU{}, fmt.Errorf("thread %d state: %w", t.id, e)
	}
	return machine.Resumable(regs), fpu, nil
}

// SetState replaces the thread's registers and FPU state; RFLAGS is forced
// to what user code may hold, and non-canonical addresses are refused. The
// thread must be stopped (or never started).
func (t *Thread) SetState(regs machine.Regs, fpu machine.FPU) error {
	if err := machine.CheckUserRegs(&regs); err != nil {
		return fmt.Errorf("set thread %d state: %w", t.id, err)
	}
	regs.RFLAGS = regs.RFLAGS&machine.RFlagsUserMask | machine.RFlagsUser
	e := t.onVCPU(func(v machine.VCPU, r *machine.Regs, fp *machine.FPU) abi.Error {
		if v == nil {
			*r, *fp = regs, fpu
			return abi.OK
		}
		if v.SetRegs(&regs) != nil || v.SetFPU(&fpu) != nil {
			return abi.ErrIO
		}
		return abi.OK
	})
	if e != abi.OK {
		return fmt.Errorf("set thread %d state: %w", t.id, e)
	}
	return nil
}

// Status reports the thread's state (abi.Thread*) and exit status.
func (t *Thread) Status() (int, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state, t.status
}

// run is the thread's goroutine: it owns the vCPU from creation to close.
func (t *Thread) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s := t.space
	defer s.threadEnded(t)
	defer t.releaseKept()

	machine.BuildVCPUArea(s.sys.Bytes(), t.id)
	vcpu, err := s.machine.NewVCPU(machine.VCPUConfig{
		ID: t.id, CPU: machine.NewCPUSetup(t.id, s.pt.Root), Handler: t,
		Log: s.log.With("thread", t.id),
	})
	if err != nil {
		s.end(Result{Err: fmt.Errorf("thread %d: %w", t.id, err)})
		return
	}
	defer vcpu.Close()
	t.mu.Lock()
	regs, fpu := t.regs, t.fpu
	t.mu.Unlock()
	if err := vcpu.SetRegs(&regs); err != nil {
		s.end(Result{Err: fmt.Errorf("thread %d: %w", t.id, err)})
		return
	}
	if err := vcpu.SetFPU(&fpu); err != nil {
		s.end(Result{Err: fmt.Errorf("thread %d: %w", t.id, err)})
		return
	}
	t.mu.Lock()
	t.vcpu = vcpu
	t.mu.Unlock()
	s.log.Debug("thread started", "thread", t.id, "rip", hexAddr(regs.RIP))

	for {
		if !t.maybePark(vcpu) {
			return
		}
		if t.flushReq.Swap(false) {
			vcpu.FlushTLB() // a shootdown came: see Space.shootdown
			t.flushGen.Add(1)
		}
		exit, err := vcpu.Run()
		if err != nil {
			s.end(Result{Err: fmt.Errorf("thread %d: %w", t.id, err)})
			return
		}
		switch exit.Kind {
		case machine.ExitStopped:
			// maybePark at the top of the loop sees why.
		case machine.ExitFault, machine.ExitIllegalIO:
			f := exit.Fault
			if exit.Kind == machine.ExitIllegalIO {
				// The guest used an I/O port behind the ABI's back: to it,
				// that is a general-protection fault, as without IOPL.
				f = machine.Fault{Vector: machine.VecGP, RIP: exit.RIP}
				s.log.Debug("thread used an I/O port", "thread", t.id, "port", exit.Port, "rip", hexAddr(exit.RIP))
			}
			if !t.handleFault(vcpu, f) {
				return
			}
		default:
			s.end(Result{Err: fmt.Errorf("thread %d: unexpected exit %s", t.id, exit)})
			return
		}
	}
}

// maybePark stops the thread if asked to, until it is resumed; false
// means it must end.
func (t *Thread) maybePark(vcpu machine.VCPU) bool {
	t.mu.Lock()
	if t.exitReq {
		t.mu.Unlock()
		return false
	}
	if !t.stopReq {
		t.mu.Unlock()
		return true
	}
	t.mu.Unlock()
	if t.holdsCalls() {
		return true // it stops once it has answered what it received
	}
	t.mu.Lock()
	t.stopReq = false
	t.state = abi.ThreadStopped
	t.mu.Unlock()
	t.space.log.Debug("thread stopped", "thread", t.id)
	r := t.sleep(func() bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.state == abi.ThreadRunning
	}, false, time.Time{}, vcpu)
	t.answerReqs(vcpu)
	return r == wakeReady
}

// exit ends the thread with status; the last thread to end ends the space.
func (t *Thread) exit(status uint64) {
	t.mu.Lock()
	unstarted := t.state == abi.ThreadNew
	t.state, t.status, t.exitReq = abi.ThreadExited, status, true
	t.mu.Unlock()
	s := t.space
	if unstarted {
		// It never ran, so its space did not start through it, and does
		// not end through it either (a parent may drop a thread of a
		// child it is still setting up).
		s.dropUnstarted(t)
		return
	}
	// The others are looked at one by one with the space's lock let go:
	// start holds a thread's lock while it takes the space's, so holding
	// the space's while taking a thread's could deadlock with it. A thread
	// started meanwhile is seen running (its start holds its lock until
	// it runs), or finds the space dying once end marks it so.
	s.mu.Lock()
	others := make([]*Thread, 0, len(s.threads))
	for o := range s.threads {
		if o != t {
			others = append(others, o)
		}
	}
	s.mu.Unlock()
	last := true
	for _, o := range others {
		o.mu.Lock()
		if o.state == abi.ThreadRunning || o.state == abi.ThreadStopped {
			last = false // threads never started do not keep a space alive
		}
		o.mu.Unlock()
	}
	if last {
		s.end(Result{Exited: true, Status: int(status & 0xff)})
	}
}

// shootdown makes every thread of s but caller drop its cached
// translations before it runs guest code again, and returns once none can
// still be using a stale one: a thread in guest code is made to leave it
// and flush; one in the kernel, or stopped, flushes on its way back.
func (s *Space) shootdown(caller *Thread) {
	s.mu.Lock()
	threads := make([]*Thread, 0, len(s.threads))
	for t := range s.threads {
		if t != caller {
			threads = append(threads, t)
		}
	}
	s.mu.Unlock()
	type pending struct {
		t   *Thread
		gen uint64
	}
	var wait []pending
	for _, t := range threads {
		gen := t.flushGen.Load()
		t.flushReq.Store(true)
		t.mu.Lock()
		v, st := t.vcpu, t.state
		t.mu.Unlock()
		if v == nil || st != abi.ThreadRunning || t.inKernel.Load() {
			continue // it flushes before it next enters guest code
		}
		v.Stop()
		wait = append(wait, pending{t, gen})
	}
	for _, p := range wait {
		// Until the flush itself: a target that has taken the request
		// (flushReq cleared) may not have flushed yet.
		for p.t.flushGen.Load() == p.gen {
			p.t.mu.Lock()
			gone := p.t.state != abi.ThreadRunning || p.t.exitReq
			p.t.mu.Unlock()
			if gone || p.t.inKernel.Load() {
				break
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	if caller != nil && caller.space == s {
		caller.mu.Lock()
		v := caller.vcpu
		caller.mu.Unlock()
		if v != nil {
			v.FlushTLB()
		}
	}
}

// keepIfInCall gives t a reference to mem, released when the call t is in
// ends, and reports whether it did: t's buffers may lie in mem, which an
// unmap just took out of t's space. Not when t is in no call.
func (t *Thread) keepIfInCall(mem *machine.Memory) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.inKernel.Load() {
		return false
	}
	t.kept = append(t.kept, mem.Ref())
	t.keeps.Store(true)
	return true
}

// releaseKept drops what keepIfInCall kept. Called on t's goroutine when
// a call ends, and when the thread ends.
func (t *Thread) releaseKept() {
	if !t.keeps.Load() {
		return
	}
	t.mu.Lock()
	kept := t.kept
	t.kept = nil
	t.keeps.Store(false)
	t.mu.Unlock()
	for _, m := range kept {
		m.Unref()
	}
}

// What a thread is doing, for space_running.
const (
	threadGone  = iota // ended
	threadNew          // created, not yet started: whoever created it may start it
	threadRuns         // its guest code, or a server's work on a fault of its served inline
	threadWaits        // asleep in a wait, and not woken since it last looked
	threadHeld         // stopped, by thread_stop or in a fault its handler has not answered, or held by a server (Invocation.Hold)
)

// activity reports what the thread is doing (space_running).
func (t *Thread) activity() int {
	t.mu.Lock()
	st, started := t.state, t.running
	served := t.servedInline()
	t.mu.Unlock()
	switch {
	case st == abi.ThreadExited:
		return threadGone
	case !started:
		return threadNew
	case st == abi.ThreadStopped && !served, t.serverHeld.Load() > 0:
		return threadHeld
	case t.asleep.Load() && !t.woken.Load():
		return threadWaits
	}
	return threadRuns
}
