package checkpoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// TestMeasure prints, side by side in one run on each backend, the time
// to start counter afresh (load and start through nester) and to restore
// it from a checkpoint (decode, rebuild and start), with the checkpoint's
// size and the time to stop and save it, at two memory sizes (the heap is
// half of it; a save reads only the pages ever written, so the size should
// not matter), and for memtouch 64. Set NESTVM_CKPT_MEASURE=1 to run it.
func TestMeasure(t *testing.T) {
	if os.Getenv("NESTVM_CKPT_MEASURE") == "" {
		t.Skip("set NESTVM_CKPT_MEASURE=1 to measure")
	}
	const reps = 5
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
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
			img := loadImage(t, w.name, mem)
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
				l, err := New(spec, nester.Host{})
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
				ck := decodeFile(t, file)
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

// TestMeasureIncremental prints, on each backend, for memtouch 64: the
// first save (after its 64 MiB pass), an incremental save after it
// rewrote 1 MiB, the restore of that newest file, and the start of the
// same program afresh, side by side in one run. Set NESTVM_CKPT_MEASURE=1
// to run it.
func TestMeasureIncremental(t *testing.T) {
	if os.Getenv("NESTVM_CKPT_MEASURE") == "" {
		t.Skip("set NESTVM_CKPT_MEASURE=1 to measure")
	}
	const reps = 3
	const mem = 256 << 20
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		img := loadImage(t, "memtouch", mem)
		var fresh, restore time.Duration
		var first, incr Stats
		for range reps {
			mon := vmm.NewMonitor(b, nil)
			var out syncBuffer
			root, rs := nester.Root(mon, nester.RootConfig{Console: &out, Stderr: &out, Memory: mem})
			file := filepath.Join(t.TempDir(), "m.nvck")
			l, err := New(file, nester.Host{})
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			r, err := nester.Launch(mon, root, []nester.Layer{l}, nester.Program{Name: "memtouch", Image: img, Args: []string{"memtouch", "64", "2"}})
			if err != nil {
				t.Fatal(err)
			}
			fresh += time.Since(t0)
			waitUntil(t, "the 64 MiB pass", func() bool { return strings.Contains(out.String(), "checksum") })
			l.fire("first")
			waitUntil(t, "the first save", func() bool { return l.Saves() == 1 })
			st := l.Last()
			first.Save, first.Paused, first.Bytes, first.Read, first.Pages = first.Save+st.Save, first.Paused+st.Paused, st.Bytes, st.Read, st.Pages
			waitUntil(t, "round 1", func() bool { return strings.Contains(out.String(), "round 1") })
			l.fire("incremental")
			waitUntil(t, "the second save", func() bool { return l.Saves() == 2 })
			st = l.Last()
			incr.Save, incr.Paused, incr.Bytes, incr.Read, incr.Reused = incr.Save+st.Save, incr.Paused+st.Paused, st.Bytes, st.Read, st.Reused
			want := out.String()[:st.Console]
			wait(t, r, &out)
			rs.Kill("over")
			undisturbed := out.String()

			t0 = time.Now()
			ck := decodeFile(t, file)
			mon = vmm.NewMonitor(b, nil)
			var rest syncBuffer
			root, rs = nester.Root(mon, nester.RootConfig{Console: &rest, Stderr: &rest, Memory: mem})
			rr, err := Restore(mon, root, ck)
			if err != nil {
				t.Fatal(err)
			}
			restore += time.Since(t0)
			wait(t, rr, &rest)
			rs.Kill("over")
			if want+rest.String() != undisturbed {
				t.Fatalf("restored output %q after %q, want %q", rest.String(), want, undisturbed)
			}
		}
		n := time.Duration(reps)
		t.Logf("%s memtouch 64 --mem %dM: start afresh %v | first save %v, paused %v (%d pages read, %d saved, %d bytes) | incremental save after 1 MiB %v, paused %v (%d pages read, %d reused, %d bytes) | restore %v",
			b.Name(), mem>>20, fresh/n, first.Save/n, first.Paused/n, first.Read, first.Pages, first.Bytes, incr.Save/n, incr.Paused/n, incr.Read, incr.Reused, incr.Bytes, restore/n)
	})
}
