package checkpoint

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// TestTriggers: the layer takes its saves from the triggers of the Host
// it was made with, no OS signal involved: a save asked for before the
// program runs is taken once it does, and the program goes on; a save
// and stop ends it where it stood. The program (copy, stdin to stdout)
// waits for input between the saves, so nothing depends on timing; the
// file restores to a program that copies the rest of the input. Once the
// layer is closed, nobody listens to the triggers any more.
func TestTriggers(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		img := loadImage(t, "copy", 64<<20)
		mon := vmm.NewMonitor(b, nil)
		var out syncBuffer
		in, feed := io.Pipe()
		defer feed.Close()
		root, rs := nester.Root(mon, nester.RootConfig{Console: &out, Stderr: &out, Stdin: in, Memory: 64 << 20})
		defer rs.Kill("test over")
		file := filepath.Join(t.TempDir(), "asked.nvck")
		triggers := &nester.Triggers{}
		l, err := New(file, nester.Host{Triggers: triggers})
		if err != nil {
			t.Fatal(err)
		}
		if n := triggers.Send(nester.TriggerSave); n != 1 {
			t.Fatalf("a save sent to one checkpoint layer reached %d", n)
		}
		r, err := nester.Launch(mon, root, []nester.Layer{l}, nester.Program{Name: "copy", Image: img, Args: []string{"copy"}})
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the save asked for before the run", func() bool { return l.Saves() == 1 })
		go feed.Write([]byte("one\n"))
		waitUntil(t, "one after the save", func() bool { return out.String() == "one\n" })
		triggers.Send(nester.TriggerSaveStop)
		res := wait(t, r, &out)
		if !l.Stopped() || l.Saves() != 2 || l.Err() != nil || out.String() != "one\n" {
			t.Fatalf("run after a save and stop: %v, stopped %v, %d saves, error %v, %q", res, l.Stopped(), l.Saves(), l.Err(), out.String())
		}
		if n := triggers.Send(nester.TriggerSave); n != 0 {
			t.Errorf("a trigger after the layer closed reached %d listeners", n)
		}

		mon2 := vmm.NewMonitor(b, nil)
		var rest syncBuffer
		root2, rs2 := nester.Root(mon2, nester.RootConfig{Console: &rest, Stderr: &rest, Stdin: strings.NewReader("two\n"), Memory: 64 << 20})
		defer rs2.Kill("test over")
		r2, err := Restore(mon2, root2, decodeFile(t, file))
		if err != nil {
			t.Fatal(err)
		}
		if res := wait(t, r2, &rest); !res.Exited || rest.String() != "two\n" {
			t.Fatalf("restored: %v, %q", res, rest.String())
		}
	})
}
