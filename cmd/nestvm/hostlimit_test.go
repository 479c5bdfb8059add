package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
)

// TestHostLimitReached runs fanout in a monitor whose open-file limit is
// far below what its children need: the guest's space_create gets
// NV_ENOMEM, the monitor says once which host limit it reached, and the
// program ends as it chooses (fanout: status 1), not the monitor.
func TestHostLimitReached(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to lower the open-file limit with")
	}
	fanout := testutil.Guest(t, "fanout")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		cmd := exec.Command("sh", "-c", `ulimit -n 200 && exec "$@"`, "sh", self, "run", "--backend", b.Name(), "--log-level", "warn",
			"--quota", "children=2000,threads=4096,handles=8192", fanout, "300")
		cmd.Env = append(os.Environ(), "NESTVM_TEST_AS_MAIN=1")
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		status := 0
		if ee, ok := err.(*exec.ExitError); ok {
			status = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		out, errs := stdout.String(), stderr.String()
		if status != 1 || !strings.Contains(out+errs, "_create: out of memory") {
			t.Errorf("exit status %d, want fanout's 1 after a space_create or region_create refused with out of memory; stdout:\n%s\nstderr:\n%s", status, out, errs)
		}
		if n := strings.Count(errs, "a host limit is reached"); n != 1 {
			t.Errorf("%d log lines naming the host limit, want 1; stderr:\n%s", n, errs)
		}
		if !strings.Contains(errs, "RLIMIT_NOFILE") {
			t.Errorf("the log line does not name RLIMIT_NOFILE; stderr:\n%s", errs)
		}
	})
}
