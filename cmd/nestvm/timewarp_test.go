package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/nester"
)

// TestTimewarpBadArguments: a malformed start, tick, rate or deadlock is
// refused before anything runs, with status 2 and the argument named.
func TestTimewarpBadArguments(t *testing.T) {
	for _, c := range []struct{ spec, names string }{
		{"timewarp=start=tomorrow", "start="},
		{"timewarp=tick=0", "tick="},
		{"timewarp=tick=often", "tick="},
		{"timewarp=rate=0", "rate="},
		{"timewarp=rate=fast", "rate="},
		{"timewarp=deadlock=-1s", "deadlock="},
		{"timewarp=warp=9", "warp"},
	} {
		var stdout, stderr bytes.Buffer
		got := mainStatus([]string{"run", "--layer", c.spec, testutil.Guest(t, "sleeper"), "1"}, &stdout, &stderr)
		if got != nester.StatusUsage || stdout.Len() != 0 || !strings.Contains(stderr.String(), c.names) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("--layer %s: status %d, stdout %q, stderr %q; want %d and one line naming %q", c.spec, got, stdout.String(), stderr.String(), nester.StatusUsage, c.names)
		}
	}
	var stdout, stderr bytes.Buffer
	if got := mainStatus([]string{"layers"}, &stdout, &stderr); got != 0 || !strings.Contains(stdout.String(), "timewarp") || !strings.Contains(stdout.String(), "deadlock=DUR") {
		t.Errorf("nestvm layers: status %d, output %q: want timewarp and its arguments", got, stdout.String())
	}
}

// TestTimewarpDeadlock: a program whose every thread waits with no
// deadline is ended after the deadlock limit, with one line saying so and
// a status that is not 0, on each backend; it is never spun on.
func TestTimewarpDeadlock(t *testing.T) {
	for _, b := range backendtest.Names {
		t.Run(b, func(t *testing.T) {
			backendtest.Get(t, b)
			status, out, errs := run(t, "run", "--backend", b, "--log-level", "warn", "--layer", "timewarp=deadlock=200ms", testutil.Guest(t, "deadlock"))
			want := "nestvm: " + testutil.Guest(t, "deadlock") + ": layer timewarp: deadlock: every thread of the program waited with no deadline for 200ms of real time (timewarp deadlock=)\n"
			if status == 0 || out != "deadlock: both waiting\n" || errs != want {
				t.Errorf("status %d, stdout %q, stderr %q; want not 0, the program's line, and %q", status, out, errs, want)
			}
		})
	}
}

// TestTimewarpSleeper: `nestvm run --layer timewarp sleeper 3600` sleeps an
// hour of virtual time and prints the same bytes on each backend.
func TestTimewarpSleeper(t *testing.T) {
	var first string
	for _, b := range backendtest.Names {
		t.Run(b, func(t *testing.T) {
			backendtest.Get(t, b)
			status, out, errs := run(t, "run", "--backend", b, "--log-level", "warn", "--layer", "timewarp", testutil.Guest(t, "sleeper"), "3600")
			if status != 0 || errs != "" || !strings.HasSuffix(out, "after 3600 s: monotonic 3601.000002000 realtime 946688400.000003000\nslept 3600 s\n") {
				t.Fatalf("status %d, stderr %q, output:\n%s", status, errs, out)
			}
			if first != "" && out != first {
				t.Errorf("output differs from the other backend's:\n%s\n%s", out, first)
			}
			first = out
		})
	}
}

// TestTimewarpCheckpoint: a checkpoint below timewarp saves the program's
// virtual time, and a restore under timewarp goes on from it: what the
// saved run and the restored one print together is what one run prints,
// every reading included, so time never went back. On each backend.
func TestTimewarpCheckpoint(t *testing.T) {
	for _, b := range backendtest.Names {
		t.Run(b, func(t *testing.T) {
			backendtest.Get(t, b)
			sleeper := testutil.Guest(t, "sleeper")
			file := filepath.Join(t.TempDir(), "warp.nvck")
			status, whole, errs := run(t, "run", "--backend", b, "--log-level", "warn", "--layer", "timewarp", sleeper, "300")
			if status != 0 || errs != "" {
				t.Fatalf("whole run: status %d, stderr %q", status, errs)
			}
			status, first, errs := run(t, "run", "--backend", b, "--log-level", "warn", "--layer", "timewarp", "--layer", "checkpoint="+file+",after-writes=3,stop", sleeper, "300")
			if status != 0 || !strings.Contains(errs, "stopped after saving checkpoint") {
				t.Fatalf("saved run: status %d, stderr %q", status, errs)
			}
			// Saved after the third line, at 180 s of sleep.
			status, shown, errs := run(t, "inspect", file)
			if status != 0 || !strings.Contains(shown, "\nits clock: 2000-01-01T00:03:00.") {
				t.Errorf("inspect: status %d, stderr %q, output:\n%s\nwant the saved virtual time", status, errs, shown)
			}
			status, rest, errs := run(t, "restore", "--backend", b, "--log-level", "warn", "--layer", "timewarp", file)
			if status != 0 || errs != "" {
				t.Fatalf("restore: status %d, stderr %q", status, errs)
			}
			if first+rest != whole {
				t.Errorf("saved then restored printed:\n%s---\n%s\nwant, as one run:\n%s", first, rest, whole)
			}
		})
	}
}

// TestTimewarpFutexClock: `nestvm run --layer timewarp futexclock timeout
// 3600000` waits an hour of virtual time on a futex whose limit is on the
// program's clock, and ends at once with the timeout, on each backend.
func TestTimewarpFutexClock(t *testing.T) {
	for _, b := range backendtest.Names {
		t.Run(b, func(t *testing.T) {
			backendtest.Get(t, b)
			status, out, errs := run(t, "run", "--backend", b, "--log-level", "warn", "--layer", "timewarp", testutil.Guest(t, "futexclock"), "timeout", "3600000")
			if status != 0 || errs != "" || out != "timeout: timed out after 3600000 ms\n" {
				t.Fatalf("status %d, stderr %q, output %q; want the timeout an hour in", status, errs, out)
			}
		})
	}
}

// TestTimewarpCheckpointFutexClock: a program saved while a thread waits
// in futex_wait_clock, its deadline an hour ahead on the timewarp clock,
// and restored under timewarp, goes on at the virtual time it was saved
// at (the first reading after the restore is the one a whole run makes
// there, not an earlier one), and its wait ends as it would have: with
// the timeout at its deadline, at once in real time, or woken by a
// futex_wake that comes after the restore. The saved and restored runs
// together print what one run prints, on each backend.
func TestTimewarpCheckpointFutexClock(t *testing.T) {
	for _, c := range []struct{ name, wakeMS, ends string }{
		{"timeout", "7200000", "held: timed out after 3600000 ms\n"},
		{"wake", "1800000", "held: woken after 1800000 ms\n"},
	} {
		for _, b := range backendtest.Names {
			t.Run(c.name+"/"+b, func(t *testing.T) {
				backendtest.Get(t, b)
				futexclock := testutil.Guest(t, "futexclock")
				args := []string{futexclock, "held", c.wakeMS, "3600000"}
				file := filepath.Join(t.TempDir(), "futex.nvck")
				status, whole, errs := run(t, append([]string{"run", "--backend", b, "--log-level", "warn", "--layer", "timewarp"}, args...)...)
				if want := "held: waiting\nheld: clock at 61000004 us\n" + c.ends; status != 0 || errs != "" || whole != want {
					t.Fatalf("whole run: status %d, stderr %q, output %q; want %q", status, errs, whole, want)
				}
				// Saved after the line the first thread writes once the
				// second waits in futex_wait_clock, a minute in.
				status, first, errs := run(t, append([]string{"run", "--backend", b, "--log-level", "warn", "--layer", "timewarp", "--layer", "checkpoint=" + file + ",after-writes=1,stop"}, args...)...)
				if status != 0 || first != "held: waiting\n" || !strings.Contains(errs, "stopped after saving checkpoint") {
					t.Fatalf("saved run: status %d, output %q, stderr %q", status, first, errs)
				}
				status, shown, errs := run(t, "inspect", file)
				if status != 0 || !strings.Contains(shown, "\nits clock: 2000-01-01T00:01:00.") {
					t.Errorf("inspect: status %d, stderr %q, output:\n%s\nwant the virtual time a minute in", status, errs, shown)
				}
				began := time.Now()
				status, rest, errs := run(t, "restore", "--backend", b, "--log-level", "warn", "--layer", "timewarp", file)
				took := time.Since(began)
				if status != 0 || errs != "" {
					t.Fatalf("restore: status %d, stderr %q, output %q", status, errs, rest)
				}
				if first+rest != whole {
					t.Errorf("saved then restored printed:\n%s---\n%s\nwant, as one run:\n%s", first, rest, whole)
				}
				// The hour is virtual: a restore that waited for it in
				// real time, or for any real time at all, is far over.
				if took > time.Minute {
					t.Errorf("restore took %v of real time", took)
				}
			})
		}
	}
}
