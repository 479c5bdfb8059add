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
		case abi.OpClockWait:
			clockWait(inv)
			return
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
		now, ok := hostClock(inv.Slots[0])
		if !ok {
			inv.Fail(abi.ErrInvalidArg)
			return
		}
		inv.Return(now, 0)
	})
}

// hostClock reads the host clock which names; ok is false when which
// names none.
func hostClock(which uint64) (now uint64, ok bool) {
	switch which {
	case abi.ClockMonotonic:
		return monotonicNow(), true
	case abi.ClockRealtime:
		return uint64(time.Now().UnixNano()), true
	}
	return 0, false
}

// clockWait serves clock_wait on the host's clocks with a real timer. It
// sleeps as the thread the call is for (a personality's Caller acts for
// the thread whose call it serves), so that whoever kicks that thread ends
// the wait early, and its stop or end does too.
func clockWait(inv *Invocation) {
	which, deadline := inv.Slots[0], inv.Slots[1]
	now, ok := hostClock(which)
	if !ok {
		inv.Fail(abi.ErrInvalidArg)
		return
	}
	if deadline != 0 && now >= deadline {
		inv.Return(now, 0)
		return
	}
	t := inv.thread
	if t == nil && inv.from != nil {
		t = inv.from.who()
	}
	if t == nil {
		inv.Fail(abi.ErrWouldBlock) // no thread to wait in
		return
	}
	var at time.Time
	if deadline != 0 {
		at = time.Now().Add(time.Duration(min(deadline-now, uint64(1<<62))))
	}
	// The first look is before the sleep; any later one follows a wake,
	// which ends the wait: the caller looks at what it waits for.
	looks := 0
	why := t.sleep(func() bool { looks++; return looks > 1 }, true, at, nil)
	if r, done := after(why); done {
		inv.res.act = r.act
		return
	}
	now, _ = hostClock(which)
	inv.Return(now, 0)
}
