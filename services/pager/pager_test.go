package pager

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/internal/testutil"
	"nestvm/interpose"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// syncBuffer is a writer a test reads while guests write it.
type syncBuffer = testutil.Buffer

// run runs guest name with args under layers on b (see layertest.Run).
var run = layertest.Run

// newPager makes a pager swapping to a file in a test directory.
func newPager(t *testing.T, maxPages int, report *syncBuffer) *Layer {
	t.Helper()
	var w io.Writer // a nil *syncBuffer is not a nil io.Writer
	if report != nil {
		w = report
	}
	l, err := Open(filepath.Join(t.TempDir(), "swap.img"), maxPages, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args string
		path string
		n    int
		bad  string
	}{
		{args: "swap.img", path: "swap.img", n: DefaultPages},
		{args: "swap.img,max-pages=256", path: "swap.img", n: 256},
		{args: "/tmp/s, max-pages=64", path: "/tmp/s", n: 64},
		{args: "", bad: "needs a swap file"},
		{args: "max-pages=256", bad: "needs a swap file"},
		{args: "s,max-pages=63", bad: "at least 64"},
		{args: "s,max-pages=x", bad: "whole number"},
		{args: "s,max-pages=-1", bad: "whole number"},
		{args: "s,max-pages=64,max-pages=65", bad: "twice"},
		{args: "s,pages=64", bad: `unknown option "pages"`},
		{args: "s,64", bad: "not key=value"},
	} {
		path, n, err := Parse(tc.args)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("Parse(%q): error %v, want one saying %q", tc.args, err, tc.bad)
			}
			continue
		}
		if err != nil || path != tc.path || n != tc.n {
			t.Errorf("Parse(%q) = %q, %d, %v; want %q, %d", tc.args, path, n, err, tc.path, tc.n)
		}
	}
}

// TestMemtouchUnderLimit: memtouch 8 (2048 pages of heap) under 128
// resident pages prints the checksum it prints alone, and pages out.
func TestMemtouchUnderLimit(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		want, res := run(t, b, nil, "", "memtouch", "8")
		if !res.Exited || res.Status != 0 || !strings.Contains(want, "checksum") {
			t.Fatalf("memtouch alone: %q, %v", want, res)
		}
		var report syncBuffer
		l := newPager(t, 128, &report)
		got, res := run(t, b, []nester.Layer{l}, "", "memtouch", "8")
		if !res.Exited || res.Status != 0 || got != want {
			t.Fatalf("memtouch under the pager: %q, %v; want %q", got, res, want)
		}
		s := l.Stats()
		if s.PageOuts < 2048-128 || s.SwapIns == 0 || s.Peak != 128 || s.PageIns != s.PageOuts+s.Resident {
			t.Errorf("stats %+v: want page-outs > %d, swap-ins, peak 128, page-ins = page-outs + resident", s, 2048-128)
		}
		if s.ReadAhead == 0 || s.Faults > s.PageIns/4 {
			t.Errorf("stats %+v: a sequential scan should be read ahead", s)
		}
		if r := report.String(); !strings.Contains(r, "[pager] max-pages=128 page-ins=") || !strings.Contains(r, "peak-resident=128") {
			t.Errorf("report %q", r)
		}
		// Within the limit nothing is paged out.
		l = newPager(t, 4096, nil)
		got, res = run(t, b, []nester.Layer{l}, "", "memtouch", "8")
		if got != want || !res.Exited {
			t.Fatalf("memtouch under a pager with room: %q, %v", got, res)
		}
		if s := l.Stats(); s.PageOuts != 0 || s.Peak < 2048 || s.Peak > 4096 {
			t.Errorf("with room, stats %+v", s)
		}
	})
}

// TestSameOutput: hello and counter print what they print alone.
func TestSameOutput(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		for _, tc := range [][]string{{"hello", "world"}, {"counter", "20"}} {
			want, res0 := run(t, b, nil, "", tc[0], tc[1:]...)
			l := newPager(t, MinPages, nil)
			got, res := run(t, b, []nester.Layer{l}, "", tc[0], tc[1:]...)
			if got != want || res != res0 || want == "" {
				t.Errorf("%s under the pager: %q, %v; alone %q, %v", tc[0], got, res, want, res0)
			}
			if s := l.Stats(); s.PageIns == 0 {
				t.Errorf("%s: the pager supplied nothing: %+v", tc[0], s)
			}
			if err := l.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
	})
}

// TestNested: a guest nester under the pager runs its program, whose
// memory the nester (not the pager) keeps.
func TestNested(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		dir := testutil.GuestDir(t)
		want, _ := run(t, b, nil, dir, "nest", "memtouch.elf", "2")
		l := newPager(t, MinPages, nil)
		got, res := run(t, b, []nester.Layer{l}, dir, "nest", "memtouch.elf", "2")
		if got != want || !res.Exited || res.Status != 0 || !strings.Contains(got, "checksum") {
			t.Errorf("nest memtouch under the pager: %q, %v; alone %q", got, res, want)
		}
	})
}

func TestUnwritableSwap(t *testing.T) {
	_, err := New(filepath.Join(t.TempDir(), "no", "such", "dir", "swap.img")+",max-pages=64", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "swap file") {
		t.Fatalf("an unwritable swap path: %v", err)
	}
	dir := t.TempDir()
	if _, err := New(dir, nil, nil); err == nil {
		t.Fatalf("a directory as swap file was accepted")
	}
}

// TestSwapFailsMidRun: a swap write that fails ends the program, and the
// layer's Close (so the run) reports why.
func TestSwapFailsMidRun(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l := newPager(t, MinPages, nil)
		var writes atomic.Int32
		real := l.writeAt
		l.writeAt = func(p []byte, off int64) (int, error) {
			if writes.Add(1) > 100 {
				return 0, errors.New("injected: disk full")
			}
			return real(p, off)
		}
		_, res := run(t, b, []nester.Layer{l}, "", "memtouch", "4")
		if res.Err == nil || !strings.Contains(res.Err.Error(), "writing page") || !strings.Contains(res.Err.Error(), "injected: disk full") {
			t.Fatalf("a swap file that fails: %+v", res)
		}
		if res.Exited && res.Status == 0 {
			t.Errorf("the program ended well: %+v", res)
		}
	})
}

// TestSwapFull: the same with a real device that is always full.
func TestSwapFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l, err := Open("/dev/full", MinPages, nil, nil)
		if err != nil {
			t.Skipf("cannot open /dev/full: %v", err)
		}
		_, res := run(t, b, []nester.Layer{l}, "", "memtouch", "1")
		if res.Err == nil || !strings.Contains(res.Err.Error(), "/dev/full") || !strings.Contains(res.Err.Error(), "no space left") {
			t.Fatalf("a full swap device: %+v", res)
		}
	})
}

// watch is a layer that wraps every capability, deep, and forwards every
// call: under it the pager is handed stand-ins, not spaces and regions.
type watch struct{}

func (watch) Name() string { return "watch" }
func (watch) Close() error { return nil }
func (watch) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	w := &interpose.Wrapper{Host: mon.NewHost("watch", vmm.DefaultQuota), Deep: true, Layer: "watch", Handler: interpose.Forwarder}
	return parent.WrapAll(w)
}

// TestUnderAnotherLayer: below a layer that hands out stand-ins, the pager
// still keeps the program's memory, and still ends it when swap fails.
func TestUnderAnotherLayer(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		want, _ := run(t, b, nil, "", "memtouch", "2")
		l := newPager(t, MinPages, nil)
		got, res := run(t, b, []nester.Layer{watch{}, l}, "", "memtouch", "2")
		if got != want || !res.Exited || res.Status != 0 {
			t.Fatalf("memtouch under watch and the pager: %q, %v; want %q", got, res, want)
		}
		if s := l.Stats(); s.PageOuts == 0 || s.Peak != MinPages {
			t.Errorf("stats %+v", s)
		}
		l = newPager(t, MinPages, nil)
		l.writeAt = func([]byte, int64) (int, error) { return 0, errors.New("injected") }
		_, res = run(t, b, []nester.Layer{watch{}, l}, "", "memtouch", "2")
		if res.Err == nil || !strings.Contains(res.Err.Error(), "injected") {
			t.Fatalf("a failing swap under watch: %+v", res)
		}
	})
}

// TestWriteToSwappedPage drives the keeper directly: a region_read (on the
// program's region handle) of a page out in the swap file reads its
// swapped contents, and a region_write to it is what the page holds when
// it comes back, not the older swapped copy.
func TestWriteToSwappedPage(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		root, rootSpace := nester.Root(mon, nester.RootConfig{Console: io.Discard, Memory: 64 << 20})
		defer rootSpace.Kill("test over")
		l := newPager(t, MinPages, nil)
		env, err := l.Wrap(mon, root)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		host := mon.NewHost("test", vmm.Quota{Handles: 1024, Children: 1})
		hc := host.NewCaller()
		sp := env.Caps[nester.CapSpace]
		h, err := hc.Insert(sp.Obj, sp.Rights, sp.Badge)
		if err != nil {
			t.Fatal(err)
		}
		child, _, err := hc.SpaceCreate(h, 4096, 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		const pages = 4 * MinPages
		region, _, err := hc.RegionCreate(child, pages*4096)
		if err != nil {
			t.Fatal(err)
		}
		fill := func(v byte) []byte { return bytes.Repeat([]byte{v}, 4096) }
		if _, _, err := hc.RegionWrite(region, 0, fill('A')); err != nil {
			t.Fatal(err)
		}
		kc := l.host.NewCaller()
		touch := func(p uint64) {
			t.Helper()
			m := abi.Msg{Kind: abi.MsgPage, Badge: 1}
			m.Words[abi.FaultWordOffset] = p * 4096
			l.pmu.Lock()
			defer l.pmu.Unlock()
			if err := l.pageIn(kc, &m); err != nil {
				t.Fatal(err)
			}
		}
		for p := uint64(0); p < pages; p += 2 { // not sequential: no read-ahead
			touch(p)
		}
		r := l.regions[1]
		if r.resident[0] || r.slot[0] < 0 {
			t.Fatalf("page 0 not swapped out: resident %v, slot %d", r.resident[0], r.slot[0])
		}
		// The program's region_read of it reads the swapped contents, not
		// the zeros its released memory holds, and leaves it out.
		got := make([]byte, 4096)
		if _, _, err := hc.RegionRead(region, 0, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, fill('A')) || r.resident[0] {
			t.Fatalf("region_read of swapped page 0: %q..., resident %v; want A, not resident", got[:8], r.resident[0])
		}
		// A partial write keeps the rest of the page.
		if _, _, err := hc.RegionWrite(region, 0, fill('B')[:100]); err != nil {
			t.Fatal(err)
		}
		if _, _, err := hc.RegionRead(region, 0, got); err != nil {
			t.Fatal(err)
		}
		if want := append(fill('B')[:100:100], fill('A')[100:]...); !bytes.Equal(got, want) {
			t.Fatalf("partial write to swapped page 0: %q...%q", got[:8], got[100:108])
		}
		if _, _, err := hc.RegionWrite(region, 0, fill('B')); err != nil {
			t.Fatal(err)
		}
		touch(0)
		if _, _, err := hc.RegionRead(region, 0, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, fill('B')) {
			t.Fatalf("page 0 after a write while swapped out holds %q..., want B", got[:8])
		}
		// Evicted again, it goes to the swap file with the write.
		for p := uint64(1); p < pages; p += 2 {
			touch(p)
		}
		if r.resident[0] {
			t.Fatalf("page 0 resident")
		}
		clear(got)
		if _, err := l.readAt(got, int64(r.slot[0])*4096); err != nil || !bytes.Equal(got, fill('B')) {
			t.Fatalf("swap slot of page 0: %v, %q...", err, got[:8])
		}
	})
}
