package timewarp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/nester"
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
	backendtest.Each(t, func(t *testing.T, b vmm.Backend) {
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
	backendtest.Each(t, func(t *testing.T, b vmm.Backend) {
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
	backendtest.Each(t, func(t *testing.T, b vmm.Backend) {
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
