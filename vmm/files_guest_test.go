package vmm_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

// runWithFiles runs the built guest name with args on b, with a files
// root over dir (none when dir is empty), and returns its console output
// and result.
func runWithFiles(t *testing.T, b machine.Backend, dir string, writable bool, name string, args ...string) (string, vmm.Result) {
	t.Helper()
	data, err := os.ReadFile(testutil.Guest(t, name))
	if err != nil {
		t.Fatal(err)
	}
	img, err := vmm.ParseELF(data, vmm.DefaultQuota.Memory)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var console bytes.Buffer
	env := vmm.Env{Console: &console}
	if dir != "" {
		files, err := vmm.FilesServer(dir, writable)
		if err != nil {
			t.Fatal(err)
		}
		defer files.Close()
		env.Files, env.FilesWritable = files, writable
	}
	s, err := vmm.NewMonitor(b, nil).Launch(vmm.Program{
		Name: name, Image: img, Args: append([]string{name}, args...),
	}, env)
	if err != nil {
		t.Fatalf("launch %s: %v", name, err)
	}
	select {
	case <-s.Done():
	case <-time.After(60 * time.Second):
		s.Kill("test timeout")
		t.Fatalf("%s did not finish in 60s; output so far:\n%s", name, console.String())
	}
	return console.String(), s.Wait()
}

func TestFilesGuests(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		tree := testutil.NewFilesTree(t)
		for _, tc := range []struct {
			name     string
			args     []string
			writable bool
			output   string
			status   int
		}{
			{name: "cat", args: []string{"hello.txt", "sub/inner.txt"}, output: "hello, files\ninner\n"},
			{name: "cat", args: []string{"hello.txt", "nope", "escape", "sub/inner.txt"}, status: 1,
				output: "hello, files\ncat: nope: not found\ncat: escape: denied\ninner\n"},
			{name: "ls", output: "abs\nescape\nhello.txt\ninlink\nsub/\n"},
			{name: "ls", args: []string{"sub"}, output: "inner.txt\nup\n"},
			{name: "ls", args: []string{"../"}, status: 1, output: "ls: ../: denied\n"},
			{name: "fileio", args: []string{"ro"}, output: "PASS\n"},
			{name: "fileio", args: []string{"rw"}, output: "PASS\n", writable: true},
			{name: "fsops", output: "PASS\n", writable: true},
		} {
			out, r := runWithFiles(t, b, tree.Root, tc.writable, tc.name, tc.args...)
			if out != tc.output || !r.Exited || r.Status != tc.status {
				t.Errorf("%s %q: output %q, result %s; want %q and status %d", tc.name, tc.args, out, r, tc.output, tc.status)
			}
		}
		if b, err := os.ReadFile(filepath.Join(tree.Root, "new.txt")); err != nil || string(b) != "done\n" {
			t.Errorf("fileio rw left new.txt holding %q (%v), want \"done\\n\"", b, err)
		}
		tree.CheckOutside(t)
	})
}

// A program launched without a files service finds no files handle.
func TestFilesAbsent(t *testing.T) {
	b := backendtest.Get(t, "emu")
	out, r := runWithFiles(t, b, "", false, "cat", "hello.txt")
	if out != "cat: no files root\n" || !r.Exited || r.Status != 1 {
		t.Errorf("output %q, result %s", out, r)
	}
}
