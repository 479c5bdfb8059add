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
	data, err := os.ReadFile(testutil.Guest(t, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	const reps = 5
	backendtest.Each(t, func(t *testing.T, b vmm.Backend) {
		for _, mem := range []uint64{64 << 20, 1 << 30} {
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
				l, err := New(file+",after-writes=3,stop", nil)
				if err != nil {
					t.Fatal(err)
				}
				t0 := time.Now()
				r, err := nester.Launch(mon, root, []nester.Layer{l}, nester.Program{Name: "counter", Image: img, Args: []string{"counter", "6"}})
				if err != nil {
					t.Fatal(err)
				}
				fresh += time.Since(t0)
				wait(t, r, &out)
				rs.Kill("over")
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
			t.Logf("%s counter --mem %dM: start afresh %v | checkpoint %d bytes (%d pages), stop %v, save %v | restore %v (decode %v)",
				b.Name(), mem>>20, fresh/n, size, pages, stop/n, save/n, restore/n, decode/n)
		}
	})
}
