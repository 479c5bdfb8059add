package vmm

import (
	"nestvm/abi"
	"nestvm/machine"
)

// threadOp performs thread operations on target.
func (t *Thread) threadOp(target *Thread, inv *Invocation) result {
	switch inv.Op {
	case abi.OpThreadExit:
		target.exit(inv.Slots[0])
		if target == t.who() {
			return result{act: machine.CallStop}
		}
		target.kill()
		return ok(0, 0)
	case abi.OpThreadStart:
		if e := target.start(); e != abi.OK {
			return failed(e)
		}
		return ok(0, 0)
	case abi.OpThreadStop:
		e, why := target.stopAndWait(t.who())
		if r, done := after(why); done {
			return r
		}
		if e != abi.OK {
			return failed(e)
		}
		if target == t.who() {
			return result{act: machine.CallStop}
		}
		return ok(0, 0)
	case abi.OpThreadGetState:
		if target == t.who() {
			return failed(abi.ErrBusy)
		}
		if inv.Slots[1] < uint64(stateSize) {
			return failed(abi.ErrTooBig)
		}
		regs, fpu, err := target.State()
		if err != nil {
			return failed(errCode(err))
		}
		inv.bufs[0].Write(encodeState(regs, fpu))
		return ok(uint64(stateSize), 0)
	case abi.OpThreadSetState:
		if target == t.who() {
			return failed(abi.ErrBusy)
		}
		regs, fpu, valid := decodeState(inv.bufs[0].Bytes())
		if !valid {
			return failed(abi.ErrInvalidArg)
		}
		if err := target.SetState(regs, fpu); err != nil {
			return failed(errCode(err))
		}
		return ok(0, 0)
	case abi.OpThreadStatus:
		st, status := target.reportedStatus()
		if st == abi.ThreadRunning {
			status = uint64(target.blockedIn())
		}
		return ok(uint64(st), status)
	}
	return failed(abi.ErrInvalidOp)
}
