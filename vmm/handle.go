package vmm

import (
	"sync"

	"nestvm/abi"
)

// Object is anything a handle can name.
type Object interface {
	// ObjectType reports the object's type, as handle_info returns it.
	ObjectType() abi.ObjectType
	// identity is the object's identity (objectID, embedded).
	identity() uint64
}

// handleEntry is what a handle grants: an object, rights and a badge.
type handleEntry struct {
	obj    Object
	rights abi.Rights
	badge  uint64
}

// capNode is one handle: an entry in one space's table, and its place in
// the derivation tree. Every handle made from another (derive, insert into
// a child, transfer in a message) is recorded as a child of its source,
// so that revoking the source finds it in whatever space it went to, as
// seL4's capability derivation tree does.
type capNode struct {
	handleEntry
	space  *Space // nil once removed
	num    uint64
	id     uint64 // the handle's tag in state records (abi.SpaceHandleEntry.Node); 0 for one the kernel made for a message
	parent *capNode
	kids   map[*capNode]struct{}
	// transit marks a handle travelling in a queued message or a reply:
	// in no table, derived from the sender's, so that the sender may
	// close its own (or a layer drop the one it lent) before delivery,
	// and a revoke still reaches it. dead is set once it is delivered,
	// dropped or revoked.
	transit, dead bool
}

// gone reports whether n can no longer be a source: removed from its
// table, or revoked. Callers hold the tree lock.
func (n *capNode) gone() bool {
	if n.transit {
		return n.dead
	}
	return n.space == nil
}

// kernelMade reports whether n is a handle the kernel made for a message
// (a fault's thread), with no source to derive from.
func (n *capNode) kernelMade() bool { return n.num == 0 && !n.transit }

// transit returns a handle in transit derived from src, for a message or
// reply to carry.
func (m *Monitor) transit(src *capNode) (*capNode, abi.Error) {
	m.caps.mu.Lock()
	defer m.caps.mu.Unlock()
	if src.gone() {
		return nil, abi.ErrBadHandle
	}
	n := &capNode{handleEntry: src.handleEntry, transit: true}
	n.link(src)
	return n, abi.OK
}

// dropTransit ends the journey of n, a handle in transit (the receiver's
// copy, if any, is made by now): handles derived from it move to its
// source. Anything else is left alone.
func (m *Monitor) dropTransit(n *capNode) {
	if n == nil || !n.transit {
		return
	}
	m.caps.mu.Lock()
	defer m.caps.mu.Unlock()
	if !n.dead {
		n.unlink()
		n.dead = true
	}
}

// dropTransits drops every handle in transit msg carries.
func (m *Monitor) dropTransits(msg *message) {
	for _, h := range msg.handles {
		m.dropTransit(h)
	}
}

// capTree guards the derivation links of every handle of a monitor. Lock
// order: capTree.mu before any Space.mu.
type capTree struct {
	mu     sync.Mutex
	lastID uint64
}

// newNode returns a handle for e in s, with a fresh tag. Callers hold the
// tree lock.
func (tree *capTree) newNode(e handleEntry, s *Space) *capNode {
	tree.lastID++
	return &capNode{handleEntry: e, space: s, id: tree.lastID}
}

// link records n under parent (nil for a root handle). Callers hold the
// tree lock.
func (n *capNode) link(parent *capNode) {
	n.parent = parent
	if parent != nil {
		if parent.kids == nil {
			parent.kids = map[*capNode]struct{}{}
		}
		parent.kids[n] = struct{}{}
	}
}

// unlink takes n out of the tree; its children move to its parent, so a
// revoke of an ancestor still reaches them. Callers hold the tree lock.
func (n *capNode) unlink() {
	if n.parent != nil {
		delete(n.parent.kids, n)
	}
	for k := range n.kids {
		k.link(n.parent)
	}
	n.kids, n.parent = nil, nil
}

// handleTable maps a space's handle numbers to handles. Numbers are small
// integers local to the space (reference relativity): the same object has
// unrelated numbers in different spaces, and a number means nothing outside
// its table. Number 0 (abi.NoHandle) is never used.
type handleTable struct {
	slots    []*capNode // slots[0] stays empty
	free     []uint64
	count    int // handles in slots
	reserved int // places promised to operations still making their object (handleReservation)
	limit    int
}

func newHandleTable(limit int) handleTable {
	return handleTable{slots: make([]*capNode, 1, 16), limit: limit}
}

// full reports whether the table's handles and reserved places reach its
// limit.
func (t *handleTable) full() bool { return t.count+t.reserved >= t.limit }

// insert adds n to the table and sets its number; ErrQuota when the table
// is at its limit.
func (t *handleTable) insert(n *capNode) (uint64, abi.Error) {
	if t.full() {
		return 0, abi.ErrQuota
	}
	return t.place(n), abi.OK
}

// place adds n to the table, whatever its limit, and returns its number.
func (t *handleTable) place(n *capNode) uint64 {
	t.count++
	if k := len(t.free); k > 0 {
		h := t.free[k-1]
		t.free = t.free[:k-1]
		t.slots[h] = n
		n.num = h
		return h
	}
	t.slots = append(t.slots, n)
	n.num = uint64(len(t.slots) - 1)
	return n.num
}

// lookup returns handle h; false when h names nothing.
func (t *handleTable) lookup(h uint64) (*capNode, bool) {
	if h == abi.NoHandle || h >= uint64(len(t.slots)) || t.slots[h] == nil {
		return nil, false
	}
	return t.slots[h], true
}

// remove empties slot h and returns what was there.
func (t *handleTable) remove(h uint64) (*capNode, bool) {
	n, ok := t.lookup(h)
	if !ok {
		return nil, false
	}
	t.slots[h] = nil
	t.free = append(t.free, h)
	t.count--
	return n, true
}

// all returns every handle in the table.
func (t *handleTable) all() []*capNode {
	out := make([]*capNode, 0, t.count)
	for _, n := range t.slots {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// addHandle puts a handle for e in s's table, derived from parent (nil for
// a handle with no source), and returns its number.
func (s *Space) addHandle(e handleEntry, parent *capNode) (uint64, abi.Error) {
	tree := &s.mon.caps
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if parent != nil && parent.gone() {
		return 0, abi.ErrBadHandle // the source was revoked meanwhile
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closedTable {
		return 0, abi.ErrPeerGone
	}
	n := tree.newNode(e, s)
	h, err := s.handles.insert(n)
	if err != abi.OK {
		return 0, err
	}
	n.link(parent)
	return h, abi.OK
}

// handleReservation is a place in a space's handle table, counted against
// its quota, held for an object an operation has yet to make. An operation
// that creates an object (a space, a thread, a region, a port) reserves
// its handle first: a full table then refuses it before anything exists,
// and once the object is made, handing it out cannot fail for want of
// room, so the operation never fails half way, leaving an object nobody
// holds charged to a quota.
type handleReservation struct{ s *Space }

// reserveHandle reserves a place in s's table: ErrQuota when the table is
// full, ErrPeerGone when s has ended.
func (s *Space) reserveHandle() (handleReservation, abi.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closedTable:
		return handleReservation{}, abi.ErrPeerGone
	case s.handles.full():
		return handleReservation{}, abi.ErrQuota
	}
	s.handles.reserved++
	return handleReservation{s}, abi.OK
}

// cancel gives the place back.
func (r handleReservation) cancel() {
	r.s.mu.Lock()
	if !r.s.closedTable { // a closed table was replaced, reservations and all
		r.s.handles.reserved--
	}
	r.s.mu.Unlock()
}

// fill puts a handle for e in the reserved place and returns its number.
// It fails only when the space has ended meanwhile (ErrPeerGone).
func (r handleReservation) fill(e handleEntry) (uint64, abi.Error) {
	s := r.s
	tree := &s.mon.caps
	tree.mu.Lock()
	defer tree.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closedTable {
		return 0, abi.ErrPeerGone
	}
	s.handles.reserved--
	return s.handles.place(tree.newNode(e, s)), abi.OK
}

// lookupHandle returns handle h of s.
func (s *Space) lookupHandle(h uint64) (*capNode, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handles.lookup(h)
}

// removeHandle removes handle h from s's table.
func (s *Space) removeHandle(h uint64) abi.Error {
	tree := &s.mon.caps
	tree.mu.Lock()
	defer tree.mu.Unlock()
	s.mu.Lock()
	n, ok := s.handles.remove(h)
	s.mu.Unlock()
	if !ok {
		return abi.ErrBadHandle
	}
	n.unlink()
	n.space = nil
	return abi.OK
}

// revoke removes every handle derived from n, in every space, and returns
// how many it removed.
func (m *Monitor) revoke(n *capNode) int {
	m.caps.mu.Lock()
	defer m.caps.mu.Unlock()
	count := 0
	var walk func(k *capNode)
	walk = func(k *capNode) {
		for c := range k.kids {
			walk(c)
		}
		if s := k.space; s != nil {
			s.mu.Lock()
			if cur, ok := s.handles.lookup(k.num); ok && cur == k {
				s.handles.remove(k.num)
			}
			s.mu.Unlock()
			k.space = nil
		}
		k.dead = true
		k.kids, k.parent = nil, nil
		count++
	}
	for c := range n.kids {
		walk(c)
	}
	n.kids = nil
	return count
}

// dropTable removes every handle of s (when s ends), keeping the
// derivation links of other spaces' handles intact.
func (s *Space) dropTable() {
	tree := &s.mon.caps
	tree.mu.Lock()
	defer tree.mu.Unlock()
	s.mu.Lock()
	nodes := s.handles.all()
	s.handles = newHandleTable(0)
	s.closedTable = true
	s.mu.Unlock()
	for _, n := range nodes {
		n.unlink()
		n.space = nil
	}
}
