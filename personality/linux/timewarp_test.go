package linux_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nestvm/internal/testutil"
)

// warpOutput is what testdata/go/warp prints under timewarp from the
// default start: every time to the second, whatever its threads did.
const warpOutput = `start: 2000-01-01 00:00:00, 0s gone
slept 1h: 2000-01-01 01:00:00, 1h0m0s gone
timer of 90m: 2000-01-01 02:30:00, 2h30m0s gone
3 ticks of 1m: 2000-01-01 02:33:00, 2h33m0s gone
AfterFunc of 30s: 2000-01-01 02:33:30, 2h33m30s gone
`

// TestLinuxUnderTimewarp: under the timewarp layer a Linux program's
// clock reads (clock_gettime, gettimeofday, time) are virtual, and its
// sleeps and timed waits (nanosleep, futex and epoll timeouts, Go's
// timers) are clock_waits the layer ends at once; two runs, and runs on
// each backend, print the same bytes. Go programs run on kvm only: emu's
// Unicorn is not atomic across threads (docs/linux.md).
func TestLinuxUnderTimewarp(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	corpus := corpusDir(t)
	busybox := filepath.Join(corpus, "busybox")
	warp := filepath.Join(corpus, "go", "warp")
	if !exists(busybox) || !exists(warp) {
		t.Skipf("%s or %s not built: scripts/linux-corpus says why", busybox, warp)
	}
	nestvm := nestvmBinary(t)
	for _, b := range backends() {
		t.Run(b, func(t *testing.T) {
			for _, c := range []struct {
				layer  string
				args   []string
				stdout string
				status int
				goProg bool
			}{
				{"timewarp", []string{busybox, "date"}, "Sat Jan  1 00:00:00 UTC 2000\n", 0, false},
				{"timewarp=start=2030-01-01T00:00:00Z,tick=1us", []string{busybox, "date", "+%s"}, "1893456000\n", 0, false},
				{"timewarp", []string{busybox, "sleep", "3600"}, "", 0, false},
				// timeout's alarm is a timer on the virtual clock: it
				// ends the sleep an hour in, at once, as SIGTERM does
				// natively (128+15). /sleep is busybox, in the files
				// root.
				{"timewarp", []string{busybox, "timeout", "3600", "/sleep", "7200"}, "", 143, false},
				{"timewarp", []string{warp}, warpOutput, 0, true},
			} {
				if c.goProg && b != "kvm" {
					continue
				}
				what := c.layer + " " + strings.Join(c.args[1:], " ")
				var first string
				for run := 1; run <= 2; run++ {
					dir := t.TempDir()
					copyFile(t, busybox, filepath.Join(dir, "sleep"))
					r := nestvmLinux(t, nestvm, b, dir, append([]string{"--layer", c.layer}, c.args...)...)
					if r.status != c.status || r.stdout != c.stdout || r.stderr != "" {
						t.Fatalf("%s (run %d): stdout %q, stderr %q, status %d; want %q, status %d", what, run, r.stdout, r.stderr, r.status, c.stdout, c.status)
					}
					if run == 2 && r.stdout != first {
						t.Errorf("%s: the runs differ:\n%s\n%s", what, first, r.stdout)
					}
					first = r.stdout
				}
			}
		})
	}
}

// warpTimersOutput is what testdata/c/warptimers.c prints: natively after
// five hours, under timewarp at once.
const warpTimersOutput = `alarm(3600): 1 alarm after 3600s
setitimer(1h, every 30m): 3 alarms after 7200s, next in 1800s
timer_create(2h) during nanosleep(3h): EINTR, 7 ticks, after 7200s, 3600s left
`

// TestTimersUnderTimewarp: a program's interval timers (alarm, setitimer,
// timer_create) run on its clock, so that under timewarp a program that
// waits only for them, hours ahead, is not a deadlock but ends at once,
// its signals arriving at their virtual times; two runs, and runs on
// each backend, print the same bytes.
func TestTimersUnderTimewarp(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	prog := builtC(t, "warptimers")
	nestvm := nestvmBinary(t)
	for _, b := range backends() {
		t.Run(b, func(t *testing.T) {
			for run := 1; run <= 2; run++ {
				start := time.Now()
				r := nestvmLinux(t, nestvm, b, t.TempDir(), "--layer", "timewarp", prog)
				if r.status != 0 || r.stdout != warpTimersOutput || r.stderr != "" {
					t.Fatalf("run %d: stdout %q, stderr %q, status %d; want %q, status 0", run, r.stdout, r.stderr, r.status, warpTimersOutput)
				}
				t.Logf("run %d took %v", run, time.Since(start))
			}
		})
	}
}

// TestTimersRestoredUnderTimewarp: a program saved (at its first line of
// output, 2 s in) with an alarm and an interval timer armed, under
// timewarp, and restored under timewarp, gets its signals at the virtual
// times it would have got them had it never been saved: its timers resume
// with what they had left on the clock they count on, not on the host's,
// on which almost nothing had passed at the save (they came at other
// times then: the tick 6 s in, say, or the alarm 7 s in).
func TestTimersRestoredUnderTimewarp(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	prog := builtC(t, "warprestore")
	nestvm := nestvmBinary(t)
	for _, b := range backends() {
		t.Run(b, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "warp.nvck")
			r := nestvmLinux(t, nestvm, b, dir, "--layer", "timewarp", "--layer", "checkpoint="+file+",after-writes=1,stop", prog)
			if r.status != 0 || r.stdout != "armed, 1 tick so far\n" || !strings.Contains(r.stderr, "stopped after saving checkpoint") {
				t.Fatalf("run: stdout %q, stderr %q, status %d", r.stdout, r.stderr, r.status)
			}
			r = nestvmCommand(t, nestvm, dir, "restore", "--backend", b, "--log-level", "warn", "--layer", "timewarp", file)
			if want := "ticks at 1 4, alarm at 6\n"; r.status != 0 || r.stdout != want || r.stderr != "" {
				t.Fatalf("restore: stdout %q, stderr %q, status %d; want %q", r.stdout, r.stderr, r.status, want)
			}
		})
	}
}

// copyFile copies the executable from to to.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
