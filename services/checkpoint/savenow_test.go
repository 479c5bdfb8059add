package checkpoint

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// TestSaveNow: SaveNow saves when asked and the program goes on; with
// stop it saves and ends the program where it stood. The program (copy,
// stdin to stdout) waits for input between the saves, so nothing depends
// on timing: the file restores to a program that copies the rest of the
// input, and after the run a request is refused with ErrEnded.
func TestSaveNow(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		img := loadImage(t, "copy", 64<<20)
		mon := vmm.NewMonitor(b, nil)
		var out syncBuffer
		in, feed := io.Pipe()
		defer feed.Close()
		root, rs := nester.Root(mon, nester.RootConfig{Console: &out, Stderr: &out, Stdin: in, Memory: 64 << 20})
		defer rs.Kill("test over")
		file := filepath.Join(t.TempDir(), "now.nvck")
		l, err := New(file, nester.Host{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := nester.Launch(mon, root, []nester.Layer{l}, nester.Program{Name: "copy", Image: img, Args: []string{"copy"}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		go feed.Write([]byte("one\n"))
		waitUntil(t, "one", func() bool { return out.String() == "one\n" })
		if got, err := l.SaveNow(ctx, false); err != nil || got != file {
			t.Fatalf("SaveNow: %q, %v", got, err)
		}
		go feed.Write([]byte("two\n"))
		waitUntil(t, "two after the save", func() bool { return out.String() == "one\ntwo\n" })
		if _, err := l.SaveNow(ctx, true); err != nil {
			t.Fatalf("SaveNow with stop: %v", err)
		}
		res := wait(t, r, &out)
		if !l.Stopped() || out.String() != "one\ntwo\n" {
			t.Fatalf("run after a save with stop: %v, stopped %v, %q", res, l.Stopped(), out.String())
		}
		if _, err := l.SaveNow(ctx, false); !errors.Is(err, ErrEnded) {
			t.Errorf("SaveNow after the run: %v, want ErrEnded", err)
		}

		ck := decodeFile(t, file)
		mon2 := vmm.NewMonitor(b, nil)
		var rest syncBuffer
		root2, rs2 := nester.Root(mon2, nester.RootConfig{Console: &rest, Stderr: &rest, Stdin: strings.NewReader("three\n"), Memory: 64 << 20})
		defer rs2.Kill("test over")
		r2, err := Restore(mon2, root2, ck)
		if err != nil {
			t.Fatal(err)
		}
		if res := wait(t, r2, &rest); !res.Exited || rest.String() != "three\n" {
			t.Fatalf("restored: %v, %q", res, rest.String())
		}
	})
}
