package linux_test

import (
	"path/filepath"
	"strings"
	"testing"

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
	backends := []string{"emu"}
	if kvmOpens() {
		backends = append(backends, "kvm")
	}
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			for _, c := range []struct {
				layer  string
				args   []string
				stdout string
				goProg bool
			}{
				{"timewarp", []string{busybox, "date"}, "Sat Jan  1 00:00:00 UTC 2000\n", false},
				{"timewarp=start=2030-01-01T00:00:00Z,tick=1us", []string{busybox, "date", "+%s"}, "1893456000\n", false},
				{"timewarp", []string{busybox, "sleep", "3600"}, "", false},
				{"timewarp", []string{warp}, warpOutput, true},
			} {
				if c.goProg && b != "kvm" {
					continue
				}
				what := c.layer + " " + strings.Join(c.args[1:], " ")
				var first string
				for run := 1; run <= 2; run++ {
					r := nestvmLinux(t, nestvm, b, t.TempDir(), append([]string{"--layer", c.layer}, c.args...)...)
					if r.status != 0 || r.stdout != c.stdout || r.stderr != "" {
						t.Fatalf("%s (run %d): stdout %q, stderr %q, status %d; want %q, status 0", what, run, r.stdout, r.stderr, r.status, c.stdout)
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
