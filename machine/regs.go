package machine

import (
	"fmt"

	"nestvm/abi"
)

// Regs is a vCPU's user-mode integer register state. It has the same
// layout as abi.ThreadRegs, the record get_state reports.
type Regs = abi.ThreadRegs

// FPU is the x87/SSE state in the FXSAVE layout (512 bytes).
type FPU [abi.FXSaveSize]byte

// FXSAVE offsets the monitor reads or initialises.
const (
	FXFCW      = 0   // x87 control word (uint16)
	FXMXCSR    = 24  // SSE control/status (uint32)
	FXMXCSRMsk = 28  // MXCSR mask (uint32)
	FXST0      = 32  // ST0..ST7 (or MM0..7), 16 bytes each
	FXXMM0     = 160 // XMM0..XMM15, 16 bytes each
)

// ResetFPU returns the x87/SSE state a fresh thread starts with: the
// x87 control word 0x37f and MXCSR 0x1f80, as after FNINIT and at reset.
func ResetFPU() FPU {
	var f FPU
	f[FXFCW], f[FXFCW+1] = 0x7f, 0x03
	f[FXMXCSR], f[FXMXCSR+1] = 0x80, 0x1f
	return f
}

// Canonical reports whether a is a canonical x86-64 address: bits 63..47
// all equal.
func Canonical(a uint64) bool { return uint64(int64(a<<16)>>16) == a }

// Resumable returns r as a thread's state is reported to those who read
// it: a thread a stop left at the syscall entry is at its syscall
// instruction instead, with RFLAGS as syscall saved them in R11. Only a
// PVM host leaves a thread there (its syscall jumps to MSR_LSTAR at CPL3,
// and a stop can come before the entry's trap); other backends and hosts
// would run the entry's trap as an instruction ring 3 may not execute, so
// a state saved at the entry would fail to resume there. Run again from
// the instruction, the syscall sets RCX and R11 as it did the first time.
func Resumable(r Regs) Regs {
	if r.RIP == SyscallEntry {
		r.RIP, r.RFLAGS = r.RCX-2, r.R11 // syscall is 2 bytes: 0f 05
	}
	return r
}

// CheckUserRegs refuses registers a thread cannot run with: a
// non-canonical RIP, RSP, FS base or GS base. kvm cannot enter, or keeps
// re-entering, a vCPU whose state holds one, and the thread would burn a
// host CPU without ever faulting; the emulator faults or runs on.
func CheckUserRegs(r *Regs) error {
	for _, f := range []struct {
		name string
		v    uint64
	}{{"rip", r.RIP}, {"rsp", r.RSP}, {"fs base", r.FSBase}, {"gs base", r.GSBase}} {
		if !Canonical(f.v) {
			return fmt.Errorf("%s %#x is not a canonical address: %w", f.name, f.v, abi.ErrInvalidArg)
		}
	}
	return nil
}

// User-mode RFLAGS a thread runs with: reserved bit 1 only. IOPL is 0, so
// every in and out a guest executes is a #GP (the ABI stubs trap by a
// store to the trap page; only the emulator's primer uses `out`, which a
// hook catches before the privilege check). Interrupts stay disabled:
// guests get none.
const (
	RFlagsReserved = 1 << 1
	RFlagsUser     = RFlagsReserved
	// RFlagsUserMask are the flags a guest may set through set_state (CF,
	// PF, AF, ZF, SF, DF, OF, AC, ID); the monitor forces the others (TF,
	// IF, IOPL, NT, RF, VM, ...) to its own values.
	RFlagsUserMask = 0x0cd5 | 1<<18 | 1<<21
)
