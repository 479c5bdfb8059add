package vmm

import (
	"io"
	"time"

	"nestvm/abi"
)

// The root services: servers the monitor itself provides to the programs
// it starts (the console, the clock, and the files root of files.go).
// They are ordinary host servers on ports, so a layer can stand in for any
// of them.

// ConsoleServer writes what programs send to the console to w.
func ConsoleServer(w io.Writer) Server {
	return ServerFunc(func(inv *Invocation) {
		if inv.Op != abi.OpConsoleWrite {
			inv.Fail(abi.ErrInvalidOp)
			return
		}
		b := inv.Buffer(0)
		n, err := w.Write(b.Bytes())
		if err != nil && n == 0 {
			inv.Fail(abi.ErrIO)
			return
		}
		inv.Return(uint64(n), 0)
	})
}

// ClockServer reads the host's clocks. Monotonic time counts from the
// monitor's start, for every clock server alike. clock_time_page hands
// out the monitor's time page (timepage.go), which clock_read keeps
// current.
func ClockServer() Server {
	return ServerFunc(func(inv *Invocation) {
		switch inv.Op {
		case abi.OpClockRead:
		case abi.OpClockTimePage:
			r, err := hostTime.page()
			if err != nil {
				inv.Fail(errCode(err))
				return
			}
			inv.ReturnHandle(r, abi.RightRead|abi.RightMap|abi.RightGrant|abi.RightDerive, 0)
			return
		default:
			inv.Fail(abi.ErrInvalidOp)
			return
		}
		hostTime.touch()
		switch inv.Slots[0] {
		case abi.ClockMonotonic:
			inv.Return(monotonicNow(), 0)
		case abi.ClockRealtime:
			inv.Return(uint64(time.Now().UnixNano()), 0)
		default:
			inv.Fail(abi.ErrInvalidArg)
		}
	})
}
