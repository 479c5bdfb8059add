package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"nestvm/internal/testutil"
	"nestvm/nester"
)

// nestvm run gives the program the monitor's standard input: what is
// piped in comes out of the copy guest exactly, on both backends, alone
// and under a layer.
func TestRunCopiesStdin(t *testing.T) {
	copyGuest := testutil.Guest(t, "copy")
	for _, backend := range []string{"emu", "kvm"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "kvm" {
				testutil.RequireKVM(t)
			}
			for _, tc := range []struct {
				in   string
				args []string
			}{
				{"a\nb\n", nil},
				{"", nil},
				{"a\nb\n", []string{"--layer", "null"}},
			} {
				args := append(append([]string{"run", "--backend", backend}, tc.args...), copyGuest)
				cmd := exec.Command(os.Args[0], args...)
				cmd.Env = append(os.Environ(), "NESTVM_TEST_AS_MAIN=1")
				cmd.Stdin = strings.NewReader(tc.in)
				var stdout, stderr syncBuffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				if status := wait(t, cmd); status != 0 || stdout.String() != tc.in || stderr.String() != "" {
					t.Errorf("%q | nestvm %q: status %d, stdout %q, stderr %q", tc.in, args, status, stdout.String(), stderr.String())
				}
			}
		})
	}
}

// A program waiting for input is saved as one about to ask again: the
// checkpoint taken while it waits restores into a run that reads the new
// run's input, and nothing read before is read twice.
func TestCheckpointWhileReadingStdin(t *testing.T) {
	copyGuest := testutil.Guest(t, "copy")
	for _, backend := range []string{"emu", "kvm"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "kvm" {
				testutil.RequireKVM(t)
			}
			file := filepath.Join(t.TempDir(), "s.nvck")
			// Once "one" is out, the guest goes on to its next read,
			// which waits for input that comes only after the save; the
			// save finds it waiting there or on its way.
			cmd, stdout, stderr := copiedOne(t, "run", "--backend", backend, "--log-level", "warn",
				"--layer", "checkpoint="+file+",stop", copyGuest)
			if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			if status := wait(t, cmd); status != 0 || stdout.String() != "one\n" || !strings.Contains(stderr.String(), "stopped after saving checkpoint") {
				t.Fatalf("run: status %d, stdout %q, stderr %q", status, stdout.String(), stderr.String())
			}
			restore := exec.Command(os.Args[0], "restore", "--backend", backend, "--log-level", "warn", file)
			restore.Env = cmd.Env
			restore.Stdin = strings.NewReader("two\n")
			var out, errs syncBuffer
			restore.Stdout, restore.Stderr = &out, &errs
			if err := restore.Start(); err != nil {
				t.Fatal(err)
			}
			if status := wait(t, restore); status != 0 || out.String() != "two\n" {
				t.Errorf("restore: status %d, stdout %q, stderr %q", status, out.String(), errs.String())
			}
		})
	}
}

// A program waiting for input that never ends does not hold the monitor:
// Ctrl-C ends the run as it ends any other, with the input still open.
func TestRunInterruptWhileReadingStdin(t *testing.T) {
	copyGuest := testutil.Guest(t, "copy")
	for _, backend := range []string{"emu", "kvm"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "kvm" {
				testutil.RequireKVM(t)
			}
			cmd, stdout, stderr := copiedOne(t, "run", "--backend", backend, "--log-level", "warn", copyGuest)
			cmd.Process.Signal(syscall.SIGINT)
			if status := wait(t, cmd); status != nester.StatusInterrupt || stdout.String() != "one\n" || !strings.Contains(stderr.String(), "interrupted") {
				t.Fatalf("status %d, stdout %q, stderr %q", status, stdout.String(), stderr.String())
			}
		})
	}
}

// copiedOne starts nestvm with args, which run the copy guest, with a
// pipe to its input that stays open until the test ends, and returns once
// it has copied "one" from there: the guest then waits in its next read.
func copiedOne(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := nestvmCmd(args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	stdout, stderr := start(t, cmd)
	in.Write([]byte("one\n"))
	waitFor(t, `the copied "one"`, func() bool { return stdout.String() == "one\n" })
	return cmd, stdout, stderr
}
