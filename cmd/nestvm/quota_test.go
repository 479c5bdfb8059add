package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"nestvm/internal/testutil"
	"nestvm/nester"
)

// TestQuotaRefusesBadValues: a --quota that no program can be given is a
// bad flag (status 2, naming the key and the limit), refused before
// anything runs.
func TestQuotaRefusesBadValues(t *testing.T) {
	hello := testutil.Guest(t, "hello")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--quota", "children=0", hello}, "children=0: want a number from 1 to 1048576"},
		{[]string{"run", "--quota", "threads=8193", hello}, "threads=8193: more than the 8192 the monitor supports"},
		{[]string{"run", "--quota", "handles=-1", hello}, "handles=-1: want a number from 1 to"},
		{[]string{"run", "--quota", "handles=2000000", hello}, "handles=2000000: more than the 1048576 the monitor supports"},
		{[]string{"run", "--quota", "memory=100G", hello}, "memory=100G: more than the 64G a space may map"},
		{[]string{"run", "--quota", "memory=4097", hello}, "memory=4097: not a multiple of the 4096-byte page"},
		{[]string{"run", "--quota", "memory=lots", hello}, `memory=lots: "lots" is not a size`},
		{[]string{"run", "--quota", "cpus=2", hello}, `"cpus": no such quota`},
		{[]string{"run", "--quota", "children", hello}, `"children": want KEY=VALUE`},
		{[]string{"run", "--mem", "100G", hello}, "--mem 100G: more than the 64G a space may map"},
		{[]string{"run", "--mem", "64M", "--quota", "memory=64M", hello}, "--mem and --quota memory= both set the program's memory"},
		{[]string{"restore", "--quota", "threads=0", hello}, "threads=0: want a number from 1 to 8192"},
	} {
		status, out, errs := run(t, tc.args...)
		if status != nester.StatusUsage || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: status %d, stdout %q, stderr %q; want %d and %q", tc.args, status, out, errs, nester.StatusUsage, tc.want)
		}
	}
}

// TestQuotaChildren: --quota children=N bounds the spaces a program has
// below it, launched directly or under a layer: the child past it gets
// NV_EQUOTA, and the program, not the monitor, decides what that means.
func TestQuotaChildren(t *testing.T) {
	fanout := testutil.Guest(t, "fanout")
	for _, b := range []string{"emu", "kvm"} {
		t.Run(b, func(t *testing.T) {
			if b == "kvm" {
				testutil.RequireKVM(t)
			}
			for _, layers := range [][]string{nil, {"--layer", "null"}} {
				args := append(append([]string{"run", "--backend", b, "--log-level", "warn", "--quota", "children=2"}, layers...), fanout)
				status, out, errs := run(t, append(args, "2")...)
				if status != 0 || !strings.Contains(out, "fanout 2 torn down in ") {
					t.Errorf("%v 2: status %d, stdout %q, stderr %q; want 0", layers, status, out, errs)
				}
				status, out, errs = run(t, append(args, "3")...)
				if status != 1 || errs != "fanout: child 2: space_create: quota exceeded\n" || out != "" {
					t.Errorf("%v 3: status %d, stdout %q, stderr %q; want 1 and child 2 refused", layers, status, out, errs)
				}
			}
		})
	}
}

// TestFanout: fifty live children, each with a thread blocked in a call,
// are created, all still running when checked, and torn down.
func TestFanout(t *testing.T) {
	fanout := testutil.Guest(t, "fanout")
	want := regexp.MustCompile(`^fanout 50 created in [1-9][0-9]* ns\nfanout 50 torn down in [1-9][0-9]* ns\n$`)
	for _, b := range []string{"emu", "kvm"} {
		t.Run(b, func(t *testing.T) {
			if b == "kvm" {
				testutil.RequireKVM(t)
			}
			status, out, errs := run(t, "run", "--backend", b, "--log-level", "warn", "--quota", "children=100", fanout, "50")
			if status != 0 || !want.MatchString(out) || errs != "" {
				t.Errorf("status %d, stdout %q, stderr %q", status, out, errs)
			}
		})
	}
}

// TestQuotaRestore: restore takes the quota the program was saved with;
// --quota may raise it, and a value below it is refused (status 2) before
// anything runs, since the saved space could not be rebuilt under it.
func TestQuotaRestore(t *testing.T) {
	counter := testutil.Guest(t, "counter")
	file := filepath.Join(t.TempDir(), "c")
	status, _, errs := run(t, "run", "--backend", "emu", "--log-level", "warn", "--quota", "children=4,threads=8",
		"--layer", "checkpoint="+file+",after-writes=2,stop", counter, "6")
	if status != 0 {
		t.Fatalf("save: status %d, stderr %q", status, errs)
	}
	for _, tc := range []struct{ quota, want string }{
		{"children=2", "--quota children=2: below the 4 the checkpoint's program was saved with"},
		{"threads=4", "--quota threads=4: below the 8 the checkpoint's program was saved with"},
		{"memory=4M", "--quota memory=4M: below the 1G the checkpoint's program was saved with"},
	} {
		status, out, errs := run(t, "restore", "--backend", "emu", "--quota", tc.quota, file)
		if status != nester.StatusUsage || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("--quota %s: status %d, stdout %q, stderr %q; want %d and %q", tc.quota, status, out, errs, nester.StatusUsage, tc.want)
		}
	}
	for _, quota := range []string{"", "children=4,threads=8", "children=100,threads=64,handles=4096,memory=2G"} {
		args := []string{"restore", "--backend", "emu", "--log-level", "warn"}
		if quota != "" {
			args = append(args, "--quota", quota)
		}
		status, out, errs := run(t, append(args, file)...)
		if status != 0 || !strings.HasPrefix(out, "3\n4\n5\n6\ntotal ") {
			t.Errorf("--quota %q: status %d, stdout %q, stderr %q", quota, status, out, errs)
		}
	}
}
