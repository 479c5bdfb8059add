package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"nestvm/internal/testutil"
	"nestvm/nester"
)

// The guest nester, examples/nest, run through the real command. nest
// reads the program it runs through its files handle, so every case serves
// a temporary directory holding copies of the guests it needs (and a text
// file) as the files root, and names programs relative to it.

// nestGuests are the guests the cases run under nest.
var nestGuests = []string{"nest", "hello", "crash-null", "crash-ud2", "crash-div0", "kerneltest"}

// nestRoot returns a files root holding the guests of nestGuests as
// NAME.elf and a text file notes.txt.
func nestRoot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, g := range nestGuests {
		data, err := os.ReadFile(testutil.Guest(t, g))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, g+".elf"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("just some text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runNest runs "nest ARGS..." under nestvm with root as its files root.
func runNest(t *testing.T, root string, args ...string) (int, string, string) {
	t.Helper()
	return run(t, append([]string{"run", "--log-level", "warn", "--files", root, testutil.Guest(t, "nest")}, args...)...)
}

var (
	nestProbeOnce sync.Once
	nestMissing   string
)

// requireNestKernel skips t, naming what is missing, while the monitor
// lacks what nest is built on: the --files root, a stderr handle in the
// start information, or one of the operations nest uses (nest reports a
// failed operation as "nest: OPERATION: invalid operation" and exits 125).
// Once those exist it never skips, so every case below can fail.
func requireNestKernel(t *testing.T, root string) {
	t.Helper()
	nestProbeOnce.Do(func() {
		status, out, errs := runNest(t, root, "hello.elf")
		switch {
		case strings.Contains(errs, "flag provided but not defined: -files"):
			nestMissing = "nestvm run has no --files flag"
		case status == nester.StatusMonitor && strings.Contains(errs, "no files root"):
			nestMissing = "the monitor gives programs no files handle"
		case status == nester.StatusMonitor && strings.HasSuffix(errs, ": invalid operation\n"):
			op := strings.TrimPrefix(strings.TrimSuffix(errs, ": invalid operation\n"), "nest: ")
			nestMissing = "the monitor does not implement " + op
		case status == nester.StatusMonitor && strings.HasSuffix(out, ": invalid operation\n"):
			// No stderr handle: nest fell back to the console.
			op := strings.TrimPrefix(strings.TrimSuffix(out, ": invalid operation\n"), "nest: ")
			nestMissing = "the monitor does not implement " + op + ", nor give programs a stderr handle"
		}
		if nestMissing != "" {
			return
		}
		// nest's diagnostics must reach stderr, not the console.
		if status, out, _ := runNest(t, root); status == nester.StatusUsage && strings.Contains(out, "usage: nest") {
			nestMissing = "the start information carries no stderr handle"
		}
	})
	if nestMissing != "" {
		t.Skipf("nest cannot run yet: %s", nestMissing)
	}
}

func TestNestHello(t *testing.T) {
	root := nestRoot(t)
	requireNestKernel(t, root)
	status, direct, errs := run(t, "run", "--log-level", "warn", testutil.Guest(t, "hello"), "world")
	if status != 0 || direct != "Hello, world!\n" || errs != "" {
		t.Fatalf("hello directly: status %d, stdout %q, stderr %q", status, direct, errs)
	}
	for _, depth := range []int{1, 3} {
		args := []string{}
		for range depth - 1 {
			args = append(args, "nest.elf")
		}
		args = append(args, "hello.elf", "world")
		status, out, errs := runNest(t, root, args...)
		if status != 0 || out != direct || errs != "" {
			t.Errorf("%d nesters deep: status %d, stdout %q, stderr %q; want 0, %q and nothing", depth, status, out, errs, direct)
		}
	}
}

// TestNestKernel runs kerneltest's areas under nest, each in a run of its
// own, on each backend: the ABI behaves as it does alone. The fault area
// clears its own exception port before it ends, so nest hears of the end
// only through its watcher (before it had one, that run never ended).
func TestNestKernel(t *testing.T) {
	root := nestRoot(t)
	requireNestKernel(t, root)
	for _, b := range []string{"emu", "kvm"} {
		t.Run(b, func(t *testing.T) {
			if b == "kvm" {
				testutil.RequireKVM(t)
			}
			for _, area := range []string{"derive", "ipc", "interpose", "fault", "keeper", "dirty", "mem", "batch"} {
				// A timeout, so that a nest that never ends fails the
				// test rather than hanging it.
				status, out, errs := run(t, "run", "--backend", b, "--log-level", "warn", "--timeout", "60s", "--files", root,
					testutil.Guest(t, "nest"), "kerneltest.elf", area)
				if status != 0 || !strings.Contains(out, "PASS "+area) {
					t.Errorf("nest kerneltest %s: status %d, stdout %q, stderr %q", area, status, out, errs)
				}
			}
		})
	}
}

func TestNestFaults(t *testing.T) {
	root := nestRoot(t)
	requireNestKernel(t, root)
	for _, tc := range []struct {
		guest  string
		status int
		fault  string
	}{
		{"crash-null", 139, `page fault: read of 0x0 \(not present\) at rip 0x4[0-9a-f]{5}`},
		{"crash-ud2", 132, `invalid opcode at rip 0x4[0-9a-f]{5}`},
		{"crash-div0", 136, `divide error at rip 0x4[0-9a-f]{5}`},
	} {
		// The nearest nest reports the fault, once; every nest above it
		// ends with the same status and says nothing.
		for _, depth := range []int{1, 2} {
			t.Run(tc.guest+"/depth"+strconv.Itoa(depth), func(t *testing.T) {
				var args []string
				for range depth - 1 {
					args = append(args, "nest.elf")
				}
				status, out, errs := runNest(t, root, append(args, tc.guest+".elf")...)
				if status != tc.status {
					t.Errorf("status %d, want %d", status, tc.status)
				}
				if !strings.HasPrefix(out, tc.guest+": ") {
					t.Errorf("the guest's own output was lost: %q", out)
				}
				re := regexp.MustCompile(`^nest: ` + regexp.QuoteMeta(tc.guest+".elf") + `: thread [0-9]+: ` + tc.fault + "\n$")
				if !re.MatchString(errs) {
					t.Errorf("stderr %q, want one line matching %s", errs, re)
				}
			})
		}
	}
}

func TestNestVerbose(t *testing.T) {
	root := nestRoot(t)
	requireNestKernel(t, root)
	status, out, errs := runNest(t, root, "--verbose", "hello.elf")
	if status != 0 || out != "Hello, nestvm!\n" {
		t.Fatalf("status %d, stdout %q, stderr %q", status, out, errs)
	}
	m := regexp.MustCompile(`(?m)^nest: served 0 faults, ([0-9]+) page requests$`).FindStringSubmatch(errs)
	if m == nil {
		t.Fatalf("stderr %q has no line counting what nest served", errs)
	}
	// hello touches at least its text, its data and its stack.
	if n, _ := strconv.Atoi(m[1]); n < 3 {
		t.Errorf("nest served %d page requests; hello needs at least 3 pages: %q", n, errs)
	}
}

func TestNestRefuses(t *testing.T) {
	root := nestRoot(t)
	requireNestKernel(t, root)
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"nope.elf"}, nester.StatusNotFound, "nest: nope.elf: not found\n"},
		{[]string{"notes.txt"}, nester.StatusNotRunnable, "nest: notes.txt: not a program nest can run: not an ELF file\n"},
		{[]string{}, nester.StatusUsage, "nest: no program given\n"},
		{[]string{"--frobnicate", "hello.elf"}, nester.StatusUsage, "nest: unknown option --frobnicate\n"},
	} {
		status, out, errs := runNest(t, root, tc.args...)
		if status != tc.status || !strings.HasPrefix(errs, tc.want) || out != "" {
			t.Errorf("nest %q: status %d, stdout %q, stderr %q; want %d and stderr starting %q", tc.args, status, out, errs, tc.status, tc.want)
		}
	}
}
