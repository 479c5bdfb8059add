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

// futexWait sleeps t while the 32-bit word at addr in s holds expected.
func (t *Thread) futexWait(s *Space, addr, expected, timeout uint64) (abi.Error, wakeReason) {
	t = t.who()
	if addr%4 != 0 || expected > 0xffffffff {
		return abi.ErrInvalidArg, wakeReady
	}
	ft := &s.mon.futex
	key := futexKey{s, addr}
	w := &futexWaiter{t: t}
	// Check the word and queue under the table lock, so a wake between
	// the two cannot be lost.
	ft.mu.Lock()
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
		ft.mu.Unlock()
		return e, wakeReady
	}
	if v != uint32(expected) {
		ft.mu.Unlock()
		return abi.ErrWouldBlock, wakeReady
	}
	if ft.waiters == nil {
		ft.waiters = map[futexKey][]*futexWaiter{}
	}
	ft.waiters[key] = append(ft.waiters[key], w)
	ft.mu.Unlock()

	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(time.Duration(min(timeout, uint64(1<<62))))
	}
	why := t.sleep(func() bool {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		return w.woken
	}, true, deadline, nil)
	if why == wakeReady {
		return abi.OK, why
	}
	ft.mu.Lock()
	if w.woken { // woken just as the sleep ended otherwise
		ft.mu.Unlock()
		return abi.OK, wakeReady
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
	ft.mu.Unlock()
	if why == wakeTimeout {
		return abi.ErrTimeout, wakeReady
	}
	return abi.OK, why
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
