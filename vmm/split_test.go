package vmm

import (
	"runtime"
	"testing"

	"nestvm/abi"
	"nestvm/machine"
)

// memOp is one space_unmap or space_protect (or space_map, or a supply of
// the kept region) a table case makes, and the error it must end with.
type memOp struct {
	op   abi.Op
	args []uint64
	want abi.Error
}

// piece is a mapping of a region as a case expects it.
type piece struct {
	addr, size, off uint64
	perm            machine.Perm
}

const rw = machine.PermRead | machine.PermWrite

// TestSplitMappings: space_unmap and space_protect of part of a mapping
// (its start, its end, its middle, across pieces) leave the rest mapped
// as pieces of the same region at the right offsets, with page-table
// entries as their permissions and the region's present pages say (the
// fixture's check looks at every page, the window's count of pieces and
// the regions' lists); perm 0 takes the entries away and a later protect
// brings them back; a protect over a hole changes nothing. Thread 1
// runs all along, and every call leaves it to drop its translations
// before it runs guest code again.
func TestSplitMappings(t *testing.T) {
	unmap := func(addr, size uint64, want abi.Error) memOp {
		return memOp{abi.OpSpaceUnmap, []uint64{addr, size}, want}
	}
	protect := func(addr, size uint64, perm machine.Perm, want abi.Error) memOp {
		return memOp{abi.OpSpaceProtect, []uint64{addr, size, uint64(perm)}, want}
	}
	const p = pageSize
	for _, c := range []struct {
		name   string
		ops    []memOp
		region []piece // hRegion's mappings after
		kept   []piece // hKept's
	}{
		{"unmap the start", []memOp{unmap(fixRegion, p, abi.OK)},
			[]piece{{fixRegion + p, 3 * p, p, rw}}, nil},
		{"unmap the end", []memOp{unmap(fixRegion+3*p, p, abi.OK)},
			[]piece{{fixRegion, 3 * p, 0, rw}}, nil},
		{"unmap the middle", []memOp{unmap(fixRegion+p, 2*p, abi.OK)},
			[]piece{{fixRegion, p, 0, rw}, {fixRegion + 3*p, p, 3 * p, rw}}, nil},
		{"unmap from a hole into the start", []memOp{unmap(fixRegion-p, 2*p, abi.OK)},
			[]piece{{fixRegion + p, 3 * p, p, rw}}, nil},
		{"unmap a hole", []memOp{unmap(fixRegion+p, p, abi.OK), unmap(fixRegion+p, p, abi.ErrNotFound)},
			[]piece{{fixRegion, p, 0, rw}, {fixRegion + 2*p, 2 * p, 2 * p, rw}}, nil},
		{"unmap across pieces", []memOp{protect(fixRegion+p, 2*p, machine.PermRead, abi.OK), unmap(fixRegion+2*p, 2*p, abi.OK)},
			[]piece{{fixRegion, p, 0, rw}, {fixRegion + p, p, p, machine.PermRead}}, nil},
		{"protect the middle", []memOp{protect(fixRegion+p, 2*p, machine.PermRead, abi.OK)},
			[]piece{{fixRegion, p, 0, rw}, {fixRegion + p, 2 * p, p, machine.PermRead}, {fixRegion + 3*p, p, 3 * p, rw}}, nil},
		{"protect the start no-access", []memOp{protect(fixRegion, p, 0, abi.OK)},
			[]piece{{fixRegion, p, 0, 0}, {fixRegion + p, 3 * p, p, rw}}, nil},
		{"no access and back", []memOp{protect(fixRegion+p, p, 0, abi.OK), protect(fixRegion, 4*p, rw, abi.OK)},
			[]piece{{fixRegion, p, 0, rw}, {fixRegion + p, p, p, rw}, {fixRegion + 2*p, 2 * p, 2 * p, rw}}, nil},
		{"protect over a hole", []memOp{unmap(fixRegion+3*p, p, abi.OK), protect(fixRegion+2*p, 2*p, machine.PermRead, abi.ErrBadAddress)},
			[]piece{{fixRegion, 3 * p, 0, rw}}, nil},
		{"protect beyond the limit", []memOp{
			unmap(fixRegion, 4*p, abi.OK),
			{abi.OpSpaceMap, []uint64{hRegionRO, fixRegion, 0, 4 * p, abi.PermRead}, abi.OK},
			protect(fixRegion+p, p, rw, abi.ErrRights)},
			[]piece{{fixRegion, 4 * p, 0, machine.PermRead}}, nil},
		{"map no-access, then open the middle", []memOp{
			unmap(fixRegion, 4*p, abi.OK),
			{abi.OpSpaceMap, []uint64{hRegion, fixRegion, 0, 4 * p, 0}, abi.OK},
			protect(fixRegion+p, p, machine.PermRead, abi.OK)},
			[]piece{{fixRegion, p, 0, 0}, {fixRegion + p, p, p, machine.PermRead}, {fixRegion + 2*p, 2 * p, 2 * p, 0}}, nil},
		// Kept pages stay absent through splits and protects; one
		// supplied while no-access gets its entry when access comes back.
		{"kept: protect the end", []memOp{protect(fixKept+p, p, machine.PermRead, abi.OK)},
			nil, []piece{{fixKept, p, 0, rw}, {fixKept + p, p, p, machine.PermRead}}},
		{"kept: supplied while no-access", []memOp{
			protect(fixKept, p, 0, abi.OK),
			{abi.OpRegionSupply, []uint64{0, fixData, p}, abi.OK},
			protect(fixKept, 2*p, machine.PermRead, abi.OK)},
			nil, []piece{{fixKept, p, 0, machine.PermRead}, {fixKept + p, p, p, machine.PermRead}}},
		{"kept: evicted across pieces", []memOp{
			{abi.OpRegionSupply, []uint64{0, fixData, 2 * p}, abi.OK},
			protect(fixKept+p, p, machine.PermRead, abi.OK),
			{abi.OpRegionEvict, []uint64{0, 2 * p, 0, 0}, abi.OK},
			{abi.OpRegionSupply, []uint64{p, fixData, p}, abi.OK}},
			nil, []piece{{fixKept, p, 0, rw}, {fixKept + p, p, p, machine.PermRead}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newKernelFixture(t)
			// Thread 1 must run guest code, which a shootdown waits for:
			// stopped and resumed, it has its vCPU, no stop pending and
			// no call, so nothing stops it again. (Made to call instead,
			// it could be stopped by the driver's watchdog under load, and
			// a stopped thread is rightly not waited for: it flushes
			// before it runs again.)
			f.d[0].must(hThread1, abi.OpThreadStop)
			f.d[0].must(hThread1, abi.OpThreadStart)
			other := f.d[1].t
			for _, o := range c.ops {
				h := uint64(hSpace)
				if o.op == abi.OpRegionSupply || o.op == abi.OpRegionEvict {
					h = hKept
				}
				gen := other.flushGen.Load()
				r0, _, _, ok := f.d[0].call(h, o.op, o.args...)
				if !ok {
					t.Fatalf("%s %#x: the thread ended", o.op, o.args)
				}
				if e := abi.ResultError(r0); e != o.want {
					t.Fatalf("%s %#x: %v, want %v", o.op, o.args, e, o.want)
				}
				if o.want == abi.OK && (o.op == abi.OpSpaceUnmap || o.op == abi.OpSpaceProtect) && other.flushGen.Load() == gen {
					t.Errorf("%s returned before thread 1, which runs, dropped its translations", o.op)
				}
			}
			for _, w := range []struct {
				h    uint64
				want []piece
			}{{hRegion, c.region}, {hKept, c.kept}} {
				n, _ := f.a.lookupHandle(w.h)
				r := n.obj.(*Region)
				var got []piece
				f.a.mu.Lock()
				for _, m := range f.a.as.maps {
					if m.region == r {
						got = append(got, piece{m.addr, m.size, m.off, m.perm})
					}
				}
				f.a.mu.Unlock()
				if w.want == nil && w.h == hRegion {
					w.want = []piece{{fixRegion, 4 * p, 0, rw}}
				}
				if w.want == nil && w.h == hKept {
					w.want = []piece{{fixKept, 2 * p, 0, rw}}
				}
				if len(got) != len(w.want) {
					t.Fatalf("handle %d's mappings: %+v, want %+v", w.h, got, w.want)
				}
				for i := range got {
					if got[i] != w.want[i] {
						t.Errorf("handle %d's mappings: %+v, want %+v", w.h, got, w.want)
						break
					}
				}
			}
			f.check()
		})
	}
}

// TestSplitKeepsDirtyBits: pages written through a mapping before a part
// of it is unmapped or made inaccessible are reported by region_dirty,
// and so are those written through the pieces left.
func TestSplitKeepsDirtyBits(t *testing.T) {
	f := newKernelFixture(t)
	d := f.d[0]
	d.must(hThread1, abi.OpThreadStop)            // region_dirty wants the space's other threads stopped
	d.must(hRegion, abi.OpRegionDirty, fixBuf, 8) // the first ask: everything so far
	s := f.a
	s.mu.Lock()
	for _, pg := range []uint64{0, 1, 2, 3} {
		setDirty(t, s.pt, fixRegion+pg*pageSize)
	}
	s.mu.Unlock()
	d.must(hSpace, abi.OpSpaceUnmap, fixRegion+pageSize, pageSize)
	d.must(hSpace, abi.OpSpaceProtect, fixRegion+2*pageSize, pageSize, 0)
	if n := d.must(hRegion, abi.OpRegionDirty, fixBuf, 8); n != 4 {
		t.Errorf("region_dirty after the splits: %d pages, want 4", n)
	}
	if got := f.data.Bytes()[fixBuf-fixData]; got != 0xf {
		t.Errorf("region_dirty's bits: %#x, want 0xf", got)
	}
	d.must(hThread1, abi.OpThreadStart)
	f.check()
}

// setDirty sets the dirty bit of the page-table entry of va, as a CPU
// writing the page would.
func setDirty(t *testing.T, pt *machine.PageTables, va uint64) {
	t.Helper()
	leaf, _ := pt.LeafTable(va, false)
	if leaf == 0 {
		t.Fatalf("no leaf table for %#x", va)
	}
	i := machine.TableIndex(va, 0)
	e := pt.Get(leaf, i)
	if e&machine.PTEPresent == 0 {
		t.Fatalf("page %#x has no entry", va)
	}
	pt.Set(leaf, i, e|machine.PTEDirty)
}

// TestUnmapUnderABlockedCall: memory the monitor mapped itself (a
// program's stack or data), unmapped while another thread waits in a
// call with its buffer in it, stays until that call ends, so the message
// that ends it lands in memory that is still there; the space and the
// monitor live on.
func TestUnmapUnderABlockedCall(t *testing.T) {
	f := newKernelFixture(t)
	mem, err := machine.NewMemory("blocked-buffer", pageSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.a.mapAt(fixFree, mem, 0, pageSize, machine.PermRead|machine.PermWrite); err != nil {
		t.Fatal(err)
	}
	mem.Unref() // the mapping holds the last reference
	rx := f.d[1].issue(hPort, uint64(abi.OpPortReceive), [abi.MaxArgSlots]uint64{fixFree, uint64(msgSize), fixFree + 0x200, 64})
	if rx == nil {
		t.Fatal("thread 1 ended")
	}
	// Wait for the receive to wait on the port, its buffer checked.
	n, _ := f.a.lookupHandle(hPort)
	port := n.obj.(*Port)
	for {
		f.mon.ipc.mu.Lock()
		_, waiting := port.waiters[f.d[1].t]
		f.mon.ipc.mu.Unlock()
		if waiting {
			break
		}
		runtime.Gosched()
	}
	f.d[0].must(hSpace, abi.OpSpaceUnmap, fixFree, pageSize)
	f.d[0].must(hPortCall, abi.OpPortSend, 1, fixData, 64, 0)
	if !waitClosed(rx.done, killGrace) {
		t.Fatal("the receive did not end")
	}
	if e := abi.ResultError(rx.c.Ret[0]); e != abi.OK {
		t.Errorf("the receive: %v", e)
	}
	f.d[1].pending = nil
	f.check()
}

// TestUnmapGivesBackCharge: unmapping part of memory the monitor mapped
// itself gives its charge back to the space and to every ancestor (the
// fixture's check compares each space's charge with what it holds).
func TestUnmapGivesBackCharge(t *testing.T) {
	f := newKernelFixture(t)
	mem, err := machine.NewMemory("charged", 4*pageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Unref()
	if err := f.child.mapAt(fixFree, mem, 0, 4*pageSize, machine.PermRead|machine.PermWrite); err != nil {
		t.Fatal(err)
	}
	f.d[0].must(hChild, abi.OpSpaceUnmap, fixFree+pageSize, 2*pageSize)
	f.child.mu.Lock()
	used := f.child.memUsed
	f.child.mu.Unlock()
	if used != 2*pageSize {
		t.Errorf("the child is charged %#x bytes after unmapping half its %#x, want %#x", used, 4*pageSize, 2*pageSize)
	}
	f.check()
}
