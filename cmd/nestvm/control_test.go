package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nestvm/control"
	"nestvm/internal/testutil"
	"nestvm/nester"
)

// monitorSocket waits for the monitor cmd runs to serve its control
// socket in dir, and returns the socket's path.
func monitorSocket(t *testing.T, cmd *exec.Cmd, dir string, stderr *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		socks, err := control.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range socks {
			if s.PID == cmd.Process.Pid {
				if c, err := control.Dial(s.Path); err == nil {
					return c.Path()
				}
			}
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatalf("no control socket of pid %d in %s; stderr %q", cmd.Process.Pid, dir, stderr.String())
	return ""
}

// waitFor waits until cond holds, failing after a long while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// attach runs nestvm attach (or ps) in this process.
func attach(args ...string) (int, string, string) {
	var out, errs strings.Builder
	status := mainStatus(args, &out, &errs)
	return status, out.String(), errs.String()
}

// counterLines checks out is counter's lines from..to, one a line, and
// returns to (from-1 for none).
func counterLines(t *testing.T, out string, from int) int {
	t.Helper()
	n := from - 1
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		if l != strconv.Itoa(n+1) {
			t.Fatalf("counter printed %q after %d: %q", l, n, out)
		}
		n++
	}
	return n
}

// TestControlSocket: a monitor serves its control socket for as long as
// it runs, on either backend: ps lists it, state shows its program's
// space and threads, a trace streams its calls while attached, garbage
// is answered with an error and the monitor goes on, checkpoint --stop
// saves a file that restore resumes exactly where it stopped (the
// restored monitor serving a socket of its own, at the --control path),
// and kill ends it with the reason on its log line. The socket is gone
// when the monitor is.
func TestControlSocket(t *testing.T) {
	counter := testutil.Guest(t, "counter")
	for _, backend := range []string{"emu", "kvm"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "kvm" {
				testutil.RequireKVM(t)
			}
			dir := t.TempDir()
			t.Setenv("NESTVM_RUNTIME_DIR", dir) // for this process's ps and attach, and the monitors'
			file := filepath.Join(t.TempDir(), "now.nvck")
			cmd, stdout, stderr := nestvm(t, "run", "--backend", backend, "--log-level", "info", "--mem", "64M", "--control-trace",
				"--layer", "checkpoint="+file, counter, "1000000")
			defer cmd.Process.Kill()
			sock := monitorSocket(t, cmd, dir, stderr)
			pid := strconv.Itoa(cmd.Process.Pid)
			if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("socket %s: %v, mode %v", sock, err, fi.Mode())
			}

			status, out, errs := attach("ps")
			if status != 0 || !strings.Contains(out, pid+" ") || !strings.Contains(out, counter) || !strings.Contains(out, backend) {
				t.Errorf("ps: status %d, %q, stderr %q", status, out, errs)
			}
			status, out, errs = attach("ps", "--json")
			var st control.State
			if status != 0 || json.Unmarshal([]byte(out), &st) != nil || st.PID != cmd.Process.Pid || st.Checkpoint != file {
				t.Errorf("ps --json: status %d, %q, stderr %q", status, out, errs)
			}

			// The program's space, running, with counter's two threads. The
			// second is new between its creation and its start: wait for
			// it to run, which is what attach --state is checked for.
			c, err := control.Dial(sock)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			waitFor(t, "counter's second thread running", func() bool {
				s, err := c.State(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return len(s.Spaces) == 1 && len(s.Spaces[0].Threads) == 2 && s.Spaces[0].Threads[1].State == "running"
			})
			s, _ := c.State(ctx)
			top := s.Spaces[0]
			if top.Name != counter || top.State != "running" || top.Memory == 0 || top.Quota != 64<<20 || s.Backend != backend ||
				len(s.Layers) != 1 || s.Layers[0] != "checkpoint="+file {
				t.Errorf("state: %+v", s)
			}
			status, out, _ = attach("attach", pid, "--state")
			if status != 0 || !strings.Contains(out, "thread 1 running") || !strings.Contains(out, "layers: checkpoint=") {
				t.Errorf("attach --state: status %d, %q", status, out)
			}

			// A trace streams the program's console writes while attached.
			tctx, cancel := context.WithCancel(ctx)
			var trace syncBuffer
			traced := make(chan error, 1)
			go func() { traced <- c.Trace(tctx, &trace) }()
			waitFor(t, "a traced console_write", func() bool { return strings.Contains(trace.String(), "console_write(data=") })
			cancel()
			if err := <-traced; err != nil {
				t.Errorf("trace: %v", err)
			}
			if !strings.HasPrefix(trace.String(), "[control] ") {
				t.Errorf("trace lines: %q", trace.String())
			}

			// Garbage is refused with an error reply; the monitor goes on.
			for _, line := range []string{"garbage\n", strings.Repeat("{", 100<<10)} {
				conn, err := net.Dial("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				go io.WriteString(conn, line)
				reply, err := bufio.NewReader(conn).ReadString('\n')
				conn.Close()
				if err != nil || !strings.Contains(reply, `"ok":false`) || !strings.Contains(reply, "bad request") {
					t.Errorf("%.20q: reply %q, %v", line, reply, err)
				}
			}
			if _, err := c.State(ctx); err != nil {
				t.Fatalf("state after garbage: %v", err)
			}

			// Checkpoint now, and stop: the run ends having printed up to
			// where it was saved.
			waitFor(t, "counter's second line", func() bool { return strings.Contains(stdout.String(), "2\n") })
			status, out, errs = attach("attach", pid, "--checkpoint", "--stop")
			if status != 0 || strings.TrimSpace(out) != file {
				t.Fatalf("attach --checkpoint --stop: status %d, %q, stderr %q", status, out, errs)
			}
			if st := wait(t, cmd); st != 0 || !strings.Contains(stderr.String(), "stopped after saving checkpoint "+file) {
				t.Fatalf("run after checkpoint --stop: status %d, stderr %q", st, stderr.String())
			}
			before := stdout.String()
			last := counterLines(t, before, 1)
			if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket left after the monitor exited: %v", err)
			}
			status, _, errs = attach("attach", pid, "--state")
			if status != 1 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "no monitor "+pid) {
				t.Errorf("attach to the gone monitor: status %d, stderr %q", status, errs)
			}

			// Restored, it goes on from the next line; it has no checkpoint
			// layer now, and a kill ends it with the reason.
			rsock := filepath.Join(t.TempDir(), "restored.sock")
			rcmd, rout, rerr := nestvm(t, "restore", "--backend", backend, "--log-level", "info", "--control", rsock, file)
			defer rcmd.Process.Kill()
			waitFor(t, "restored lines", func() bool { return strings.Count(rout.String(), "\n") >= 2 })
			status, _, errs = attach("attach", rsock, "--checkpoint")
			if status != 1 || !strings.Contains(errs, "no checkpoint layer") {
				t.Errorf("checkpoint without a layer: status %d, stderr %q", status, errs)
			}
			status, _, errs = attach("attach", rsock, "--kill", "enough counting")
			if status != 0 {
				t.Fatalf("attach --kill: status %d, stderr %q", status, errs)
			}
			if st := wait(t, rcmd); st != nester.StatusInterrupt || !strings.Contains(rerr.String(), "killed through the control socket: enough counting") {
				t.Errorf("restore after kill: status %d, stderr %q", st, rerr.String())
			}
			if n := counterLines(t, rout.String(), last+1); n < last+2 {
				t.Errorf("restored counter printed %q after %q", rout.String(), before)
			}
			if _, err := os.Lstat(rsock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("--control socket left after the monitor exited: %v", err)
			}
		})
	}
}

// TestControlRefusesOthers: another uid cannot reach a monitor's socket
// (its mode is 0600), and where the mode lets it connect (a socket
// chmod-ed by hand) the monitor refuses it, saying so on its log, and
// goes on serving its owner. It needs root, to run a client as nobody.
func TestControlRefusesOthers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the client runs as another uid (syscall.Credential)")
	}
	// The directories the client as nobody needs to reach: made by hand,
	// as t.TempDir's parent is the test's own.
	dir, err := os.MkdirTemp("", "nestvm-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "nestvm.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "m.sock")
	cmd, _, stderr := nestvm(t, "run", "--backend", "emu", "--log-level", "info", "--control", sock, testutil.Guest(t, "counter"), "1000000")
	defer cmd.Process.Kill()
	waitFor(t, "the control socket", func() bool {
		_, err := control.Dial(sock)
		return err == nil
	})
	asNobody := func() (int, string) {
		c := exec.Command(bin, "attach", sock, "--state")
		c.Env = append(os.Environ(), "NESTVM_TEST_AS_MAIN=1")
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var out syncBuffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		return wait(t, c), out.String()
	}
	if status, out := asNobody(); status != 1 || !strings.Contains(out, "permission denied") {
		t.Errorf("nobody against a 0600 socket: status %d, %q", status, out)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if status, out := asNobody(); status != 1 || !strings.Contains(out, "refused: uid 65534 is not the monitor's owner") {
		t.Errorf("nobody against a 0666 socket: status %d, %q", status, out)
	}
	waitFor(t, "the refusal's log line", func() bool {
		return strings.Contains(stderr.String(), "connection refused: not the owner: uid=65534")
	})
	status, out, errs := attach("attach", sock, "--kill", "refusals seen")
	if status != 0 {
		t.Fatalf("the owner's kill: status %d, %q, %q", status, out, errs)
	}
	if st := wait(t, cmd); st != nester.StatusInterrupt {
		t.Errorf("run: status %d, stderr %q", st, stderr.String())
	}
}

// TestControlLinux: a Linux program's monitor serves its socket too: the
// state shows the personality's processes, each badged with its pid,
// and checkpoint --stop saves a file that restore resumes at the next
// number of the shell's loop.
func TestControlLinux(t *testing.T) {
	tree := linuxTree(t)
	for _, backend := range []string{"emu", "kvm"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "kvm" {
				testutil.RequireKVM(t)
			}
			dir := t.TempDir()
			t.Setenv("NESTVM_RUNTIME_DIR", dir)
			file := filepath.Join(t.TempDir(), "lx.nvck")
			cmd, stdout, stderr := nestvm(t, "run", "--backend", backend, "--log-level", "info", "--files", tree,
				"--layer", "checkpoint="+file, filepath.Join(tree, "bin", "busybox"), "sh", "-c",
				"i=0; while :; do i=$((i+1)); echo $i; /bin/busybox sleep 0.05; done")
			defer cmd.Process.Kill()
			sock := monitorSocket(t, cmd, dir, stderr)
			c, err := control.Dial(sock)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the shell's process", func() bool {
				st, err := c.State(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				found := false
				var walk func([]control.Space)
				walk = func(ss []control.Space) {
					for _, s := range ss {
						found = found || (s.PID == 1 && s.State == "running" && len(s.Threads) > 0 && s.Memory > 0)
						walk(s.Children)
					}
				}
				walk(st.Spaces)
				return found
			})
			waitFor(t, "the loop's second line", func() bool { return strings.Contains(stdout.String(), "2\n") })
			// Without --control-trace the monitor has no tap to stream.
			if status, _, errs := attach("attach", strconv.Itoa(cmd.Process.Pid), "--trace"); status == 0 || !strings.Contains(errs, "--control-trace") {
				t.Errorf("attach --trace to a monitor without a tap: status %d, stderr %q", status, errs)
			}
			status, out, errs := attach("attach", strconv.Itoa(cmd.Process.Pid), "--checkpoint", "--stop")
			if status != 0 || strings.TrimSpace(out) != file {
				t.Fatalf("attach --checkpoint --stop: status %d, %q, stderr %q", status, out, errs)
			}
			if st := wait(t, cmd); st != 0 {
				t.Fatalf("run after checkpoint --stop: status %d, stderr %q", st, stderr.String())
			}
			last := counterLines(t, stdout.String(), 1)
			rsock := filepath.Join(t.TempDir(), "r.sock")
			rcmd, rout, rerr := nestvm(t, "restore", "--backend", backend, "--log-level", "warn", "--files", tree, "--control", rsock, file)
			defer rcmd.Process.Kill()
			waitFor(t, "restored lines", func() bool { return strings.Count(rout.String(), "\n") >= 2 })
			if status, _, errs := attach("attach", rsock, "--kill", "done"); status != 0 {
				t.Fatalf("attach --kill: status %d, %q", status, errs)
			}
			if st := wait(t, rcmd); st != nester.StatusInterrupt {
				t.Errorf("restore after kill: status %d, stderr %q", st, rerr.String())
			}
			counterLines(t, rout.String(), last+1)
		})
	}
}
