package checkpoint

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/nester"
	"nestvm/vmm"
)

// TestMeasure prints, side by side in one run on each backend, the time
// to start counter afresh (load and start through nester) and to restore
// it from a checkpoint (decode, rebuild and start), with the checkpoint's
// size and the time to stop and save it, at two memory sizes (the heap is
// half of it, and a save reads all of it to find the pages that are not
// zero). Set NESTVM_CKPT_MEASURE=1 to run it.
func TestMeasure(t *testing.T) {
	if os.Getenv("NESTVM_CKPT_MEASURE") == "" {
		t.Skip("set NESTVM_CKPT_MEASURE=1 to measure")
	}
	const reps = 5
	backendtest.Each(t, func(t *testing.T, b vmm.Backend) {
		for _, w := range []struct {
			name  string
			args  []string
			mem   uint64
			delay time.Duration // save this long after the start; 0: after the 3rd write
		}{
			{"counter", []string{"6"}, 64 << 20, 0},
			{"counter", []string{"6"}, 1 << 30, 0},
			{"memtouch", []string{"64"}, 256 << 20, 15 * time.Millisecond},
		} {
			mem := w.mem
			data, err := os.ReadFile(testutil.Guest(t, w.name))
			if err != nil {
				t.Fatal(err)
			}
			img, err := vmm.ParseELF(data, mem)
			if err != nil {
				t.Fatal(err)
			}
			var fresh, restore, stop, save, decode time.Duration
			var size, pages int
			for range reps {
				// Afresh.
				mon := vmm.NewMonitor(b, nil)
				var out syncBuffer
				root, rs := nester.Root(mon, nester.RootConfig{Console: &out, Stderr: &out, Memory: mem})
				file := filepath.Join(t.TempDir(), "c.nvck")
				spec := file + ",after-writes=3,stop"
				if w.delay > 0 {
					spec = file + ",stop"
				}
				l, err := New(spec, nil)
				if err != nil {
					t.Fatal(err)
				}
				t0 := time.Now()
				r, err := nester.Launch(mon, root, []nester.Layer{l}, nester.Program{Name: w.name, Image: img, Args: append([]string{w.name}, w.args...)})
				if err != nil {
					t.Fatal(err)
				}
				fresh += time.Since(t0)
				if w.delay > 0 {
					time.Sleep(w.delay)
					l.fire("measure")
				}
				wait(t, r, &out)
				rs.Kill("over")
				if l.Saves() == 0 {
					t.Fatalf("%s ended before the save", w.name)
				}
				st := l.Last()
				stop, save, size, pages = stop+st.Stop, save+st.Save, st.Bytes, st.Pages
				// Restored.
				t0 = time.Now()
				buf, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				ck, err := Decode(buf)
				if err != nil {
					t.Fatal(err)
				}
				decode += time.Since(t0)
				mon = vmm.NewMonitor(b, nil)
				root, rs = nester.Root(mon, nester.RootConfig{Console: &out, Stderr: &out, Memory: mem})
				rr, err := Restore(mon, root, ck)
				if err != nil {
					t.Fatal(err)
				}
				restore += time.Since(t0)
				wait(t, rr, &out)
				rs.Kill("over")
			}
			n := time.Duration(reps)
			t.Logf("%s %s %v --mem %dM: start afresh %v | checkpoint %d bytes (%d pages), stop %v, save %v | restore %v (decode %v)",
				b.Name(), w.name, w.args, mem>>20, fresh/n, size, pages, stop/n, save/n, restore/n, decode/n)
		}
	})
}
