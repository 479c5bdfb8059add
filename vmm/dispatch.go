package vmm

import (
	"encoding/binary"

	"nestvm/abi"
)

// Hypercall implements TrapHandler: it decodes one operation, checks it,
// and performs it. Every failure is an abi.Error returned to the guest;
// nothing a guest passes can make it panic or reach another space.
//
// Decoding follows a fixed order, so a call that is wrong in several ways
// always gets the same error: the handle, the operation, whether the
// object implements the operation's interface, the rights, then the
// arguments.
func (t *Thread) Hypercall(c *Call) CallAction {
	r0, r1, act := t.invoke(c)
	c.Ret = [2]uint64{r0, r1}
	return act
}

func (t *Thread) invoke(c *Call) (r0, r1 uint64, act CallAction) {
	s := t.space
	h, op := c.Args[0], abi.Op(c.Args[1])
	fail := func(e abi.Error) (uint64, uint64, CallAction) { return e.Result(), 0, CallContinue }
	if c.Args[1] != uint64(op) {
		op = abi.OpNone // beyond 32 bits: not an operation, however it truncates
	}

	s.mu.Lock()
	e, ok := s.handles.lookup(h)
	s.mu.Unlock()
	if !ok {
		return fail(abi.ErrBadHandle)
	}
	info, ok := op.Info()
	if !ok {
		return fail(abi.ErrInvalidOp)
	}
	if info.Iface == abi.IfaceHandle {
		return t.handleOp(h, e, op)
	}
	if _, isPort := e.obj.(*Port); !isPort && ifaceOf(e.obj.ObjectType()) != info.Iface {
		return fail(abi.ErrWrongType)
	}
	if !e.rights.Has(info.Rights) {
		return fail(abi.ErrRights)
	}

	var slots [abi.MaxArgSlots]uint64
	copy(slots[:], c.Args[2:])
	if info.Slots() > 4 {
		// a4 and a5 are on the stack, above the return address.
		s.mu.Lock()
		b, err := s.as.buffer(c.RSP+8, 16, PermRead)
		s.mu.Unlock()
		if err != abi.OK {
			return fail(err)
		}
		raw := b.Bytes()
		slots[4] = binary.LittleEndian.Uint64(raw)
		slots[5] = binary.LittleEndian.Uint64(raw[8:])
	}
	inv := Invocation{Thread: t, Op: op, Info: info, Badge: e.badge, Rights: e.rights, Slots: slots}
	if err := t.decodeBuffers(&inv); err != abi.OK {
		return fail(err)
	}

	switch obj := e.obj.(type) {
	case *Port:
		obj.server.Serve(&inv)
		if inv.err != abi.OK {
			return fail(inv.err)
		}
		if inv.handle != nil {
			s.mu.Lock()
			n, err := s.handles.insert(*inv.handle)
			s.mu.Unlock()
			if err != abi.OK {
				if c, ok := inv.handle.obj.(interface{ Close() error }); ok {
					c.Close()
				}
				return fail(err)
			}
			return n, inv.r1, CallContinue
		}
		return inv.r0, inv.r1, CallContinue
	case *Thread:
		return t.threadOp(obj, &inv)
	}
	return fail(abi.ErrInvalidOp)
}

// ifaceOf is the interface a kernel object of type typ implements.
func ifaceOf(typ abi.ObjectType) abi.Interface {
	switch typ {
	case abi.ObjThread:
		return abi.IfaceThread
	case abi.ObjSpace:
		return abi.IfaceSpace
	}
	return abi.IfaceNone
}

// decodeBuffers checks every buffer argument of inv against the caller's
// address space.
func (t *Thread) decodeBuffers(inv *Invocation) abi.Error {
	s := t.space
	slot := 0
	for _, a := range inv.Info.Args {
		if a.Kind == abi.ArgIn || a.Kind == abi.ArgOut {
			addr, n := inv.Slots[slot], inv.Slots[slot+1]
			if n > abi.MaxBuffer {
				return abi.ErrTooBig
			}
			need := PermRead
			if a.Kind == abi.ArgOut {
				need = PermWrite
			}
			s.mu.Lock()
			b, err := s.as.buffer(addr, n, need)
			s.mu.Unlock()
			if err != abi.OK {
				return err
			}
			inv.bufs = append(inv.bufs, b)
		}
		slot += a.Kind.Slots()
	}
	return abi.OK
}

// handleOp performs the operations on a handle itself.
func (t *Thread) handleOp(h uint64, e handleEntry, op abi.Op) (uint64, uint64, CallAction) {
	switch op {
	case abi.OpHandleInfo:
		return uint64(e.obj.ObjectType()), uint64(e.rights), CallContinue
	case abi.OpHandleClose:
		s := t.space
		s.mu.Lock()
		ok := s.handles.remove(h)
		s.mu.Unlock()
		if !ok {
			return abi.ErrBadHandle.Result(), 0, CallContinue
		}
		return 0, 0, CallContinue
	}
	return abi.ErrInvalidOp.Result(), 0, CallContinue
}

// threadOp performs thread operations on target.
func (t *Thread) threadOp(target *Thread, inv *Invocation) (uint64, uint64, CallAction) {
	switch inv.Op {
	case abi.OpThreadExit:
		target.exit(inv.Slots[0])
		if target == t {
			return 0, 0, CallStop
		}
		target.stop()
		return 0, 0, CallContinue
	}
	return abi.ErrInvalidOp.Result(), 0, CallContinue
}
