package vmm_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/vmm"
)

// readSpaceHandles returns the records of space_get_state on sp, and
// closes the copies it made.
func readSpaceHandles(t *testing.T, c *vmm.Caller, sp uint64) (abi.SpaceState, []abi.SpaceMapEntry, []abi.SpaceHandleEntry) {
	t.Helper()
	buf := make([]byte, 1<<16)
	n, _, err := c.SpaceGetState(sp, buf)
	if err != nil {
		t.Fatalf("space_get_state: %v", err)
	}
	r := bytes.NewReader(buf[:n])
	var st abi.SpaceState
	binary.Read(r, binary.LittleEndian, &st)
	maps := make([]abi.SpaceMapEntry, st.NMaps)
	hs := make([]abi.SpaceHandleEntry, st.NHandles)
	binary.Read(r, binary.LittleEndian, maps)
	binary.Read(r, binary.LittleEndian, hs)
	threads := make([]abi.SpaceThreadEntry, st.NThreads)
	binary.Read(r, binary.LittleEndian, threads)
	for _, m := range maps {
		c.HandleClose(m.Region)
	}
	for _, e := range hs {
		c.HandleClose(e.Handle)
	}
	for _, e := range threads {
		c.HandleClose(e.Handle)
	}
	if st.ExceptionPort != abi.NoHandle {
		c.HandleClose(st.ExceptionPort)
	}
	return st, maps, hs
}

// TestDerivationState: space_get_state tells each handle's place in the
// derivation tree (Node and Parent tags, across spaces) and which objects
// the space is charged for; space_insert_at with NV_INSERT_MOVE moves a
// handle keeping the handles derived from it, so revoke reaches them.
func TestDerivationState(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		h := newHost(t, b)
		must := mustOK(t)
		child := must("space_create")(h.c.SpaceCreate(h.self, 64, 2, 32, 0))
		region := must("region_create")(h.c.RegionCreate(child, abi.PageSize))
		must("space_map")(h.c.SpaceMap(child, region, abi.UserBase, 0, abi.PageSize, abi.PermRead|abi.PermWrite))
		port := must("port_create")(h.c.PortCreate(h.self))

		// A tree in the host's own table, then moved into the child:
		// a -> b -> c, with b moved and c moved; a copied (not moved).
		a := must("derive a")(h.c.HandleDerive(h.con, uint64(abi.RightWrite|abi.RightGrant|abi.RightDerive), 0))
		bh := must("derive b")(h.c.HandleDerive(a, uint64(abi.RightWrite|abi.RightGrant|abi.RightDerive), 0))
		ch := must("derive c")(h.c.HandleDerive(bh, uint64(abi.RightWrite|abi.RightGrant), 0))
		must("insert_at copy")(h.c.SpaceInsertAt(child, a, uint64(abi.RightWrite), 3, 0))
		must("insert_at move b")(h.c.SpaceInsertAt(child, bh, uint64(abi.RightWrite|abi.RightDerive), 5, abi.InsertMove))
		must("insert_at move c")(h.c.SpaceInsertAt(child, ch, uint64(abi.RightWrite), 6, abi.InsertMove))
		if _, _, err := h.c.HandleInfo(bh); err != abi.ErrBadHandle {
			t.Errorf("the moved handle is still in the mover's table: %v", err)
		}
		must("insert_at port")(h.c.SpaceInsertAt(child, port, uint64(abi.RightCall|abi.RightGrant), 7, 0))

		// Refusals: unknown flags, a taken number, a handle without grant.
		if _, _, err := h.c.SpaceInsertAt(child, a, 0, 9, 2); err != abi.ErrInvalidArg {
			t.Errorf("unknown flags: %v", err)
		}
		if _, _, err := h.c.SpaceInsertAt(child, a, 0, 5, abi.InsertMove); err != abi.ErrExists {
			t.Errorf("move to a taken number: %v", err)
		}
		noGrant := must("derive")(h.c.HandleDerive(h.con, uint64(abi.RightWrite), 0))
		if _, _, err := h.c.SpaceInsertAt(child, noGrant, 0, 9, abi.InsertMove); err != abi.ErrRights {
			t.Errorf("move without grant: %v", err)
		}

		_, maps, hs := readSpaceHandles(t, h.c, child)
		byNum := map[uint64]abi.SpaceHandleEntry{}
		for _, e := range hs {
			byNum[e.Number] = e
		}
		b5, c6, a3 := byNum[5], byNum[6], byNum[3]
		if b5.Node == 0 || c6.Parent != b5.Node {
			t.Errorf("moved c (parent tag %d) is not under moved b (tag %d)", c6.Parent, b5.Node)
		}
		if b5.Parent == 0 || a3.Parent != b5.Parent {
			t.Errorf("b's parent tag %d, a's copy's %d: both come from a", b5.Parent, a3.Parent)
		}
		if b5.Rights != uint64(abi.RightWrite|abi.RightDerive) || c6.Rights != uint64(abi.RightWrite) {
			t.Errorf("moved rights %s and %s", abi.Rights(b5.Rights), abi.Rights(c6.Rights))
		}
		if len(maps) != 1 || maps[0].Flags&abi.StateOwned == 0 {
			t.Errorf("the child's own region is not flagged owned: %+v", maps)
		}
		if byNum[7].Flags&abi.StateOwned != 0 {
			t.Errorf("a port of the host's is flagged owned by the child")
		}
		// Revoking a reaches the moved handles in the child.
		if n, _, err := h.c.HandleRevoke(a); err != nil || n != 3 {
			t.Errorf("revoke a: %d handles, %v; want 3 (the copy, b, c)", n, err)
		}
		if _, _, hs = readSpaceHandles(t, h.c, child); len(hs) != 1 {
			t.Errorf("after revoke the child holds %d handles, want 1 (the port)", len(hs))
		}
	})
}

// TestPortSetState: port_set_get_state hands the reader a handle to each
// port of the set, with receive and control, and refuses a reader
// without them.
func TestPortSetState(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		h := newHost(t, b)
		must := mustOK(t)
		set := must("port_set_create")(h.c.PortSetCreate(h.self))
		var objs []vmm.Object
		for range 3 {
			p := must("port_create")(h.c.PortCreate(h.self))
			must("port_set_add")(h.c.PortSetAdd(set, p))
			obj, _, _, _ := h.c.Lookup(p)
			objs = append(objs, obj)
		}
		small := make([]byte, 8)
		if _, need, err := h.c.PortSetGetState(set, small); err != abi.ErrTooBig || need != 16+3*8 {
			t.Fatalf("small buffer: %v, need %d", err, need)
		}
		buf := make([]byte, 64)
		n, _, err := h.c.PortSetGetState(set, buf)
		if err != nil || n != 40 {
			t.Fatalf("port_set_get_state: %d bytes, %v", n, err)
		}
		var st abi.PortSetState
		r := bytes.NewReader(buf[:n])
		binary.Read(r, binary.LittleEndian, &st)
		ports := make([]uint64, st.NPorts)
		binary.Read(r, binary.LittleEndian, ports)
		for i, ph := range ports {
			obj, rights, _, err := h.c.Lookup(ph)
			if err != nil || obj != objs[i] || rights != abi.RightReceive|abi.RightControl {
				t.Errorf("port %d: %v %s %v", i, obj == objs[i], rights, err)
			}
		}
		weak := must("derive")(h.c.HandleDerive(set, uint64(abi.RightReceive), 0))
		if _, _, err := h.c.PortSetGetState(weak, buf); err != abi.ErrRights {
			t.Errorf("without control: %v", err)
		}
	})
}

// receiveMsg receives one message on port with c and returns its header.
func receiveMsg(t *testing.T, c *vmm.Caller, port uint64) abi.Msg {
	t.Helper()
	buf := make([]byte, binary.Size(abi.Msg{}))
	if _, _, err := c.PortReceive(port, buf, nil); err != nil {
		t.Fatalf("port_receive: %v", err)
	}
	var m abi.Msg
	binary.Read(bytes.NewReader(buf), binary.LittleEndian, &m)
	return m
}

// TestHandleInTransit: a handle travelling in a one-way message or a
// reply arrives even when its sender closed its own copy first (what a
// layer does with the handles it lends a forwarded call), and a revoke
// reaches it on the way.
func TestHandleInTransit(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		h := newHost(t, b)
		must := mustOK(t)
		port := must("port_create")(h.c.PortCreate(h.self))
		rights := uint64(abi.RightWrite | abi.RightGrant | abi.RightDerive)

		// Sent, then closed by the sender: it still arrives, and works.
		a := must("derive")(h.c.HandleDerive(h.con, rights, 0))
		must("port_send")(h.c.PortSend(port, 1, nil, a))
		must("handle_close")(h.c.HandleClose(a))
		m := receiveMsg(t, h.c, port)
		if m.NHandles != 1 || m.Handles[0] == abi.NoHandle {
			t.Fatalf("the sent handle did not arrive: %+v", m)
		}
		if n, _, err := h.c.ConsoleWrite(m.Handles[0], []byte("x")); err != nil || n != 1 {
			t.Errorf("console_write through the handle that travelled: %d, %v", n, err)
		}

		// Revoked on the way: it does not arrive, and the revoke counts it.
		root := must("derive root")(h.c.HandleDerive(h.con, rights, 0))
		b1 := must("derive")(h.c.HandleDerive(root, rights, 0))
		must("port_send")(h.c.PortSend(port, 2, nil, b1))
		must("handle_close")(h.c.HandleClose(b1))
		if n, _, err := h.c.HandleRevoke(root); err != nil || n != 1 {
			t.Errorf("revoke with a handle in transit: %d, %v; want 1", n, err)
		}
		if m := receiveMsg(t, h.c, port); m.NHandles != 1 || m.Handles[0] != abi.NoHandle {
			t.Errorf("a revoked handle arrived: %+v", m)
		}

		// Given in a reply and closed by the replier at once: the caller
		// still gets it.
		sc := h.host.NewCaller()
		done := make(chan error, 1)
		go func() {
			m := receiveMsg(t, sc, port)
			r := must("derive")(sc.HandleDerive(h.con, rights, 0))
			_, _, err := sc.PortReply(port, m.CallID, 0, 0, nil, r)
			sc.HandleClose(r)
			done <- err
		}()
		got, _, err := h.c.PortCall(port, 3, nil, nil)
		if err != nil || <-done != nil {
			t.Fatalf("port_call with a handle in the reply: %v", err)
		}
		if typ, _, err := h.c.HandleInfo(got); err != nil || typ != uint64(abi.ObjPort) {
			t.Errorf("the reply's handle: type %d, %v", typ, err)
		}
	})
}
