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

// block holds the call until ready reports true, waking whenever one of
// qs is notified, until deadline (zero: none). It reports false when the
// thread must stop or end (tc.held is then set: the call is re-issued
// when it resumes) or the deadline passed (timedOut).
func (tc *task) block(ready func() bool, deadline time.Time, qs ...*waitq) (ok, timedOut bool) {
	wake := tc.fc.Waker()
	for _, q := range qs {
		defer q.add(wake)()
	}
	switch tc.fc.Sleep(ready, deadline) {
	case vmm.SleepReady:
		return true, false
	case vmm.SleepTimeout:
		return false, true
	}
	tc.held = true
	return false, false
}
