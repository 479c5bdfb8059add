//go:build cgo

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"nestvm/internal/testutil"
)

// TestCheckpointSignalAtStart: SIGUSR1 or SIGUSR2 sent to a monitor in
// its first instant (as soon as it can take a signal at all, long before
// its first output) neither kills it nor is lost: with a checkpoint layer
// the save is taken once the program runs (SIGUSR2 then ends the run, and
// restore goes on from the save), without one the monitor says it has
// nothing to save and the program runs to its end. Both backends.
func TestCheckpointSignalAtStart(t *testing.T) {
	counter := testutil.Guest(t, "counter")
	_, want, _ := run(t, "run", "--backend", "emu", "--mem", "64M", "--log-level", "warn", counter, "3")
	for _, b := range []string{"emu", "kvm"} {
		for _, c := range []struct {
			name  string
			sig   syscall.Signal
			layer bool
		}{
			{"usr1", syscall.SIGUSR1, true},
			{"usr2", syscall.SIGUSR2, true},
			{"usr1-no-layer", syscall.SIGUSR1, false},
			{"usr2-no-layer", syscall.SIGUSR2, false},
		} {
			t.Run(b+"/"+c.name, func(t *testing.T) {
				if b == "kvm" {
					testutil.RequireKVM(t)
				}
				file := filepath.Join(t.TempDir(), "s.nvck")
				args := []string{"run", "--backend", b, "--mem", "64M", "--log-level", "warn"}
				if c.layer {
					args = append(args, "--layer", "checkpoint="+file)
				}
				cmd, stdout, stderr := nestvm(t, append(args, counter, "3")...)
				waitSignalable(t, cmd.Process.Pid, c.sig)
				if err := cmd.Process.Signal(c.sig); err != nil {
					t.Fatal(err)
				}
				status := wait(t, cmd)
				out, errs := stdout.String(), stderr.String()
				switch {
				case !c.layer:
					if status != 0 || out != want || !strings.Contains(errs, "nothing to save") {
						t.Fatalf("status %d, stdout %q (want %q), stderr %q", status, out, want, errs)
					}
				case c.sig == syscall.SIGUSR1:
					if _, err := os.Stat(file); status != 0 || out != want || err != nil {
						t.Fatalf("status %d, stdout %q (want %q), stderr %q, checkpoint: %v", status, out, want, errs, err)
					}
				default:
					if status != 0 || !strings.Contains(errs, "stopped after saving checkpoint") {
						t.Fatalf("status %d, stdout %q, stderr %q", status, out, errs)
					}
					rs, after, rerrs := run(t, "restore", "--backend", b, "--log-level", "warn", file)
					if rs != 0 || out+after != want {
						t.Fatalf("restore: status %d, %q + %q != %q; stderr %q", rs, out, after, want, rerrs)
					}
				}
			})
		}
	}
}

// waitSignalable returns as soon as process pid can be sent sig without
// the kernel's default action (the end of the process) applying, as in
// any process before it blocks or catches a signal: once its main thread
// blocks sig (nestvm does before the Go runtime starts) or it has a
// handler for it (the runtime's, which alone would drop the signal).
func waitSignalable(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	bit := uint64(1) << (sig - 1)
	for {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatalf("the monitor ended before it could take %v: %v", sig, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			key, v, _ := strings.Cut(line, ":")
			switch key {
			case "SigBlk", "SigCgt":
				mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if mask&bit != 0 {
					return
				}
			case "State":
				if strings.Contains(v, "zombie") {
					t.Fatalf("the monitor ended before it could take %v", sig)
				}
			}
		}
		runtime.Gosched()
	}
}
