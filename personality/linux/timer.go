package linux

import (
	"encoding/binary"
	"errors"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"nestvm/abi"
	"nestvm/nester"
	"nestvm/vmm"
)

// Interval timers: alarm, setitimer/getitimer (ITIMER_REAL) and the POSIX
// timers of timer_create. A timer that expires posts its signal to the
// process as kill does (k.post): a fatal default ends the process at
// once, a handler runs when a thread next leaves the personality, and a
// thread blocked in a call (pause, sigsuspend, nanosleep, a read) wakes
// for it.
//
// Deadlines are times on the personality's monotonic clock, and an armed
// timer is a clock_wait on that clock until its deadline, so that a layer
// standing in for the clock (timewarp) sees what the program waits for
// and owns when it expires. A thread blocked in a call waits for the
// earliest timer too (block), and fires what is due itself: it counts as
// running until it has looked, so a layer never moves time on between a
// timer's expiry and the wake of the thread it interrupts.

// Signal codes of timers' siginfo (include/uapi/asm-generic/siginfo.h).
const (
	siKernel = 0x80 // SI_KERNEL: an itimer's SIGALRM
	siTimer  = -2   // SI_TIMER: a POSIX timer's signal
	sigALRM  = 14
)

// sigevent notifications.
const (
	sigevSignal   = 0
	sigevNone     = 1
	sigevThreadID = 4
)

// maxTimers bounds a process's POSIX timers (RLIMIT_SIGPENDING-like).
const maxTimers = 256

// timer is one armed or disarmed timer. Guarded by its timerSet's mu.
type timer struct {
	clock    uint64 // for timer_create's: the clock its absolute times count on
	info     sigInfo
	notify   bool   // false for SIGEV_NONE: it counts, but signals nothing
	deadline uint64 // on the monotonic clock (kernel.now); 0 while disarmed
	// host is the deadline on the host's clock, for a checkpoint's
	// record, which keeps what was left when it was taken.
	host     time.Time
	interval time.Duration // reload on expiry; 0: one shot
	overrun  int           // expiries missed since the last signal was posted
	reported int           // the overrun count the last signal carried (timer_getoverrun)
	cancel   func()        // ends the wait of its watch; nil while disarmed
	gen      uint64        // bumped whenever it is set: a watch of an older setting does nothing
}

// timerSet is a process's timers. Its zero value has none.
type timerSet struct {
	mu    sync.Mutex
	real  timer          // ITIMER_REAL, which alarm sets too
	posix map[int]*timer // timer_create's, by id
}

// hostEpoch is the origin of the monotonic time kernel.now falls back to
// when the personality's clock cannot be read.
var hostEpoch = time.Now()

// now reads the personality's monotonic clock with c, or the host's when
// the clock cannot be read.
func (k *kernel) now(c *vmm.Caller) uint64 {
	if h, ok := k.caps[nester.CapClock]; ok {
		if ns, _, err := c.ClockRead(h, abi.ClockMonotonic); err == nil {
			return ns
		}
	}
	return uint64(time.Since(hostEpoch)) + 1
}

// set arms tm to expire after value (0: disarm), then every interval,
// posting to p, and returns what remained of the setting before. now is
// the monotonic clock's reading (kernel.now). Callers hold s.mu.
func (s *timerSet) set(k *kernel, p *process, tm *timer, now uint64, value, interval time.Duration) (left, oldInterval time.Duration) {
	left, oldInterval = tm.remaining(now), tm.interval
	tm.stop()
	tm.interval, tm.overrun = interval, 0
	if value > 0 {
		tm.deadline, tm.host = now+uint64(value), time.Now().Add(value)
		s.watch(k, p, tm)
	}
	return left, oldInterval
}

// watch starts what fires tm: a goroutine in clock_wait until its
// deadline, then the next, until tm is set again or stopped. Callers hold
// s.mu.
func (s *timerSet) watch(k *kernel, p *process, tm *timer) {
	c := k.host.NewCaller()
	quit := make(chan struct{})
	tm.cancel = func() {
		close(quit)
		c.Kill()
	}
	gen := tm.gen
	go func() {
		for {
			s.mu.Lock()
			dl := tm.deadline
			if tm.gen != gen || dl == 0 {
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			now, ok := k.waitUntil(c, dl, quit)
			if !ok {
				return
			}
			s.fireDue(k, p, now)
		}
	}()
}

// waitUntil waits with clock_wait on the personality's clock until it
// reaches dl, and returns its reading then; false when quit is closed (or
// the caller killed) first. A clock that cannot wait leaves the wait on
// the host's time.
func (k *kernel) waitUntil(c *vmm.Caller, dl uint64, quit <-chan struct{}) (uint64, bool) {
	if h, ok := k.caps[nester.CapClock]; ok {
		for {
			now, _, err := c.ClockWait(h, abi.ClockMonotonic, dl)
			if errors.Is(err, abi.ErrPeerGone) {
				return 0, false
			}
			if err != nil {
				break
			}
			if now >= dl {
				return now, true
			}
			select {
			case <-quit:
				return 0, false
			default:
			}
		}
	}
	now := k.now(c)
	if now >= dl {
		return now, true
	}
	t := time.NewTimer(time.Duration(dl - now))
	defer t.Stop()
	select {
	case <-t.C:
		return k.now(c), true
	case <-quit:
		return 0, false
	}
}

// remaining is the time until tm expires at now, 0 when disarmed.
// Callers hold the set's mu.
func (tm *timer) remaining(now uint64) time.Duration {
	if tm.deadline == 0 {
		return 0
	}
	// An expiry due now but not yet handled still counts as pending.
	if tm.deadline <= now {
		return time.Nanosecond
	}
	return time.Duration(tm.deadline - now)
}

// next is the earliest deadline of the timers that signal, 0 when none
// is armed: a thread blocked in a call waits for it too.
func (s *timerSet) next() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next uint64
	consider := func(tm *timer) {
		if tm.deadline != 0 && (tm.notify || tm == &s.real) && (next == 0 || tm.deadline < next) {
			next = tm.deadline
		}
	}
	consider(&s.real)
	for _, tm := range s.posix {
		consider(tm)
	}
	return next
}

// fireDue fires every timer of s due at now.
func (s *timerSet) fireDue(k *kernel, p *process, now uint64) {
	s.mu.Lock()
	due := []*timer{}
	if s.real.deadline != 0 && s.real.deadline <= now {
		due = append(due, &s.real)
	}
	ids := make([]int, 0, len(s.posix))
	for id, tm := range s.posix {
		if tm.deadline != 0 && tm.deadline <= now {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	for _, id := range ids {
		due = append(due, s.posix[id])
	}
	s.mu.Unlock()
	for _, tm := range due {
		s.fire(k, p, tm, now)
	}
}

// fire is tm's expiry at now: it posts the signal and reloads the
// interval, counting the expiries missed since as overruns. It does
// nothing when tm is not due (another fired it first).
func (s *timerSet) fire(k *kernel, p *process, tm *timer, now uint64) {
	s.mu.Lock()
	if tm.deadline == 0 || tm.deadline > now {
		s.mu.Unlock()
		return
	}
	info := tm.info
	if tm.interval > 0 {
		iv := uint64(tm.interval)
		missed := (now - tm.deadline) / iv
		tm.overrun += int(missed)
		tm.deadline += (missed + 1) * iv
		tm.host = tm.host.Add(time.Duration(missed+1) * tm.interval)
	} else {
		tm.stop()
	}
	info.status = int32(tm.overrun)
	tm.reported, tm.overrun = tm.overrun, 0
	notify := tm.notify || tm == &s.real
	s.mu.Unlock()
	if !notify || k.post(p, info) {
		return
	}
	p.mu.Lock()
	handled := p.sig.actions[info.signo].handler > sigIgnore
	p.mu.Unlock()
	if handled {
		k.kick(p)
	}
}

// stopAll disarms every timer (the process ended); with keepReal,
// ITIMER_REAL stays armed, as execve keeps it.
func (s *timerSet) stopAll(keepReal bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tm := range s.posix {
		tm.stop()
	}
	s.posix = nil
	if !keepReal {
		s.real.stop()
	}
}

// stop disarms tm, and ends its watch. Callers hold the set's mu.
func (tm *timer) stop() {
	if tm.cancel != nil {
		tm.cancel()
		tm.cancel = nil
	}
	tm.gen++
	tm.deadline, tm.host = 0, time.Time{}
}

// timeval and itimerval conversions (struct timeval: sec, usec).
func timevalDur(b []byte) (time.Duration, errno) {
	sec, usec := int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint64(b[8:]))
	if sec < 0 || usec < 0 || usec >= 1e6 {
		return 0, eINVAL
	}
	return time.Duration(min(sec, 1<<32))*time.Second + time.Duration(usec)*time.Microsecond, 0
}

func putTimeval(b []byte, d time.Duration) {
	// A remaining time below a microsecond is reported as one, so that
	// an armed timer never reads as disarmed.
	us := (d + time.Microsecond - 1) / time.Microsecond
	binary.LittleEndian.PutUint64(b, uint64(us/1e6))
	binary.LittleEndian.PutUint64(b[8:], uint64(us%1e6))
}

func timespecDur(b []byte) (time.Duration, errno) {
	sec, nsec := int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint64(b[8:]))
	if sec < 0 || nsec < 0 || nsec >= 1e9 {
		return 0, eINVAL
	}
	return time.Duration(min(sec, 1<<32))*time.Second + time.Duration(nsec), 0
}

func putTimespec(b []byte, d time.Duration) {
	binary.LittleEndian.PutUint64(b, uint64(d/time.Second))
	binary.LittleEndian.PutUint64(b[8:], uint64(d%time.Second))
}

// realInfo is the siginfo of ITIMER_REAL's SIGALRM.
var realInfo = sigInfo{signo: sigALRM, code: siKernel}

func sysAlarm(tc *task, a [6]uint64) (uint64, errno) {
	s := &tc.p.timers
	now := tc.k.now(tc.c)
	s.mu.Lock()
	s.real.info = realInfo
	left, _ := s.set(tc.k, tc.p, &s.real, now, time.Duration(min(a[0], 1<<32))*time.Second, 0)
	s.mu.Unlock()
	// Linux rounds what was left to the nearest second, and never
	// reports an armed alarm as 0.
	secs := uint64((left + time.Second/2) / time.Second)
	if secs == 0 && left > 0 {
		secs = 1
	}
	return secs, 0
}

func sysSetitimer(tc *task, a [6]uint64) (uint64, errno) {
	if a[0] != unix.ITIMER_REAL {
		return 0, eINVAL
	}
	var value, interval time.Duration
	if a[1] != 0 {
		var b [32]byte
		if e := tc.readMem(a[1], b[:]); e != 0 {
			return 0, e
		}
		var e errno
		if interval, e = timevalDur(b[0:]); e != 0 {
			return 0, e
		}
		if value, e = timevalDur(b[16:]); e != 0 {
			return 0, e
		}
	}
	s := &tc.p.timers
	now := tc.k.now(tc.c)
	s.mu.Lock()
	s.real.info = realInfo
	left, oldInterval := s.set(tc.k, tc.p, &s.real, now, value, interval)
	s.mu.Unlock()
	if a[2] != 0 {
		var b [32]byte
		putTimeval(b[0:], oldInterval)
		putTimeval(b[16:], left)
		return 0, tc.writeMem(a[2], b[:])
	}
	return 0, 0
}

func sysGetitimer(tc *task, a [6]uint64) (uint64, errno) {
	if a[0] != unix.ITIMER_REAL {
		return 0, eINVAL
	}
	s := &tc.p.timers
	now := tc.k.now(tc.c)
	s.mu.Lock()
	left, interval := s.real.remaining(now), s.real.interval
	s.mu.Unlock()
	var b [32]byte
	putTimeval(b[0:], interval)
	putTimeval(b[16:], left)
	return 0, tc.writeMem(a[1], b[:])
}

// timerClock checks a timer_create clock: the wall and monotonic clocks
// (CPU-time clocks are not kept).
func timerClock(clock uint64) bool {
	switch int32(clock) {
	case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME, unix.CLOCK_REALTIME_ALARM, unix.CLOCK_BOOTTIME_ALARM, unix.CLOCK_TAI:
		return true
	}
	return false
}

func sysTimerCreate(tc *task, a [6]uint64) (uint64, errno) {
	if !timerClock(a[0]) {
		return 0, eINVAL
	}
	tm := &timer{clock: a[0], notify: true, info: sigInfo{signo: sigALRM, code: siTimer}}
	valueFromID := true
	if a[1] != 0 {
		// struct sigevent: sigval, signo, notify, then the thread id.
		var b [20]byte
		if e := tc.readMem(a[1], b[:]); e != 0 {
			return 0, e
		}
		tm.info.value = binary.LittleEndian.Uint64(b[0:])
		tm.info.signo = int32(binary.LittleEndian.Uint32(b[8:]))
		valueFromID = false
		switch binary.LittleEndian.Uint32(b[12:]) {
		case sigevNone:
			tm.notify = false
		case sigevSignal, sigevThreadID:
			// A thread's signal is the process's here: pending
			// signals are kept per process.
			if tm.info.signo < 1 || tm.info.signo > nsig {
				return 0, eINVAL
			}
		default:
			return 0, eINVAL
		}
	}
	s := &tc.p.timers
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.posix) >= maxTimers {
		return 0, eAGAIN
	}
	if s.posix == nil {
		s.posix = map[int]*timer{}
	}
	id := 0
	for s.posix[id] != nil {
		id++
	}
	tm.info.pid = int32(id) // si_timerid
	if valueFromID {
		tm.info.value = uint64(id)
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(id))
	if e := tc.writeMem(a[2], b[:]); e != 0 {
		return 0, e
	}
	s.posix[id] = tm
	return 0, 0
}

// posixTimer is the timer id names, or nil. Callers hold s.mu.
func (s *timerSet) posixTimer(id uint64) *timer {
	if int32(id) < 0 {
		return nil
	}
	return s.posix[int(int32(id))]
}

func sysTimerSettime(tc *task, a [6]uint64) (uint64, errno) {
	var b [32]byte
	if e := tc.readMem(a[2], b[:]); e != 0 {
		return 0, e
	}
	interval, e := timespecDur(b[0:])
	if e != 0 {
		return 0, e
	}
	value, e := timespecDur(b[16:])
	if e != 0 {
		return 0, e
	}
	s := &tc.p.timers
	s.mu.Lock()
	tm := s.posixTimer(a[0])
	clock := uint64(0)
	if tm != nil {
		clock = tm.clock
	}
	s.mu.Unlock()
	if tm == nil {
		return 0, eINVAL
	}
	if a[1]&unix.TIMER_ABSTIME != 0 && value > 0 {
		now, e := tc.clock(clock)
		if e != 0 {
			return 0, e
		}
		// An absolute time already past expires at once.
		value = max(value-time.Duration(now), time.Nanosecond)
	}
	now := tc.k.now(tc.c)
	s.mu.Lock()
	if s.posixTimer(a[0]) != tm {
		s.mu.Unlock()
		return 0, eINVAL // deleted meanwhile
	}
	left, oldInterval := s.set(tc.k, tc.p, tm, now, value, interval)
	s.mu.Unlock()
	if a[3] != 0 {
		var o [32]byte
		putTimespec(o[0:], oldInterval)
		putTimespec(o[16:], left)
		return 0, tc.writeMem(a[3], o[:])
	}
	return 0, 0
}

func sysTimerGettime(tc *task, a [6]uint64) (uint64, errno) {
	s := &tc.p.timers
	now := tc.k.now(tc.c)
	s.mu.Lock()
	tm := s.posixTimer(a[0])
	var left, interval time.Duration
	if tm != nil {
		left, interval = tm.remaining(now), tm.interval
	}
	s.mu.Unlock()
	if tm == nil {
		return 0, eINVAL
	}
	var b [32]byte
	putTimespec(b[0:], interval)
	putTimespec(b[16:], left)
	return 0, tc.writeMem(a[1], b[:])
}

func sysTimerGetoverrun(tc *task, a [6]uint64) (uint64, errno) {
	s := &tc.p.timers
	s.mu.Lock()
	defer s.mu.Unlock()
	tm := s.posixTimer(a[0])
	if tm == nil {
		return 0, eINVAL
	}
	return uint64(tm.reported), 0
}

func sysTimerDelete(tc *task, a [6]uint64) (uint64, errno) {
	s := &tc.p.timers
	s.mu.Lock()
	defer s.mu.Unlock()
	tm := s.posixTimer(a[0])
	if tm == nil {
		return 0, eINVAL
	}
	tm.stop()
	delete(s.posix, int(int32(a[0])))
	return 0, 0
}
