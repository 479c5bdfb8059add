package linux

import (
	"sync"
	"time"

	"nestvm/abi"
	"nestvm/nester"
	"nestvm/vmm"
)

// deadline is when a timed wait ends: a time on the monotonic clock the
// personality holds, so that a layer standing in for that clock (timewarp)
// owns the wait, which is a clock_wait on it. A personality with no clock
// it can read waits for the host's time instead.
type deadline struct {
	ns   uint64    // on the monotonic clock; 0 when none
	host time.Time // the host's time, when the clock could not be read
}

// noDeadline is a wait with no time limit.
var noDeadline deadline

// none reports whether d sets no limit.
func (d deadline) none() bool { return d.ns == 0 && d.host.IsZero() }

// after returns the deadline d from now on the personality's clock.
func (tc *task) after(d time.Duration) deadline {
	d = max(d, 0)
	now, e := tc.clock(1 /* CLOCK_MONOTONIC */)
	if e != 0 {
		return deadline{host: time.Now().Add(d)}
	}
	return deadline{ns: max(now+uint64(d), 1)}
}

// waitq is what threads held in a blocking call wait on: whoever changes
// the state they wait for notifies it, and each is woken to look again.
type waitq struct {
	mu      sync.Mutex
	waiters map[*func()]struct{}
	gen     uint64 // notifications so far
}

// add registers wake; the returned function removes it.
func (q *waitq) add(wake func()) func() {
	q.mu.Lock()
	if q.waiters == nil {
		q.waiters = map[*func()]struct{}{}
	}
	w := &wake
	q.waiters[w] = struct{}{}
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		delete(q.waiters, w)
		q.mu.Unlock()
	}
}

// notify wakes every waiter.
func (q *waitq) notify() {
	q.mu.Lock()
	q.gen++
	ws := make([]func(), 0, len(q.waiters))
	for w := range q.waiters {
		ws = append(ws, *w)
	}
	q.mu.Unlock()
	for _, w := range ws {
		w()
	}
}

// blockResult is how a blocking call's wait ended.
type blockResult int

const (
	blockReady       blockResult = iota // what it waited for happened
	blockTimeout                        // the deadline passed
	blockHeld                           // the thread must stop or end: tc.held is set, the call is re-issued when it resumes
	blockInterrupted                    // a signal came: the call fails with EINTR
)

// block holds the call until ready reports true, waking whenever one of
// qs is notified, until dl (noDeadline: none), or until a signal the
// thread does not block is posted to its process. A timed wait is a
// clock_wait on the personality's clock, which whoever notifies qs ends
// early by waking the thread; an untimed one involves no clock.
func (tc *task) block(ready func() bool, dl deadline, qs ...*waitq) blockResult {
	wake := tc.fc.Waker()
	for _, q := range append(qs, &tc.p.signals) {
		defer q.add(wake)()
	}
	interrupted := false
	cond := func() bool {
		if ready() {
			return true
		}
		interrupted = tc.signalPending()
		return interrupted
	}
	hostDeadline := dl.host
	for dl.host.IsZero() {
		// The process's next timer ends the clock_wait too, and the
		// thread fires it itself: it runs until it has looked at the
		// signal, so a layer owning the clock sees no idle moment
		// between the expiry and the wake.
		ns, byTimer := dl.ns, false
		if next := tc.p.timers.next(); next != 0 && (ns == 0 || next < ns) {
			ns, byTimer = next, true
		}
		if ns == 0 {
			break
		}
		res, done, host := tc.clockWait(cond, ns)
		if !done {
			// The clock cannot wait: the timers' watches fire them
			// on the host's time, and the call waits for its own
			// deadline alone.
			if dl.ns != 0 {
				hostDeadline = host.Add(time.Duration(dl.ns - ns))
			}
			break
		}
		if res == blockTimeout && byTimer {
			tc.p.timers.fireDue(tc.k, tc.p, ns)
			continue
		}
		if res == blockReady && interrupted {
			return blockInterrupted
		}
		return res
	}
	switch tc.fc.Sleep(cond, hostDeadline) {
	case vmm.SleepReady:
		if interrupted {
			return blockInterrupted
		}
		return blockReady
	case vmm.SleepTimeout:
		return blockTimeout
	}
	tc.held = true
	return blockHeld
}

// clockWait waits with clock_wait on the personality's clock until cond
// reports true or the clock reaches ns. done is false when the clock
// cannot wait (a layer serves no clock_wait, or refuses it): the caller
// then sleeps until host, the same time from now on the host's clock.
func (tc *task) clockWait(cond func() bool, ns uint64) (res blockResult, done bool, host time.Time) {
	h := tc.k.caps[nester.CapClock]
	for {
		if cond() {
			return blockReady, true, time.Time{}
		}
		now, _, err := tc.c.ClockWait(h, abi.ClockMonotonic, ns)
		switch {
		case err == nil && now >= ns:
			if cond() {
				return blockReady, true, time.Time{}
			}
			return blockTimeout, true, time.Time{}
		case err == nil && !tc.fc.Released():
			continue // woken early: look again
		case err == nil || tc.fc.Released():
			// Woken to stop or to end (the kernel's clock ends the wait
			// of a thread being killed with no error): the call is
			// issued again if the thread resumes.
			tc.held = true
			return blockHeld, true, time.Time{}
		default:
			// A clock that cannot wait (NV_EINVALOP from a server that
			// knows no clock_wait, NV_EDENIED from a policy that allows
			// only clock_read): the rest of the wait on the host's time.
			cur, e := tc.clock(1 /* CLOCK_MONOTONIC */)
			if e != 0 || cur >= ns {
				return blockTimeout, true, time.Time{}
			}
			return 0, false, time.Now().Add(time.Duration(ns - cur))
		}
	}
}
