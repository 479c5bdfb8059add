package linux

import (
	"encoding/binary"
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"nestvm/abi"
)

// clone flags (include/uapi/linux/sched.h).
const (
	cloneVM            = 0x100
	cloneFS            = 0x200
	cloneFiles         = 0x400
	cloneSighand       = 0x800
	cloneVfork         = 0x4000
	cloneThread        = 0x10000
	cloneSetTLS        = 0x80000
	cloneParentSetTID  = 0x100000
	cloneChildClearTID = 0x200000
	cloneChildSetTID   = 0x1000000
)

// sysClone creates a thread of the calling process (CLONE_VM|CLONE_THREAD,
// what pthread_create and the Go runtime do): a nestvm thread in the same
// space, resuming after the syscall with RAX 0 on its new stack.
func sysClone(tc *task, a [6]uint64) (uint64, errno) {
	flags, newsp, ptid, ctid, tls := a[0], a[1], a[2], a[3], a[4]
	if flags&cloneThread == 0 {
		// A process: fork, or vfork's clone(CLONE_VM|CLONE_VFORK), which
		// gets a copy too (its child only execs or exits).
		return tc.fork(flags, newsp, ctid, tls)
	}
	p, k, c := tc.p, tc.k, tc.c
	fpu, err := tc.fc.FPU()
	if err != nil {
		return 0, eAGAIN
	}
	r := tc.childRegs(newsp)
	if flags&cloneSetTLS != 0 {
		r.FSBase = tls
	}
	th, num, err := newThread(c, p.spaceNow(), r, fpu)
	if err != nil {
		return 0, errnoOf(err, eAGAIN)
	}
	tid := k.newPID()
	t := &thread{tid: tid, handle: th, sigmask: tc.t.sigmask}
	if t.slot, err = k.adopt(c, th); err != nil {
		c.HandleClose(th)
		return 0, eAGAIN
	}
	var tidb [4]byte
	binary.LittleEndian.PutUint32(tidb[:], uint32(tid))
	if flags&cloneParentSetTID != 0 {
		tc.writeMem(ptid, tidb[:])
	}
	if flags&cloneChildSetTID != 0 {
		tc.writeMem(ctid, tidb[:])
	}
	if flags&cloneChildClearTID != 0 {
		t.clearTID = ctid
	}
	p.mu.Lock()
	p.threads[int(num)] = t
	p.mu.Unlock()
	if _, _, err := c.ThreadStart(th); err != nil {
		p.mu.Lock()
		delete(p.threads, int(num))
		p.mu.Unlock()
		k.disown(c, t.slot)
		c.HandleClose(th)
		return 0, eAGAIN
	}
	return uint64(tid), 0
}

// futexKey names a futex word: the process (whose space it lives in) and
// its address.
type futexKey struct {
	pid  int
	addr uint64
}

type futexWaiter struct {
	woken bool
	wake  func()
	mask  uint32
	key   futexKey // the word it waits on: FUTEX_REQUEUE moves it
}

// futex operations (include/uapi/linux/futex.h).
const (
	futexWait         = 0
	futexWake         = 1
	futexRequeue      = 3
	futexCmpRequeue   = 4
	futexWaitBitset   = 9
	futexWakeBitset   = 10
	futexPrivate      = 128
	futexClockRealtim = 256
)

func sysFutex(tc *task, a [6]uint64) (uint64, errno) {
	addr, op, val := a[0], a[1]&^(futexPrivate|futexClockRealtim), uint32(a[2])
	if addr&3 != 0 {
		return 0, eINVAL
	}
	switch op {
	case futexWait, futexWaitBitset:
		mask := uint32(0xffffffff)
		if op == futexWaitBitset {
			mask = uint32(a[5])
			if mask == 0 {
				return 0, eINVAL
			}
		}
		deadline := noDeadline
		if a[3] != 0 {
			d, e := readTimespec(tc, a[3])
			if e != 0 {
				return 0, e
			}
			if op == futexWaitBitset {
				// An absolute time on the monotonic clock (or the real-time
				// one, with FUTEX_CLOCK_REALTIME).
				which := uint64(unix.CLOCK_MONOTONIC)
				if a[1]&futexClockRealtim != 0 {
					which = unix.CLOCK_REALTIME
				}
				now, e := tc.clock(which)
				if e != 0 {
					return 0, e
				}
				d -= time.Duration(now)
			}
			deadline = tc.after(d)
		}
		return 0, tc.futexWait(addr, val, mask, deadline)
	case futexRequeue, futexCmpRequeue:
		if op == futexCmpRequeue {
			var b [4]byte
			if e := tc.readMem(addr, b[:]); e != 0 {
				return 0, e
			}
			if binary.LittleEndian.Uint32(b[:]) != uint32(a[5]) {
				return 0, eAGAIN
			}
		}
		if a[4]&3 != 0 {
			return 0, eINVAL
		}
		return uint64(tc.k.futexRequeue(tc.p, addr, a[4], int(min(val, 1<<30)), int(min(uint32(a[3]), 1<<30)))), 0
	case futexWake, futexWakeBitset:
		mask := uint32(0xffffffff)
		if op == futexWakeBitset {
			mask = uint32(a[5])
		}
		return uint64(tc.k.futexWake(tc.p, addr, int(min(val, 1<<30)), mask)), 0
	}
	return 0, eNOSYS
}

// futexWait sleeps while the word at addr holds val.
func (tc *task) futexWait(addr uint64, val, mask uint32, deadline deadline) errno {
	k := tc.k
	key := futexKey{tc.p.pid, addr}
	w := &futexWaiter{wake: tc.fc.Waker(), mask: mask, key: key}
	// The word is read and the waiter queued under one lock, so a wake
	// between the two is not lost.
	k.futexMu.Lock()
	var b [4]byte
	if e := tc.readMem(addr, b[:]); e != 0 {
		k.futexMu.Unlock()
		return e
	}
	if binary.LittleEndian.Uint32(b[:]) != val {
		k.futexMu.Unlock()
		return eAGAIN
	}
	if k.futex == nil {
		k.futex = map[futexKey][]*futexWaiter{}
	}
	k.futex[key] = append(k.futex[key], w)
	k.futexMu.Unlock()
	woken := func() bool {
		k.futexMu.Lock()
		defer k.futexMu.Unlock()
		return w.woken
	}
	res := tc.block(woken, deadline)
	k.futexMu.Lock()
	defer k.futexMu.Unlock()
	if w.woken {
		tc.held = false
		return 0
	}
	key = w.key
	q := k.futex[key]
	for i, x := range q {
		if x == w {
			k.futex[key] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(k.futex[key]) == 0 {
		delete(k.futex, key)
	}
	switch res {
	case blockTimeout:
		return eTIMEDOUT
	case blockInterrupted:
		return eINTR
	}
	return 0
}

// futexWake wakes at most n waiters on the word at addr of process p
// whose mask meets mask, and says how many it woke.
func (k *kernel) futexWake(p *process, addr uint64, n int, mask uint32) int {
	k.futexMu.Lock()
	defer k.futexMu.Unlock()
	key := futexKey{p.pid, addr}
	q := k.futex[key]
	woke := 0
	rest := q[:0]
	for _, w := range q {
		if woke < n && w.mask&mask != 0 {
			w.woken = true
			w.wake()
			woke++
			continue
		}
		rest = append(rest, w)
	}
	if len(rest) == 0 {
		delete(k.futex, key)
	} else {
		k.futex[key] = rest
	}
	return woke
}

// exitThread ends the calling thread, as exit(2) does for one thread of
// several: its clear_child_tid word is zeroed and woken.
func (tc *task) exitThread() {
	tc.held = true
	p, t := tc.p, tc.t
	if t.clearTID != 0 {
		tc.writeMem(t.clearTID, []byte{0, 0, 0, 0})
		tc.k.futexWake(p, t.clearTID, 1, 0xffffffff)
	}
	p.mu.Lock()
	for num, x := range p.threads {
		if x == t {
			delete(p.threads, num)
		}
	}
	p.mu.Unlock()
	tc.k.disown(tc.c, t.slot)
	tc.c.ThreadExit(t.handle, 0)
	tc.c.HandleClose(t.handle)
}

// readStdin reads the stdin capability. The read waits in the monitor,
// acting for the thread: a stop ends it and the call is issued again
// when the thread resumes, with no input lost.
func (tc *task) readStdin(f *file, b []byte) (int, errno) {
	n, _, err := tc.c.ConsoleRead(f.handle, b)
	if errors.Is(err, abi.ErrPeerGone) {
		tc.held = true
		return 0, 0
	}
	if err != nil {
		return 0, errnoOf(err, eIO)
	}
	return int(n), 0
}

// futexRequeue wakes at most n waiters on addr and moves at most move of
// the others to wait on to instead (FUTEX_REQUEUE: a condition variable
// hands its waiters over to its mutex). It says how many it woke, and
// for FUTEX_CMP_REQUEUE how many it woke or moved.
func (k *kernel) futexRequeue(p *process, addr, to uint64, n, move int) int {
	k.futexMu.Lock()
	defer k.futexMu.Unlock()
	from, dst := futexKey{p.pid, addr}, futexKey{p.pid, to}
	q := k.futex[from]
	done := 0
	var rest []*futexWaiter
	for _, w := range q {
		switch {
		case n > 0:
			w.woken = true
			w.wake()
			n--
			done++
		case move > 0 && from != dst:
			w.key = dst
			k.futex[dst] = append(k.futex[dst], w)
			move--
			done++
		default:
			rest = append(rest, w)
		}
	}
	if len(rest) == 0 {
		delete(k.futex, from)
	} else {
		k.futex[from] = rest
	}
	return done
}
