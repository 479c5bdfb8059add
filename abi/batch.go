package abi

// MaxBatch is the most entries one call_batch performs.
const MaxBatch = 64

// BatchEntry is one operation of a call_batch: the caller fills Handle, Op,
// Args and From, and clears R0, R1, Error and Done; the monitor fills those
// as the entry completes.
type BatchEntry struct {
	Handle uint64 // the handle the operation is invoked on
	Op     uint64 // the operation (NV_OP_*)
	// Args are the operation's argument slots, as a direct call passes
	// them (a buffer is its guest address and length).
	Args [MaxArgSlots]uint64
	// From takes values from earlier entries: byte 0 stands for the
	// handle, byte 1+i for args[i]. A byte k of 1 to the entry's own index
	// replaces that value with the R0 of entry k-1 (so thread_create can
	// name the space space_create made); 0 keeps the value as written.
	// Byte 7 must be 0.
	From  uint64
	R0    uint64 // the entry's R0, once done
	R1    uint64 // the entry's R1, once done
	Error uint64 // the entry's error code (NV_E*) when it failed, else 0
	// Done is 1 once the entry completed; a batch issued again skips the
	// entries marked done, using the R0 they recorded.
	Done uint64
}

// BatchFromBits is how many bits of BatchEntry.From each value takes.
const BatchFromBits = 8

var batchOp = OpInfo{
	Name: "call_batch", Iface: IfaceHandle,

	Errors: []OpError{
		{ErrTooBig, "count exceeds NV_MAX_BATCH"},
		{ErrBadAddress, "the entries are not all in writable memory of the caller's space, or stopped being so during the batch (an entry unmapped them): the entries before are done"},
		{ErrInvalidArg, "invoked by monitor code, which has no guest memory to hold entries"},
	},
	Args: []Arg{
		{"entries", ArgValue, "the guest address of the first of count nv_batch_entry records, in memory the caller may read and write"},
		{"count", ArgValue, "how many entries, at most NV_MAX_BATCH"},
	},
	R0:  "how many entries are done: count when all completed, else the index of the entry that failed",
	Doc: "Performs a sequence of operations in one call, in order, each exactly as a direct call of it would be: the same checks, the same rights, and on a handle that names a port (a layer's stand-in) delivered to its server, so every layer sees every entry. An entry may take its handle or an argument from the R0 of an earlier one (nv_batch_entry.from). Each entry that completes gets its R0 and R1 and its done mark; the batch stops at the first entry that fails, whose error field says why, and returns how many are done. An entry fails as a direct call of it would, and with NV_EINVAL where it is not allowed in a batch: call_batch itself, a from byte naming no earlier entry, or byte 7 of from set. An entry that blocks (port_receive, port_call, futex_wait, clock_wait, a call a server holds) blocks the batch. A thread stopped during a batch (thread_stop, a layer saving it) stops between two entries, or in the one that blocks, as it would between or in direct calls; the call is re-issued when it resumes, and skips the entries marked done, so none is performed twice: to issue a batch again, clear its done marks. Needs no rights; the handle may be any handle of the caller's. The entries stay the caller's memory: another thread changing them meanwhile changes what the batch does, never what the monitor may do.",
}
