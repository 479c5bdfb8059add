package vmm

import (
	"runtime"

	"nestvm/abi"
	"nestvm/machine"
)

// callablePort checks that n names a port and may call it (an exception
// port, a keeper).
func callablePort(n *capNode) (*Port, abi.Error) {
	p, isPort := n.obj.(*Port)
	if !isPort {
		return nil, abi.ErrWrongType
	}
	if !n.rights.Has(abi.RightCall) {
		return nil, abi.ErrRights
	}
	return p, abi.OK
}

// portArg is requiredArg for a port the operation will call.
func (t *Thread) portArg(inv *Invocation, i int) (*capNode, *Port, abi.Error) {
	n, e := t.requiredArg(inv, i)
	if e != abi.OK {
		return nil, nil, e
	}
	p, e := callablePort(n)
	return n, p, e
}

// serveHost performs inv on a port served inline by host code.
func (t *Thread) serveHost(p *Port, inv *Invocation) result {
	p.server.Serve(inv)
	// A server may let go of what it stands for once no handle names
	// its port (interpose's stand-ins do): not while it serves.
	runtime.KeepAlive(p)
	r := inv.res
	if r.act == machine.CallContinue && r.give != nil {
		h, e := t.space.addHandle(*r.give, nil)
		if e != abi.OK {
			return failed(e)
		}
		return gave(h, r.r1)
	}
	r.give = nil
	return r
}

// callPort delivers inv to the server of a guest-served port as a message
// {operation, arguments, handles} and returns its reply as the result.
func (t *Thread) callPort(p *Port, n *capNode, inv *Invocation) result {
	// inv.Badge is n's, or, forwarded by a layer, the invoker's where
	// the layer's handle has none (ForwardWithOptions).
	msg := &message{hdr: abi.Msg{Kind: abi.MsgCall, Op: uint64(inv.Op), Badge: inv.Badge, Words: inv.Slots}}
	oneWay := inv.Op == abi.OpPortSend
	if oneWay {
		msg.hdr.Kind, msg.hdr.Op = abi.MsgSend, inv.Slots[0]
	}
	var in, out *GuestBuffer
	slot, buf := 0, 0
	for _, a := range inv.Info.Args {
		switch a.Kind {
		case abi.ArgIn:
			if in == nil {
				in = &inv.bufs[buf]
			}
			buf++
		case abi.ArgOut:
			if out == nil {
				out = &inv.bufs[buf]
				msg.hdr.ReplyCap = inv.Slots[slot+1]
			}
			buf++
		case abi.ArgHandle:
			h, e := t.handleArg(inv, slot)
			if e != abi.OK {
				return failed(e)
			}
			if h != nil {
				if !h.rights.Has(abi.RightGrant) {
					return failed(abi.ErrRights)
				}
				msg.handles = append(msg.handles, h)
			}
		}
		slot += a.Kind.Slots()
	}
	mon := t.space.mon
	// Through a layer, the message is the program's: its bytes count
	// against the program's limits and quota, not the layer's.
	msg.sender = t.who().space
	if in != nil {
		if e := msg.charge(in.Len()); e != abi.OK {
			return failed(e)
		}
		msg.data = make([]byte, in.Len())
		in.Read(msg.data)
	}
	if oneWay {
		// The handles travel on their own: the sender may close its
		// copies (a layer drops what it lent) before they arrive.
		for i, h := range msg.handles {
			tn, e := mon.transit(h)
			if e != abi.OK {
				msg.handles = msg.handles[:i]
				mon.dropTransits(msg)
				msg.uncharge()
				return failed(e)
			}
			msg.handles[i] = tn
		}
		if e := mon.enqueue(p, msg); e != abi.OK {
			mon.dropTransits(msg)
			return failed(e)
		}
		return ok(0, 0)
	}
	rep, why := t.call(p, msg, true, nil, inv.early)
	defer mon.dropTransit(rep.handle)
	if r, done := after(why); done {
		return r
	}
	if rep.err != abi.OK {
		return failed(rep.err)
	}
	if out != nil && len(rep.data) > 0 {
		out.Write(rep.data)
	}
	if rep.handle != nil {
		h, e := t.space.addHandle(rep.handle.handleEntry, rep.handle)
		if e != abi.OK {
			return failed(e)
		}
		return gave(h, rep.r1)
	}
	return ok(rep.r0, rep.r1)
}

// portOp performs the kernel's port operations: receiving and replying on
// guest-served ports and port sets, and adding ports to sets.
func (t *Thread) portOp(obj Object, inv *Invocation) result {
	s := t.space
	a := inv.Slots
	switch inv.Op {
	case abi.OpPortReceive:
		if a[1] < uint64(msgSize) {
			return failed(abi.ErrTooBig)
		}
		msg, why, e := t.receive(obj)
		if r, done := after(why); done {
			return r
		}
		if e != abi.OK {
			return failed(e)
		}
		// Handles the message carries go to whoever the receive is for:
		// through a layer, the guest thread, not the layer's table.
		hdr := t.who().space.deliverWith(msg, t.received)
		inv.bufs[0].Write(encodeMsg(&hdr))
		n := inv.bufs[1].Write(msg.data)
		// A call waits for its reply, but its bytes are delivered and
		// no longer charged: the monitor does not keep them either.
		s.mon.ipc.mu.Lock()
		msg.data = nil
		s.mon.ipc.mu.Unlock()
		return ok(uint64(n), 0)
	case abi.OpPortReply:
		rep := reply{r0: a[1], r1: a[2], data: append([]byte(nil), inv.bufs[0].Bytes()...)}
		hn, e := t.handleArg(inv, 5)
		if e != abi.OK {
			return failed(e)
		}
		if hn != nil {
			if !hn.rights.Has(abi.RightGrant) {
				return failed(abi.ErrRights)
			}
			// It travels on its own: the replier (a layer's lent copy)
			// may be gone before the caller takes it.
			if rep.handle, e = s.mon.transit(hn); e != abi.OK {
				return failed(e)
			}
		}
		if e := s.mon.answer(obj, a[0], rep); e != abi.OK {
			return failed(e)
		}
		return t.stopIfAsked()
	case abi.OpPortGetState:
		p, isPort := obj.(*Port)
		if !isPort {
			return failed(abi.ErrWrongType)
		}
		return t.portGetState(p, inv.bufs[0])
	case abi.OpPortSetGetState:
		set, isSet := obj.(*PortSet)
		if !isSet {
			return failed(abi.ErrWrongType)
		}
		return t.portSetGetState(set, inv.bufs[0])
	case abi.OpPortSetAdd:
		set, isSet := obj.(*PortSet)
		if !isSet {
			return failed(abi.ErrWrongType)
		}
		pn, e := t.requiredArg(inv, 0)
		if e != abi.OK {
			return failed(e)
		}
		p, isPort := pn.obj.(*Port)
		if !isPort || p.server != nil {
			return failed(abi.ErrWrongType)
		}
		if !pn.rights.Has(abi.RightReceive) {
			return failed(abi.ErrRights)
		}
		return failed(s.mon.addToSet(set, p))
	}
	return failed(abi.ErrInvalidOp)
}
