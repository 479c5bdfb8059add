package vmm

import (
	"encoding/binary"

	"nestvm/abi"
)

// State encapsulation: every object's whole state can be read by whoever
// holds it with enough rights, with the handles it mentions given to the
// reader as copies, so that a parent can save a child and rebuild it from
// the records with ordinary operations (see abi's state operations).

// stateWriter collects a record stream and the handles inserted for it, so
// that a failure part way takes every copy back.
type stateWriter struct {
	t      *Thread
	out    []byte
	copies []uint64
	err    abi.Error
	ids    map[Object]uint64
}

// id numbers obj within the stream, from 1.
func (w *stateWriter) id(obj Object) uint64 {
	if w.ids == nil {
		w.ids = map[Object]uint64{}
	}
	if n, ok := w.ids[obj]; ok {
		return n
	}
	n := uint64(len(w.ids) + 1)
	w.ids[obj] = n
	return n
}

// put appends rec (a fixed-size record) to the stream.
func (w *stateWriter) put(rec any) {
	w.out, _ = binary.Append(w.out, binary.LittleEndian, rec)
}

// copyOf inserts a copy of e into the reader's table, derived from parent
// when not nil, and returns its number (NoHandle after a failure). The
// reader is whoever the call is for: through a layer forwarding it, the
// invoker, not the layer, with each copy first passed through the layer's
// Received (border control: a deep layer hands out its stand-ins), as the
// handles of a received message are.
func (w *stateWriter) copyOf(e handleEntry, parent *capNode) uint64 {
	if w.err != abi.OK {
		return abi.NoHandle
	}
	if w.t.received != nil {
		obj, rights, badge := w.t.received(e.obj, e.rights, e.badge, true)
		if obj == nil {
			return abi.NoHandle // refused: the reader gets none
		}
		if obj != e.obj {
			e, parent = handleEntry{obj: obj, rights: rights, badge: badge}, nil
		}
	}
	h, err := w.t.who().space.addHandle(e, parent)
	if err != abi.OK {
		w.err = err
		return abi.NoHandle
	}
	w.copies = append(w.copies, h)
	return h
}

// finish writes the stream to buf, or undoes the copies when it failed or
// does not fit (ErrTooBig, with the size needed in R1).
func (w *stateWriter) finish(buf userBuffer, need uint64) result {
	if w.err == abi.OK && buf.Len() < need {
		w.err = abi.ErrTooBig
	}
	if w.err != abi.OK {
		for _, h := range w.copies {
			w.t.who().space.removeHandle(h)
		}
		r := failed(w.err)
		if w.err == abi.ErrTooBig {
			r.r1 = need
		}
		return r
	}
	buf.Write(w.out)
	return ok(uint64(len(w.out)), 0)
}

var (
	spaceStateSize = uint64(binary.Size(abi.SpaceState{}))
	mapEntrySize   = uint64(binary.Size(abi.SpaceMapEntry{}))
	handleSize     = uint64(binary.Size(abi.SpaceHandleEntry{}))
	threadSize     = uint64(binary.Size(abi.SpaceThreadEntry{}))
)

// spaceGetState writes sp's state to buf (space_get_state). A handle of
// sp's table that goes between the snapshot of the table and its copy
// for the reader (its holder removed it meanwhile: a server changing the
// table of a space whose threads are stopped) makes the read start over,
// rather than fail with a bad handle the reader never named.
func (t *Thread) spaceGetState(sp *Space, buf userBuffer) result {
	for try := 1; ; try++ {
		r := t.spaceGetStateOnce(sp, buf)
		if r.r0 != abi.ErrBadHandle.Result() || try == spaceStateTries {
			return r
		}
	}
}

// spaceStateTries bounds the reads of a table that keeps changing.
const spaceStateTries = 16

// spaceGetStateOnce is one try of spaceGetState.
func (t *Thread) spaceGetStateOnce(sp *Space, buf userBuffer) result {
	// The tree lock keeps the derivation links still while they are read.
	tree := &sp.mon.caps
	tree.mu.Lock()
	sp.mu.Lock()
	q := sp.quota
	exc, excBadge, excRights := sp.excPort, sp.excBadge, sp.excRights
	maps := append([]*mapping(nil), sp.as.maps...)
	nodes := sp.handles.all()
	parents := make([]uint64, len(nodes))
	for i, n := range nodes {
		if n.parent != nil {
			parents[i] = n.parent.id
		}
	}
	threads := make([]*Thread, 0, len(sp.threads))
	for th := range sp.threads {
		threads = append(threads, th)
	}
	sp.mu.Unlock()
	tree.mu.Unlock()
	status, _ := sp.Status()
	need := spaceStateSize + uint64(len(maps))*mapEntrySize + uint64(len(nodes))*handleSize + uint64(len(threads))*threadSize
	w := &stateWriter{t: t}
	if buf.Len() < need {
		return w.finish(buf, need) // NV_ETOOBIG, before any copy is made
	}
	st := abi.SpaceState{
		Size: need, Pages: q.Memory / pageSize, Threads: uint64(q.Threads), Handles: uint64(q.Handles), Children: uint64(q.Children),
		Status: uint64(status), NMaps: uint64(len(maps)), NHandles: uint64(len(nodes)), NThreads: uint64(len(threads)),
		Identity: sp.identity(),
	}
	if exc != nil {
		st.ExceptionPort = w.copyOf(handleEntry{obj: exc, rights: excRights, badge: excBadge}, nil)
		st.ExceptionObject = w.id(exc)
	}
	w.put(&st)
	for _, m := range maps {
		e := abi.SpaceMapEntry{Addr: m.addr, Size: m.size, Offset: m.off, Perm: uint64(m.perm), Limit: uint64(m.limit)}
		if m.region != nil {
			// The mapping's own rights, plus read: whoever controls a
			// space may read the memory it maps (to save it), but gets
			// no power over the region the child did not have.
			e.Region = w.copyOf(handleEntry{obj: m.region, rights: m.rights | abi.RightRead}, nil)
			e.Object = w.id(m.region)
			e.Flags = ownedFlag(m.region, sp)
		}
		w.put(&e)
	}
	for i, n := range nodes {
		e := abi.SpaceHandleEntry{Number: n.num, Type: uint64(TypeOf(n.obj)), Rights: uint64(n.rights), Badge: n.badge, Object: w.id(n.obj),
			Node: n.id, Parent: parents[i], Flags: ownedFlag(n.obj, sp)}
		e.Handle = w.copyOf(n.handleEntry, n)
		w.put(&e)
	}
	for _, th := range threads {
		w.put(&abi.SpaceThreadEntry{Handle: w.copyOf(handleEntry{obj: th, rights: abi.RightsAll}, nil), Object: w.id(th), Number: uint64(th.ID()),
			Identity: th.identity()})
	}
	return w.finish(buf, need)
}

// ownedFlag returns abi.StateOwned when obj is charged to sp: a region
// it created, a port or port set that ends with it.
func ownedFlag(obj Object, sp *Space) uint64 {
	var owner *Space
	switch o := obj.(type) {
	case *Region:
		owner = o.owner
	case *Port:
		owner = o.owner
	case *PortSet:
		owner = o.owner
	}
	if owner == sp && owner != nil {
		return abi.StateOwned
	}
	return 0
}

// regionGetState writes r's state to buf (region_get_state).
func (t *Thread) regionGetState(r *Region, buf userBuffer) result {
	r.mu.Lock()
	keeper, badge, rights := r.keeper, r.keepBadge, r.keepRights
	bitmap := append([]uint64(nil), r.present...)
	r.mu.Unlock()
	need := uint64(binary.Size(abi.RegionState{})) + uint64(len(bitmap))*8
	w := &stateWriter{t: t}
	if buf.Len() < need {
		return w.finish(buf, need) // NV_ETOOBIG, before any copy is made
	}
	st := abi.RegionState{Size: r.Size(), KeeperBadge: badge, BitmapWords: uint64(len(bitmap))}
	if keeper != nil {
		st.Keeper = w.copyOf(handleEntry{obj: keeper, rights: rights, badge: badge}, nil)
	}
	w.put(&st)
	for _, word := range bitmap {
		w.put(word)
	}
	return w.finish(buf, need)
}

// portGetState writes the messages queued on p to buf (port_get_state).
func (t *Thread) portGetState(p *Port, buf userBuffer) result {
	m := t.space.mon
	// The bytes are taken with the queue: a receiver drops a call's
	// once it has them.
	m.ipc.mu.Lock()
	queue := append([]*message(nil), p.queue...)
	data := make([][]byte, len(queue))
	for i, msg := range queue {
		data[i] = msg.data
	}
	m.ipc.mu.Unlock()
	need := uint64(binary.Size(abi.PortState{}))
	for _, d := range data {
		need += uint64(msgSize) + (uint64(len(d))+7)&^7
	}
	w := &stateWriter{t: t}
	if buf.Len() < need {
		return w.finish(buf, need) // NV_ETOOBIG, before any copy is made
	}
	w.put(&abi.PortState{Size: need, NMsgs: uint64(len(queue))})
	for k, msg := range queue {
		hdr := msg.hdr
		hdr.DataLen = uint64(len(data[k]))
		for i, src := range msg.handles {
			if i >= abi.MsgHandles {
				break
			}
			parent := src
			if src.kernelMade() {
				parent = nil // no source (see deliver)
			}
			hdr.Handles[i] = w.copyOf(src.handleEntry, parent)
			hdr.NHandles = uint64(i + 1)
		}
		w.put(&hdr)
		w.out = append(w.out, data[k]...)
		w.out = append(w.out, make([]byte, (8-len(data[k])%8)%8)...)
	}
	return w.finish(buf, need)
}

// portSetGetState writes the ports of ps to buf (port_set_get_state):
// a copy of a handle to each, with receive and control, which is what
// port_set_add and port_get_state need to rebuild and save them.
func (t *Thread) portSetGetState(ps *PortSet, buf userBuffer) result {
	m := t.space.mon
	m.ipc.mu.Lock()
	ports := append([]*Port(nil), ps.ports...)
	m.ipc.mu.Unlock()
	need := uint64(binary.Size(abi.PortSetState{})) + 8*uint64(len(ports))
	w := &stateWriter{t: t}
	if buf.Len() < need {
		return w.finish(buf, need) // NV_ETOOBIG, before any copy is made
	}
	w.put(&abi.PortSetState{Size: need, NPorts: uint64(len(ports))})
	for _, p := range ports {
		w.put(w.copyOf(handleEntry{obj: p, rights: abi.RightReceive | abi.RightControl}, nil))
	}
	return w.finish(buf, need)
}

// moveAt moves the handle src (of the calling space, which must still hold
// it) to number num of s's table, keeping its place in the derivation tree
// and rights (fewer, never more).
func (s *Space) moveAt(src *capNode, rights abi.Rights, num uint64) abi.Error {
	if num == abi.NoHandle || num >= maxHandleNumber {
		return abi.ErrInvalidArg
	}
	_, e := s.move(src, rights, num)
	return e
}

// moveIn moves src into s's table at its lowest free number, which it
// returns: how a layer forwarding a move passes on the invoker's handle
// itself (Invocation.ForwardWithOptions).
func (s *Space) moveIn(src *capNode) (uint64, abi.Error) {
	return s.move(src, abi.RightsAll, abi.NoHandle)
}

// move is moveAt, to the lowest free number when num is NoHandle.
func (s *Space) move(src *capNode, rights abi.Rights, num uint64) (uint64, abi.Error) {
	tree := &s.mon.caps
	tree.mu.Lock()
	defer tree.mu.Unlock()
	return s.moveLocked(src, rights, num)
}

// moveBack moves n, lent by moveIn to from's table, back to s at number
// num, unless it has gone elsewhere (the operation moved it) or away.
func (s *Space) moveBack(n *capNode, from *Space, num uint64) {
	tree := &s.mon.caps
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if n.space == from {
		s.moveLocked(n, abi.RightsAll, num)
	}
}

// moveLocked is move; callers hold the tree lock.
func (s *Space) moveLocked(src *capNode, rights abi.Rights, num uint64) (uint64, abi.Error) {
	from := src.space
	if from == nil {
		return 0, abi.ErrBadHandle
	}
	if from == s && (src.num == num || num == abi.NoHandle) {
		src.rights &= rights
		return src.num, abi.OK
	}
	// Every change to a table holds the tree lock, so what is checked
	// here still holds when the handle moves below.
	s.mu.Lock()
	var e abi.Error
	switch {
	case s.closedTable:
		e = abi.ErrPeerGone
	case num != abi.NoHandle && num < uint64(len(s.handles.slots)) && s.handles.slots[num] != nil:
		e = abi.ErrExists
	case from != s && s.handles.full():
		e = abi.ErrQuota
	}
	s.mu.Unlock()
	if e != abi.OK {
		return 0, e
	}
	from.mu.Lock()
	from.handles.remove(src.num)
	from.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	src.rights &= rights
	src.space = s
	if num == abi.NoHandle {
		return s.handles.insert(src)
	}
	return num, s.handles.insertAt(src, num)
}

// insertAt puts a copy of src in s's table at number num.
func (s *Space) insertAt(e handleEntry, src *capNode, num uint64) abi.Error {
	if num == abi.NoHandle || num >= maxHandleNumber {
		return abi.ErrInvalidArg
	}
	tree := &s.mon.caps
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if src != nil && src.gone() {
		return abi.ErrBadHandle
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closedTable {
		return abi.ErrPeerGone
	}
	n := tree.newNode(e, s)
	if err := s.handles.insertAt(n, num); err != abi.OK {
		return err
	}
	n.link(src)
	return abi.OK
}

// maxHandleNumber bounds the numbers space_insert_at accepts, and so the
// size a table can be made to grow to.
const maxHandleNumber = 1 << 16

// insertAt adds n at number num; ErrExists when taken, ErrQuota when the
// table is full.
func (t *handleTable) insertAt(n *capNode, num uint64) abi.Error {
	if num < uint64(len(t.slots)) && t.slots[num] != nil {
		return abi.ErrExists
	}
	if t.full() {
		return abi.ErrQuota
	}
	for uint64(len(t.slots)) <= num {
		t.free = append(t.free, uint64(len(t.slots)))
		t.slots = append(t.slots, nil)
	}
	for i, f := range t.free {
		if f == num {
			t.free = append(t.free[:i], t.free[i+1:]...)
			break
		}
	}
	t.slots[num] = n
	n.num = num
	t.count++
	return abi.OK
}
