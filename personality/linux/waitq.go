package linux

import (
	"sync"
	"time"

	"nestvm/vmm"
)

// noDeadline is a wait with no time limit.
var noDeadline time.Time

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
// qs is notified, until deadline (zero: none), or until a signal the
// thread does not block is posted to its process.
func (tc *task) block(ready func() bool, deadline time.Time, qs ...*waitq) blockResult {
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
	switch tc.fc.Sleep(cond, deadline) {
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
