package vmm

import (
	"encoding/binary"
	"sync"
	"time"

	"nestvm/abi"
	"nestvm/machine"
)

// futexTable holds the threads sleeping in futex_wait, by space and
// address. The word itself lives in guest memory, so its state is the
// guest's: a checkpoint needs nothing from here but which threads sleep,
// and those re-issue their wait when resumed.
type futexTable struct {
	mu      sync.Mutex
	waiters map[futexKey][]*futexWaiter
}

type futexKey struct {
	space *Space
	addr  uint64
}

type futexWaiter struct {
	t     *Thread
	woken bool // guarded by futexTable.mu
}

// futexQueue registers t as a waiter on the 32-bit word at addr in s if
// the word holds expected: the word is checked and the waiter queued under
// the table lock, so a wake between the two cannot be lost.
func (t *Thread) futexQueue(s *Space, addr, expected uint64) (*futexWaiter, abi.Error) {
	if addr%4 != 0 || expected > 0xffffffff {
		return nil, abi.ErrInvalidArg
	}
	ft := &s.mon.futex
	key := futexKey{s, addr}
	w := &futexWaiter{t: t}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	s.mu.Lock()
	b, e := s.as.buffer(addr, 4, machine.PermRead)
	var v uint32
	if e == abi.OK {
		var raw [4]byte
		b.Read(raw[:])
		v = binary.LittleEndian.Uint32(raw[:])
	}
	s.mu.Unlock()
	if e != abi.OK {
		return nil, e
	}
	if v != uint32(expected) {
		return nil, abi.ErrWouldBlock
	}
	if ft.waiters == nil {
		ft.waiters = map[futexKey][]*futexWaiter{}
	}
	ft.waiters[key] = append(ft.waiters[key], w)
	return w, abi.OK
}

// woken reports whether a futex_wake took w.
func (ft *futexTable) woken(w *futexWaiter) bool {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return w.woken
}

// dequeue removes w from the waiters on addr in s, and reports whether a
// futex_wake took it first.
func (ft *futexTable) dequeue(s *Space, addr uint64, w *futexWaiter) bool {
	key := futexKey{s, addr}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if w.woken {
		return true
	}
	list := ft.waiters[key]
	for i, o := range list {
		if o == w {
			ft.waiters[key] = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(ft.waiters[key]) == 0 {
		delete(ft.waiters, key)
	}
	return false
}

// futexWait sleeps t while the 32-bit word at addr in s holds expected.
func (t *Thread) futexWait(s *Space, addr, expected, timeout uint64) (abi.Error, wakeReason) {
	t = t.who()
	w, e := t.futexQueue(s, addr, expected)
	if e != abi.OK {
		return e, wakeReady
	}
	ft := &s.mon.futex
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(time.Duration(min(timeout, uint64(1<<62))))
	}
	why := t.sleep(func() bool { return ft.woken(w) }, true, deadline, nil)
	if why == wakeReady {
		return abi.OK, why
	}
	if ft.dequeue(s, addr, w) { // woken just as the sleep ended otherwise
		return abi.OK, wakeReady
	}
	if why == wakeTimeout {
		return abi.ErrTimeout, wakeReady
	}
	return abi.OK, why
}

// futexWaitClock is futex_wait_clock: t queues on the word at addr in s,
// then waits with clock_wait on the clock inv's slot 2 names, as the
// thread the call is for, so that a server standing in for the clock sees
// the wait. A futex_wake kicks the thread, which ends a server's hold of
// it (Invocation.HoldWake, the monitor's clock) or withdraws a call to a
// guest server (Invocation.early).
func (t *Thread) futexWaitClock(s *Space, inv *Invocation) result {
	a := inv.Slots
	addr, expected, which, deadline := a[0], a[1], a[3], a[4]
	// The clock is checked before the word: a call with a bad clock fails
	// the same way whatever the word holds.
	cn, e := t.requiredArg(inv, 2)
	if e != abi.OK {
		return failed(e)
	}
	cw := &abi.Ops[abi.OpClockWait]
	if !servedBy(cn.obj, abi.OpClockWait) {
		return failed(abi.ErrWrongType)
	}
	if !cn.rights.Has(cw.Rights) {
		return failed(abi.ErrRights)
	}
	w, e := t.who().futexQueue(s, addr, expected)
	if e != abi.OK {
		return failed(e)
	}
	ft := &s.mon.futex
	woken := func() bool { return ft.woken(w) }
	for {
		wait := Invocation{thread: inv.thread, Op: abi.OpClockWait, Info: cw, Badge: cn.badge, Rights: cn.rights, from: inv.from, early: woken}
		wait.Slots[0], wait.Slots[1] = which, deadline
		r := t.execute(cn, &wait)
		if r.act == machine.CallContinue && int64(r.r0) >= 0 {
			if woken() {
				return ok(0, 0)
			}
			if deadline == 0 || r.r0 < deadline {
				// Ended early by another wake: wait again, unless the
				// thread is to stop or end (a server that let it go
				// says so itself; one that answers at once may not).
				if r.act = t.who().asked(); r.act == machine.CallContinue {
					continue
				}
			}
		}
		// The wait is over: take the waiter back, unless a wake took it
		// meanwhile, which the caller must not lose.
		if ft.dequeue(s, addr, w) {
			return ok(0, 0)
		}
		switch {
		case r.act != machine.CallContinue:
			return result{act: r.act}
		case int64(r.r0) < 0:
			return r
		}
		return failed(abi.ErrTimeout)
	}
}

// asked is what the thread does next when it was asked to end (machine.CallStop)
// or to stop (machine.CallRestart: it re-issues its call when resumed), and
// machine.CallContinue when neither.
func (t *Thread) asked() machine.CallAction {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.exitReq:
		return machine.CallStop
	case t.stopReq:
		return machine.CallRestart
	}
	return machine.CallContinue
}

// futexWake wakes up to n threads sleeping on addr in s and returns how
// many it woke.
func (m *Monitor) futexWake(s *Space, addr, n uint64) uint64 {
	ft := &m.futex
	key := futexKey{s, addr}
	ft.mu.Lock()
	list := ft.waiters[key]
	k := min(uint64(len(list)), n)
	woken := list[:k]
	if k == uint64(len(list)) {
		delete(ft.waiters, key)
	} else {
		ft.waiters[key] = append([]*futexWaiter(nil), list[k:]...)
	}
	for _, w := range woken {
		w.woken = true
	}
	ft.mu.Unlock()
	for _, w := range woken {
		w.t.kick()
	}
	return k
}
