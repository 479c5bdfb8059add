package machine

import (
	"encoding/binary"
	"sync"

	"nestvm/abi"
)

// The reserved range of every space (abi.ReservedBase..abi.ReservedTop) is
// backed by one "system" memory object per space, laid out as below. Guest
// code at CPL3 can reach only the ABI page and write to the trap page;
// everything else is mapped supervisor-only or (the page tables) not
// mapped at all.
//
//	0x100000  ABI page        user r-x   entry stub, primer, null trap, syscall entry
//	0x101000  ring-0 text     sup  r-x   exception entry stubs, iretq
//	0x102000  IDT             sup  r--   32 interrupt gates into ring-0 text
//	0x103000  trap page       user -w-   never backed by memory: a store there exits
//	0x110000  vCPU 0 page     sup  rw-   GDT at +0, TSS at +0x80
//	0x111000  vCPU 0 stack    sup  rw-   ring-0 stack (RSP0), 4 KiB
//	0x112000  vCPU 1 ...      (MaxVCPUs pairs)
//	0x200000  page-table pool not mapped (walked by the CPU physically)
//	0x400000  abi.UserBase
//
// The system memory is given to the machine as two mappings, below and
// above the trap page, so that no backend has memory behind it.
const (
	SysBase       = abi.ReservedBase
	SysSize       = abi.ReservedTop - abi.ReservedBase
	Ring0TextAddr = SysBase + 0x1000
	IDTAddr       = SysBase + 0x2000
	// TrapPageAddr is the page the ABI stubs write to: a one-byte store to
	// TrapPageAddr+port from ring 3 is how a thread enters the monitor. The
	// page is mapped user-writable in the page tables but has no memory
	// behind it, so the store exits as MMIO on every KVM (VMX, SVM and
	// PVM, where `out` from ring 3 raises #GP), and the emulator serves it
	// from an MMIO region's callback: both backends run one ABI page.
	TrapPageAddr = SysBase + 0x3000
	VCPUAreaAddr = SysBase + 0x10000
	VCPUAreaSize = 0x2000
	// MaxVCPUs is the most threads one space can run at once.
	MaxVCPUs   = 64
	PTPoolAddr = SysBase + 0x100000
	ptPoolSize = abi.ReservedTop - PTPoolAddr
)

// Offsets inside the ABI page.
const (
	// TrapAddr is the address of the trap instruction every operation goes
	// through, the first instruction of abi.ABIEntry. A thread restarted
	// at TrapAddr re-issues its call. The instruction is
	// CPUSetup.TrapLen bytes long.
	TrapAddr = abi.ABIEntry
	// PrimerAddr holds the emulator's ring-3 entry sequence: a trap to
	// EnterPort (where the backend saves the CPU context it restores after
	// every fault), then a load from the supervisor-only ring-0 text, which
	// always page-faults and so stops the engine (see emu). Other backends
	// ignore it.
	PrimerAddr = abi.ABIPage + 0x10
	// NullTrapAddr is a function that traps to NullPort and returns: the
	// raw trap round trip with no ABI work, for benchmarks.
	NullTrapAddr = abi.NullTrapEntry
	// SyscallEntry is where a syscall instruction lands on hosts that
	// ignore EFER.SCE=0 (MSR_LSTAR points here): a trap to SyscallPort,
	// so the backend can report the #UD other hosts raise. It touches
	// no memory, so it is safe at CPL3 (PVM stays there) and at CPL0 on
	// the user stack.
	SyscallEntry = abi.ABIPage + 0x30
)

// I/O ports of the traps. They are an implementation detail of the ABI
// page and the ring-0 stub, never part of the ABI.
const (
	HypercallPort = 0x4e
	FaultPort     = 0x4f
	NullPort      = 0x50
	EnterPort     = 0x51
	// SyscallPort is where the syscall entry traps. A CPU that honours
	// EFER.SCE=0 raises #UD for syscall and never gets there; a
	// paravirtual KVM (PVM) jumps to MSR_LSTAR regardless.
	SyscallPort = 0x52
)

// Segment selectors in every vCPU's GDT. The order (kernel code, kernel
// data, user data, user code) is the one SYSCALL/SYSRET expect.
const (
	SelKernelCode = 0x08
	SelKernelData = 0x10
	SelUserData   = 0x18 | 3
	SelUserCode   = 0x20 | 3
	SelTSS        = 0x28
	gdtSize       = 0x38 // null + 4 segments + 16-byte TSS descriptor
	tssOffset     = 0x80
	tssSize       = 0x68
)

// Control-register values every vCPU runs with.
const (
	CR0Value  = 1<<0 | 1<<1 | 1<<4 | 1<<5 | 1<<16 | 1<<31 // PE MP ET NE WP PG
	CR4Value  = 1<<5 | 1<<9 | 1<<10                       // PAE OSFXSR OSXMMEXCPT
	EFERValue = 1<<8 | 1<<10 | 1<<11                      // LME LMA NXE
)

// Ring-0 fault frame: the ring-0 stub leaves this on the vCPU's ring-0
// stack, at RSP, when it traps to FaultPort. The last five words are what
// the CPU pushed on entry from ring 3.
const (
	FrameVector = 0  // exception vector
	FrameError  = 8  // error code (0 when the vector has none)
	FrameRIP    = 16 // faulting instruction
	FrameCS     = 24
	FrameRFlags = 32
	FrameRSP    = 40 // user stack pointer
	FrameSS     = 48
	FrameSize   = 56
)

// CPUSetup is the system state a vCPU runs under. The monitor builds the
// tables it points to in the space's system memory; backends load it into
// the CPU (kvm: KVM_SET_SREGS; emu: register writes and one iretq).
type CPUSetup struct {
	CR0, CR3, CR4, EFER uint64
	GDTBase             uint64
	GDTLimit            uint16
	IDTBase             uint64
	IDTLimit            uint16
	TSSBase             uint64
	TSSLimit            uint32
	// Selectors; the user ones include RPL 3.
	KernelCS, KernelSS, UserCS, UserSS, TSSSel uint16
	// KernelStackTop is RSP0: where the CPU switches on an exception from
	// ring 3. The ring-0 fault frame ends here.
	KernelStackTop uint64
	// IretAddr is an iretq instruction in ring-0 text: the emulator enters
	// ring 3 only through it.
	IretAddr uint64
	// SyscallEntry is where syscall enters (MSR_LSTAR), with the kernel
	// code selector in MSR_STAR.
	SyscallEntry uint64
	// TrapPage is where the stubs' stores go. TrapInsnLen is the length of
	// the trapping instruction at TrapAddr, and TrapLen where a call
	// resumes (the stub's ret): the same on every backend, so a thread
	// stopped after a call has the same registers whichever backend it ran
	// on, and resumes on another (checkpoint, migration).
	TrapPage    uint64
	TrapLen     uint64
	TrapInsnLen uint64
	// TrapAddr, PrimerAddr, NullTrapAddr and the ports: see their constants.
	TrapAddr, PrimerAddr, NullTrapAddr                         uint64
	HypercallPort, FaultPort, NullPort, EnterPort, SyscallPort uint16
}

// vcpuArea returns the address of vCPU id's GDT/TSS page.
func vcpuArea(id int) uint64 { return VCPUAreaAddr + uint64(id)*VCPUAreaSize }

// NewCPUSetup returns the CPUSetup of vCPU id in a space whose page-table root
// is at cr3.
func NewCPUSetup(id int, cr3 uint64) CPUSetup {
	area := vcpuArea(id)
	return CPUSetup{
		CR0: CR0Value, CR3: cr3, CR4: CR4Value, EFER: EFERValue,
		GDTBase: area, GDTLimit: gdtSize - 1,
		IDTBase: IDTAddr, IDTLimit: 256*16 - 1,
		TSSBase: area + tssOffset, TSSLimit: tssSize - 1,
		KernelCS: SelKernelCode, KernelSS: SelKernelData,
		UserCS: SelUserCode, UserSS: SelUserData, TSSSel: SelTSS,
		KernelStackTop: area + VCPUAreaSize,
		IretAddr:       Ring0TextAddr + iretOffset,
		SyscallEntry:   SyscallEntry,
		TrapPage:       TrapPageAddr, TrapLen: uint64(len(trapInsn(HypercallPort))),
		TrapInsnLen: uint64(len(trapInsn(HypercallPort))),
		TrapAddr:    TrapAddr, PrimerAddr: PrimerAddr, NullTrapAddr: NullTrapAddr,
		HypercallPort: HypercallPort, FaultPort: FaultPort, NullPort: NullPort, EnterPort: EnterPort,
		SyscallPort: SyscallPort,
	}
}

// Instruction bytes of the stubs. Hand-assembled because they are a
// handful of fixed instructions; each is commented with its assembly.

// trapInsn is the instruction that traps to port: a store to the trap page.
func trapInsn(port uint8) []byte {
	a := uint32(TrapPageAddr + uint64(port))
	return []byte{0x88, 0x04, 0x25, byte(a), byte(a >> 8), byte(a >> 16), byte(a >> 24)} // mov %al, TrapPageAddr+port
}

// The stubs of the ABI page.
func abiEntryCode() []byte {
	return append(trapInsn(HypercallPort), 0xc3) // trap; ret
}

func nullTrapCode() []byte {
	return append(trapInsn(NullPort), 0xc3) // trap; ret
}

// primerCode is only ever run by the emulator, which catches its out.
var primerCode = []byte{
	0xe6, EnterPort, // out %al, $EnterPort
	0x8a, 0x04, 0x25, 0x00, 0x10, 0x10, 0x00, // mov 0x101000 (ring-0 text), %al
	0x0f, 0x0b, // ud2
}

// Ring-0 text layout: 32 exception entries of 16 bytes, then iretq.
const (
	excEntrySize = 16
	iretOffset   = 0x800
)

// stubSize is the part of the system memory that buildSystem writes: the
// ABI page, the ring-0 text and the IDT.
const stubSize = IDTAddr + abi.PageSize - SysBase

// stubPages is what buildSystem writes, the same for every space.
var stubPages = sync.OnceValue(func() []byte {
	b := make([]byte, stubSize)
	buildSystem(b)
	return b
})

// buildSystem writes the ABI page, ring-0 text and IDT into sys, the
// space's system memory (which starts at guest-physical SysBase, and is
// fresh, zero memory) or the first stubSize bytes of it.
func buildSystem(sys []byte) {
	at := func(addr uint64) []byte { return sys[addr-SysBase:] }
	le := binary.LittleEndian

	// The ABI page: unused bytes are int3, so a stray jump into it faults.
	abiPage := at(abi.ABIPage)[:abi.PageSize]
	fill(abiPage, 0xcc)
	copy(at(TrapAddr), abiEntryCode())
	copy(at(PrimerAddr), primerCode)
	copy(at(NullTrapAddr), nullTrapCode())
	copy(at(SyscallEntry), append(trapInsn(SyscallPort), 0x0f, 0x0b)) // trap; ud2 (never reached)

	// Ring-0 text: entry v pushes a zero error code if the CPU pushed none,
	// then the vector, and traps; the monitor reads the frame and returns
	// the thread to ring 3 itself, so the entry never continues.
	text := at(Ring0TextAddr)[:abi.PageSize]
	fill(text, 0xcc)
	for v := 0; v < 32; v++ {
		var code []byte
		if !Vector(v).HasErrorCode() {
			code = append(code, 0x6a, 0x00) // push $0
		}
		code = append(code,
			0x6a, byte(v), // push $v
			0xe6, FaultPort, // out %al, $FaultPort
			0x0f, 0x0b, // ud2: never reached
		)
		copy(text[v*excEntrySize:], code)
	}
	copy(text[iretOffset:], []byte{0x48, 0xcf}) // iretq

	// IDT: 64-bit interrupt gates (type 0xe, DPL 0, present) for the 32
	// exceptions; the other 224 stay not present, so "int $n" from ring 3
	// raises #GP, which the guest sees as a fault.
	idt := at(IDTAddr)[:abi.PageSize]
	for v := 0; v < 32; v++ {
		handler := uint64(Ring0TextAddr + v*excEntrySize)
		g := idt[v*16:]
		le.PutUint16(g[0:], uint16(handler))
		le.PutUint16(g[2:], SelKernelCode)
		g[4] = 0    // IST 0: the TSS's RSP0
		g[5] = 0x8e // present, DPL 0, 64-bit interrupt gate
		le.PutUint16(g[6:], uint16(handler>>16))
		le.PutUint32(g[8:], uint32(handler>>32))
	}

}

// BuildVCPUArea writes the GDT and TSS of vCPU id into sys. Done when the
// vCPU is created: pages of the system memory never touched stay free.
func BuildVCPUArea(sys []byte, id int) {
	le := binary.LittleEndian
	area := sys[vcpuArea(id)-SysBase:][:abi.PageSize]
	clear(area)
	le.PutUint64(area[0x08:], 0x00209a0000000000) // kernel code: P, DPL 0, code, L
	le.PutUint64(area[0x10:], 0x0000920000000000) // kernel data: P, DPL 0, writable
	le.PutUint64(area[0x18:], 0x0000f20000000000) // user data: P, DPL 3, writable
	le.PutUint64(area[0x20:], 0x0020fa0000000000) // user code: P, DPL 3, code, L
	// 64-bit TSS descriptor (16 bytes): base, limit, type 0xb (busy: the
	// backends load TR directly, never with ltr).
	base := vcpuArea(id) + tssOffset
	d := uint64(tssSize-1) | (base&0xffffff)<<16 | uint64(0x8b)<<40 | (base>>24&0xff)<<56
	le.PutUint64(area[SelTSS:], d)
	le.PutUint64(area[SelTSS+8:], base>>32)
	// TSS: RSP0 at +4; the I/O map base at +0x66 points past the segment
	// limit, so there is no I/O bitmap and IOPL alone decides.
	tss := area[tssOffset : tssOffset+tssSize]
	le.PutUint64(tss[4:], vcpuArea(id)+VCPUAreaSize)
	le.PutUint16(tss[0x66:], tssSize)
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

// CR3FlushBit is CR3's page-level write-through bit. Backends flip it to
// flush a vCPU's TLB: both KVM and the emulator drop cached translations
// when CR3 changes, not always when it is rewritten with the same value,
// and the bit changes nothing else (the page tables live in ordinary
// write-back memory either way).
const CR3FlushBit = 1 << 3
