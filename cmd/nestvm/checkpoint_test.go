package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nestvm/internal/testutil"
	"nestvm/nester"
	"nestvm/services/checkpoint"
)

// TestCheckpointRestore: nestvm run --layer checkpoint=FILE,after-writes=3
// saves counter, and nestvm restore resumes it on either backend: what the
// run printed before the save and what restore prints, joined, are the
// undisturbed run's output, whichever backend saved and whichever resumed.
func TestCheckpointRestore(t *testing.T) {
	counter := testutil.Guest(t, "counter")
	status, want, errs := run(t, "run", "--backend", "emu", "--mem", "64M", "--log-level", "warn", counter, "6")
	if status != 0 || !strings.HasSuffix(want, "6\ntotal 52010469\n") {
		t.Fatalf("undisturbed counter: status %d, %q, stderr %q", status, want, errs)
	}
	kvm := func(t *testing.T, b string) {
		if b == "kvm" {
			testutil.RequireKVM(t)
		}
	}
	for _, pair := range [][2]string{{"emu", "emu"}, {"emu", "kvm"}, {"kvm", "emu"}, {"kvm", "kvm"}} {
		from, to := pair[0], pair[1]
		t.Run(from+"-to-"+to, func(t *testing.T) {
			kvm(t, from)
			kvm(t, to)
			file := filepath.Join(t.TempDir(), "run.nvck")
			status, before, errs := run(t, "run", "--backend", from, "--mem", "64M", "--log-level", "warn",
				"--layer", "checkpoint="+file+",after-writes=3,stop", counter, "6")
			if status != 0 || !strings.Contains(errs, "stopped after saving checkpoint "+file) {
				t.Fatalf("run with stop: status %d, %q, stderr %q", status, before, errs)
			}
			if !strings.HasPrefix(want, before) || !strings.HasPrefix(before, "1\n2\n3\n") {
				t.Fatalf("run with stop printed %q", before)
			}
			// The SDK's guests pick no code by CPUID: one saved where
			// the CPU offered more than to has resumes with --ignore-cpu.
			restoreAcross(t, from, to, true, []string{"restore", "--backend", to, "--log-level", "warn", file})
			status, after, errs := run(t, "restore", "--backend", to, "--log-level", "warn", "--ignore-cpu", file)
			if status != 0 || before+after != want {
				t.Fatalf("restore: status %d, before %q + after %q, want %q; stderr %q", status, before, after, want, errs)
			}
		})
	}
	// A restored program checkpointed again: the three parts join up.
	t.Run("chain", func(t *testing.T) {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a.nvck"), filepath.Join(dir, "b.nvck")
		_, first, _ := run(t, "run", "--backend", "emu", "--mem", "64M", "--log-level", "warn", "--layer", "checkpoint="+a+",after-writes=2,stop", counter, "6")
		_, second, errs := run(t, "restore", "--backend", "emu", "--log-level", "warn", "--layer", "checkpoint="+b+",after-writes=2,stop", a)
		status, third, errs2 := run(t, "restore", "--backend", "emu", "--log-level", "warn", b)
		if status != 0 || first+second+third != want {
			t.Fatalf("%q + %q + %q != %q; stderr %q %q", first, second, third, want, errs, errs2)
		}
		data, _ := os.ReadFile(b)
		if ck, err := checkpoint.Decode(data); err != nil {
			t.Error(err)
		} else if ck.ConsoleBytes != uint64(len(first+second)) {
			t.Errorf("the second file is after %d console bytes, want %d", ck.ConsoleBytes, len(first+second))
		}
	})
	// Without stop the run goes on, whole; the file says where it was.
	t.Run("go-on", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "run.nvck")
		status, out, errs := run(t, "run", "--backend", "emu", "--mem", "64M", "--log-level", "warn",
			"--layer", "checkpoint="+file+",after-writes=3", counter, "6")
		if status != 0 || out != want {
			t.Fatalf("run: status %d, %q, stderr %q", status, out, errs)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		ck, err := checkpoint.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		status, after, errs := run(t, "restore", "--backend", "emu", "--log-level", "warn", file)
		if status != 0 || want[:ck.ConsoleBytes]+after != want {
			t.Fatalf("restore: status %d, %q after %d bytes; stderr %q", status, after, ck.ConsoleBytes, errs)
		}
		status, info, errs := run(t, "inspect", file)
		for _, s := range []string{"1 spaces, 2 threads, 3 regions", "external console", "running (resumed on restore)", "after 6 bytes of console output"} {
			if status != 0 || !strings.Contains(info, s) {
				t.Errorf("inspect: status %d, lacks %q:\n%s%s", status, s, info, errs)
			}
		}
	})
}

// TestCheckpointBadFiles: restore and inspect refuse, before anything
// runs, a file that is missing, truncated, corrupted, of a newer format,
// or not a checkpoint at all.
func TestCheckpointBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := checkpoint.Encode(&checkpoint.Checkpoint{Spaces: []checkpoint.Space{{Parent: -1}}})
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-3] ^= 1
	newer := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(newer[8:], checkpoint.FormatVersion+1)
	for _, c := range []struct {
		name, path string
		status     int
		msg        string
	}{
		{"missing", filepath.Join(dir, "none.nvck"), nester.StatusNotFound, "no such file"},
		{"truncated", write("short.nvck", good[:len(good)-1]), nester.StatusNotRunnable, "truncated"},
		{"flipped", write("flip.nvck", flipped), nester.StatusNotRunnable, "the file is corrupted"},
		{"newer", write("newer.nvck", newer), nester.StatusNotRunnable, "newer than this nestvm reads"},
		{"elf", testutil.Guest(t, "hello"), nester.StatusNotRunnable, "no checkpoint magic"},
	} {
		for _, cmd := range []string{"restore", "inspect"} {
			status, out, errs := run(t, cmd, "--backend", "emu", c.path)
			if cmd == "inspect" {
				status, out, errs = run(t, cmd, c.path)
			}
			if status != c.status || out != "" || !strings.Contains(errs, c.msg) {
				t.Errorf("%s %s: status %d (want %d), stdout %q, stderr %q (want %q)", cmd, c.name, status, c.status, out, errs, c.msg)
			}
		}
	}
}

// TestCheckpointSIGUSR1: SIGUSR1 to the monitor saves the program below a
// checkpoint layer; with stop the run then ends, and restore goes on.
func TestCheckpointSIGUSR1(t *testing.T) {
	counter := testutil.Guest(t, "counter")
	_, want, _ := run(t, "run", "--backend", "emu", "--mem", "64M", "--log-level", "warn", counter, "6")
	file := filepath.Join(t.TempDir(), "s.nvck")
	cmd, stdout, stderr := nestvm(t, "run", "--backend", "emu", "--mem", "64M", "--log-level", "warn",
		"--layer", "checkpoint="+file+",stop", counter, "6")
	waitFor(t, "counter's first line", func() bool { return strings.Contains(stdout.String(), "1\n") })
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	status := wait(t, cmd)
	before := stdout.String()
	if status != 0 || !strings.Contains(stderr.String(), "stopped after saving checkpoint") {
		t.Fatalf("status %d, stdout %q, stderr %q", status, before, stderr.String())
	}
	status, after, errs := run(t, "restore", "--backend", "emu", "--log-level", "warn", file)
	if status != 0 || before+after != want {
		t.Fatalf("restore: status %d, %q + %q != %q; stderr %q", status, before, after, want, errs)
	}
}

// TestCheckpointSIGUSR2: SIGUSR2 to the monitor saves the program below a
// checkpoint layer that has no stop option and ends the run, as stop
// would (what an OCI runtime's checkpoint without --leave-running needs),
// and restore goes on from there, on either backend.
func TestCheckpointSIGUSR2(t *testing.T) {
	counter := testutil.Guest(t, "counter")
	_, want, _ := run(t, "run", "--backend", "emu", "--mem", "64M", "--log-level", "warn", counter, "6")
	for _, b := range []string{"emu", "kvm"} {
		t.Run(b, func(t *testing.T) {
			if b == "kvm" {
				testutil.RequireKVM(t)
			}
			file := filepath.Join(t.TempDir(), "s.nvck")
			cmd, stdout, stderr := nestvm(t, "run", "--backend", b, "--mem", "64M", "--log-level", "warn",
				"--layer", "checkpoint="+file, counter, "6")
			waitFor(t, "counter's first line", func() bool { return strings.Contains(stdout.String(), "1\n") })
			if err := cmd.Process.Signal(syscall.SIGUSR2); err != nil {
				t.Fatal(err)
			}
			status := wait(t, cmd)
			before := stdout.String()
			if status != 0 || !strings.Contains(stderr.String(), "stopped after saving checkpoint") || before == want {
				t.Fatalf("status %d, stdout %q, stderr %q", status, before, stderr.String())
			}
			status, after, errs := run(t, "restore", "--backend", b, "--log-level", "warn", file)
			if status != 0 || before+after != want {
				t.Fatalf("restore: status %d, %q + %q != %q; stderr %q", status, before, after, want, errs)
			}
		})
	}
}

// TestRestoreEndsWhateverItsExceptionPort: a checkpoint whose top space
// names no exception port, or one of its own ports, still ends when its
// program does, and --timeout, the first SIGINT and SIGTERM end one that
// runs forever within a second, on either backend.
func TestRestoreEndsWhateverItsExceptionPort(t *testing.T) {
	counter, spin := testutil.Guest(t, "counter"), testutil.Guest(t, "spin")
	_, want, _ := run(t, "run", "--backend", "emu", "--mem", "64M", "--log-level", "warn", counter, "4")
	for _, b := range []string{"emu", "kvm"} {
		t.Run(b, func(t *testing.T) {
			if b == "kvm" {
				testutil.RequireKVM(t)
			}
			dir := t.TempDir()
			save := func(name, prog string, args ...string) *checkpoint.Checkpoint {
				file := filepath.Join(dir, name)
				a := append([]string{"run", "--backend", b, "--mem", "64M", "--log-level", "warn",
					"--layer", "checkpoint=" + file + ",after-writes=1,stop", prog}, args...)
				if status, out, errs := run(t, a...); status != 0 {
					t.Fatalf("save %s: status %d, %q, stderr %q", name, status, out, errs)
				}
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				ck, err := checkpoint.Decode(data)
				if err != nil {
					t.Fatal(err)
				}
				return ck
			}
			// craft writes ck with its top space's exception port none or a
			// port of its own.
			craft := func(ck *checkpoint.Checkpoint, name string, own bool) string {
				c := *ck
				c.Spaces = append([]checkpoint.Space(nil), ck.Spaces...)
				c.Spaces[0].Exception, c.Spaces[0].ExceptionBadge = checkpoint.Ref{}, 0
				if own {
					c.Ports = append(append([]checkpoint.Port(nil), ck.Ports...), checkpoint.Port{Owner: 0})
					c.Spaces[0].Exception = checkpoint.Ref{Kind: checkpoint.RefPort, Index: uint32(len(c.Ports) - 1)}
				}
				file := filepath.Join(dir, name)
				if err := os.WriteFile(file, checkpoint.Encode(&c), 0o644); err != nil {
					t.Fatal(err)
				}
				return file
			}
			ck := save("counter.nvck", counter, "4")
			for _, own := range []bool{false, true} {
				file := craft(ck, fmt.Sprintf("counter-own-%v.nvck", own), own)
				status, after, errs := run(t, "restore", "--backend", b, "--log-level", "warn", file)
				if status != 0 || want[:ck.ConsoleBytes]+after != want {
					t.Errorf("own port %v: status %d, %q after %d bytes; stderr %q", own, status, after, ck.ConsoleBytes, errs)
				}
			}
			spinning := craft(save("spin.nvck", spin), "spin-none.nvck", false)
			for _, way := range []struct {
				name   string
				args   []string
				sig    os.Signal
				status int
			}{
				{"timeout", []string{"--timeout", "300ms"}, nil, nester.StatusTimeout},
				{"SIGINT", nil, os.Interrupt, nester.StatusInterrupt},
				{"SIGTERM", nil, syscall.SIGTERM, nester.StatusInterrupt},
			} {
				cmd, _, stderr := nestvm(t, append(append([]string{"restore", "--backend", b, "--log-level", "debug"}, way.args...), spinning)...)
				// The program runs once restore logs so; the signal
				// handler and the timer are in before that.
				waitFor(t, "the restored program", func() bool { return strings.Contains(stderr.String(), "restored") })
				t0 := time.Now()
				if way.sig != nil {
					cmd.Process.Signal(way.sig)
				}
				status := wait(t, cmd)
				if took := time.Since(t0); status != way.status || took > time.Second+300*time.Millisecond {
					t.Errorf("%s: status %d (want %d) after %v; stderr %q", way.name, status, way.status, took, stderr.String())
				}
			}
		})
	}
}

// TestCheckpointAfterWritesStop: after-writes=K,stop saves the program
// right after its K-th write, and nothing of it runs after that, even
// where it would end soon after (hello ends one write later); a save
// that fails under stop ends the run with one line saying why and status
// 125, the program no further than its K-th write. On either backend.
func TestCheckpointAfterWritesStop(t *testing.T) {
	hello, counter := testutil.Guest(t, "hello"), testutil.Guest(t, "counter")
	for _, b := range []string{"emu", "kvm"} {
		t.Run(b, func(t *testing.T) {
			if b == "kvm" {
				testutil.RequireKVM(t)
			}
			_, want, _ := run(t, "run", "--backend", b, "--log-level", "warn", hello)
			for _, c := range []struct {
				prog, k, before string
				args            []string
			}{
				{hello, "1", "Hello, nestvm!", nil},
				{counter, "3", "1\n2\n3\n", []string{"6"}},
			} {
				file := filepath.Join(t.TempDir(), "k.nvck")
				args := append([]string{"run", "--backend", b, "--mem", "64M", "--log-level", "warn",
					"--layer", "checkpoint=" + file + ",after-writes=" + c.k + ",stop", c.prog}, c.args...)
				status, before, errs := run(t, args...)
				if status != 0 || before != c.before || !strings.Contains(errs, "stopped after saving checkpoint") {
					t.Errorf("%s: status %d, printed %q (want %q), stderr %q", c.prog, status, before, c.before, errs)
					continue
				}
				if c.prog == hello {
					status, after, errs := run(t, "restore", "--backend", b, "--log-level", "warn", file)
					if status != 0 || before+after != want {
						t.Errorf("restore: status %d, %q + %q != %q; stderr %q", status, before, after, want, errs)
					}
				}
			}
			// The file's name is a directory: the rename fails.
			dir := filepath.Join(t.TempDir(), "dir.nvck")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			status, out, errs := run(t, "run", "--backend", b, "--mem", "64M", "--log-level", "warn",
				"--layer", "checkpoint="+dir+",after-writes=1,stop", counter, "6")
			lines := strings.Split(strings.TrimSpace(errs), "\n")
			if status != nester.StatusMonitor || out != "1\n" || len(lines) != 1 || !strings.Contains(lines[0], "checkpoint "+dir+" (after 1 writes) not saved") {
				t.Errorf("failed save under stop: status %d, printed %q, stderr %q", status, out, errs)
			}
		})
	}
}

// TestRestoreNeedsFilesRW: a program saved with writable files (run
// --files-rw) restored without --files-rw is refused before anything
// runs, with a line that says to add it; with it, the restore goes on.
func TestRestoreNeedsFilesRW(t *testing.T) {
	counter := testutil.Guest(t, "counter")
	_, want, _ := run(t, "run", "--backend", "emu", "--mem", "64M", "--log-level", "warn", counter, "3")
	for _, b := range []string{"emu", "kvm"} {
		t.Run(b, func(t *testing.T) {
			if b == "kvm" {
				testutil.RequireKVM(t)
			}
			file := filepath.Join(t.TempDir(), "rw.nvck")
			status, before, errs := run(t, "run", "--backend", b, "--mem", "64M", "--log-level", "warn", "--files-rw",
				"--layer", "checkpoint="+file+",after-writes=1,stop", counter, "3")
			if status != 0 {
				t.Fatalf("save: status %d, %q, stderr %q", status, before, errs)
			}
			status, out, errs := run(t, "restore", "--backend", b, "--log-level", "warn", file)
			if status != nester.StatusUsage || out != "" || errs != "nestvm: "+file+": the program was saved with writable files: restore it with --files-rw\n" {
				t.Errorf("without --files-rw: status %d, stdout %q, stderr %q", status, out, errs)
			}
			status, after, errs := run(t, "restore", "--backend", b, "--log-level", "warn", "--files-rw", file)
			if status != 0 || before+after != want {
				t.Errorf("with --files-rw: status %d, %q + %q != %q; stderr %q", status, before, after, want, errs)
			}
		})
	}
}

// TestCheckpointStaleTemporaries: the temporary file of a save whose
// monitor was killed (SIGKILL) in the middle is removed by the next
// restore of that file, and by the next save to it; one of a monitor that
// still runs is left alone.
func TestCheckpointStaleTemporaries(t *testing.T) {
	counter := testutil.Guest(t, "counter")
	dir := t.TempDir()
	file := filepath.Join(dir, "c.nvck")
	// A monitor killed with SIGKILL: its process id names no process.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, fmt.Sprintf(".c.nvck.tmp-%d-123", dead.Process.Pid))
	live := filepath.Join(dir, fmt.Sprintf(".c.nvck.tmp-%d-456", os.Getpid()))
	plant := func() {
		for _, p := range []string{stale, live} {
			if err := os.WriteFile(p, []byte("half a checkpoint"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(after string) {
		if _, err := os.Stat(stale); !os.IsNotExist(err) {
			t.Errorf("after %s, the dead monitor's temporary file is there (%v)", after, err)
		}
		if _, err := os.Stat(live); err != nil {
			t.Errorf("after %s, the live monitor's temporary file is gone: %v", after, err)
		}
		if names, _ := filepath.Glob(filepath.Join(dir, ".c.nvck.tmp-*")); len(names) != 1 {
			t.Errorf("after %s, temporary files %v", after, names)
		}
	}
	plant()
	if status, out, errs := run(t, "run", "--backend", "emu", "--mem", "64M", "--log-level", "warn",
		"--layer", "checkpoint="+file+",after-writes=1,stop", counter, "3"); status != 0 {
		t.Fatalf("save: status %d, %q, stderr %q", status, out, errs)
	}
	check("a save")
	plant()
	if status, out, errs := run(t, "restore", "--backend", "emu", "--log-level", "warn", file); status != 0 {
		t.Fatalf("restore: status %d, %q, stderr %q", status, out, errs)
	}
	check("a restore")
}
