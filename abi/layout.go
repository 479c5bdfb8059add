package abi

// Fixed guest addresses. Address spaces are identity-mapped: a guest virtual
// address equals its guest-physical address, so these are both.
const (
	// PageSize is the size of the smallest mapping unit.
	PageSize = 0x1000

	// ReservedBase..ReservedTop is owned by the monitor in every space: the
	// ABI page, the ring-0 stub pages and the page tables live here. Guests
	// can neither load segments nor map regions inside it. Page 0 up to
	// ReservedBase is never mapped, so null-pointer accesses fault.
	ReservedBase = 0x0010_0000
	ReservedTop  = 0x0040_0000

	// ABIPage is the read-only, executable page mapped at the same address
	// in every space. Its first instruction is the entry point of every
	// operation (like a vDSO): guests call it, never trap directly.
	ABIPage = ReservedBase

	// ABIEntry is the address guests call to invoke an operation, with the
	// System V calling convention:
	//
	//	result = entry(handle, op, a0, a1, a2, a3, a4, a5)
	//
	// handle and op travel in rdi and rsi, a0..a3 in rdx, rcx, r8, r9, and
	// a4, a5 on the stack. The result comes back in rax (R0: a value >= 0,
	// or a negated Error) and rdx (R1: a second value for operations that
	// have one). The entry is an ordinary System V function: callers must
	// assume it clobbers every caller-saved register (rdi, rsi, rcx,
	// r8-r11, the flags and the vector registers), as for any call.
	ABIEntry = ABIPage

	// NullTrapEntry is a function in the ABI page that traps into the
	// monitor and returns at once, doing no ABI work. It exists to measure
	// the backend's raw trap round trip; programs have no other use for it.
	NullTrapEntry = ABIPage + 0x20

	// UserBase is the lowest address a guest may load or map at.
	UserBase = ReservedTop
	// UserTop is one past the highest address a guest may load or map at.
	// 64 GiB keeps every guest-physical address inside the physical address
	// width of any x86-64 CPU KVM runs on (36 bits at least).
	UserTop = 0x10_0000_0000

	// MaxBuffer is the longest buffer one operation accepts (ErrTooBig
	// beyond it). It bounds what the monitor may have to copy for a call.
	MaxBuffer = 16 << 20

	// MaxReason is the most of a reason space_abort keeps: a reason is a
	// line of a report, which the monitor keeps as long as the space's
	// result, and a layer failing with a long error must still end its
	// program, so a longer one is cut rather than refused.
	MaxReason = 4096
)
