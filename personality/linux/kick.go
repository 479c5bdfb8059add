package linux

import (
	"encoding/binary"
	"sync/atomic"

	"nestvm/abi"
	"nestvm/machine"
	"nestvm/vmm"
)

// Kicks: a signal posted to a process reaches a handler when one of its
// threads next enters the personality (a system call, a fault). A thread
// that runs guest code and makes no call (a loop waiting for a flag its
// SIGALRM handler sets) would never take it; kick stops such a thread,
// points it at the vDSO's kick code, whose system call puts the thread's
// registers back and delivers the signal as any call's return does, and
// starts it again. The handler's frame holds the registers the thread was
// stopped with, so rt_sigreturn resumes it there.

// kickSyscall is the number of the kick code's system call: none of
// Linux's.
const kickSyscall = 0x4e56

// kickState is a thread's side of a kick. busy and regs are guarded by
// the process's mu; entries and serving are written by the thread's own
// fault serving and read by a kick.
type kickState struct {
	busy    bool          // a kick is under way or awaits its system call
	regs    *machine.Regs // the registers the kick code's call puts back
	entries atomic.Uint64
	serving atomic.Bool
}

// kick makes the first thread of p take a signal just posted, when it
// runs guest code: one blocked in the personality wakes for the signal
// itself, and one in a call delivers it on the way out.
func (k *kernel) kick(p *process) {
	p.mu.Lock()
	var t *thread
	for _, th := range p.threads {
		if t == nil || th.tid < t.tid {
			t = th
		}
	}
	m := p.mm
	if t == nil || m == nil || t.kick.busy || t.kick.serving.Load() {
		p.mu.Unlock()
		return
	}
	m.mu.Lock()
	hasVDSO := m.vdso != 0
	m.mu.Unlock()
	if !hasVDSO {
		p.mu.Unlock()
		return
	}
	t.kick.busy = true
	entries := t.kick.entries.Load()
	p.mu.Unlock()
	redirected := false
	defer func() {
		if !redirected {
			p.mu.Lock()
			t.kick.busy = false
			p.mu.Unlock()
		}
	}()

	c := k.caller()
	defer k.release(c)
	// A thread someone else stopped (a layer above, taking a
	// checkpoint) is theirs to start.
	if st, _, err := c.ThreadStatus(t.handle); err != nil || st != abi.ThreadRunning {
		return
	}
	if _, _, err := c.ThreadStop(t.handle); err != nil {
		return
	}
	defer c.ThreadStart(t.handle)
	// A thread that entered the personality meanwhile is stopped in or
	// after a call: resumed, it re-issues a held call, which sees the
	// signal, or it has left with it delivered.
	if t.kick.entries.Load() != entries || t.kick.serving.Load() {
		return
	}
	st, err := threadState(c, t.handle)
	if err != nil {
		return
	}
	saved := st.Regs
	st.Regs.RIP = vdsoKick
	b, _ := binary.Append(nil, binary.LittleEndian, &st)
	p.mu.Lock()
	t.kick.regs = &saved
	p.mu.Unlock()
	if _, _, err := c.ThreadSetState(t.handle, b); err != nil {
		p.mu.Lock()
		t.kick.regs = nil
		p.mu.Unlock()
		return
	}
	redirected = true
}

// kicked serves the kick code's system call: the thread gets back the
// registers it was stopped with, and takes the signal as it leaves. It
// reports false when the thread was not kicked (a program making that
// call itself), which is then an unknown call.
func (tc *task) kicked() bool {
	p, t := tc.p, tc.t
	p.mu.Lock()
	regs := t.kick.regs
	t.kick.regs, t.kick.busy = nil, false
	p.mu.Unlock()
	if regs == nil {
		return false
	}
	if err := tc.fc.SetRegs(*regs); err != nil {
		tc.dieOfSignal(sigSEGV, "kicked: "+err.Error())
		return true
	}
	tc.regs = *regs
	tc.deliverPending()
	return true
}

// threadState reads the state of the thread h.
func threadState(c *vmm.Caller, h uint64) (abi.ThreadState, error) {
	var st abi.ThreadState
	buf := make([]byte, binary.Size(st))
	if _, _, err := c.ThreadGetState(h, buf); err != nil {
		return st, err
	}
	_, err := binary.Decode(buf, binary.LittleEndian, &st)
	return st, err
}
