package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/nester"
)

// TestMain lets the tests run this test binary as the nestvm command: with
// NESTVM_TEST_AS_MAIN set it is nestvm.
func TestMain(m *testing.M) {
	if os.Getenv("NESTVM_TEST_AS_MAIN") == "1" {
		os.Exit(mainStatus(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type syncBuffer = testutil.Buffer

// nestvm starts the command with args; wait collects it.
func nestvm(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := nestvmCmd(args...)
	stdout, stderr := start(t, cmd)
	return cmd, stdout, stderr
}

// nestvmCmd is the command with args, as this test binary runs it.
func nestvmCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "NESTVM_TEST_AS_MAIN=1")
	return cmd
}

// start starts cmd, collecting its output.
func start(t *testing.T, cmd *exec.Cmd) (stdout, stderr *syncBuffer) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdout, stderr
}

func wait(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("nestvm did not finish in 60s")
		return -1
	}
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd, stdout, stderr := nestvm(t, args...)
	status := wait(t, cmd)
	return status, stdout.String(), stderr.String()
}

func TestRunHello(t *testing.T) {
	status, out, errs := run(t, "run", testutil.Guest(t, "hello"), "world")
	if status != 0 || out != "Hello, world!\n" {
		t.Fatalf("status %d, output %q, stderr %q", status, out, errs)
	}
	if !strings.Contains(errs, "using backend") {
		t.Errorf("auto did not log which backend it chose: %q", errs)
	}
	status, out, errs = run(t, "run", "--backend", "emu", testutil.Guest(t, "hello"))
	if status != 0 || out != "Hello, nestvm!\n" || errs != "" {
		t.Fatalf("--backend emu: status %d, output %q, stderr %q", status, out, errs)
	}
}

func TestRunFaultReports(t *testing.T) {
	for _, tc := range []struct {
		guest  string
		status int
		line   string
	}{
		{"crash-null", 139, `thread 0: page fault: read of 0x0 \(not present\) at rip 0x4[0-9a-f]{5}$`},
		{"crash-wtext", 139, `thread 0: page fault: write of 0x4[0-9a-f]{5} \(protection\) at rip 0x4[0-9a-f]{5}$`},
		{"crash-ud2", 132, `thread 0: invalid opcode at rip 0x4[0-9a-f]{5}$`},
		{"crash-div0", 136, `thread 0: divide error at rip 0x4[0-9a-f]{5}$`},
	} {
		t.Run(tc.guest, func(t *testing.T) {
			path := testutil.Guest(t, tc.guest)
			status, out, errs := run(t, "run", "--log-level", "warn", path)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if !strings.HasPrefix(out, tc.guest+": ") {
				t.Errorf("the guest's own output was lost: %q", out)
			}
			lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
			re := regexp.MustCompile("^nestvm: " + regexp.QuoteMeta(path) + ": " + tc.line)
			if len(lines) != 1 || !re.MatchString(lines[0]) {
				t.Errorf("stderr %q, want one line matching %s", errs, re)
			}
		})
	}
}

func TestRunRefusesWhatItCannotRun(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("just some text\n"), 0o644)
	truncated := filepath.Join(dir, "half.elf")
	data, _ := os.ReadFile(testutil.Guest(t, "hello"))
	os.WriteFile(truncated, data[:len(data)/3], 0o644)
	cases := []struct {
		path   string
		status int
		want   string
	}{
		{filepath.Join(dir, "nope.elf"), 127, "no such file"},
		{text, 126, "not an ELF file"},
		{truncated, 126, "runs past the end of the file"},
		{dir, 126, "not a regular file (a directory)"},
	}
	if _, err := os.Stat("/bin/ls"); err == nil {
		cases = append(cases, struct {
			path   string
			status int
			want   string
		}{"/bin/ls", 126, "dynamically linked (interpreter"})
	}
	for _, tc := range cases {
		status, out, errs := run(t, "run", tc.path)
		if status != tc.status || !strings.Contains(errs, tc.want) || out != "" {
			t.Errorf("%s: status %d, stderr %q, stdout %q; want %d and %q", tc.path, status, errs, out, tc.status, tc.want)
		}
	}
}

// TestRunRefusesBadFlags: a stack or timeout that cannot be meant is a
// bad flag (status 2, saying which), refused before anything runs.
func TestRunRefusesBadFlags(t *testing.T) {
	hello := testutil.Guest(t, "hello")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--stack", "100G", hello}, "--stack 100G: more than the program's memory (--mem 1G)"},
		{[]string{"run", "--stack", "4097", hello}, "--stack 4097: not a multiple of the 4096-byte page"},
		{[]string{"run", "--mem", "64M", "--stack", "64M", hello}, "--stack 64M: with the program's"},
		{[]string{"run", "--timeout", "-1s", hello}, "--timeout -1s: want a duration of 0 (no limit) or more"},
		{[]string{"restore", "--timeout", "-1s", hello}, "--timeout -1s: want a duration of 0 (no limit) or more"},
	} {
		status, out, errs := run(t, tc.args...)
		if status != nester.StatusUsage || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: status %d, stdout %q, stderr %q; want %d and %q", tc.args, status, out, errs, nester.StatusUsage, tc.want)
		}
	}
}

func TestRunBackendKVMWithoutDevice(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err == nil {
		t.Skip("this host has /dev/kvm")
	}
	status, _, errs := run(t, "run", "--backend", "kvm", testutil.Guest(t, "hello"))
	if status != nester.StatusMonitor || !strings.Contains(errs, "/dev/kvm") || !strings.Contains(errs, "--backend emu") {
		t.Fatalf("status %d, stderr %q", status, errs)
	}
}

// TestRunTimeout: --timeout ends the program with 124 and one line saying
// so, with the control socket's layer in the stack and without it (--control
// none), on each backend.
func TestRunTimeout(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		for _, control := range [][]string{nil, {"--control", "none"}} {
			start := time.Now()
			args := append([]string{"run", "--backend", b.Name(), "--log-level", "warn", "--timeout", "300ms"}, control...)
			status, out, errs := run(t, append(args, testutil.Guest(t, "spin"))...)
			if status != nester.StatusTimeout || out != "spin: spinning forever\n" || !strings.Contains(errs, "timeout after 300ms") {
				t.Fatalf("%q: status %d, stdout %q, stderr %q", control, status, out, errs)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("%q: took %s to stop", control, d)
			}
		}
	})
}

func TestRunInterrupt(t *testing.T) {
	cmd, stdout, stderr := nestvm(t, "run", "--log-level", "warn", testutil.Guest(t, "spin"))
	// Wait for the guest to be running (its whole first line: nv_puts
	// writes the text and the newline in two calls, and a Ctrl-C between
	// them rightly leaves the newline unwritten), then Ctrl-C.
	waitFor(t, "the guest's first line", func() bool { return strings.Contains(stdout.String(), "spinning forever\n") })
	cmd.Process.Signal(syscall.SIGINT)
	status := wait(t, cmd)
	if status != nester.StatusInterrupt || stdout.String() != "spin: spinning forever\n" || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("status %d, stdout %q, stderr %q", status, stdout.String(), stderr.String())
	}
}

func TestInfo(t *testing.T) {
	status, out, _ := run(t, "info")
	if status != 0 || !strings.Contains(out, "kvm ") || !strings.Contains(out, "emu  available: Unicorn 2.") || !strings.Contains(out, "auto picks:") {
		t.Fatalf("status %d, output %q", status, out)
	}
}

// TestRunTellsLinuxFromNestvm: a guest built with the SDK carries its ELF
// note and runs on nestvm's ABI; a program without it (lxbench, raw Linux
// system calls) runs under the Linux personality; --abi forces either, and
// forcing nestvm's ABI on a Linux program ends it at its first system call
// (SIGSYS, as a filtered call does on Linux).
func TestRunTellsLinuxFromNestvm(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		status int
		stdout string
	}{
		{[]string{"run", testutil.Guest(t, "hello")}, 0, "Hello, nestvm!\n"},
		{[]string{"run", testutil.Guest(t, "lxbench"), "syscall", "3"}, 0, "bench syscall 3 "},
		{[]string{"run", "--abi", "linux", testutil.Guest(t, "lxbench"), "syscall", "3"}, 0, "bench syscall 3 "},
		{[]string{"run", "--abi", "nestvm", testutil.Guest(t, "lxbench"), "syscall", "3"}, 128 + 31, ""},
		{[]string{"run", "--abi", "other", testutil.Guest(t, "hello")}, 2, ""},
	} {
		cmd, out, errs := nestvm(t, tc.args...)
		if status := wait(t, cmd); status != tc.status || !strings.HasPrefix(out.String(), tc.stdout) {
			t.Errorf("nestvm %s: status %d, stdout %q (stderr %q); want %d, %q", strings.Join(tc.args, " "), status, out.String(), errs.String(), tc.status, tc.stdout)
		}
	}
}
