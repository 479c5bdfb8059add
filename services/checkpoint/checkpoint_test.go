package checkpoint

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/services/pager"
	"nestvm/services/trace"
	"nestvm/vmm"
)

type syncBuffer = testutil.Buffer

type ender interface {
	Done() <-chan struct{}
	Wait() vmm.Result
	Kill(int, string)
}

func wait(t *testing.T, r ender, out *syncBuffer) vmm.Result {
	t.Helper()
	select {
	case <-r.Done():
	case <-time.After(120 * time.Second):
		r.Kill(124, "test timeout")
		t.Fatalf("did not end; output %q", out.String())
	}
	return r.Wait()
}

// loadImage reads and parses guest name for a space of mem bytes.
func loadImage(t *testing.T, name string, mem uint64) *vmm.Image {
	t.Helper()
	data, err := os.ReadFile(testutil.Guest(t, name))
	if err != nil {
		t.Fatal(err)
	}
	img, err := vmm.ParseELF(data, mem)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testRoot returns a root environment on mon writing to out and errs,
// with files (when not "") as its files root, and what ends it.
func testRoot(t *testing.T, mon *vmm.Monitor, files string, out, errs io.Writer) (nester.Env, func()) {
	t.Helper()
	cfg := nester.RootConfig{Console: out, Stderr: errs, Memory: 64 << 20}
	closeFiles := func() {}
	if files != "" { // nest: room for two nesters' heaps
		cfg.Memory = 512 << 20
		fs, err := vmm.FilesServer(files, false)
		if err != nil {
			t.Fatal(err)
		}
		closeFiles = func() { fs.Close() }
		cfg.Files = fs
	}
	root, rootSpace := nester.Root(mon, cfg)
	return root, func() {
		rootSpace.Kill("test over")
		closeFiles()
	}
}

// decodeFile reads and decodes the checkpoint in file.
func decodeFile(t *testing.T, file string) *Checkpoint {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// launch runs guest name under layers on b and returns its output and
// result.
func launch(t *testing.T, b machine.Backend, layers []nester.Layer, name string, args ...string) (string, vmm.Result) {
	t.Helper()
	return launchFiles(t, b, layers, "", name, args...)
}

// launchFiles is launch with files (when not "") as the files root.
func launchFiles(t *testing.T, b machine.Backend, layers []nester.Layer, files, name string, args ...string) (string, vmm.Result) {
	t.Helper()
	img := loadImage(t, name, 64<<20)
	mon := vmm.NewMonitor(b, nil)
	var out, errs syncBuffer
	root, end := testRoot(t, mon, files, &out, &errs)
	defer end()
	r, err := nester.Launch(mon, root, layers, nester.Program{Name: name, Image: img, Args: append([]string{name}, args...)})
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, r, &out)
	if errs.String() != "" {
		t.Logf("stderr: %s", errs.String())
	}
	return out.String(), res
}

// restore rebuilds the checkpoint in file on b, and returns its output
// and result.
func restore(t *testing.T, b machine.Backend, file string) (string, vmm.Result) {
	t.Helper()
	return restoreFiles(t, b, "", file)
}

// restoreUnder is restore with layers between the monitor and the
// restored program.
func restoreUnder(t *testing.T, b machine.Backend, file string, layers ...nester.Layer) (string, vmm.Result) {
	t.Helper()
	return restoreFiles(t, b, "", file, layers...)
}

func restoreFiles(t *testing.T, b machine.Backend, files, file string, layers ...nester.Layer) (string, vmm.Result) {
	t.Helper()
	ck := decodeFile(t, file)
	mon := vmm.NewMonitor(b, nil)
	var out, errs syncBuffer
	root, end := testRoot(t, mon, files, &out, &errs)
	defer end()
	var err error
	for _, l := range layers {
		if root, err = l.Wrap(mon, root); err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	r, err := Restore(mon, root, ck)
	if err != nil {
		t.Fatal(err)
	}
	res := wait(t, r, &out)
	if errs.String() != "" {
		t.Logf("stderr: %s", errs.String())
	}
	return out.String(), res
}

// TestCounterRestore checkpoints counter after its third write, on each
// backend, and restores it on each: the output before the checkpoint and
// the restored run's, joined, must be the undisturbed run's, with and
// without stop.
func TestCounterRestore(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, from machine.Backend) {
		want, res := launch(t, from, nil, "counter", "6")
		if !res.Exited || res.Status != 0 || !strings.HasPrefix(want, "1\n2\n3\n") {
			t.Fatalf("undisturbed counter: %v, %q", res, want)
		}
		for _, stop := range []bool{false, true} {
			name := "go-on"
			if stop {
				name = "stop"
			}
			t.Run(name, func(t *testing.T) {
				file := filepath.Join(t.TempDir(), "c.nvck")
				spec := file + ",after-writes=3"
				if stop {
					spec += ",stop"
				}
				l, err := New(spec, nester.Host{})
				if err != nil {
					t.Fatal(err)
				}
				got, res := launch(t, from, []nester.Layer{l}, "counter", "6")
				if l.Saves() != 1 {
					t.Fatalf("%d checkpoints saved", l.Saves())
				}
				st := l.Last()
				if stop {
					if !l.Stopped() || res.Exited {
						t.Fatalf("stop: the run ended %v", res)
					}
					if uint64(len(got)) != st.Console {
						t.Fatalf("stop: %d bytes written, the checkpoint says %d", len(got), st.Console)
					}
				} else if got != want || !res.Exited {
					t.Fatalf("checkpointed run: %v %q, want %q", res, got, want)
				}
				t.Logf("checkpoint: %d bytes, %d pages, stop %v, save %v, after %d console bytes", st.Bytes, st.Pages, st.Stop, st.Save, st.Console)
				backendtest.Each(t, func(t *testing.T, to machine.Backend) {
					t0 := time.Now()
					rest, res := restore(t, to, file)
					if !res.Exited || res.Status != 0 {
						t.Fatalf("restored: %v, %q", res, rest)
					}
					if joined := want[:st.Console] + rest; joined != want {
						t.Errorf("before %q + restored %q != %q", want[:st.Console], rest, want)
					}
					t.Logf("restore and run to the end: %v", time.Since(t0))
				})
			})
		}
	})
}

// TestBatchRestore checkpoints kerneltest's batchprint, one call_batch of
// six console_writes, after its third write, on each backend, and
// restores it on each: the program stops between two entries of the
// batch, and the batch re-issued after the restore skips the entries it
// marked done, so the output joined is the undisturbed run's, with no
// line twice.
func TestBatchRestore(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, from machine.Backend) {
		want, res := launch(t, from, nil, "kerneltest", "batchprint")
		if !res.Exited || res.Status != 0 || want != "1\n2\n3\n4\n5\n6\nPASS batchprint\n" {
			t.Fatalf("undisturbed batchprint: %v, %q", res, want)
		}
		file := filepath.Join(t.TempDir(), "c.nvck")
		l, err := New(file+",after-writes=3,stop", nester.Host{})
		if err != nil {
			t.Fatal(err)
		}
		got, res := launch(t, from, []nester.Layer{l}, "kerneltest", "batchprint")
		if l.Saves() != 1 || !l.Stopped() || res.Exited {
			t.Fatalf("%d checkpoints saved, stopped %v, the run ended %v", l.Saves(), l.Stopped(), res)
		}
		st := l.Last()
		if uint64(len(got)) != st.Console || st.Console >= 12 {
			t.Fatalf("stopped after %q; the checkpoint says %d bytes, want fewer than the six lines", got, st.Console)
		}
		backendtest.Each(t, func(t *testing.T, to machine.Backend) {
			rest, res := restore(t, to, file)
			if !res.Exited || res.Status != 0 {
				t.Fatalf("restored: %v, %q", res, rest)
			}
			if joined := got + rest; joined != want {
				t.Errorf("before %q + restored %q != %q", got, rest, want)
			}
		})
	})
}

// TestHandlesRestore checkpoints the handles guest in the middle of its
// count, on each backend, and restores it on each: its end (revoke
// reaching 4 handles over two spaces, the deep handle gone, a message
// received through a port set) comes out as in the undisturbed run only
// when the derivation tree and the port set were saved and rebuilt.
func TestHandlesRestore(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, from machine.Backend) {
		want, res := launch(t, from, nil, "handles", "4")
		if !res.Exited || res.Status != 0 || !strings.Contains(want, "revoked 4\ndeep handle: bad handle\nset: tag 42, \"queued\"\n") {
			t.Fatalf("undisturbed handles: %v, %q", res, want)
		}
		file := filepath.Join(t.TempDir(), "h.nvck")
		l, err := New(file+",after-writes=2,stop", nester.Host{})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := launch(t, from, []nester.Layer{l}, "handles", "4")
		if !l.Stopped() || before != "1\n2\n" {
			t.Fatalf("checkpointed run: %q, stopped %v", before, l.Stopped())
		}
		ck := decodeFile(t, file)
		derived := 0
		for _, s := range ck.Spaces {
			for _, h := range s.Table {
				if h.Parent != nil {
					derived++
				}
			}
		}
		if len(ck.PortSets) != 1 || len(ck.PortSets[0].Ports) != 2 || derived < 5 {
			t.Fatalf("saved %d port sets (%v), %d derived handles; want 1 set of 2 ports and at least 5 derived handles", len(ck.PortSets), ck.PortSets, derived)
		}
		backendtest.Each(t, func(t *testing.T, to machine.Backend) {
			rest, res := restore(t, to, file)
			if !res.Exited || res.Status != 0 || before+rest != want {
				t.Fatalf("restored: %v; before %q + restored %q, want %q", res, before, rest, want)
			}
			// Under layers that stand in for the space the restore works
			// through, the tree is rebuilt the same (moves pass through).
			pg, _ := pager.New(filepath.Join(t.TempDir(), "swap"), io.Discard, nil)
			tr, _ := trace.New("format=jsonl,file="+filepath.Join(t.TempDir(), "t.jsonl"), nil, nil)
			for _, l := range []nester.Layer{pg, tr} {
				rest, res := restoreUnder(t, to, file, l)
				if !res.Exited || res.Status != 0 || before+rest != want {
					t.Errorf("restored under %s: %v; before %q + restored %q, want %q", l.Name(), res, before, rest, want)
				}
			}
		})
	})
}

// TestNestedRestore checkpoints counter two guest nesters deep (nest nest
// counter): three spaces, regions nest keeps through its exception port,
// handles to child spaces. Restored on each backend, it goes on where it
// stopped.
func TestNestedRestore(t *testing.T) {
	guests := testutil.GuestDir(t)
	backendtest.Each(t, func(t *testing.T, from machine.Backend) {
		want, res := launchFiles(t, from, nil, guests, "nest", "nest.elf", "counter.elf", "5")
		if !res.Exited || res.Status != 0 || !strings.HasPrefix(want, "1\n2\n3\n") {
			t.Fatalf("undisturbed nest nest counter: %v, %q", res, want)
		}
		file := filepath.Join(t.TempDir(), "n.nvck")
		l, err := New(file+",after-writes=3,stop", nester.Host{})
		if err != nil {
			t.Fatal(err)
		}
		before, res := launchFiles(t, from, []nester.Layer{l}, guests, "nest", "nest.elf", "counter.elf", "5")
		if !l.Stopped() || uint64(len(before)) != l.Last().Console {
			t.Fatalf("checkpointed run: %v, %q, stopped %v", res, before, l.Stopped())
		}
		ck := decodeFile(t, file)
		kept := 0
		for _, r := range ck.Regions {
			if r.Keeper.Kind == RefPort {
				kept++
			}
		}
		if len(ck.Spaces) != 3 || kept == 0 {
			t.Fatalf("saved %d spaces, %d kept regions; want 3 spaces and kept regions", len(ck.Spaces), kept)
		}
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("saved %d spaces, %d threads, %d regions (%d kept), %d pages, %d bytes", len(ck.Spaces), len(ck.Threads), len(ck.Regions), kept, ck.PageCount(), fi.Size())
		backendtest.Each(t, func(t *testing.T, to machine.Backend) {
			rest, res := restoreFiles(t, to, guests, file)
			if !res.Exited || res.Status != 0 || before+rest != want {
				t.Fatalf("restored: %v; before %q + restored %q, want %q", res, before, rest, want)
			}
		})
	})
}

// TestSaveAnyMoment: a save requested at any moment (a thread computing,
// blocked in port_call or port_receive, inside a console write) produces a
// file that restores to the rest of the undisturbed output.
func TestSaveAnyMoment(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		want, _ := launch(t, b, nil, "counter", "4")
		for i, delay := range []time.Duration{0, 7 * time.Millisecond, 23 * time.Millisecond, 61 * time.Millisecond, 150 * time.Millisecond} {
			file := filepath.Join(t.TempDir(), "c.nvck")
			l, err := New(file+",stop", nester.Host{})
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				time.Sleep(delay)
				for l.Saves() == 0 && !l.closed() {
					l.fire("test")
					time.Sleep(time.Millisecond)
				}
			}()
			before, res := launch(t, b, []nester.Layer{l}, "counter", "4")
			if !l.Stopped() {
				t.Logf("try %d: the program ended (%v) before a save", i, res)
				continue
			}
			rest, res := restore(t, b, file)
			if !res.Exited || res.Status != 0 || before+rest != want {
				t.Fatalf("try %d (after %v): %v; before %q + restored %q, want %q", i, delay, res, before, rest, want)
			}
		}
	})
}

// TestIncremental: saves after the first read only the pages written
// since (region_dirty), and the newest file still restores to the rest of
// the output. The saves are fired at known points of counter's output
// (after its first line, then after its third), so what each reads does
// not depend on timing: the loader's writes all come before the first.
func TestIncremental(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		want, _ := launch(t, b, nil, "counter", "6")
		img := loadImage(t, "counter", 64<<20)
		mon := vmm.NewMonitor(b, nil)
		var out syncBuffer
		root, rs := nester.Root(mon, nester.RootConfig{Console: &out, Stderr: &out, Memory: 64 << 20})
		defer rs.Kill("test over")
		file := filepath.Join(t.TempDir(), "c.nvck")
		l, err := New(file, nester.Host{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := nester.Launch(mon, root, []nester.Layer{l}, nester.Program{Name: "counter", Image: img, Args: []string{"counter", "6"}})
		if err != nil {
			t.Fatal(err)
		}
		var stats []Stats
		for i, line := range []string{"1\n", "1\n2\n3\n"} {
			waitUntil(t, fmt.Sprintf("%q", line), func() bool { return strings.HasPrefix(out.String(), line) })
			l.fireHolding("test")
			waitUntil(t, fmt.Sprintf("save %d", i+1), func() bool { return l.Saves() == uint64(i+1) })
			stats = append(stats, l.Last())
		}
		res := wait(t, r, &out)
		if out.String() != want || !res.Exited {
			t.Fatalf("run: %v %q, want %q", res, out.String(), want)
		}
		for _, st := range stats {
			t.Logf("save %d: %d pages read, %d reused, %d in the file, save %v", st.Number, st.Read, st.Reused, st.Pages, st.Save)
		}
		// Between the saves counter writes a few pages: its stacks and
		// its total. Its heap is mapped with 2 MiB pages, which the first
		// save's harvest splits, so the second reads those few, not 512.
		if first, second := stats[0], stats[1]; first.Read == 0 || second.Reused == 0 || second.Read >= 64 {
			t.Errorf("the second save read %d pages and reused %d; the first read %d", second.Read, second.Reused, first.Read)
		}
		ck := decodeFile(t, file)
		rest, res := restore(t, b, file)
		if !res.Exited || want[:ck.ConsoleBytes]+rest != want {
			t.Fatalf("restored the newest: %v; %q + %q != %q", res, want[:ck.ConsoleBytes], rest, want)
		}
	})
}

// fireHolding asks for a save and holds the program's next console write
// until it is taken, as after-writes does: a program that computes only a
// little more before it ends (counter's last lines) cannot end first,
// however late the save gets to run on a loaded machine.
func (l *Layer) fireHolding(why string) {
	l.heldMu.Lock()
	if l.held == nil && !l.closed() {
		l.held = make(chan struct{})
	}
	l.heldMu.Unlock()
	l.fire(why)
}

// waitUntil polls cond until it holds, failing after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(200 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestRestoreHostile: checkpoints that decode (every reference in range)
// but ask for what the kernel refuses (rights an external capability lacks,
// quotas too small, numbers taken twice over, wild thread states) are
// refused by Restore with an error, or run and end; the monitor never
// panics, and nothing is left running.
func TestRestoreHostile(t *testing.T) {
	b := backendtest.Get(t, "emu")
	file := filepath.Join(t.TempDir(), "c.nvck")
	l, err := New(file+",after-writes=2,stop", nester.Host{})
	if err != nil {
		t.Fatal(err)
	}
	launch(t, b, []nester.Layer{l}, "counter", "4")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	mutations := map[string]func(ck *Checkpoint){
		"external with every right": func(ck *Checkpoint) {
			for i := range ck.Spaces[0].Table {
				if ck.Spaces[0].Table[i].Object.Kind == RefExternal {
					ck.Spaces[0].Table[i].Rights = uint64(abi.RightsAll)
				}
			}
		},
		"one page of quota":    func(ck *Checkpoint) { ck.Spaces[0].Pages = 1 },
		"one handle of quota":  func(ck *Checkpoint) { ck.Spaces[0].Handles = 1 },
		"no threads of quota":  func(ck *Checkpoint) { ck.Spaces[0].Threads = 1 },
		"overlapping mappings": func(ck *Checkpoint) { ck.Spaces[0].Maps[1].Addr = ck.Spaces[0].Maps[0].Addr },
		"wild rip":             func(ck *Checkpoint) { binary.LittleEndian.PutUint64(ck.Threads[0].State[128:], 0xdead0000) },
		"wild rsp and rflags": func(ck *Checkpoint) {
			binary.LittleEndian.PutUint64(ck.Threads[0].State[56:], 8)
			binary.LittleEndian.PutUint64(ck.Threads[0].State[136:], ^uint64(0))
		},
		"keeper on a mapped one": func(ck *Checkpoint) { ck.Regions[0].Keeper = Ref{Kind: RefPort} },
		"a message with a space": func(ck *Checkpoint) {
			ck.Ports[0].Msgs = append(ck.Ports[0].Msgs, Message{Tag: 1, Handle: Ref{Kind: RefSpace}, Rights: uint64(abi.RightsAll)})
		},
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			ck, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			mutate(ck)
			ck, err = Decode(Encode(ck))
			if err != nil {
				t.Logf("refused by Decode: %v", err)
				return
			}
			mon := vmm.NewMonitor(b, nil)
			var out syncBuffer
			root, rs := nester.Root(mon, nester.RootConfig{Console: &out, Stderr: &out, Memory: 64 << 20})
			defer rs.Kill("test over")
			r, err := Restore(mon, root, ck)
			if err != nil {
				t.Logf("refused by Restore: %v", err)
				return
			}
			select {
			case <-r.Done():
			case <-time.After(5 * time.Second):
				r.Kill(124, "test over")
			}
			t.Logf("ran: %v", r.Wait())
		})
	}
}

// TestUnderPager: a checkpoint below a pager saves the program's memory
// by asking the pager (the keeper, outside the subtree) for the pages,
// most of them out in its swap file; restored alone or under a pager of
// its own, memtouch's checksum of the whole memory after one more round
// is the undisturbed run's.
func TestUnderPager(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		want, res := launch(t, b, nil, "memtouch", "4", "1")
		if !res.Exited || res.Status != 0 || !strings.Contains(want, "round 1") {
			t.Fatalf("undisturbed memtouch: %v %q", res, want)
		}
		file := filepath.Join(t.TempDir(), "m.nvck")
		pg, err := pager.New(filepath.Join(t.TempDir(), "swap")+",max-pages=64", io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		l, err := New(file+",after-writes=1,stop", nester.Host{})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := launch(t, b, []nester.Layer{pg, l}, "memtouch", "4", "1")
		if !l.Stopped() || !strings.HasSuffix(want, "\n") || !strings.HasPrefix(want, before) {
			t.Fatalf("checkpointed run: %q, stopped %v", before, l.Stopped())
		}
		if st := pg.Stats(); st.PageOuts < 512 {
			t.Fatalf("the pager evicted %d pages: the save did not have to ask it for much", st.PageOuts)
		}
		rest, res := restore(t, b, file)
		if !res.Exited || before+rest != want {
			t.Errorf("restored alone: %v; %q + %q, want %q", res, before, rest, want)
		}
		rest, res = restoreUnder(t, b, file, func() nester.Layer {
			p, _ := pager.New(filepath.Join(t.TempDir(), "swap2")+",max-pages=64", io.Discard, nil)
			return p
		}())
		if !res.Exited || before+rest != want {
			t.Errorf("restored under a pager: %v; %q + %q, want %q", res, before, rest, want)
		}
	})
}

// TestWithWrappingLayers: a checkpoint next to a layer that wraps
// capabilities (trace), or below a pager (which keeps the program's space
// capability), cannot save the stand-ins: it refuses to save, and the
// program runs on to its undisturbed end.
func TestWithWrappingLayers(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		want, _ := launch(t, b, nil, "counter", "4")
		for _, c := range []struct {
			name  string
			other func() nester.Layer
			first bool // the other layer nearest the monitor
		}{
			{"trace above", func() nester.Layer {
				l, _ := trace.New("format=jsonl,file="+filepath.Join(t.TempDir(), "t.jsonl"), nil, nil)
				return l
			}, true},
			{"trace below", func() nester.Layer {
				l, _ := trace.New("format=jsonl,file="+filepath.Join(t.TempDir(), "t.jsonl"), nil, nil)
				return l
			}, false},
			{"pager below", func() nester.Layer { l, _ := pager.New(filepath.Join(t.TempDir(), "swap"), io.Discard, nil); return l }, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				l, err := New(filepath.Join(t.TempDir(), "c.nvck")+",after-writes=2", nester.Host{})
				if err != nil {
					t.Fatal(err)
				}
				layers := []nester.Layer{l, c.other()}
				if c.first {
					layers[0], layers[1] = layers[1], layers[0]
				}
				got, res := launch(t, b, layers, "counter", "4")
				if got != want || !res.Exited || res.Status != 0 {
					t.Fatalf("run: %v %q, want %q", res, got, want)
				}
				if l.Saves() != 0 {
					t.Errorf("%d saves of what cannot be saved", l.Saves())
				}
			})
		}
	})
}
