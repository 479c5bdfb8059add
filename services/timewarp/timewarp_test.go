package timewarp

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/interpose"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/services/checkpoint"
	"nestvm/vmm"
)

// sleeperOutput is what sleeper n prints under a timewarp layer with start
// and tick: each step's deadline is the first reading plus the seconds
// slept, time jumps to it exactly, and each of the two reads after it
// moves time on by a tick.
func sleeperOutput(n int, start time.Time, tick time.Duration) string {
	var b strings.Builder
	first := monoStart + uint64(tick)
	realBase := uint64(start.UnixNano()) - monoStart
	step := 60
	if n < 60 {
		step = 1
	}
	for done := 0; done < n; {
		done += min(step, n-done)
		at := first + uint64(done)*uint64(time.Second)
		mono, real := at+uint64(tick), at+2*uint64(tick)+realBase
		fmt.Fprintf(&b, "after %d s: monotonic %d.%09d realtime %d.%09d\n", done,
			mono/1e9, mono%1e9, real/1e9, real%1e9)
	}
	fmt.Fprintf(&b, "slept %d s\n", n)
	return b.String()
}

func newLayer(t *testing.T, args string) *Layer {
	t.Helper()
	l, err := New(args, nil)
	if err != nil {
		t.Fatalf("timewarp=%s: %v", args, err)
	}
	return l
}

// TestSleeperWarps: an hour of sleep in minute steps ends at once under the
// layer, each step reads exactly the virtual times it must, and two runs
// (and runs on each backend) print the same bytes.
func TestSleeperWarps(t *testing.T) {
	want := sleeperOutput(3600, DefaultStart, time.Microsecond)
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		for run := 1; run <= 2; run++ {
			l := newLayer(t, "")
			out, res := layertest.Run(t, b, []nester.Layer{l}, "", "sleeper", "3600")
			if res.String() != "exited with status 0" {
				t.Fatalf("run %d: %s; output:\n%s", run, res, out)
			}
			if out != want {
				t.Fatalf("run %d printed:\n%s\nwant:\n%s", run, out, want)
			}
			if got := l.Now(); got < time.Hour {
				t.Errorf("run %d: virtual time at the end is %v, want at least an hour", run, got)
			}
		}
	})
}

// TestStartAndTick: start= sets the realtime clock's first reading and
// tick= how far each read moves it.
func TestStartAndTick(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	want := sleeperOutput(3, start, time.Millisecond)
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l := newLayer(t, "start=2030-01-01T00:00:00Z,tick=1ms")
		out, res := layertest.Run(t, b, []nester.Layer{l}, "", "sleeper", "3")
		if res.String() != "exited with status 0" || out != want {
			t.Fatalf("%s; printed:\n%s\nwant:\n%s", res, out, want)
		}
	})
}

// TestBadOptions: each malformed argument is refused with its name.
func TestBadOptions(t *testing.T) {
	for _, c := range []struct{ args, names string }{
		{"start=yesterday", "start="},
		{"start=1960-01-01T00:00:00Z", "start="},
		{"tick=fast", "tick="},
		{"tick=0", "tick="},
		{"tick=-1us", "tick="},
		{"rate=0", "rate="},
		{"rate=-2", "rate="},
		{"rate=NaN", "rate="},
		{"rate=x", "rate="},
		{"deadlock=soon", "deadlock="},
		{"deadlock=-1s", "deadlock="},
		{"speed=2", "speed"},
		{"tick", "tick"},
		{"tick=1us,tick=2us", "tick given twice"},
	} {
		_, err := ParseOptions(c.args)
		if err == nil || !strings.Contains(err.Error(), c.names) {
			t.Errorf("ParseOptions(%q) = %v, want an error naming %q", c.args, err, c.names)
		}
	}
	o, err := ParseOptions("start=2030-01-01T00:00:00Z,tick=2us,rate=0.5,deadlock=0")
	if err != nil || !o.Start.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) || o.Tick != 2*time.Microsecond || o.Rate != 0.5 || o.Deadlock != 0 {
		t.Errorf("ParseOptions of good values = %+v, %v", o, err)
	}
}

// TestRate: with rate=R virtual time runs by itself, R times real time,
// and a wait ends once the clock has reached its deadline: every reading
// after a step is past the step's deadline, and realtime, read after
// monotonic time, is at least start plus it and a tick.
func TestRate(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l := newLayer(t, "rate=1000")
		out, res := layertest.Run(t, b, []nester.Layer{l}, "", "sleeper", "120")
		if res.String() != "exited with status 0" || !strings.HasSuffix(out, "slept 120 s\n") {
			t.Fatalf("%s; printed:\n%s", res, out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("printed:\n%s\nwant two steps and the end", out)
		}
		realBase := uint64(DefaultStart.UnixNano()) - monoStart
		for i, line := range lines[:2] {
			var done, ms, mns, rs, rns uint64
			if _, err := fmt.Sscanf(line, "after %d s: monotonic %d.%d realtime %d.%d", &done, &ms, &mns, &rs, &rns); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			mono, real := ms*1e9+mns, rs*1e9+rns
			if done != uint64(60*(i+1)) || mono < monoStart+done*uint64(time.Second) {
				t.Errorf("line %q: read before its deadline of %d s", line, done)
			}
			if real < realBase+mono+uint64(time.Microsecond) {
				t.Errorf("line %q: realtime is behind start plus monotonic time and a tick", line)
			}
		}
	})
}

// holder is a layer below timewarp that keeps what a checkpoint layer
// keeps: the program's space, made through the space it hands down, and
// the clock timewarp handed down, to stop the program and to wait on
// the clock as a personality's timer does.
type holder struct {
	c     *vmm.Caller
	clock uint64
	mu    sync.Mutex
	child uint64
}

func (h *holder) Name() string { return "holder" }
func (h *holder) Close() error { return nil }

func (h *holder) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	host := mon.NewHost("holder", vmm.Quota{Handles: 1 << 10})
	h.c = host.NewCaller()
	clock := parent.Caps[nester.CapClock]
	var err error
	if h.clock, err = h.c.Insert(clock.Obj, clock.Rights, clock.Badge); err != nil {
		return nester.Env{}, err
	}
	w := &interpose.Wrapper{Host: host, Layer: "holder", Handler: interpose.HandlerFunc(func(c *interpose.Call) {
		c.Forward()
		if c.Op() == abi.OpSpaceCreate && c.Err == nil && c.Gave.Valid() {
			h.mu.Lock()
			if h.child == 0 {
				h.child, _ = h.c.Insert(c.Gave.Obj, c.Gave.Rights, c.Gave.Badge)
			}
			h.mu.Unlock()
		}
	})}
	ws, err := w.Wrap(parent.Caps[nester.CapSpace], nester.CapSpace)
	if err != nil {
		return nester.Env{}, err
	}
	return parent.With(nester.CapSpace, ws), nil
}

// TestHeldIsNotWaiting: while a checkpoint holds the program stopped
// (checkpoint.StopAll, as a save does) longer than deadlock=, the layer
// neither ends it as deadlocked nor moves time on to the deadline of a
// clock_wait that no thread of the program makes (as a Linux timer's
// is): a stopped thread may be started again at any moment. The program
// spins without calling the monitor, so it runs, never waits, until it
// is stopped; after the hold it runs on.
func TestHeldIsNotWaiting(t *testing.T) {
	// Long enough that a hold of twice as long is many looks of the
	// scheduler.
	const deadlock = time.Second
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l := newLayer(t, "deadlock="+deadlock.String())
		h := &holder{}
		r, out := layertest.Launch(t, b, []nester.Layer{l, h}, "spin")
		defer l.Close()
		for out.String() == "" {
			select {
			case <-r.Done():
				t.Fatalf("spin ended: %v, %q", r.Wait(), out.String())
			case <-time.After(time.Millisecond):
			}
		}
		// A wait an hour ahead, by no thread of the program.
		waiter := h.c.Host().NewCaller()
		woke := make(chan uint64, 1)
		go func() {
			now, _, _ := waiter.ClockWait(h.clock, abi.ClockMonotonic, uint64(l.Now()+time.Hour))
			woke <- now
		}()
		h.mu.Lock()
		child := h.child
		h.mu.Unlock()
		stopped, err := checkpoint.StopAll(h.c, child)
		if err != nil || len(stopped) != 1 {
			t.Fatalf("StopAll: %d threads, %v", len(stopped), err)
		}
		before := l.Now()
		// The hold is what is tested: a real time well past deadlock=,
		// during which the scheduler looks many times.
		select {
		case now := <-woke:
			t.Fatalf("time jumped to %v while the program was held", time.Duration(now))
		case <-r.Done():
			t.Fatalf("the held program ended: %v", r.Wait())
		case <-time.After(2 * deadlock):
		}
		if l.Deadlocked() || l.Now() != before {
			t.Fatalf("while held: deadlocked %v, time moved from %v to %v", l.Deadlocked(), before, l.Now())
		}
		if err := checkpoint.StartAll(h.c, stopped); err != nil {
			t.Fatal(err)
		}
		select {
		case <-r.Done():
			t.Fatalf("the program ended once started again: %v", r.Wait())
		case now := <-woke:
			t.Fatalf("time jumped to %v while the program spins", time.Duration(now))
		case <-time.After(deadlock):
		}
		r.Kill(0, "test over")
		r.Wait()
		waiter.Kill()
		<-woke
		if l.Deadlocked() {
			t.Errorf("a program that ran, was held and ran again was reported deadlocked")
		}
	})
}

// slowLoader is a layer below timewarp that keeps the space_create of the
// program's space from returning for a while, as a loaded host keeps a
// loader from getting on: the space exists, and no thread of it yet.
type slowLoader struct{ hold time.Duration }

func (s *slowLoader) Name() string { return "slow-loader" }
func (s *slowLoader) Close() error { return nil }

func (s *slowLoader) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	host := mon.NewHost("slow-loader", vmm.Quota{Handles: 1 << 10})
	w := &interpose.Wrapper{Host: host, Layer: "slow-loader", Handler: interpose.HandlerFunc(func(c *interpose.Call) {
		c.Forward()
		if c.Op() == abi.OpSpaceCreate {
			time.Sleep(s.hold) // the condition under test: a slow load, not a race to hide
		}
	})}
	ws, err := w.Wrap(parent.Caps[nester.CapSpace], nester.CapSpace)
	if err != nil {
		return nester.Env{}, err
	}
	return parent.With(nester.CapSpace, ws), nil
}

// TestLoadingIsNotDeadlock: a program whose space exists but whose first
// thread is not made yet (its loader held up four times deadlock=) has no
// thread that waits: the layer neither ends it as deadlocked nor moves
// time, and the program then runs as it would have.
func TestLoadingIsNotDeadlock(t *testing.T) {
	const deadlock = 50 * time.Millisecond
	want := sleeperOutput(3, DefaultStart, time.Microsecond)
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l := newLayer(t, "deadlock="+deadlock.String())
		out, res := layertest.Run(t, b, []nester.Layer{l, &slowLoader{hold: 4 * deadlock}}, "", "sleeper", "3")
		if res.String() != "exited with status 0" || l.Deadlocked() {
			t.Fatalf("%s (deadlocked %v); output:\n%s", res, l.Deadlocked(), out)
		}
		if out != want {
			t.Fatalf("printed:\n%s\nwant:\n%s", out, want)
		}
	})
}

// TestFutexWaitClock: a guest's futex wait whose time limit is on its
// clock (futex_wait_clock) is a clock_wait the layer holds. An hour's
// limit on a word nobody changes ends at once with the timeout, an hour
// of virtual time later; a futex_wake five virtual seconds in, by a
// thread that sleeps until then, wakes the waiter then, and time never
// jumps on to its limit; a wait with no limit, while nothing else runs,
// is a deadlock.
func TestFutexWaitClock(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l := newLayer(t, "")
		out, res := layertest.Run(t, b, []nester.Layer{l}, "", "futexclock", "timeout", "3600000")
		if res.String() != "exited with status 0" || out != "timeout: timed out after 3600000 ms\n" {
			t.Fatalf("timeout: %s; printed %q, want the timeout an hour in", res, out)
		}
		if got := l.Now(); got < time.Hour {
			t.Errorf("timeout: virtual time at the end is %v, want at least an hour", got)
		}

		l = newLayer(t, "")
		out, res = layertest.Run(t, b, []nester.Layer{l}, "", "futexclock", "wake", "5000", "3600000")
		if res.String() != "exited with status 0" || out != "wake: woken after 5000 ms\n" {
			t.Fatalf("wake: %s; printed %q, want the wake 5 s in", res, out)
		}
		if got := l.Now(); got >= time.Minute {
			t.Errorf("wake: virtual time at the end is %v: it jumped past the wake toward the waiter's limit", got)
		}

		l = newLayer(t, "deadlock=100ms")
		out, res = layertest.Run(t, b, []nester.Layer{l}, "", "futexclock", "forever")
		if res.String() == "exited with status 0" || !l.Deadlocked() || out != "futexclock: waiting with no limit\n" {
			t.Fatalf("forever: %s, deadlocked %v, printed %q; want the program ended as deadlocked", res, l.Deadlocked(), out)
		}
	})
}

// TestFutexWaitClockHostTime: with no layer the clock is the host's, and a
// futex_wait_clock's limit is real time: the guest reads its clock at
// least the limit later, and at least that much real time passed.
func TestFutexWaitClockHostTime(t *testing.T) {
	const limit = 300 * time.Millisecond
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		start := time.Now()
		out, res := layertest.Run(t, b, nil, "", "futexclock", "timeout", fmt.Sprint(limit.Milliseconds()))
		took := time.Since(start)
		var ms int64
		if _, err := fmt.Sscanf(out, "timeout: timed out after %d ms\n", &ms); err != nil || res.String() != "exited with status 0" {
			t.Fatalf("%s; printed %q, want a timeout (%v)", res, out, err)
		}
		if ms < limit.Milliseconds() || took < limit {
			t.Errorf("the wait ended %d ms in on the guest's clock, %v of real time, before its %v limit", ms, took, limit)
		}
	})
}

// writeHolder is a layer below timewarp that holds the program's first
// console write in its call (Invocation.Hold) until released, as a
// checkpoint holds a writer until it stops it for a save; it keeps the
// clock timewarp handed down, to wait on it as a personality's timer does.
type writeHolder struct {
	c        *vmm.Caller
	clock    uint64
	once     sync.Once
	held     chan struct{} // closed once the write is held
	released chan struct{}
}

func (h *writeHolder) Name() string { return "write-holder" }
func (h *writeHolder) Close() error { return nil }

func (h *writeHolder) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	host := mon.NewHost("write-holder", vmm.Quota{Handles: 1 << 10})
	h.c = host.NewCaller()
	clock := parent.Caps[nester.CapClock]
	var err error
	if h.clock, err = h.c.Insert(clock.Obj, clock.Rights, clock.Badge); err != nil {
		return nester.Env{}, err
	}
	w := &interpose.Wrapper{Host: host, Layer: "write-holder", Handler: interpose.HandlerFunc(func(c *interpose.Call) {
		if c.Op() == abi.OpConsoleWrite {
			h.once.Do(func() { close(h.held) })
			if !c.Inv.Hold(h.released) {
				c.Return(0, 0)
				c.Inv.Restart()
				return
			}
		}
		c.Forward()
	})}
	wc, err := w.Wrap(parent.Caps[nester.CapConsole], nester.CapConsole)
	if err != nil {
		return nester.Env{}, err
	}
	return parent.With(nester.CapConsole, wc), nil
}

// TestHeldInCallIsNotWaiting: a thread a server holds in its call (as a
// checkpoint holds a writer until it stops it for a save) does not wait:
// while the program's only thread is so held, longer than deadlock=, the
// layer neither moves time on to the deadline of a clock_wait no thread
// of the program makes (a Linux timer's) nor ends the program as
// deadlocked; released, the program goes on.
func TestHeldInCallIsNotWaiting(t *testing.T) {
	const deadlock = 200 * time.Millisecond
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l := newLayer(t, "deadlock="+deadlock.String())
		h := &writeHolder{held: make(chan struct{}), released: make(chan struct{})}
		r, out := layertest.Launch(t, b, []nester.Layer{l, h}, "hello")
		defer l.Close()
		select {
		case <-h.held:
		case <-r.Done():
			t.Fatalf("hello ended before it wrote: %v", r.Wait())
		}
		waiter := h.c.Host().NewCaller()
		woke := make(chan uint64, 1)
		go func() {
			now, _, _ := waiter.ClockWait(h.clock, abi.ClockMonotonic, uint64(l.Now()+time.Hour))
			woke <- now
		}()
		before := l.Now()
		// The hold is what is tested: a real time well past deadlock=,
		// during which the scheduler looks many times.
		select {
		case now := <-woke:
			t.Fatalf("time jumped to %v while the program's thread was held in its call", time.Duration(now))
		case <-r.Done():
			t.Fatalf("the held program ended: %v", r.Wait())
		case <-time.After(4 * deadlock):
		}
		if l.Deadlocked() || l.Now() != before {
			t.Fatalf("while held: deadlocked %v, time moved from %v to %v", l.Deadlocked(), before, l.Now())
		}
		close(h.released)
		if res := r.Wait(); res.String() != "exited with status 0" || out.String() == "" {
			t.Fatalf("released: %s, printed %q", res, out.String())
		}
		waiter.Kill()
		<-woke
	})
}

// TestResumeClockReading: a restore goes on from a tick before the
// checkpoint's monotonic reading (the program's own last reading, since
// that read moved time on by a tick), keeps the distance realtime had,
// and takes no reading a timewarp clock with this tick cannot have given
// (a damaged checkpoint's) as one.
func TestResumeClockReading(t *testing.T) {
	tick := uint64(time.Microsecond)
	l := newLayer(t, "")
	realBase := l.realBase
	mono := uint64(61*time.Second) + 4*tick
	l.ResumeClock(mono, mono+tick+realBase)
	if got := uint64(l.Now()); got != mono-tick {
		t.Errorf("after ResumeClock(%d, ...) virtual time is %d, want %d", mono, got, mono-tick)
	}
	if l.realBase != realBase {
		t.Errorf("realtime's distance from monotonic is %d after the restore, want %d as saved", l.realBase, realBase)
	}
	for _, bad := range [][2]uint64{{tick / 2, tick/2 + tick + realBase}, {mono, mono}} {
		l := newLayer(t, "")
		before := l.Now()
		l.ResumeClock(bad[0], bad[1])
		if l.Now() != before || l.realBase != realBase {
			t.Errorf("ResumeClock(%d, %d) moved time to %v (realtime distance %d), want it left at %v", bad[0], bad[1], l.Now(), l.realBase, before)
		}
	}
}
