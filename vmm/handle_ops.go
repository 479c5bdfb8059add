package vmm

import (
	"nestvm/abi"
)

// handleOp performs the operations on a handle itself.
func (t *Thread) handleOp(n *capNode, inv *Invocation) result {
	s := t.space
	switch inv.Op {
	case abi.OpHandleInfo:
		return ok(uint64(TypeOf(n.obj)), uint64(n.rights))
	case abi.OpHandleIdentify:
		return t.identify(n, inv.bufs[0])
	case abi.OpHandleClose:
		if e := s.removeHandle(n.num); e != abi.OK {
			return failed(e)
		}
		return ok(0, 0)
	case abi.OpHandleDerive:
		rights, badge := abi.Rights(inv.Slots[0]), inv.Slots[1]
		if inv.Slots[0] > uint64(abi.RightsAll) || !n.rights.Has(rights) {
			return failed(abi.ErrRights)
		}
		e := n.handleEntry
		e.rights = rights
		if badge != 0 {
			if n.badge != 0 && n.badge != badge {
				return failed(abi.ErrInvalidArg) // a badge is set once
			}
			e.badge = badge
		}
		h, err := s.addHandle(e, n)
		if err != abi.OK {
			return failed(err)
		}
		return gave(h, 0)
	case abi.OpHandleRevoke:
		return ok(uint64(s.mon.revoke(n)), 0)
	case abi.OpCallBatch:
		return t.callBatch(inv)
	}
	return failed(abi.ErrInvalidOp)
}
