package linux_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"nestvm/internal/backendtest"
	"nestvm/machine"
)

// TestTimersAsNative runs c/timers (alarm and pause, setitimer's periods
// waited for with sigsuspend, timer_create's signals with their siginfo,
// absolute and periodic settings, timer_delete, and a default SIGALRM
// ending a child) on each backend, and compares with native Linux.
func TestTimersAsNative(t *testing.T) {
	prog := builtOnce(t, "timers", true, func(out string) *exec.Cmd {
		return exec.Command("gcc", "-static", "-O2", "-pthread", "-o", out, filepath.Join("testdata", "c", "timers.c"))
	})
	want, wantStatus := native(t, prog)
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		out, errs, res := runLinux(t, b, prog, runOpts{})
		if out != want || status(res) != wantStatus {
			t.Fatalf("got %q, status %d (%s), stderr %q; native %q, status %d", out, status(res), res, errs, want, wantStatus)
		}
	})
}
