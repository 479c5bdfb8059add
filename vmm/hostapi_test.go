package vmm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/gohost/gen"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

func TestHostOpsFresh(t *testing.T) {
	want, err := gen.Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("hostapi_ops.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("hostapi_ops.go is stale: run go generate ./vmm and commit the result")
	}
}

// TestHostNester runs hello in a child space built by Go code through the
// host API alone (space_create, region_create, region_write, space_map,
// space_insert, thread_create, an exception port it receives on): what a
// Go layer does, with the same operations a guest nester uses.
func TestHostNester(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		img := guestImage(t, "hello")
		mon := vmm.NewMonitor(b, nil)
		host := mon.NewHostSpace("host", vmm.DefaultQuota)
		defer func() { host.Kill("test over"); host.Wait() }()
		c := host.NewCaller()
		self, err := c.Insert(host, abi.RightsAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		con, err := c.Insert(vmm.NewHostPort("console", vmm.ConsoleServer(&out)), abi.RightWrite|abi.RightGrant|abi.RightDerive, 0)
		if err != nil {
			t.Fatal(err)
		}
		must := mustOK(t)

		// Refusals come back as the guest would see them.
		if _, _, err := c.ThreadCreate(self, 0, 0, 0); !errors.Is(err, abi.ErrInvalidArg) {
			t.Errorf("thread in a host space: %v, want %v", err, abi.ErrInvalidArg)
		}
		if _, _, err := c.ConsoleWrite(self, []byte("x")); !errors.Is(err, abi.ErrWrongType) {
			t.Errorf("console_write on a space: %v, want %v", err, abi.ErrWrongType)
		}

		ep := must("port_create")(c.PortCreate(self))
		child, th := hostLoad(t, c, self, con, ep, img, "hello", "host")
		must("thread_start")(c.ThreadStart(th))

		// Serve the exception port until the child's exit notice.
		m := awaitExit(t, c, ep, func() string { return fmt.Sprintf("output so far %q", out.String()) })
		if m.Words[0] != abi.SpaceExited || m.Words[1] != 0 {
			t.Errorf("child ended %d with status %d, want exited 0", m.Words[0], m.Words[1])
		}
		if got := out.String(); got != "Hello, host!\n" {
			t.Errorf("output %q, want %q", got, "Hello, host!\n")
		}
		st, status, err := c.SpaceStatus(child)
		if err != nil || st != abi.SpaceExited || status != 0 {
			t.Errorf("space_status: %d %d %v", st, status, err)
		}
	})
}

// mustOK returns a checker of a Caller method's results that fails t on an
// error and returns R0.
func mustOK(t *testing.T) func(what string) func(r0, r1 uint64, err error) uint64 {
	return func(what string) func(r0, r1 uint64, err error) uint64 {
		return func(r0, _ uint64, err error) uint64 {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			return r0
		}
	}
}

// hostLoad builds a child space of self running img with args, through the
// host API alone: an image region mapped segment by segment (whose pages
// must not be shared between segments), a stack region with argc, argv and
// the start information, the console con, and exception port ep. It
// returns the child and its first thread, not yet started.
func hostLoad(t *testing.T, c *vmm.Caller, self, con, ep uint64, img *vmm.Image, args ...string) (child, th uint64) {
	t.Helper()
	child, th, _ = hostLoadHeap(t, c, self, con, ep, img, args...)
	return child, th
}

// hostLoadHeap is hostLoad, and returns the handle to the child's heap
// region too.
func hostLoadHeap(t *testing.T, c *vmm.Caller, self, con, ep uint64, img *vmm.Image, args ...string) (child, th, heap uint64) {
	t.Helper()
	must := mustOK(t)
	child = must("space_create")(c.SpaceCreate(self, 0, 0, 0, 0))
	must("space_set_exception_port")(c.SpaceSetExceptionPort(child, ep))

	lo, hi := ^uint64(0), uint64(0)
	for _, s := range img.Segments {
		lo = min(lo, s.Addr&^0xfff)
		hi = max(hi, (s.Addr+s.MemSize+0xfff)&^0xfff)
	}
	image := must("region_create")(c.RegionCreate(child, hi-lo))
	for _, s := range img.Segments {
		must("region_write")(c.RegionWrite(image, s.Addr-lo, s.Data))
	}
	for _, s := range img.Segments {
		start, end := s.Addr&^0xfff, (s.Addr+s.MemSize+0xfff)&^0xfff
		perm := uint64(0)
		if s.Perm&machine.PermRead != 0 {
			perm |= abi.PermRead
		}
		if s.Perm&machine.PermWrite != 0 {
			perm |= abi.PermWrite
		}
		if s.Perm&machine.PermExec != 0 {
			perm |= abi.PermExec
		}
		if _, _, err := c.SpaceMap(child, image, start, start-lo, end-start, perm); err != nil {
			t.Fatalf("map segment at %#x: %v", start, err)
		}
	}
	// A heap for the runtime's allocator, as the monitor's loader gives.
	const heapSize = 4 << 20
	heapBase := (hi + 0x1000 + 0x1fffff) &^ 0x1fffff
	heap = must("region_create heap")(c.RegionCreate(child, heapSize))
	must("space_map heap")(c.SpaceMap(child, heap, heapBase, 0, heapSize, abi.PermRead|abi.PermWrite))

	const stackSize = 64 << 10
	stackBase := uint64(abi.UserTop - stackSize)
	stack := must("region_create")(c.RegionCreate(child, stackSize))
	must("space_map")(c.SpaceMap(child, stack, stackBase, 0, stackSize, abi.PermRead|abi.PermWrite))
	childCon := must("space_insert")(c.SpaceInsert(child, con, uint64(abi.RightWrite)))
	childSelf := must("space_insert self")(c.SpaceInsert(child, child, uint64(abi.RightsAll)))
	info := abi.StartInfo{Magic: abi.StartMagic, Size: uint64(binary.Size(abi.StartInfo{})), ABIVersion: abi.Version,
		Space: childSelf, Console: childCon, StackBase: stackBase, StackSize: stackSize,
		HeapBase: heapBase, HeapSize: heapSize}
	top := stackBase + stackSize
	page := make([]byte, 4096)
	pageBase := top - 4096
	strAt := top - 256
	var argv []uint64
	at := strAt
	for _, a := range args {
		copy(page[at-pageBase:], a+"\x00")
		argv = append(argv, at)
		at += uint64(len(a)) + 1
	}
	infoAt := strAt - 256
	sp := infoAt - 256
	info.Argc, info.Argv = uint64(len(args)), sp+8
	words := append(append([]uint64{uint64(len(args))}, argv...), 0, 0, abi.AuxStartInfo, infoAt, abi.AuxNull, 0)
	for i, w := range words {
		binary.LittleEndian.PutUint64(page[sp-pageBase+uint64(8*i):], w)
	}
	th = must("thread_create")(c.ThreadCreate(child, img.Entry, sp, infoAt))
	info.Thread = must("space_insert thread")(c.SpaceInsert(child, th, uint64(abi.RightsAll)))
	rec, _ := binary.Append(nil, binary.LittleEndian, &info)
	copy(page[infoAt-pageBase:], rec)
	must("region_write stack")(c.RegionWrite(stack, stackSize-4096, page))
	return child, th, heap
}

// TestHostSeat runs a program through a Host, the seat a layer holds its
// capabilities in: a handle to the seat's own space carries the rights
// asked for and no more, and killing the seat ends the program made
// through it.
func TestHostSeat(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		img := guestImage(t, "spin")
		mon := vmm.NewMonitor(b, nil)
		host := mon.NewHost("seat", vmm.DefaultQuota)
		defer host.Kill("test over")
		if host.Name() != "seat" {
			t.Errorf("name %q, want seat", host.Name())
		}
		c := host.NewCaller()
		ro, err := c.Self(abi.RightRead)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.PortCreate(ro); !errors.Is(err, abi.ErrRights) {
			t.Errorf("port_create through a read-only handle to the seat: %v, want %v", err, abi.ErrRights)
		}
		self, err := c.Self(abi.RightsAll)
		if err != nil {
			t.Fatal(err)
		}
		var out testutil.Buffer
		con, err := c.Insert(vmm.NewHostPort("console", vmm.ConsoleServer(&out)), abi.RightWrite|abi.RightGrant|abi.RightDerive, 0)
		if err != nil {
			t.Fatal(err)
		}
		must := mustOK(t)
		ep := must("port_create")(c.PortCreate(self))
		child, th := hostLoad(t, c, self, con, ep, img, "spin")
		// A second handle to the child, in a space outside the seat, sees
		// it end when the seat does.
		watcher := mon.NewHost("watcher", vmm.DefaultQuota)
		defer watcher.Kill("test over")
		wc := watcher.NewCaller()
		obj, rights, badge, err := c.Lookup(child)
		if err != nil {
			t.Fatal(err)
		}
		wchild, err := wc.Insert(obj, rights, badge)
		if err != nil {
			t.Fatal(err)
		}
		must("thread_start")(c.ThreadStart(th))
		if st, _, err := wc.SpaceStatus(wchild); err != nil || st != abi.SpaceRunning {
			t.Fatalf("space_status of the running child: %d, %v", st, err)
		}
		host.Kill("seat closed")
		select {
		case <-host.Done():
		case <-time.After(20 * time.Second):
			t.Fatal("the seat did not end")
		}
		if st, _, err := wc.SpaceStatus(wchild); err != nil || st != abi.SpaceKilled {
			t.Errorf("space_status of the child once the seat ended: %d, %v; want killed", st, err)
		}
		if _, err := c.Self(abi.RightsAll); err == nil {
			t.Error("a handle to an ended seat: no error")
		}
	})
}

// TestReadSpace: Caller.ReadSpace reads a space's whole record, however
// large (a table of more handles than its first buffer holds), with
// copies of what it names in the reader's table; a handle that names no
// space is an error that says which operation failed.
func TestReadSpace(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		img := guestImage(t, "spin")
		h := newHost(t, b)
		c, must := h.c, mustOK(t)
		child, _ := hostLoad(t, c, h.self, h.con, h.ep, img, "spin")
		const extra = 100 // about 7 KiB of handle entries
		for range extra {
			must("space_insert")(c.SpaceInsert(child, h.con, uint64(abi.RightWrite)))
		}
		rec, err := c.ReadSpace(child)
		if err != nil {
			t.Fatalf("ReadSpace: %v", err)
		}
		if rec.Space.Status != abi.SpaceRunning || len(rec.Threads) != 1 || len(rec.Maps) < 3 || len(rec.Handles) < extra+2 {
			t.Errorf("record: status %d, %d threads, %d mappings, %d handles; want a running space with 1 thread, its image, heap and stack, and at least %d handles",
				rec.Space.Status, len(rec.Threads), len(rec.Maps), len(rec.Handles), extra+2)
		}
		got, err := c.Identify(rec.Space.ExceptionPort)
		if err != nil {
			t.Fatalf("the record's exception port: %v", err)
		}
		if want, err := c.Identify(h.ep); err != nil || got.Object != want.Object {
			t.Errorf("the record's exception port is object %d, want the port set, %d (%v)", got.Object, want.Object, err)
		}
		if _, err := c.ReadSpace(1 << 20); !errors.Is(err, abi.ErrBadHandle) || !strings.HasPrefix(err.Error(), "space_get_state: ") {
			t.Errorf("ReadSpace of a handle that names nothing: %v, want space_get_state failing with %v", err, abi.ErrBadHandle)
		}
	})
}

// TestHostCallBatch: host code has no guest memory to hold batch entries,
// so call_batch through the host API is refused with a clear error, on
// any handle, and does nothing.
func TestHostCallBatch(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		host := mon.NewHost("batcher", vmm.DefaultQuota)
		defer host.Kill("test over")
		c := host.NewCaller()
		self, err := c.Self(abi.RightsAll)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []uint64{0, 1, abi.MaxBatch + 1} {
			if _, _, err := c.CallBatch(self, abi.UserBase, n); !errors.Is(err, abi.ErrInvalidArg) {
				t.Errorf("call_batch of %d entries from host code: %v, want %v", n, err, abi.ErrInvalidArg)
			}
		}
	})
}

// guestImage parses the guest program name, as the monitor loads it.
func guestImage(t *testing.T, name string) *vmm.Image {
	t.Helper()
	data, err := os.ReadFile(testutil.Guest(t, name))
	if err != nil {
		t.Fatal(err)
	}
	img, err := vmm.ParseELF(data, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestServerRecordTooBig checks what a caller with too small a buffer gets
// from a host server's record (ReturnRecord): NV_ETOOBIG with the size
// needed in R1, so GetState can ask again; and that GetState refuses a
// server that keeps answering NV_ETOOBIG without asking for more room, or
// asks for more than any buffer may hold, instead of looping or
// allocating what a hostile server names.
func TestServerRecordTooBig(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		host := mon.NewHost("records", vmm.DefaultQuota)
		defer host.Kill("test over")
		c := host.NewCaller()
		record := bytes.Repeat([]byte("state "), 20)
		var need uint64 // what the lying server says it needs
		port := func(name string, serve vmm.ServerFunc) uint64 {
			h, err := c.Insert(vmm.NewHostPort(name, serve), abi.RightsAll, 0)
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		honest := port("honest", func(inv *vmm.Invocation) { inv.ReturnRecord(record) })
		liar := port("liar", func(inv *vmm.Invocation) { inv.Complete(0, need, abi.ErrTooBig) })

		n, r1, err := c.ServerGetState(honest, make([]byte, 10))
		if !errors.Is(err, abi.ErrTooBig) || r1 != uint64(len(record)) {
			t.Errorf("server_get_state with 10 bytes: r0 %#x r1 %d %v; want NV_ETOOBIG and r1 %d", n, r1, err, len(record))
		}
		got, err := vmm.GetState(honest, 10, c.ServerGetState)
		if err != nil || !bytes.Equal(got, record) {
			t.Errorf("GetState from 10 bytes: %q, %v; want the record", got, err)
		}
		for _, need = range []uint64{0, 10, abi.MaxBuffer + 1} {
			if got, err := vmm.GetState(liar, 10, c.ServerGetState); err == nil {
				t.Errorf("GetState from a server answering NV_ETOOBIG needing %d: %q, no error", need, got)
			}
		}
	})
}
