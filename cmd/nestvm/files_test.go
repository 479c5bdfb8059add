package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"nestvm/internal/testutil"
	"nestvm/nester"
)

// The files root through the real command: --files and --files-rw, with
// the cat, ls and fileio guests.

func TestRunFiles(t *testing.T) {
	tree := testutil.NewFilesTree(t)
	// emu, which runs everywhere; vmm's tests run the guests on kvm too.
	files := func(args ...string) []string {
		return append([]string{"run", "--backend", "emu", "--files", tree.Root}, args...)
	}
	for _, tc := range []struct {
		args   []string
		status int
		stdout string
		// diag is a diagnostic the guest prints: on stderr where the
		// monitor gives it one, on the console otherwise.
		diag string
	}{
		{args: files(testutil.Guest(t, "cat"), "hello.txt", "sub/inner.txt"), stdout: "hello, files\ninner\n"},
		{args: files(testutil.Guest(t, "cat"), "hello.txt", "missing.txt"), status: 1,
			stdout: "hello, files\n", diag: "cat: missing.txt: not found\n"},
		{args: files(testutil.Guest(t, "cat"), "escape"), status: 1, diag: "cat: escape: denied\n"},
		{args: files(testutil.Guest(t, "cat"), "../outside.txt"), status: 1, diag: "cat: ../outside.txt: denied\n"},
		{args: files(testutil.Guest(t, "cat"), "/etc/passwd"), status: 1, diag: "cat: /etc/passwd: invalid argument\n"},
		{args: files(testutil.Guest(t, "ls")), stdout: "abs\nescape\nhello.txt\ninlink\nsub/\n"},
		{args: files(testutil.Guest(t, "ls"), "sub"), stdout: "inner.txt\nup\n"},
		// Escapes refused, and writes refused without --files-rw.
		{args: files(testutil.Guest(t, "fileio"), "ro"), stdout: "PASS\n"},
		{args: files("--files-rw", testutil.Guest(t, "fileio"), "rw"), stdout: "PASS\n"},
	} {
		status, out, errs := run(t, tc.args...)
		if tc.diag != "" {
			if strings.HasSuffix(out, tc.diag) {
				out = strings.TrimSuffix(out, tc.diag)
			} else if errs == tc.diag {
				errs = ""
			}
		}
		if status != tc.status || out != tc.stdout || errs != "" {
			t.Errorf("nestvm %q: status %d, stdout %q, stderr %q; want %d, %q and %q", tc.args[5:], status, out, errs, tc.status, tc.stdout, tc.diag)
		}
	}
	if b, err := os.ReadFile(filepath.Join(tree.Root, "new.txt")); err != nil || string(b) != "done\n" {
		t.Errorf("fileio rw with --files-rw left new.txt holding %q (%v)", b, err)
	}
	tree.CheckOutside(t)
}

// Without --files-rw no write reaches the host, even one the guest
// insists on.
func TestRunFilesReadOnly(t *testing.T) {
	tree := testutil.NewFilesTree(t)
	status, out, _ := run(t, "run", "--log-level", "warn", "--files", tree.Root, testutil.Guest(t, "fileio"), "rw")
	if status != 1 || !strings.Contains(out, "FAIL: create new.txt: got -11 (denied)") {
		t.Errorf("fileio rw without --files-rw: status %d, output %q", status, out)
	}
	if _, err := os.Stat(filepath.Join(tree.Root, "new.txt")); err == nil {
		t.Errorf("new.txt was created without --files-rw")
	}
	if b, _ := os.ReadFile(filepath.Join(tree.Root, "hello.txt")); string(b) != "hello, files\n" {
		t.Errorf("hello.txt changed to %q without --files-rw", b)
	}
	tree.CheckOutside(t)
}

// --files defaults to the current directory.
func TestRunFilesDefaultsToCurrentDirectory(t *testing.T) {
	tree := testutil.NewFilesTree(t)
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "run", "--log-level", "warn", testutil.Guest(t, "cat"), "hello.txt")
	cmd.Env = append(os.Environ(), "NESTVM_TEST_AS_MAIN=1")
	cmd.Dir = tree.Root
	out, err := cmd.Output()
	if err != nil || string(out) != "hello, files\n" {
		t.Errorf("cat hello.txt in the root: %q, %v", out, err)
	}
}

// A --files directory that cannot be served stops the command before the
// program starts, with the monitor's status.
func TestRunFilesBadDirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file.txt")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, tc := range []struct{ dir, want string }{
		{filepath.Join(dir, "missing"), "no such file or directory"},
		{file, "not a directory"},
	} {
		status, out, errs := run(t, "run", "--files", tc.dir, testutil.Guest(t, "hello"))
		want := "nestvm: --files: files root " + tc.dir + ": " + tc.want + "\n"
		if status != nester.StatusMonitor || out != "" || errs != want {
			t.Errorf("--files %s: status %d, stdout %q, stderr %q; want %d and %q", tc.dir, status, out, errs, nester.StatusMonitor, want)
		}
	}
}

func TestRunHelpTellsFiles(t *testing.T) {
	status, out, _ := run(t, "help", "run")
	for _, want := range []string{"--files directory", "(default .)", "--files-rw", "read-only unless --files-rw"} {
		if status != 0 || !strings.Contains(out, want) {
			t.Errorf("help run: status %d, no %q in\n%s", status, want, out)
		}
	}
}
