package vmm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

// waitExit serves exception port ep until the exit notice of a child, and
// fails t unless it exited with status 0.
func waitExit(t *testing.T, c *vmm.Caller, ep uint64) {
	t.Helper()
	if m := awaitExit(t, c, ep, nil); m.Words[0] != abi.SpaceExited || m.Words[1] != 0 {
		t.Fatalf("child ended %d with status %d, want exited 0", m.Words[0], m.Words[1])
	}
}

// awaitExit serves exception port ep until a child's exit notice and
// returns it; it fails t if the port closes first or 30 s pass, adding
// what context says (when not nil) to the timeout's message.
func awaitExit(t *testing.T, c *vmm.Caller, ep uint64, context func() string) abi.Msg {
	t.Helper()
	done := make(chan abi.Msg, 1)
	go func() {
		msg := make([]byte, binary.Size(abi.Msg{}))
		for {
			if _, _, err := c.PortReceive(ep, msg, nil); err != nil {
				close(done)
				return
			}
			var m abi.Msg
			binary.Read(bytes.NewReader(msg), binary.LittleEndian, &m)
			if m.Kind == abi.MsgExit {
				done <- m
				return
			}
		}
	}()
	select {
	case m, ok := <-done:
		if !ok {
			t.Fatal("exception port closed before the exit notice")
		}
		return m
	case <-time.After(30 * time.Second):
		c.Kill()
		if context != nil {
			t.Fatalf("child did not exit; %s", context())
		}
		t.Fatal("child did not exit")
	}
	return abi.Msg{}
}

// TestRegionDirtyReaders: two spaces asking region_dirty of one region
// each see every write (memtouch's, through the page tables, and a
// region_write), the second from its first ask on, and neither takes pages
// from the other. At most 16 spaces keep records; one that ended makes
// room.
func TestRegionDirtyReaders(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		data, err := os.ReadFile(testutil.Guest(t, "memtouch"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := vmm.ParseELF(data, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		mon := vmm.NewMonitor(b, nil)
		host := mon.NewHostSpace("host", vmm.DefaultQuota)
		defer func() { host.Kill("test over"); host.Wait() }()
		c := host.NewCaller()
		must := mustOK(t)
		self, err := c.Insert(host, abi.RightsAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		con, err := c.Insert(vmm.NewHostPort("console", vmm.ConsoleServer(io.Discard)), abi.RightWrite|abi.RightGrant|abi.RightDerive, 0)
		if err != nil {
			t.Fatal(err)
		}
		ep := must("port_create")(c.PortCreate(self))
		_, th, heap := hostLoadHeap(t, c, self, con, ep, img, "memtouch", "1")
		obj, rights, _, err := c.Lookup(heap)
		if err != nil {
			t.Fatal(err)
		}
		reader := func(name string) (*vmm.Space, *vmm.Caller, uint64) {
			sp := mon.NewHostSpace(name, vmm.DefaultQuota)
			rc := sp.NewCaller()
			h, err := rc.Insert(obj, rights, 0)
			if err != nil {
				t.Fatal(err)
			}
			return sp, rc, h
		}
		other, oc, oh := reader("other")
		defer func() { other.Kill("test over"); other.Wait() }()
		dirty := func(who string, rc *vmm.Caller, h uint64) ([]byte, uint64) {
			t.Helper()
			bits := make([]byte, 4<<20/4096/8)
			n := must(who + " region_dirty")(rc.RegionDirty(h, bits, 0))
			return bits, n
		}
		if _, n := dirty("first", c, heap); n != 0 {
			t.Fatalf("first ask before anything was written: %d pages", n)
		}
		must("region_write")(c.RegionWrite(heap, 1023*4096, []byte{1}))
		must("thread_start")(c.ThreadStart(th))
		waitExit(t, c, ep)

		// memtouch 1 writes 256 pages of its heap; a 2 MiB page's dirty
		// bit (the heap is mapped with them) stands for all of it.
		a, na := dirty("first", c, heap)
		o, no := dirty("second", oc, oh)
		if na < 257 || a[1023/8]&(1<<(1023%8)) == 0 {
			t.Errorf("first reader: %d pages, last page marked %v; want memtouch's and the region_write", na, a[1023/8]&0x80 != 0)
		}
		if !bytes.Equal(a, o) || na != no {
			t.Errorf("the second reader, at its first ask, saw %d pages, the first %d: want the same", no, na)
		}
		if _, n := dirty("first", c, heap); n != 0 {
			t.Errorf("first reader asked again: %d pages", n)
		}
		if _, n := dirty("second", oc, oh); n != 0 {
			t.Errorf("second reader asked again: %d pages", n)
		}

		// Sixteen readers at most; an ended one makes room.
		var more []*vmm.Space
		defer func() {
			for _, sp := range more {
				sp.Kill("test over")
				sp.Wait()
			}
		}()
		for i := 2; i < 16; i++ {
			sp, rc, h := reader("more")
			more = append(more, sp)
			dirty("another", rc, h)
		}
		sp, rc, h := reader("seventeenth")
		more = append(more, sp)
		if _, _, err := rc.RegionDirty(h, make([]byte, 128), 0); !errors.Is(err, abi.ErrQuota) {
			t.Fatalf("a seventeenth reader: %v, want %v", err, abi.ErrQuota)
		}
		more[0].Kill("make room")
		more[0].Wait()
		if _, _, err := rc.RegionDirty(h, make([]byte, 128), 0); err != nil {
			t.Fatalf("a seventeenth reader after one ended: %v", err)
		}
	})
}

// TestRegionEvictReleases: region_evict hands out the pages' contents and
// releases their host memory; they read as zeros until supplied again.
func TestRegionEvictReleases(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		host := mon.NewHostSpace("host", vmm.DefaultQuota)
		defer func() { host.Kill("test over"); host.Wait() }()
		c := host.NewCaller()
		must := mustOK(t)
		self, err := c.Insert(host, abi.RightsAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		const pages = 64
		h := must("region_create")(c.RegionCreate(self, pages*4096))
		port := must("port_create")(c.PortCreate(self))
		must("region_set_keeper")(c.RegionSetKeeper(h, port))
		obj, _, _, _ := c.Lookup(h)
		r := obj.(*vmm.Region)
		allocated := func() uint64 {
			n, err := r.Allocated()
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		fill := bytes.Repeat([]byte("nestvm!\n"), pages*4096/8)
		must("region_supply")(c.RegionSupply(h, 0, fill))
		if n := allocated(); n < pages*4096 {
			t.Fatalf("supplied %d bytes, %d allocated", pages*4096, n)
		}
		if _, _, err := c.RegionEvict(h, 0, 32*4096, make([]byte, 32*4096-1)); !errors.Is(err, abi.ErrTooBig) {
			t.Fatalf("evict into a buffer too small: %v, want %v", err, abi.ErrTooBig)
		}
		saved := make([]byte, 32*4096)
		must("region_evict")(c.RegionEvict(h, 0, 32*4096, saved))
		if !bytes.Equal(saved, fill[:32*4096]) {
			t.Errorf("evicted contents differ from those supplied")
		}
		if n := allocated(); n > 32*4096 {
			t.Errorf("after evicting half, %d bytes allocated, want at most %d", n, 32*4096)
		}
		back := make([]byte, 32*4096)
		must("region_read")(c.RegionRead(h, 0, back))
		if !bytes.Equal(back, make([]byte, 32*4096)) {
			t.Errorf("evicted pages do not read as zeros")
		}
		must("region_read")(c.RegionRead(h, 32*4096, back))
		if !bytes.Equal(back, fill[32*4096:]) {
			t.Errorf("pages not evicted changed")
		}
		// Reading the holes allocated them again (shmem has no shared
		// zero page); evicting again releases them too.
		must("region_evict")(c.RegionEvict(h, 0, pages*4096, nil))
		if n := allocated(); n != 0 {
			t.Errorf("after evicting all, %d bytes allocated", n)
		}
		must("region_supply")(c.RegionSupply(h, 4096, fill[:4096]))
		must("region_read")(c.RegionRead(h, 4096, back[:4096]))
		if !bytes.Equal(back[:4096], fill[:4096]) {
			t.Errorf("a page supplied again lost its contents")
		}
	})
}
