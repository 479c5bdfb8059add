package abi

// Records that cross the guest boundary. Each is laid out exactly as the
// generated C struct of the same name (a test compiles the header and checks
// every size and offset); fields are fixed-width and naturally aligned, and
// records only grow at the end.

// StartMagic identifies a StartInfo record ("NVSTART1" read as little-endian).
const StartMagic = 0x3154_5241_5453_564e

// StartInfo is what a program finds at start: the monitor passes its
// address in rdi and in the auxiliary vector entry AuxStartInfo.
type StartInfo struct {
	Magic      uint64 // StartMagic
	Size       uint64 // size of this record as the monitor wrote it
	ABIVersion uint64 // Version
	// Handles the program starts with; NoHandle when absent.
	Space   uint64 // the program's own space
	Thread  uint64 // the starting thread
	Console uint64 // the console (write)
	Clock   uint64 // a clock (read)
	// Argc and Argv are the arguments, as on the stack.
	Argc uint64
	Argv uint64 // guest address of an array of Argc+1 addresses
	// HeapBase and HeapSize describe a zero-filled read-write area the
	// program may use as it likes (the runtime's allocator uses it).
	HeapBase uint64
	HeapSize uint64 // bytes of the heap area
	// StackBase and StackSize describe the initial thread's stack.
	StackBase uint64
	StackSize uint64 // bytes of the stack
	// Files is a files root (the monitor's: a host directory, read-only
	// unless the user allowed writes); NoHandle when absent.
	Files uint64
	// Stderr is a console for diagnostics (the monitor's standard error);
	// NoHandle when absent.
	Stderr uint64
	// Stdin is an input console (console_read: the monitor's standard
	// input); NoHandle when absent.
	Stdin uint64
}

// TimePage is the record at the start of a clock's time page
// (clock_time_page). The clock rewrites it in place, as a seqlock: Seq is
// odd while a rewrite is under way, and a reader that saw it odd, or saw
// it change across its reads, reads again. When Flags holds TimeTSC, a
// clock reads, in nanoseconds,
//
//	base + (((tsc - TSCBase) * Mult) >> Shift)
//
// for the counter value tsc that rdtsc returns, with MonoBase as base for
// the monotonic clock and RealBase for realtime, the product taken in 128
// bits. A reader whose tsc - TSCBase (unsigned) exceeds MaxDelta calls
// clock_read instead: the record is stale, or the thread's counter is not
// the one the record was taken with.
type TimePage struct {
	Seq      uint64 // odd while the clock rewrites the record
	Flags    uint64 // TimeTSC when the fields below can be used
	TSCBase  uint64 // the counter at the record's anchor
	Mult     uint64 // nanoseconds per counter tick, times 2^Shift
	Shift    uint64 // the scale of Mult, in bits (at most 63)
	MonoBase uint64 // monotonic nanoseconds at TSCBase
	RealBase uint64 // realtime nanoseconds at TSCBase
	MaxDelta uint64 // counter ticks past TSCBase the record holds for
}

// AuxStartInfo is the auxiliary-vector type whose value is the address of
// the StartInfo record (a private number, far from Linux's AT_* values).
const AuxStartInfo = 0x4e56

// Linux auxiliary-vector types the monitor also provides, so a program that
// walks auxv as on Linux finds what it expects.
const (
	AuxNull   = 0 // AT_NULL: end of the vector
	AuxPageSz = 6 // AT_PAGESZ
	AuxEntry  = 9 // AT_ENTRY
)

// ThreadRegs is a thread's integer register state, as get_state reports it.
type ThreadRegs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP uint64 // the general-purpose registers
	R8, R9, R10, R11, R12, R13, R14, R15   uint64 // the general-purpose registers
	RIP, RFLAGS                            uint64 // the instruction pointer and the flags (only those user code may hold are kept)
	FSBase, GSBase                         uint64 // the FS and GS segment bases (thread-local storage)
}

// FXSaveSize is the size of the x87/SSE state in the FXSAVE layout.
const FXSaveSize = 512

// ThreadState is a thread's whole user-visible CPU state: integer
// registers and the x87/SSE state in the FXSAVE layout (the same bytes on
// every backend, so a thread saved on one resumes on another).
type ThreadState struct {
	Regs ThreadRegs       // the integer registers
	FPU  [FXSaveSize]byte // the x87/SSE state, as FXSAVE writes it
}

// MsgHandles is the most handles one message carries.
const MsgHandles = 4

// Msg is a message as port_receive delivers it. The bytes it carries go to
// the receiver's data buffer, not into the record.
type Msg struct {
	Kind   uint64 // MsgCall, MsgSend, MsgFault, MsgPage or MsgExit
	Op     uint64 // MsgCall: the operation invoked; MsgSend: the tag
	Badge  uint64 // the badge of the handle the sender invoked (or of the keeper or exception port)
	CallID uint64 // the id to answer with port_reply; 0 for one-way messages
	// Words are the caller's argument slots (MsgCall, MsgSend) or the
	// FaultWord* values (MsgFault, MsgPage, MsgExit). Buffer arguments
	// keep the caller's address, which means nothing to the receiver,
	// and their length.
	Words [MaxArgSlots]uint64
	// DataLen is the length of the bytes the message carries: the first
	// input buffer of a call, a send's data, a fault's thread state.
	DataLen uint64
	// ReplyCap is the capacity of the caller's output buffer, the most
	// reply data it accepts; 0 when the operation has none.
	ReplyCap uint64
	// NHandles handles arrived with the message, inserted into the
	// receiver's table: a call's handle arguments in order, a send's
	// handle, a fault's thread.
	NHandles uint64
	Handles  [MsgHandles]uint64 // their numbers in the receiver's table; NoHandle for one that did not arrive
}

// SpaceState is what space_get_state writes first; NMaps SpaceMapEntry
// records follow, then NHandles SpaceHandleEntry records, then NThreads
// SpaceThreadEntry records. Each handle they carry is a copy in the
// caller's table. Object fields number the objects within one record
// stream (from 1): entries with the same Object name the same object, so a
// reader can rebuild sharing (a region mapped twice, a thread its own
// table names).
type SpaceState struct {
	Size uint64 // bytes of the whole state, this record included
	// Quotas: pages, threads, handles, child spaces.
	Pages, Threads, Handles, Children uint64
	// ExceptionPort is a copy of the exception port handle (with its
	// badge), or NoHandle.
	ExceptionPort   uint64
	ExceptionObject uint64 // the exception port's object number in this stream
	Status          uint64 // SpaceRunning, SpaceExited or SpaceKilled
	NMaps           uint64 // SpaceMapEntry records that follow
	NHandles        uint64 // SpaceHandleEntry records that follow them
	NThreads        uint64 // SpaceThreadEntry records that follow those
	// Identity is the space's identity, as handle_identify reports it for
	// a handle to the space: unique for the monitor's life, never 0 or
	// reused, unlike the Object numbers, which hold for one stream.
	Identity uint64
}

// SpaceMapEntry is one mapping in a SpaceState.
type SpaceMapEntry struct {
	Addr, Size, Offset uint64 // the mapped range, and where it starts in the region
	Perm               uint64 // PermRead|PermWrite|PermExec as mapped now
	Limit              uint64 // the most space_protect may grant (the region handle's)
	Region             uint64 // a copy of a handle to the region, or NoHandle for memory the monitor mapped itself
	Object             uint64 // the region's object number in this stream
	Flags              uint64 // StateOwned when the region is charged to this space
}

// SpaceHandleEntry is one handle of the space's table in a SpaceState.
type SpaceHandleEntry struct {
	Number uint64 // its number in the space
	Handle uint64 // a copy in the caller's table, with the same rights and badge
	Type   uint64 // the object type it names
	Rights uint64 // its rights
	Badge  uint64 // its badge; 0 for none
	Object uint64 // its object's number in this stream
	// Node identifies this handle and Parent the handle it was derived
	// from (0: none, or one since closed with no ancestor left). They are
	// tags, not handles: unique for the monitor's life, never reused, and
	// granting nothing. Reading several spaces, a restorer finds which
	// handle of which space each one came from.
	Node, Parent uint64
	Flags        uint64 // StateOwned when the object (a region, port or port set) is charged to this space
}

// HandleIdentity is what handle_identify writes.
type HandleIdentity struct {
	Object uint64 // the object's identity: unique for the monitor's life, never 0 or reused
	Type   uint64 // the object type (NV_OBJ_*), as handle_info reports it
	Rights uint64 // the handle's rights
	Badge  uint64 // the handle's badge; 0 for none
	Flags  uint64 // IdentServed when the monitor's own code serves the object
}

// IdentServed marks, in a HandleIdentity, a port the monitor's own code
// serves (a files root, a console, a layer's stand-in): no space receives
// on it, so it is not saved with a subtree as a port of its own.
const IdentServed = 1 << 0

// StateOwned marks an object a space's state lists as charged to that
// space: created there, and gone when it ends.
const StateOwned = 1 << 0

// DirtyEver is region_dirty's flag to report every page written since the
// region was created (a first full save reads only those), and start the
// caller's record afresh.
const DirtyEver = 1 << 0

// InsertMove is space_insert_at's flag to move the caller's handle instead
// of copying it.
const InsertMove = 1 << 0

// SpaceThreadEntry is one thread of the space in a SpaceState.
type SpaceThreadEntry struct {
	Handle uint64 // a copy in the caller's table, with every right
	Object uint64 // the thread's object number in this stream
	Number uint64 // the thread's number in the space, as its faults name it (NV_FW_THREAD)
	// Identity is the thread's identity, as handle_identify reports it
	// for a handle to the thread: unique for the monitor's life, never 0
	// or reused.
	Identity uint64
}

// RegionState is what region_get_state writes; a keeper's supplied-page
// bitmap follows (one bit per page, in BitmapWords uint64 words).
type RegionState struct {
	Size        uint64 // the region's size in bytes
	Keeper      uint64 // a copy of the keeper port handle, or NoHandle
	KeeperBadge uint64 // the badge the keeper was set with
	BitmapWords uint64 // uint64 words of bitmap that follow; 0 without a keeper
}

// PortState is what port_get_state writes; NMsgs messages follow, each an
// Msg then Msg.DataLen bytes padded to a multiple of 8.
type PortState struct {
	Size  uint64 // bytes of the whole state, this record included
	NMsgs uint64 // messages that follow
}

// PortSetState is what port_set_get_state writes; NPorts handle numbers
// (uint64, copies in the caller's table) follow.
type PortSetState struct {
	Size   uint64 // bytes of the whole state, this record included
	NPorts uint64 // handle numbers that follow
}

// Stat describes a file, as files_stat and file_stat report it. Times are
// seconds and nanoseconds since the Unix epoch.
type Stat struct {
	Type      uint64 // FileType*
	Mode      uint64 // the permission bits (07777: rwx for owner, group, others; setuid, setgid, sticky)
	Size      uint64 // bytes; a link's is the length of its target text
	Nlink     uint64 // hard links to it
	UID, GID  uint64 // its owner on the host
	Inode     uint64 // its number on its device: with Device, it tells files apart
	Device    uint64 // the host device holding it
	Rdev      uint64 // for a device file, the device it stands for
	Blocks    uint64 // 512-byte blocks allocated to it
	BlockSize uint64 // the preferred size of an I/O on it
	AtimeSec  int64  // last access
	AtimeNsec uint64 // its nanoseconds
	MtimeSec  int64  // last change of contents
	MtimeNsec uint64 // its nanoseconds
	CtimeSec  int64  // last change of contents or metadata
	CtimeNsec uint64 // its nanoseconds
}

// DirEntry is one entry file_readdir reports. Its name follows it,
// NameLen bytes, then a NUL byte and zeros up to a multiple of 8, where
// the next entry starts.
type DirEntry struct {
	Inode   uint64 // as the directory holds it
	Type    uint32 // FileType*
	NameLen uint32 // bytes of the name, not counting its NUL byte
}
