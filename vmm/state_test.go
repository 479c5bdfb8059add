package vmm_test

import (
	"bytes"
	"encoding/binary"

	"os"
	"strings"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

type syncBuffer = testutil.Buffer

// host is a host space acting as a nester, with a console and an exception
// port of its own.
type host struct {
	t    *testing.T
	host *vmm.Space
	c    *vmm.Caller
	self uint64
	con  uint64
	ep   uint64
	out  *syncBuffer
	conP *vmm.Port
	done chan abi.Msg
}

func newHost(t *testing.T, b machine.Backend) *host {
	mon := vmm.NewMonitor(b, nil)
	hs := mon.NewHostSpace("host", vmm.DefaultQuota)
	t.Cleanup(func() { hs.Kill("test over"); hs.Wait() })
	h := &host{t: t, host: hs, c: hs.NewCaller(), out: &syncBuffer{}, done: make(chan abi.Msg, 1)}
	var err error
	if h.self, err = h.c.Insert(hs, abi.RightsAll, 0); err != nil {
		t.Fatal(err)
	}
	h.conP = vmm.NewHostPort("console", vmm.ConsoleServer(h.out))
	if h.con, err = h.c.Insert(h.conP, abi.RightWrite|abi.RightGrant|abi.RightDerive, 0); err != nil {
		t.Fatal(err)
	}
	h.ep = mustOK(t)("port_create")(h.c.PortCreate(h.self))
	// The exception port's server, on a Caller of its own.
	rc := hs.NewCaller()
	go func() {
		msg := make([]byte, binary.Size(abi.Msg{}))
		for {
			if _, _, err := rc.PortReceive(h.ep, msg, nil); err != nil {
				return
			}
			var m abi.Msg
			binary.Read(bytes.NewReader(msg), binary.LittleEndian, &m)
			if m.Kind == abi.MsgExit {
				h.done <- m
				return
			}
			if m.CallID != 0 { // a fault: nobody here handles it
				rc.PortReply(h.ep, m.CallID, abi.FaultKill, 139, nil, 0)
			}
		}
	}()
	t.Cleanup(rc.Kill)
	return h
}

// wait returns the child's exit notice.
func (h *host) wait() abi.Msg {
	h.t.Helper()
	select {
	case m := <-h.done:
		return m
	case <-time.After(60 * time.Second):
		h.t.Fatalf("the child did not end; output so far %q", h.out.String())
	}
	return abi.Msg{}
}

// saved is a stopped child, as its parent read it through the state
// operations: enough to rebuild it anywhere.
type saved struct {
	space   abi.SpaceState
	maps    []abi.SpaceMapEntry
	handles []abi.SpaceHandleEntry
	threads []abi.SpaceThreadEntry
	regions map[uint64][]byte          // by Object: contents
	states  map[uint64][]byte          // by Object: thread state records
	ports   map[uint64]bool            // by Object: ports the child owns (to create anew)
	extern  map[uint64]string          // by Object: objects outside the child, by name
	status  map[uint64]uint64          // by Object: thread status
	msgs    map[uint64][]queuedMessage // by Object: one-way messages queued on its ports
}

type queuedMessage struct {
	hdr  abi.Msg
	data []byte
}

// getState reads a space's state record stream through h's caller.
func (h *host) getState(child uint64) (abi.SpaceState, []abi.SpaceMapEntry, []abi.SpaceHandleEntry, []abi.SpaceThreadEntry) {
	h.t.Helper()
	buf := make([]byte, 64)
	_, need, err := h.c.SpaceGetState(child, buf)
	if err != abi.ErrTooBig {
		h.t.Fatalf("space_get_state with a small buffer: %v, want %v", err, abi.ErrTooBig)
	}
	buf = make([]byte, need)
	n := mustOK(h.t)("space_get_state")(h.c.SpaceGetState(child, buf))
	r := bytes.NewReader(buf[:n])
	var st abi.SpaceState
	binary.Read(r, binary.LittleEndian, &st)
	maps := make([]abi.SpaceMapEntry, st.NMaps)
	handles := make([]abi.SpaceHandleEntry, st.NHandles)
	threads := make([]abi.SpaceThreadEntry, st.NThreads)
	for _, part := range []any{maps, handles, threads} {
		if err := binary.Read(r, binary.LittleEndian, part); err != nil {
			h.t.Fatalf("parse space state: %v", err)
		}
	}
	return st, maps, handles, threads
}

// save stops every thread of child and reads all it is.
func (h *host) save(child uint64) *saved {
	t := h.t
	t.Helper()
	must := mustOK(t)
	// Stop every thread (asking again until no new one appears).
	for {
		_, _, _, threads := h.getState(child)
		for _, th := range threads {
			must("thread_stop")(h.c.ThreadStop(th.Handle))
		}
		_, _, _, again := h.getState(child)
		if len(again) == len(threads) {
			break
		}
	}
	sv := &saved{regions: map[uint64][]byte{}, states: map[uint64][]byte{}, ports: map[uint64]bool{},
		extern: map[uint64]string{}, status: map[uint64]uint64{}, msgs: map[uint64][]queuedMessage{}}
	sv.space, sv.maps, sv.handles, sv.threads = h.getState(child)
	for _, m := range sv.maps {
		if _, done := sv.regions[m.Object]; done || m.Region == abi.NoHandle {
			continue
		}
		rs := make([]byte, binary.Size(abi.RegionState{}))
		must("region_get_state")(h.c.RegionGetState(m.Region, rs))
		var st abi.RegionState
		binary.Read(bytes.NewReader(rs), binary.LittleEndian, &st)
		if st.Keeper != abi.NoHandle {
			t.Fatal("a kept region: this test does not rebuild keepers")
		}
		data := make([]byte, st.Size)
		must("region_read")(h.c.RegionRead(m.Region, 0, data))
		sv.regions[m.Object] = data
	}
	for _, th := range sv.threads {
		st := make([]byte, binary.Size(abi.ThreadState{}))
		must("thread_get_state")(h.c.ThreadGetState(th.Handle, st))
		sv.states[th.Object] = st
		sv.status[th.Object] = must("thread_status")(h.c.ThreadStatus(th.Handle))
	}
	for _, e := range sv.handles {
		obj, _, _, err := h.c.Lookup(e.Handle)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case obj == vmm.Object(h.conP):
			sv.extern[e.Object] = "console"
		case e.Type == uint64(abi.ObjPort) && !sv.ports[e.Object]:
			sv.ports[e.Object] = true
			_, need, err := h.c.PortGetState(e.Handle, make([]byte, 8))
			if err != abi.ErrTooBig {
				t.Fatalf("port_get_state with a small buffer: %v", err)
			}
			buf := make([]byte, need)
			must("port_get_state")(h.c.PortGetState(e.Handle, buf))
			r := bytes.NewReader(buf)
			var ps abi.PortState
			binary.Read(r, binary.LittleEndian, &ps)
			for i := uint64(0); i < ps.NMsgs; i++ {
				var q queuedMessage
				binary.Read(r, binary.LittleEndian, &q.hdr)
				q.data = make([]byte, (q.hdr.DataLen+7)&^7)
				r.Read(q.data)
				q.data = q.data[:q.hdr.DataLen]
				sv.msgs[e.Object] = append(sv.msgs[e.Object], q)
			}
		}
	}
	return sv
}

// restore rebuilds sv as a new child of h, and starts the threads that
// were running.
func (h *host) restore(sv *saved) uint64 {
	t := h.t
	t.Helper()
	must := mustOK(t)
	c := h.c
	q := sv.space
	child := must("space_create")(c.SpaceCreate(h.self, q.Pages, q.Threads, q.Handles, q.Children))
	must("space_set_exception_port")(c.SpaceSetExceptionPort(child, h.ep))
	objs := map[uint64]uint64{} // Object -> a handle with every right in h's table
	for obj, data := range sv.regions {
		r := must("region_create")(c.RegionCreate(child, uint64(len(data))))
		must("region_write")(c.RegionWrite(r, 0, data))
		objs[obj] = r
	}
	for obj := range sv.ports {
		objs[obj] = must("port_create")(c.PortCreate(child))
	}
	for _, th := range sv.threads {
		n := must("thread_create")(c.ThreadCreate(child, 0, 0, 0))
		must("thread_set_state")(c.ThreadSetState(n, sv.states[th.Object]))
		objs[th.Object] = n
	}
	for obj, name := range sv.extern {
		if name != "console" {
			t.Fatalf("no %s to reconnect", name)
		}
		objs[obj] = h.con
	}
	for _, e := range sv.handles {
		if e.Type == uint64(abi.ObjSpace) {
			objs[e.Object] = child // the child's handle to itself
		}
	}
	for _, m := range sv.maps {
		lim := abi.RightMap | abi.RightGrant
		if m.Limit&abi.PermRead != 0 {
			lim |= abi.RightRead
		}
		if m.Limit&abi.PermWrite != 0 {
			lim |= abi.RightWrite
		}
		if m.Limit&abi.PermExec != 0 {
			lim |= abi.RightExec
		}
		d := must("handle_derive region")(c.HandleDerive(objs[m.Object], uint64(lim), 0))
		must("space_map")(c.SpaceMap(child, d, m.Addr, m.Offset, m.Size, m.Perm))
		must("handle_close")(c.HandleClose(d))
	}
	for _, e := range sv.handles {
		src, ok := objs[e.Object]
		if !ok {
			t.Fatalf("handle %d names an object this test cannot rebuild (type %d)", e.Number, e.Type)
		}
		d := must("handle_derive")(c.HandleDerive(src, e.Rights|uint64(abi.RightGrant), e.Badge))
		must("space_insert_at")(c.SpaceInsertAt(child, d, e.Rights, e.Number, 0))
		must("handle_close")(c.HandleClose(d))
	}
	for obj, msgs := range sv.msgs {
		for _, m := range msgs {
			d := must("handle_derive port")(c.HandleDerive(objs[obj], uint64(abi.RightCall), m.hdr.Badge))
			must("port_send")(c.PortSend(d, m.hdr.Op, m.data, 0))
			must("handle_close")(c.HandleClose(d))
		}
	}
	for _, th := range sv.threads {
		if sv.status[th.Object] != abi.ThreadNew {
			must("thread_start")(c.ThreadStart(objs[th.Object]))
		}
	}
	return child
}

// TestStateRebuild stops counter part way, reads every object of its space
// (mappings and region contents, threads, ports, handles), destroys it,
// rebuilds it from the records in a fresh monitor, on each backend in
// turn, and resumes it: the output before and after, joined, must be the
// undisturbed run's.
func TestStateRebuild(t *testing.T) {
	data, err := os.ReadFile(testutil.Guest(t, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := vmm.ParseELF(data, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	const lines = "8"
	run := func(t *testing.T, b machine.Backend) string {
		h := newHost(t, b)
		_, th := hostLoad(t, h.c, h.self, h.con, h.ep, img, "counter", lines)
		mustOK(t)("thread_start")(h.c.ThreadStart(th))
		if m := h.wait(); m.Words[0] != abi.SpaceExited || m.Words[1] != 0 {
			t.Fatalf("counter ended %d/%d: %q", m.Words[0], m.Words[1], h.out.String())
		}
		return h.out.String()
	}
	backendtest.Each(t, func(t *testing.T, from machine.Backend) {
		want := run(t, from)
		if !strings.HasSuffix(want, "8\ntotal 79680231\n") && !strings.HasPrefix(want, "1\n2\n") {
			t.Fatalf("undisturbed counter printed %q", want)
		}
		backendtest.Each(t, func(t *testing.T, to machine.Backend) {
			a := newHost(t, from)
			child, th := hostLoad(t, a.c, a.self, a.con, a.ep, img, "counter", lines)
			mustOK(t)("thread_start")(a.c.ThreadStart(th))
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(a.out.String(), "3\n") && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			sv := a.save(child)
			before := a.out.String()
			mustOK(t)("space_kill")(a.c.SpaceKill(child, 9))
			a.wait()

			b := newHost(t, to)
			b.restore(sv)
			if m := b.wait(); m.Words[0] != abi.SpaceExited || m.Words[1] != 0 {
				t.Fatalf("rebuilt counter ended %d/%d after %q", m.Words[0], m.Words[1], b.out.String())
			}
			if got := before + b.out.String(); got != want {
				t.Errorf("output before the save %q + after the rebuild %q\n= %q\nwant %q", before, b.out.String(), got, want)
			}
			t.Logf("saved after %d lines: %d mappings, %d handles, %d threads, %d KiB of regions",
				strings.Count(before, "\n"), len(sv.maps), len(sv.handles), len(sv.threads), size(sv.regions)>>10)
		})
	})
}

func size(m map[uint64][]byte) int {
	n := 0
	for _, b := range m {
		n += len(b)
	}
	return n
}
