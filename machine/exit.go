package machine

import (
	"fmt"

	"nestvm/abi"
)

// ExitKind says why Run returned.
//
//go:generate go tool stringer -type=ExitKind -trimprefix=Exit
type ExitKind uint8

// Exit kinds.
const (
	// ExitNone is the zero Exit, returned together with an error.
	ExitNone ExitKind = iota
	// ExitStopped: Stop was called, or a hypercall handler asked to stop.
	ExitStopped
	// ExitFault: the guest raised a CPU exception; Exit.Fault says which.
	ExitFault
	// ExitIllegalIO: the guest accessed an I/O port other than through the
	// ABI entry. The guest is at fault; treat it like a #GP.
	ExitIllegalIO
)

// Vector is an x86 exception vector.
type Vector uint8

// Exception vectors the monitor distinguishes.
const (
	VecDivide     Vector = 0  // #DE divide error
	VecDebug      Vector = 1  // #DB
	VecBreakpoint Vector = 3  // #BP int3
	VecOverflow   Vector = 4  // #OF
	VecBound      Vector = 5  // #BR
	VecInvalidOp  Vector = 6  // #UD invalid opcode
	VecNoDevice   Vector = 7  // #NM
	VecDouble     Vector = 8  // #DF
	VecInvalidTSS Vector = 10 // #TS
	VecNoSegment  Vector = 11 // #NP
	VecStack      Vector = 12 // #SS
	VecGP         Vector = 13 // #GP general protection
	VecPage       Vector = 14 // #PF page fault
	VecX87        Vector = 16 // #MF
	VecAlign      Vector = 17 // #AC
	VecMachine    Vector = 18 // #MC
	VecSIMD       Vector = 19 // #XM
	// VecSyscall is no CPU exception: the thread executed syscall (see
	// abi.VecSyscall).
	VecSyscall Vector = abi.VecSyscall
)

var vectorNames = map[Vector]string{
	VecDivide: "divide error", VecDebug: "debug trap", VecBreakpoint: "breakpoint",
	VecOverflow: "overflow", VecBound: "bound range exceeded", VecInvalidOp: "invalid opcode",
	VecNoDevice: "device not available", VecDouble: "double fault", VecInvalidTSS: "invalid TSS",
	VecNoSegment: "segment not present", VecStack: "stack fault", VecGP: "general protection fault",
	VecPage: "page fault", VecX87: "x87 floating-point error", VecAlign: "alignment check",
	VecMachine: "machine check", VecSIMD: "SIMD floating-point error",
	VecSyscall: "system call",
}

// String names the vector in words.
func (v Vector) String() string {
	if n, ok := vectorNames[v]; ok {
		return n
	}
	if v < 32 {
		return fmt.Sprintf("exception %d", v)
	}
	return fmt.Sprintf("software interrupt %#x", uint8(v))
}

// HasErrorCode reports whether the CPU pushes an error code for v.
func (v Vector) HasErrorCode() bool {
	switch v {
	case VecDouble, VecInvalidTSS, VecNoSegment, VecStack, VecGP, VecPage, VecAlign, 21, 29, 30:
		return true
	}
	return false
}

// Access is the kind of memory access that faulted.
type Access uint8

// Access kinds.
const (
	AccessRead Access = iota
	AccessWrite
	AccessExec
)

// String names the access.
func (a Access) String() string {
	switch a {
	case AccessWrite:
		return "write"
	case AccessExec:
		return "execute"
	default:
		return "read"
	}
}

// Page-fault error-code bits, as the CPU pushes them.
const (
	PFPresent = 1 << 0 // the page was present: a protection violation
	PFWrite   = 1 << 1 // the access was a write
	PFUser    = 1 << 2 // the access came from ring 3
	PFFetch   = 1 << 4 // the access was an instruction fetch
)

// Fault describes a CPU exception the guest raised.
type Fault struct {
	Vector Vector
	// ErrorCode is the CPU's error code, when the vector has one. For page
	// faults, backends that do not get one from the CPU synthesize it, so
	// PFPresent, PFWrite and PFFetch are always meaningful.
	ErrorCode uint32
	// Addr is the faulting address for page faults (CR2).
	Addr uint64
	// RIP is the address of the faulting instruction.
	RIP uint64
}

// Access returns the access kind of a page fault.
func (f Fault) Access() Access {
	switch {
	case f.ErrorCode&PFFetch != 0:
		return AccessExec
	case f.ErrorCode&PFWrite != 0:
		return AccessWrite
	}
	return AccessRead
}

// String describes the fault in one line, for example
// "page fault: read of 0x0 (not present) at rip 0x401a2c".
func (f Fault) String() string {
	if f.Vector == VecPage {
		why := "not present"
		if f.ErrorCode&PFPresent != 0 {
			why = "protection"
		}
		return fmt.Sprintf("page fault: %s of %#x (%s) at rip %#x", f.Access(), f.Addr, why, f.RIP)
	}
	return fmt.Sprintf("%s at rip %#x", f.Vector, f.RIP)
}

// Exit is why Run returned.
type Exit struct {
	Kind ExitKind
	// Fault is set for ExitFault.
	Fault Fault
	// Port is the I/O port of an ExitIllegalIO; RIP is set too.
	Port uint16
	RIP  uint64
}

// String describes the exit.
func (e Exit) String() string {
	switch e.Kind {
	case ExitFault:
		return e.Fault.String()
	case ExitIllegalIO:
		return fmt.Sprintf("illegal I/O to port %#x at rip %#x", e.Port, e.RIP)
	}
	return e.Kind.String()
}

// Signal is the Unix signal Linux delivers for the fault, so that a
// faulting guest's status reads as a crashed process's would.
func (f Fault) Signal() int {
	const (
		sigILL  = 4
		sigTRAP = 5
		sigABRT = 6
		sigBUS  = 7
		sigFPE  = 8
		sigSEGV = 11
		sigSYS  = 31
	)
	switch f.Vector {
	case VecSyscall:
		return sigSYS // no handler served it: Linux's answer to a filtered call
	case VecDivide, VecX87, VecSIMD:
		return sigFPE
	case VecInvalidOp:
		return sigILL
	case VecDebug, VecBreakpoint:
		return sigTRAP
	case VecAlign, VecNoSegment, VecStack:
		return sigBUS
	case VecMachine:
		return sigABRT
	}
	return sigSEGV
}

// ExitStatus is the exit status of a program ended by the fault: 128 plus
// its signal (139 for a segmentation fault).
func (f Fault) ExitStatus() int { return 128 + f.Signal() }
