package vmm

import (
	"encoding/binary"
	"sync"
	"time"

	"nestvm/abi"
	"nestvm/machine"
)

// ipcState is a monitor's message machinery: the queues of its guest-served
// ports and the calls waiting for their replies. One lock guards it all:
// IPC is short work between long sleeps.
type ipcState struct {
	mu       sync.Mutex
	nextCall uint64
	calls    map[uint64]*message // received or queued calls, by call id
}

// message is one message on its way: queued on a port, or received and
// waiting for its reply.
type message struct {
	hdr     abi.Msg
	data    []byte
	handles []*capNode // the sender's handles; the receiver's are derived from them
	caller  *Thread    // who waits for the reply; nil for one-way messages
	via     *Port
	sender  *Space // its sender, while it counts against its limits and quota (sendlimit.go)
	charged uint64 // the bytes charged to the sender's memory quota

	// Guarded by ipcState.mu.
	received  bool
	from      Object  // the port or port set it was received through
	receiver  *Thread // the thread that received it, until it replies
	done      bool
	withdrawn bool // its caller ended after a server received it
	reply     reply
}

// reply is a server's answer to a call.
type reply struct {
	err    abi.Error
	r0, r1 uint64
	data   []byte
	handle *capNode // the replier's handle to give the caller
}

// PortSet is a set of ports a server receives from together.
type PortSet struct {
	objectID
	mon   *Monitor
	owner *Space
	// Guarded by ipcState.mu.
	ports   []*Port
	waiters map[*Thread]struct{}
	closed  bool
}

// ObjectType implements Object.
func (ps *PortSet) ObjectType() abi.ObjectType { return abi.ObjPortSet }

// newGuestPort returns a port served by whoever receives on it, closed when
// owner ends.
func (s *Space) newGuestPort(name string) *Port {
	return &Port{name: name, mon: s.mon, owner: s}
}

// receiver is the object whose waiters a message on p wakes. Callers hold
// the IPC lock.
func (p *Port) receiverWaiters() []map[*Thread]struct{} {
	out := []map[*Thread]struct{}{p.waiters}
	if p.set != nil {
		out = append(out, p.set.waiters)
	}
	return out
}

// enqueue queues msg on p and wakes its receivers; a message to a closed
// port fails with ErrPeerGone. A message not queued gives back its charge.
func (m *Monitor) enqueue(p *Port, msg *message) abi.Error {
	ipc := &m.ipc
	ipc.mu.Lock()
	if p.closed {
		msg.uncharge()
		ipc.mu.Unlock()
		return abi.ErrPeerGone
	}
	if e := msg.count(); e != abi.OK {
		msg.uncharge()
		ipc.mu.Unlock()
		return e
	}
	if msg.caller != nil {
		ipc.nextCall++
		msg.hdr.CallID = ipc.nextCall
		if ipc.calls == nil {
			ipc.calls = map[uint64]*message{}
		}
		ipc.calls[msg.hdr.CallID] = msg
	}
	msg.via = p
	p.queue = append(p.queue, msg)
	var wake []*Thread
	for _, ws := range p.receiverWaiters() {
		for t := range ws {
			wake = append(wake, t)
		}
	}
	ipc.mu.Unlock()
	for _, t := range wake {
		t.kick()
	}
	return abi.OK
}

// call sends msg (a call) to p and sleeps until it is answered. A stop
// before a server has received the call takes it back and reports
// wakeStop, so the caller re-issues it when resumed. Once a server has it,
// the exchange completes first (the server, asked to stop too, stops only
// once it has replied: see Thread.holding), so a stopped space never has a
// call half done: its state is all in its threads' registers, its memory
// and the one-way messages queued on its ports. A stoppable=false call (a
// fault waiting for its handler) runs to its reply. wakeExit means the
// caller is ending. early, when not nil, ends the wait once it reports
// true after a wake: the call is withdrawn (a reply that comes later is
// dropped), and the reply is empty.
func (t *Thread) call(p *Port, msg *message, stoppable bool, serve machine.VCPU, early func() bool) (reply, wakeReason) {
	t = t.who() // a forwarded call sleeps as the thread it is for, so stops and kills reach it
	m := t.space.mon
	msg.caller = t
	if e := m.enqueue(p, msg); e != abi.OK {
		return reply{err: e}, wakeReady
	}
	done := func() bool {
		m.ipc.mu.Lock()
		d := msg.done
		m.ipc.mu.Unlock()
		return d || early != nil && early()
	}
	for {
		r := t.sleep(done, stoppable, time.Time{}, serve)
		m.ipc.mu.Lock()
		if r == wakeReady && msg.done {
			rep := msg.reply
			m.ipc.mu.Unlock()
			return rep, wakeReady
		}
		if r == wakeStop && msg.received {
			m.ipc.mu.Unlock()
			stoppable = false
			continue
		}
		m.forget(msg)
		m.ipc.mu.Unlock()
		return reply{}, r
	}
}

// forget withdraws msg: from its port's queue if still there, and from the
// calls awaiting replies. Callers hold the IPC lock.
func (m *Monitor) forget(msg *message) {
	if p := msg.via; p != nil && !msg.received {
		for i, q := range p.queue {
			if q == msg {
				p.queue = append(p.queue[:i], p.queue[i+1:]...)
				break
			}
		}
		msg.uncount()
	}
	if msg.received {
		// Its server may still reply: keep the id, so that the reply is
		// dropped quietly (answer) rather than refused.
		msg.withdrawn = true
	} else {
		delete(m.ipc.calls, msg.hdr.CallID)
	}
	msg.done = true
}

// taken records that t received the call msg and owes it a reply.
// Callers hold the IPC lock.
func (t *Thread) taken(msg *message) {
	msg.receiver = t
	t.holding++
}

// released records that msg's receiver no longer owes it a reply.
// Callers hold the IPC lock.
func (msg *message) released() {
	if r := msg.receiver; r != nil {
		r.holding--
		msg.receiver = nil
	}
}

// holdsCalls reports whether t owes replies to calls it received.
func (t *Thread) holdsCalls() bool {
	m := t.space.mon
	m.ipc.mu.Lock()
	defer m.ipc.mu.Unlock()
	return t.holding > 0
}

// dequeue takes the first message waiting on obj (a port, or any port of a
// set). Callers hold the IPC lock.
func dequeue(obj Object) (*message, abi.Error) {
	switch o := obj.(type) {
	case *Port:
		if o.closed {
			return nil, abi.ErrPeerGone
		}
		if len(o.queue) > 0 {
			msg := o.queue[0]
			o.queue = o.queue[1:]
			msg.uncount()
			return msg, abi.OK
		}
	case *PortSet:
		if o.closed {
			return nil, abi.ErrPeerGone
		}
		for _, p := range o.ports {
			if len(p.queue) > 0 {
				msg := p.queue[0]
				p.queue = p.queue[1:]
				msg.uncount()
				return msg, abi.OK
			}
		}
	default:
		return nil, abi.ErrWrongType
	}
	return nil, abi.OK
}

// waitersOf returns the set of threads sleeping in a receive on obj.
func waitersOf(obj Object) *map[*Thread]struct{} {
	switch o := obj.(type) {
	case *Port:
		return &o.waiters
	case *PortSet:
		return &o.waiters
	}
	return nil
}

// receive waits for a message on obj (a guest port or a port set).
func (t *Thread) receive(obj Object) (*message, wakeReason, abi.Error) {
	t = t.who()
	m := t.space.mon
	ws := waitersOf(obj)
	var got *message
	var gerr abi.Error
	ready := func() bool {
		m.ipc.mu.Lock()
		defer m.ipc.mu.Unlock()
		got, gerr = dequeue(obj)
		if got != nil && got.caller != nil {
			got.received, got.from = true, obj
			t.taken(got)
		}
		if got != nil || gerr != abi.OK {
			delete(*ws, t)
			return true
		}
		if *ws == nil {
			*ws = map[*Thread]struct{}{}
		}
		(*ws)[t] = struct{}{}
		return false
	}
	r := t.sleep(ready, true, time.Time{}, nil)
	if r != wakeReady {
		m.ipc.mu.Lock()
		delete(*ws, t)
		m.ipc.mu.Unlock()
	}
	return got, r, gerr
}

// deliver inserts msg's handles into the receiving space and returns the
// header as the receiver sees it. A handle that no longer exists, or does
// not fit in the table, arrives as NoHandle.
func (s *Space) deliver(msg *message) abi.Msg { return s.deliverWith(msg, nil) }

// deliverWith is deliver with each handle passed through received first
// (a layer's border control: it hands the receiver its stand-ins).
func (s *Space) deliverWith(msg *message, received Lend) abi.Msg {
	hdr := msg.hdr
	hdr.DataLen = uint64(len(msg.data))
	for i, src := range msg.handles {
		if i >= abi.MsgHandles {
			break
		}
		hdr.NHandles = uint64(i + 1)
		if received != nil {
			obj, rights, badge := received(src.obj, src.rights, src.badge, true)
			if obj == nil { // refused: the handle does not arrive
				continue
			}
			if obj != src.obj {
				if n, e := s.addHandle(handleEntry{obj: obj, rights: rights, badge: badge}, nil); e == abi.OK {
					hdr.Handles[i] = n
				}
				continue
			}
		}
		parent := src
		if src.kernelMade() {
			// Made by the kernel for this message (a fault's thread): no
			// source. Only the number tells, as it never changes once a
			// handle is in a table; src.space is the revoker's to clear,
			// under the tree lock addHandle takes.
			parent = nil
		}
		if n, e := s.addHandle(src.handleEntry, parent); e == abi.OK {
			hdr.Handles[i] = n
		}
	}
	if msg.caller == nil {
		// A one-way message's handles travelled on their own (a call's
		// are its caller's, who waits): their journey ends here.
		s.mon.dropTransits(msg)
	}
	return hdr
}

// answer completes the call callID received through obj with rep. When
// it fails, or the caller has gone, the handle rep carries is dropped.
func (m *Monitor) answer(obj Object, callID uint64, rep reply) abi.Error {
	m.ipc.mu.Lock()
	msg, ok := m.ipc.calls[callID]
	if !ok || !msg.received || !(msg.from == obj || msg.via == obj) {
		m.ipc.mu.Unlock()
		m.dropTransit(rep.handle)
		return abi.ErrNotFound
	}
	delete(m.ipc.calls, callID)
	msg.released()
	if msg.withdrawn {
		m.ipc.mu.Unlock()
		m.dropTransit(rep.handle)
		return abi.OK // its caller will ask again
	}
	msg.done, msg.reply = true, rep
	caller := msg.caller
	m.ipc.mu.Unlock()
	caller.kick()
	return abi.OK
}

// closePorts closes every port and port set s owns: queued and received
// calls fail with ErrPeerGone, receivers wake to the same error.
func (m *Monitor) closePorts(s *Space) {
	m.ipc.mu.Lock()
	var wake []*Thread
	var dropped []*message
	for _, obj := range s.owned {
		switch o := obj.(type) {
		case *Port:
			o.closed = true
			for _, ws := range o.receiverWaiters() {
				for t := range ws {
					wake = append(wake, t)
				}
			}
			for _, msg := range o.queue {
				msg.uncount()
				if msg.caller == nil {
					dropped = append(dropped, msg)
				}
			}
			o.queue = nil
		case *PortSet:
			o.closed = true
			for t := range o.waiters {
				wake = append(wake, t)
			}
		}
	}
	for id, msg := range m.ipc.calls {
		if msg.via.owner == s {
			delete(m.ipc.calls, id)
			msg.released()
			msg.done, msg.reply = true, reply{err: abi.ErrPeerGone}
			wake = append(wake, msg.caller)
		}
	}
	m.ipc.mu.Unlock()
	for _, msg := range dropped {
		m.dropTransits(msg)
	}
	for _, t := range wake {
		t.kick()
	}
}

// encodeMsg lays out hdr as the nv_msg record.
func encodeMsg(hdr *abi.Msg) []byte {
	b, _ := binary.Append(nil, binary.LittleEndian, hdr)
	return b
}

// msgSize is the size of the nv_msg record.
var msgSize = binary.Size(abi.Msg{})

// addToSet adds p to set; a port belongs to one set at most.
func (m *Monitor) addToSet(set *PortSet, p *Port) abi.Error {
	m.ipc.mu.Lock()
	defer m.ipc.mu.Unlock()
	if set.closed || p.closed {
		return abi.ErrPeerGone
	}
	if p.set != nil {
		return abi.ErrBusy
	}
	p.set = set
	set.ports = append(set.ports, p)
	// Receivers of the set may be waiting for what p already holds.
	for t := range set.waiters {
		t.kick()
	}
	return abi.OK
}

// dropHeld fails every call t received and had not answered (t is ending):
// their callers get ErrPeerGone rather than waiting forever.
func (m *Monitor) dropHeld(t *Thread) {
	m.ipc.mu.Lock()
	var wake []*Thread
	for id, msg := range m.ipc.calls {
		if msg.receiver == t {
			delete(m.ipc.calls, id)
			msg.released()
			if !msg.withdrawn {
				msg.done, msg.reply = true, reply{err: abi.ErrPeerGone}
				wake = append(wake, msg.caller)
			}
		}
	}
	m.ipc.mu.Unlock()
	for _, c := range wake {
		c.kick()
	}
}
