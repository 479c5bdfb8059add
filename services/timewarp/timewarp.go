// Package timewarp is a virtual-clock layer: it stands in for the clock of
// the program below it, so that time is the layer's. Virtual time starts
// at a fixed instant and moves on by a tick at each read; whenever every
// thread of the subtree waits, it jumps to the earliest deadline any of
// them waits for, so a program that sleeps an hour ends at once, and a
// single-threaded program reads the same times in every run, on every
// backend. With a rate it runs at a multiple of real time instead.
//
// It owns time through capabilities alone: it serves clock_read,
// clock_time_page (refused, so that programs read the clock by calls) and
// clock_wait on the clock it hands down (which a guest's futex_wait_clock
// makes too, as the waiting thread), and counts the running and the
// stopped threads of the spaces made through the space it hands down
// (space_running) to tell when every thread waits.
package timewarp

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/interpose"
	"nestvm/nester"
	"nestvm/vmm"
)

// monoStart is the monotonic clock's first reading: not 0, which programs
// take for "never".
const monoStart = uint64(time.Second)

// Layer is a timewarp layer.
type Layer struct {
	opts Options
	log  hclog.Logger

	mu sync.Mutex
	// now is virtual monotonic time; realtime is realBase plus it.
	now      uint64
	realBase uint64
	// realStart is when rate mode began, and rateBase the virtual time
	// then.
	realStart time.Time
	rateBase  uint64
	waiters   map[*waiter]struct{}
	spaces    []uint64 // the subtree's top spaces, in the layer's table
	// sched is the layer's own Caller, for its scheduler and for keeping
	// the spaces it counts; guarded by mu.
	sched *vmm.Caller
	// end ends the layer's host space, with what it holds.
	end func(reason string)

	poke chan struct{}
	quit chan struct{}
	done chan struct{}
	// deadlocked is set once the layer ended the program as deadlocked.
	deadlocked bool
}

// waiter is a thread in clock_wait.
type waiter struct {
	deadline uint64 // virtual monotonic; 0 for none
	done     chan struct{}
	closed   bool // guarded by Layer.mu
}

// New makes a timewarp layer from its arguments (after "timewarp=").
func New(args string, log hclog.Logger) (*Layer, error) {
	o, err := ParseOptions(args)
	if err != nil {
		return nil, err
	}
	return NewWithOptions(o, log), nil
}

// NewWithOptions makes a timewarp layer with parsed options.
func NewWithOptions(o Options, log hclog.Logger) *Layer {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	l := &Layer{opts: o, log: log.Named("timewarp"), now: monoStart, waiters: map[*waiter]struct{}{},
		poke: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	l.realBase = uint64(o.Start.UnixNano()) - monoStart
	return l
}

// Name implements nester.Layer.
func (l *Layer) Name() string { return "timewarp" }

// Wrap implements nester.Layer: the child gets a clock of the layer's and
// a space whose space_create results the layer keeps, to count their
// threads.
func (l *Layer) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	clock, ok := parent.Caps[nester.CapClock]
	if !ok {
		return nester.Env{}, fmt.Errorf("timewarp: the environment has no clock")
	}
	sp, ok := parent.Caps[nester.CapSpace]
	if !ok {
		return nester.Env{}, fmt.Errorf("timewarp: the environment has no space")
	}
	host := mon.NewHost("timewarp", vmm.Quota{Handles: 1 << 16})
	l.sched, l.end = host.NewCaller(), host.Kill
	w := &interpose.Wrapper{Host: host, Handler: interpose.HandlerFunc(l.handle), Layer: "timewarp"}
	wc, err := w.Wrap(clock, nester.CapClock)
	if err != nil {
		return nester.Env{}, err
	}
	ws, err := w.Wrap(sp, nester.CapSpace)
	if err != nil {
		return nester.Env{}, err
	}
	l.realStart = time.Now()
	l.rateBase = l.now
	go l.schedule()
	return parent.With(nester.CapClock, wc).With(nester.CapSpace, ws), nil
}

// ErrDeadlock is what Close reports when the layer ended its program as
// deadlocked.
var ErrDeadlock = errors.New("deadlock")

// Close implements nester.Layer. It reports a program the layer ended as
// deadlocked, so that the run ends with that error.
func (l *Layer) Close() error {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	if l.end == nil {
		return nil // never wrapped: no scheduler runs
	}
	<-l.done
	l.end("layer closed")
	if l.Deadlocked() {
		return fmt.Errorf("%w: every thread of the program waited with no deadline for %v of real time (timewarp deadlock=)", ErrDeadlock, l.opts.Deadlock)
	}
	return nil
}

// ResumeClock makes virtual time go on from a reading of the clock this
// layer handed down, taken when a checkpoint below it was saved: time
// never goes back across a restore. It is called before the restored
// program runs. The saved realtime wins over start=. Monotonic then
// realtime is the order a checkpoint reads them in.
//
// The checkpoint's own monotonic reading moved time on by a tick after
// every reading the program made, so time goes on from a tick before it:
// the restored program's next reading is the one it would have made had
// it not been saved, and the saved run and the restored one read what
// one run reads. That needs the tick= the save had: restored with a
// larger one, a wait whose deadline has passed may read up to the
// difference earlier than the program's last reading.
func (l *Layer) ResumeClock(monotonic, realtime uint64) {
	tick := uint64(l.opts.Tick)
	if monotonic <= tick || realtime < monotonic+tick {
		return // no reading, or not one of a timewarp clock with this tick
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = max(l.now, monotonic-tick)
	// The realtime reading came a tick after the monotonic one, so this
	// is the distance realtime kept from monotonic time when saved.
	l.realBase = realtime - monotonic - tick
	l.realStart, l.rateBase = time.Now(), l.now
}

// Now returns the virtual monotonic time, without moving it on.
func (l *Layer) Now() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Duration(l.current())
}

// current is virtual monotonic time; l.mu is held.
func (l *Layer) current() uint64 {
	if l.opts.Rate > 0 {
		v := l.rateBase + uint64(float64(time.Since(l.realStart))*l.opts.Rate)
		l.now = max(l.now, v)
	}
	return l.now
}

// handle serves the operations on the layer's clock and space.
func (l *Layer) handle(c *interpose.Call) {
	switch c.Op() {
	case abi.OpClockRead:
		which := c.Inv.Slots[0]
		if which != abi.ClockMonotonic && which != abi.ClockRealtime {
			c.Deny(abi.ErrInvalidArg)
			return
		}
		l.mu.Lock()
		l.now = l.current() + uint64(l.opts.Tick)
		v := l.now
		l.mu.Unlock()
		if which == abi.ClockRealtime {
			v += l.realBase
		}
		c.Return(v, 0)
	case abi.OpClockTimePage:
		// A page would let programs read the host's time with rdtsc,
		// around the layer: they fall back to clock_read.
		c.Deny(abi.ErrInvalidOp)
	case abi.OpClockWait:
		l.wait(c)
	case abi.OpSpaceCreate:
		c.Forward()
		if c.Err == nil && c.Gave.Valid() {
			l.mu.Lock()
			if h, err := l.sched.Insert(c.Gave.Obj, c.Gave.Rights, c.Gave.Badge); err == nil {
				l.spaces = append(l.spaces, h)
			}
			l.mu.Unlock()
		}
	default:
		c.Forward()
	}
}

// wait serves clock_wait: the thread is held until virtual time reaches
// its deadline, which the scheduler moves it to when every thread waits.
func (l *Layer) wait(c *interpose.Call) {
	which, deadline := c.Inv.Slots[0], c.Inv.Slots[1]
	if which != abi.ClockMonotonic && which != abi.ClockRealtime {
		c.Deny(abi.ErrInvalidArg)
		return
	}
	if deadline != 0 && which == abi.ClockRealtime {
		if deadline < l.realBase {
			deadline = 1
		} else {
			deadline -= l.realBase
		}
	}
	l.mu.Lock()
	now := l.current()
	if deadline != 0 && now >= deadline {
		l.mu.Unlock()
		c.Return(l.reading(which, now), 0)
		return
	}
	w := &waiter{deadline: deadline, done: make(chan struct{})}
	l.waiters[w] = struct{}{}
	l.mu.Unlock()
	var timer *time.Timer
	if l.opts.Rate > 0 && deadline != 0 {
		timer = time.AfterFunc(time.Duration(float64(deadline-now)/l.opts.Rate), func() { l.release(w) })
	} else {
		l.kick()
	}
	held := c.Inv.HoldWake(w.done)
	if timer != nil {
		timer.Stop()
	}
	l.mu.Lock()
	delete(l.waiters, w)
	now = l.current()
	l.mu.Unlock()
	if !held {
		c.Inv.Restart()
		c.Return(0, 0)
		return
	}
	c.Return(l.reading(which, now), 0)
}

// reading is virtual monotonic time now as clock which reads it.
func (l *Layer) reading(which, now uint64) uint64 {
	if which == abi.ClockRealtime {
		return now + l.realBase
	}
	return now
}

// release ends w's wait.
func (l *Layer) release(w *waiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.done)
	}
}

// kick tells the scheduler a thread began to wait.
func (l *Layer) kick() {
	select {
	case l.poke <- struct{}{}:
	default:
	}
}

// Poll intervals of the scheduler: it looks again soon after a thread
// begins to wait (which it can only see waiting once it sleeps), then
// less and less often.
const (
	pollFirst = 20 * time.Microsecond
	pollLast  = 10 * time.Millisecond
)

// schedule moves virtual time to the earliest deadline whenever every
// thread of the subtree waits, and ends a subtree whose threads all wait
// with no deadline for longer than the deadlock limit.
func (l *Layer) schedule() {
	defer close(l.done)
	interval := pollFirst
	timer := time.NewTimer(interval)
	defer timer.Stop()
	var stuckSince time.Time
	for {
		select {
		case <-l.quit:
			return
		case <-l.poke:
			interval = pollFirst
		case <-timer.C:
		}
		switch l.step() {
		case stepJumped:
			interval, stuckSince = pollFirst, time.Time{}
		case stepStuck:
			if stuckSince.IsZero() {
				stuckSince = time.Now()
			} else if l.opts.Deadlock > 0 && time.Since(stuckSince) >= l.opts.Deadlock {
				l.endDeadlocked()
				stuckSince = time.Time{}
			}
			interval = min(interval*2, pollLast)
		default:
			stuckSince = time.Time{}
			interval = min(interval*2, pollLast)
		}
		timer.Reset(interval)
	}
}

// What a look of the scheduler found.
const (
	stepBusy   = iota // a thread runs, or none waits on the layer
	stepJumped        // every thread waited: time moved to a deadline
	stepStuck         // every thread waits, with no deadline
)

// step looks once: when no thread of the subtree runs, it moves virtual
// time to the earliest deadline and lets go the threads waiting for it.
func (l *Layer) step() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.spaces) == 0 {
		return stepBusy
	}
	var waiting uint64
	for _, h := range l.spaces {
		// A thread stopped from outside (a checkpoint being taken) may
		// be resumed, and one not yet started (the program still being
		// loaded) will run: neither is a reason to jump, nor a deadlock.
		busy, w, err := l.sched.SpaceRunning(h)
		if err == nil && busy > 0 {
			return stepBusy
		}
		waiting += w
	}
	if waiting == 0 {
		// No thread at all (the loader has yet to make one, or the
		// program is ending): nothing waits.
		return stepBusy
	}
	for w := range l.waiters {
		if w.closed {
			// Let go, and not yet back at work: its thread may look
			// asleep a moment longer.
			return stepBusy
		}
	}
	if l.opts.Rate > 0 {
		// Time runs by itself: nothing to move, but nothing to end
		// while a deadline is ahead.
		for w := range l.waiters {
			if w.deadline != 0 {
				return stepBusy
			}
		}
		return stepStuck
	}
	var next uint64
	for w := range l.waiters {
		if w.deadline != 0 && !w.closed && (next == 0 || w.deadline < next) {
			next = w.deadline
		}
	}
	if next == 0 {
		return stepStuck
	}
	l.now = max(l.now, next)
	for w := range l.waiters {
		if w.deadline != 0 && w.deadline <= l.now && !w.closed {
			w.closed = true
			close(w.done)
		}
	}
	return stepJumped
}

// endDeadlocked ends the subtree: every thread waits with no deadline, so
// none will ever run again.
func (l *Layer) endDeadlocked() {
	l.mu.Lock()
	l.deadlocked = true
	spaces := append([]uint64(nil), l.spaces...)
	l.mu.Unlock()
	l.log.Debug("deadlock: ending the program", "waited", l.opts.Deadlock)
	for _, h := range spaces {
		l.sched.SpaceKill(h, nester.StatusTimeout)
	}
}

// Deadlocked reports whether the layer ended its program as deadlocked.
func (l *Layer) Deadlocked() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadlocked
}

func init() {
	nester.Register(nester.Kind{
		Name:    "timewarp",
		Summary: "virtual time for the program below it: repeatable clock readings, and sleeps that end at once",
		Usage:   Usage,
		New: nester.Maker(func(args string, h nester.Host) (*Layer, error) {
			return New(args, h.Log)
		}),
	})
}
