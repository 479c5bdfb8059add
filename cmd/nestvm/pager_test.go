package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nestvm/internal/testutil"
	"nestvm/nester"
)

// TestRunPager: --layer pager=FILE,max-pages=N runs memtouch with the
// checksum it prints alone, reports its counts on stderr, and leaves the
// evicted pages in the swap file; a swap file that cannot be opened or
// written fails the run saying why.
func TestRunPager(t *testing.T) {
	memtouch := testutil.Guest(t, "memtouch")
	for _, backend := range []string{"emu", "kvm"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "kvm" {
				testutil.RequireKVM(t)
			}
			status, want, errs := run(t, "run", "--backend", backend, memtouch, "4")
			if status != 0 || !strings.Contains(want, "checksum") {
				t.Fatalf("memtouch alone: status %d, %q, %q", status, want, errs)
			}
			swap := filepath.Join(t.TempDir(), "swap.img")
			status, out, errs := run(t, "run", "--backend", backend, "--log-level", "warn", "--layer", "pager="+swap+",max-pages=64", memtouch, "4")
			if status != 0 || out != want {
				t.Fatalf("memtouch under the pager: status %d, %q (want %q), stderr %q", status, out, want, errs)
			}
			if !strings.Contains(errs, "[pager] max-pages=64 page-ins=") || !strings.Contains(errs, "peak-resident=64 ") || strings.Contains(errs, "page-outs=0 ") {
				t.Errorf("the pager's report: %q", errs)
			}
			if fi, err := os.Stat(swap); err != nil || fi.Size() < 900*4096 {
				t.Errorf("swap file: %v, %v; want about 1024 pages", fi, err)
			}
		})
	}
	hello := testutil.Guest(t, "hello")
	bad := filepath.Join(t.TempDir(), "no", "dir", "swap.img")
	status, out, errs := run(t, "run", "--layer", "pager="+bad, hello)
	if status != nester.StatusUsage || out != "" || !strings.Contains(errs, "swap file") || !strings.Contains(errs, "no such file or directory") {
		t.Errorf("an unwritable swap file: status %d, stdout %q, stderr %q", status, out, errs)
	}
	status, _, errs = run(t, "run", "--layer", "pager=swap.img,max-pages=8", hello)
	if status != nester.StatusUsage || !strings.Contains(errs, "at least 64") {
		t.Errorf("max-pages below the minimum: status %d, stderr %q", status, errs)
	}
	if _, err := os.Stat("/dev/full"); err == nil {
		status, _, errs = run(t, "run", "--log-level", "warn", "--layer", "pager=/dev/full,max-pages=64", memtouch, "1")
		if status != nester.StatusMonitor || !strings.Contains(errs, "layer pager: writing page") || !strings.Contains(errs, "no space left on device") {
			t.Errorf("a swap file that fills up: status %d, stderr %q", status, errs)
		}
	}
}
