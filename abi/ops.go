package abi

import "fmt"

// Op is an operation number. Every operation is invoked on a handle; the
// handle's object (or the server of the port it names) performs it.
type Op uint32

// Operation numbers. 0 is reserved; new operations go just before OpCount;
// numbers are never reused. Ops holds each one's description.
const (
	OpNone                  Op = iota // reserved: never a valid operation
	OpHandleInfo                      // report the type and rights of a handle
	OpHandleClose                     // remove a handle from the caller's table
	OpConsoleWrite                    // write bytes to a console
	OpClockRead                       // read a clock
	OpThreadExit                      // end the calling thread with a status
	OpHandleDerive                    // copy a handle with fewer rights, recorded under it
	OpHandleRevoke                    // remove every handle derived from a handle
	OpSpaceCreate                     // create a child space
	OpSpaceMap                        // map a region into a space
	OpSpaceUnmap                      // unmap a range of a space
	OpSpaceProtect                    // change the permissions of a mapped range
	OpSpaceInsert                     // copy a handle into a space's table
	OpSpaceRemove                     // remove a handle from a space's table
	OpSpaceSetExceptionPort           // name the port a space's faults and exit go to
	OpSpaceStatus                     // report whether a space runs, and how it ended
	OpSpaceKill                       // end a space and every thread in it
	OpThreadCreate                    // create a stopped thread in a space
	OpThreadStart                     // start or resume a thread
	OpThreadStop                      // stop a thread, keeping its state
	OpThreadGetState                  // read a stopped thread's registers and FPU
	OpThreadSetState                  // replace a stopped thread's registers and FPU
	OpThreadStatus                    // report a thread's run state and exit status
	OpRegionCreate                    // create a memory region charged to a space
	OpRegionRead                      // copy bytes out of a region
	OpRegionWrite                     // copy bytes into a region
	OpRegionSize                      // report a region's size
	OpRegionSetKeeper                 // make a port the keeper of a region's absent pages
	OpRegionSupply                    // supply pages of a region (its keeper does)
	OpRegionDirty                     // report and clear the pages written since last asked
	OpPortCreate                      // create a port
	OpPortReceive                     // wait for a message on a port or port set
	OpPortReply                       // answer a call received on a port
	OpPortSend                        // send a one-way message
	OpPortCall                        // call a port's server and wait for the reply
	OpPortSetCreate                   // create a port set
	OpPortSetAdd                      // add a port to a port set
	OpFutexWait                       // sleep while a word of the space holds a value
	OpFutexWake                       // wake threads sleeping on a word of the space
	OpFilesOpen                       // open a file under a files root
	OpFilesList                       // list a directory under a files root
	OpFileRead                        // read bytes from an open file
	OpFileWrite                       // write bytes to an open file
	OpFileSize                        // report an open file's size
	OpSpaceGetState                   // read a space's quotas, mappings, handles and threads
	OpSpaceInsertAt                   // copy a handle into a space's table at a given number
	OpRegionGetState                  // read a region's size, keeper and supplied pages
	OpPortGetState                    // read the messages queued on a port
	OpRegionEvict                     // make supplied pages of a kept region absent again
	OpRegionAccessed                  // report and clear the pages touched since last asked
	OpPortSetGetState                 // read the ports of a port set
	OpFilesStat                       // describe a file under a files root
	OpFileStat                        // describe an open file or directory
	OpFilesUnlink                     // remove a name that is not a directory
	OpFilesMkdir                      // create a directory
	OpFilesRmdir                      // remove an empty directory
	OpFilesRename                     // rename an entry within a files root
	OpFilesSymlink                    // create a symbolic link
	OpFilesReadlink                   // read a symbolic link's target
	OpFilesChmod                      // change a file's permission bits
	OpFilesTruncate                   // set a file's size
	OpFilesUtimes                     // set a file's access and modification times
	OpFileReaddir                     // read the entries of an open directory
	OpConsoleRead                     // read bytes from an input console
	OpClockTimePage                   // get the read-only page a clock keeps its time record in
	OpServerGetState                  // read the state a port's server keeps for what it serves
	OpHandleIdentify                  // describe a handle: its object's identity, type, rights, badge
	OpClockWait                       // wait until a clock reaches a time, or the caller is woken
	OpSpaceRunning                    // count the threads of a space's subtree that are running
	OpFutexWaitClock                  // futex_wait until a time on a clock, waiting with clock_wait on it
	OpSpaceAbort                      // end a space and its subtree as killed, saying why
	OpCallBatch                       // perform a sequence of operations in one call
	OpCount                           // number of operations; not an operation
)

// ArgKind says how an argument travels and how the monitor checks it.
type ArgKind uint8

// Argument kinds.
const (
	// ArgValue is a plain 64-bit value, one slot.
	ArgValue ArgKind = iota + 1
	// ArgHandle is a handle number in the caller's table, one slot.
	ArgHandle
	// ArgIn is a guest buffer the operation reads: two slots, address then
	// length. When the operation is delivered to a port, the bytes travel
	// with the message.
	ArgIn
	// ArgOut is a guest buffer the operation fills: two slots, address then
	// capacity. R0 usually returns the length written.
	ArgOut
)

// Slots is how many of the six argument slots an argument of kind k uses.
func (k ArgKind) Slots() int {
	if k == ArgIn || k == ArgOut {
		return 2
	}
	return 1
}

// Arg describes one argument of an operation.
type Arg struct {
	Name string
	Kind ArgKind
	Doc  string
}

// OpInfo describes an operation: what it belongs to, what it needs and
// what it returns. The monitor decodes calls with it, the C header is
// generated from it, and layers use it to decode what they see.
type OpInfo struct {
	// Name is the operation's name in snake case, as in nv_<name>().
	Name string
	// Iface is the interface the operation belongs to.
	Iface Interface
	// Rights are the rights the handle must carry.
	Rights Rights
	// Args are the operation's arguments, in slot order.
	Args []Arg
	// R0 and R1 describe the results; empty when unused.
	R0, R1 string
	// NoReturn is set for operations that do not return on success.
	NoReturn bool
	// Transfer names the handle argument the operation passes on as a
	// capability (into a table, in a message), rather than acting on its
	// object: a layer forwarding the operation passes its stand-in on,
	// where it hands the object itself to every other operation.
	Transfer string
	// R0Handle is set for operations whose R0 is a handle they give the
	// caller (a new object, a copy, an opened file): a layer forwarding
	// them sees the handle come back, and may wrap it too.
	R0Handle bool
	// Errors are the errors the operation itself can return, beyond the
	// common ones of the checks every call passes (CommonErrors);
	// AllErrors joins the two.
	Errors []OpError
	// Doc says what the operation does.
	Doc string
}

// MaxArgSlots is the number of argument slots an operation may use.
const MaxArgSlots = 6

// Ops describes every operation, indexed by Op.
var Ops = [OpCount]OpInfo{
	OpHandleInfo: {
		Name: "handle_info", Iface: IfaceHandle,
		R0:  "the object type (NV_OBJ_*) the handle names",
		R1:  "the handle's rights (NV_R_* bits)",
		Doc: "Reports what a handle names and what it allows. Needs no rights.",
	},
	OpHandleClose: {
		Name: "handle_close", Iface: IfaceHandle,
		Doc: "Removes the handle from the caller's table. The object lives on while other handles name it. Needs no rights.",
	},
	OpConsoleWrite: {
		Name: "console_write", Iface: IfaceConsole, Rights: RightWrite,

		Errors: []OpError{{ErrIO, "the host could not write any of the bytes"}},
		Args:   []Arg{{"data", ArgIn, "the bytes to write"}},
		R0:     "the number of bytes written",
		Doc:    "Writes bytes to the console: the program's standard output.",
	},
	OpClockRead: {
		Name: "clock_read", Iface: IfaceClock, Rights: RightRead,

		Errors: []OpError{{ErrInvalidArg, "which names no clock"}},
		Args:   []Arg{{"which", ArgValue, "NV_CLOCK_MONOTONIC or NV_CLOCK_REALTIME"}},
		R0:     "the time in nanoseconds",
		Doc:    "Reads a clock. Monotonic time starts at an arbitrary point; realtime counts from the Unix epoch.",
	},
	OpThreadExit: {
		Name: "thread_exit", Iface: IfaceThread, Rights: RightControl,
		Args:     []Arg{{"status", ArgValue, "the exit status; the low 8 bits are the program's exit status"}},
		NoReturn: true,
		Doc:      "Ends the thread the handle names with a status. When the last thread of a space ends, the space ends with that status.",
	},
	OpHandleDerive: {
		Name: "handle_derive", Iface: IfaceHandle, Rights: RightDerive, R0Handle: true,

		Errors: []OpError{errTableFull, errCallerEnding, {ErrRights, "rights has a bit the handle lacks, or one beyond NV_R_ALL"}, {ErrInvalidArg, "the handle has a badge and badge names another"}, {ErrBadHandle, "the handle was revoked while the copy was made"}},
		Args: []Arg{
			{"rights", ArgValue, "the rights the copy keeps (a subset of the handle's)"},
			{"badge", ArgValue, "the copy's badge: 0 keeps the handle's; another value only where the handle has none"},
		},
		R0:  "the new handle's number",
		Doc: "Copies a handle into the caller's table with fewer rights and, optionally, a badge. The copy is recorded under the handle, so revoking the handle removes it.",
	},
	OpHandleRevoke: {
		Name: "handle_revoke", Iface: IfaceHandle,
		R0:  "the number of handles removed",
		Doc: "Removes every handle derived from this one (and from those, recursively), in every space. The handle itself stays. Needs no rights.",
	},
	OpSpaceCreate: {
		Name: "space_create", Iface: IfaceSpace, Rights: RightControl, R0Handle: true,

		Errors: []OpError{errTableFull, {ErrQuota, "a quota exceeds the creating space's, or the children quota of the space or an ancestor is reached (or the caller's handle table is full)"}, {ErrPeerGone, "the space, or the caller's, is ending"}, errHostMemory},
		Args: []Arg{
			{"pages", ArgValue, "the most pages of memory the child and its descendants may hold"},
			{"threads", ArgValue, "the most threads the child and its descendants may have at once (one space runs at most 64)"},
			{"handles", ArgValue, "the most handles the child's table may hold"},
			{"children", ArgValue, "the most spaces the child may have below it at once: its children, theirs, and so on"},
		},
		R0:  "a handle to the new space, with every right",
		Doc: "Creates an empty child space: no memory, no threads, no handles. A quota of 0 means the creating space's own; no quota may exceed it. The child's pages, threads and the spaces below it count against its ancestors' quotas too, so no descendant can hold more than any ancestor allows.",
	},
	OpSpaceMap: {
		Name: "space_map", Iface: IfaceSpace, Rights: RightMap,

		Errors: []OpError{{ErrBadHandle, "region names nothing (or is NV_NO_HANDLE)"}, {ErrWrongType, "region names no region"}, {ErrRights, "the region handle lacks map or a right perm asks for"}, {ErrInvalidArg, "perm has unknown bits, or the range is unaligned, outside the user range or outside the region"}, {ErrExists, "the range overlaps a mapping"}, errSpaceEnding, errHostMemory},
		Args: []Arg{
			{"region", ArgHandle, "the region to map; needs map, and read, write or exec as perm asks"},
			{"addr", ArgValue, "page-aligned address in the space"},
			{"offset", ArgValue, "page-aligned offset in the region"},
			{"size", ArgValue, "page-aligned length"},
			{"perm", ArgValue, "NV_PERM_* bits"},
		},
		Doc: "Maps part of a region into a space. Spaces that map the same region share its pages. With perm 0 the range is reserved but inaccessible (every touch is a not-present page fault) until space_protect grants access.",
	},
	OpSpaceUnmap: {
		Name: "space_unmap", Iface: IfaceSpace, Rights: RightMap,

		Errors: []OpError{{ErrInvalidArg, "the range is unaligned or outside the user range"}, {ErrNotFound, "nothing is mapped in the range"}, errSpaceEnding, errHostMemory},
		Args:   []Arg{{"addr", ArgValue, "page-aligned address"}, {"size", ArgValue, "page-aligned length"}},
		Doc:    "Unmaps a range of a space: whatever is mapped in it goes, and a mapping that crosses either end of the range is split there, its other part staying mapped at the same region offsets (NV_ENOTFOUND when nothing is mapped in the range). Other threads of the space may run meanwhile: when the call returns, none of them can touch the range any more without a page fault.",
	},
	OpSpaceProtect: {
		Name: "space_protect", Iface: IfaceSpace, Rights: RightMap,

		Errors: []OpError{{ErrInvalidArg, "perm has unknown bits, or the range is unaligned or outside the user range"}, {ErrBadAddress, "a page of the range is not mapped"}, {ErrRights, "perm exceeds what a mapping's region handle allowed"}, errSpaceEnding, errHostMemory},
		Args:   []Arg{{"addr", ArgValue, "page-aligned address"}, {"size", ArgValue, "page-aligned length"}, {"perm", ArgValue, "NV_PERM_* bits, within what the mapping's region handle allowed"}},
		Doc:    "Changes the permissions of a mapped range; every page of it must be mapped (NV_EFAULT otherwise). A mapping that crosses either end of the range is split there, its other part keeping its permissions. perm 0 makes the range inaccessible (every touch is a not-present page fault) while the memory keeps its contents, which a later space_protect makes accessible again. Other threads of the space may run meanwhile: when the call returns, none of them can touch the range with the old permissions any more.",
	},
	OpSpaceInsert: {
		Name: "space_insert", Iface: IfaceSpace, Rights: RightControl,

		Errors:   []OpError{{ErrBadHandle, "the handle argument names nothing in the caller's table (or was revoked meanwhile)"}, {ErrRights, "the handle argument lacks grant"}, {ErrQuota, "the space's handle table is full"}, errSpaceEnding},
		Transfer: "handle",
		Args:     []Arg{{"handle", ArgHandle, "the caller's handle to copy; needs grant"}, {"rights", ArgValue, "the rights the copy keeps"}},
		R0:       "the copy's number in the space's table",
		Doc:      "Copies one of the caller's handles into a space's table, with the given subset of its rights. The copy is derived from the caller's handle, so revoking that handle takes it back.",
	},
	OpSpaceRemove: {
		Name: "space_remove", Iface: IfaceSpace, Rights: RightControl,

		Errors: []OpError{{ErrBadHandle, "number names nothing in the space's table"}},
		Args:   []Arg{{"number", ArgValue, "a handle number in the space's table"}},
		Doc:    "Removes a handle from a space's table.",
	},
	OpSpaceSetExceptionPort: {
		Name: "space_set_exception_port", Iface: IfaceSpace, Rights: RightControl,

		Errors: []OpError{{ErrBadHandle, "port names nothing in the caller's table"}, {ErrWrongType, "port names no port"}, {ErrRights, "the port handle lacks call"}, {ErrInvalidArg, "the port is served by monitor code that receives no faults"}},
		Args:   []Arg{{"port", ArgHandle, "the port (needs call), or NV_NO_HANDLE for none"}},
		Doc:    "Names the port that receives the space's thread faults, its page requests for regions with no keeper, and the notice of its end, as nv_msg records. A space with no exception port dies at its first fault.",
	},
	OpSpaceStatus: {
		Name: "space_status", Iface: IfaceSpace, Rights: RightRead,
		R0:  "NV_SPACE_RUNNING, NV_SPACE_EXITED or NV_SPACE_KILLED",
		R1:  "the exit status, once ended",
		Doc: "Reports whether a space is running and how it ended.",
	},
	OpSpaceKill: {
		Name: "space_kill", Iface: IfaceSpace, Rights: RightControl,
		Args: []Arg{{"status", ArgValue, "the status the space ends with"}},
		Doc:  "Ends a space and every thread in it, and its child spaces with it, and returns once all of them have ended: what they held is given back, so their places in the children quota and their pages in the memory quota of every ancestor are free again when it returns. A program killing its own space is exiting: the space ends as exited with the status. A caller inside the space killed (below it) does not wait: it is ending too; nor does monitor code killing through a host Caller of its own, which may run on a thread it kills (it waits on the space's Done).",
	},
	OpSpaceAbort: {
		Name: "space_abort", Iface: IfaceSpace, Rights: RightControl,

		Args: []Arg{{"reason", ArgIn, "why the space ends, as text: its first NV_MAX_REASON bytes are kept, invalid UTF-8 replaced; empty for none given"}},
		Doc:  "Ends a space and every thread in it, and its child spaces with it, as killed (space_status reports NV_SPACE_KILLED with status 137, as for a kill by the monitor), and records the reason as the space's, where whoever waits on the space (a parent's exception port, the monitor's log, the command that ran the program) reads why it ended. It is how a layer that fails ends the subtree below it and says so. A space that has ended already keeps how it ended. A caller in another space waits until the space is gone, as with space_kill; a caller inside the space (or below it) does not wait: it is ending too; nor does monitor code through a host Caller of its own, which may run on a thread it ends.",
	},
	OpThreadCreate: {
		Name: "thread_create", Iface: IfaceSpace, Rights: RightControl, R0Handle: true,

		Errors: []OpError{errTableFull, {ErrQuota, "the threads quota of the space or an ancestor is reached, or the space runs 64 threads (or the caller's handle table is full)"}, {ErrInvalidArg, "entry or stack is not canonical, or the space is a host space"}, errSpaceEnding},
		Args:   []Arg{{"entry", ArgValue, "the address the thread starts at"}, {"stack", ArgValue, "its initial stack pointer"}, {"arg", ArgValue, "its initial rdi"}},
		R0:     "a handle to the new thread, with every right",
		R1:     "the thread's number in its space, as its faults name it (NV_FW_THREAD)",
		Doc:    "Creates a thread in a space, stopped; thread_start runs it. Every other register starts at zero. A non-canonical entry or stack is refused (NV_EINVAL).",
	},
	OpThreadStart: {
		Name: "thread_start", Iface: IfaceThread, Rights: RightControl,

		Errors: []OpError{{ErrBusy, "the thread has ended or is ending, or is stopped at a fault its handler has yet to answer"}, {ErrPeerGone, "its space is ending (a thread never started)"}},
		Doc:    "Starts a new thread or resumes a stopped one.",
	},
	OpThreadStop: {
		Name: "thread_stop", Iface: IfaceThread, Rights: RightControl,

		Errors: []OpError{{ErrBusy, "the caller was told to end while it waited for the thread to stop"}},
		Doc:    "Stops a thread and returns when it has stopped. A thread blocked in an operation (port_call, port_receive, futex_wait) stops with its registers set to issue that operation again when resumed.",
	},
	OpThreadGetState: {
		Name: "thread_get_state", Iface: IfaceThread, Rights: RightRead | RightControl,

		Errors: []OpError{{ErrBusy, "the thread is the caller, or is running (stop it first)"}, {ErrTooBig, "the buffer is smaller than an nv_thread_state"}, {ErrIO, "the backend could not read the state"}},
		Args:   []Arg{{"state", ArgOut, "an nv_thread_state record"}},
		R0:     "the size of the record",
		Doc:    "Reads a stopped thread's whole CPU state.",
	},
	OpThreadSetState: {
		Name: "thread_set_state", Iface: IfaceThread, Rights: RightControl,

		Errors: []OpError{{ErrBusy, "the thread is the caller, or is running (stop it first)"}, {ErrInvalidArg, "the buffer is not an nv_thread_state, or holds a non-canonical address"}, {ErrIO, "the backend could not write the state"}},
		Args:   []Arg{{"state", ArgIn, "an nv_thread_state record"}},
		Doc:    "Replaces a stopped (or not yet started) thread's whole CPU state. Flags a program may not set are forced to their usual values; a non-canonical rip, rsp, fs_base or gs_base is refused (NV_EINVAL).",
	},
	OpThreadStatus: {
		Name: "thread_status", Iface: IfaceThread, Rights: RightRead,
		R0:  "NV_THREAD_NEW, NV_THREAD_RUNNING, NV_THREAD_STOPPED or NV_THREAD_EXITED",
		R1:  "the exit status, once exited; while running, the operation (NV_OP_*) it is blocked in, or 0 when it is not blocked",
		Doc: "Reports a thread's run state. A running thread blocked in an operation (port_receive, port_call, futex_wait, space_kill, ...) reports that operation in R1 from the moment it waits: a thread reported blocked in port_receive is among the port's waiting receivers, so another thread can wait for that state instead of for a time.",
	},
	OpRegionCreate: {
		Name: "region_create", Iface: IfaceSpace, Rights: RightControl, R0Handle: true,

		Errors: []OpError{errTableFull, {ErrInvalidArg, "size is 0, not whole pages, or beyond NV_USER_TOP"}, {ErrQuota, "the memory quota of the space or an ancestor would be exceeded (or the caller's handle table is full)"}, errSpaceEnding, errHostMemory},
		Args:   []Arg{{"size", ArgValue, "page-aligned size in bytes"}},
		R0:     "a handle to the new region, with every right",
		Doc:    "Creates a zero-filled region charged to the space's page quota (and its ancestors').",
	},
	OpRegionRead: {
		Name: "region_read", Iface: IfaceRegion, Rights: RightRead,

		Errors: []OpError{{ErrInvalidArg, "offset is beyond the region"}, errRegionGone},
		Args:   []Arg{{"offset", ArgValue, "where in the region to start"}, {"buf", ArgOut, "where to copy to"}},
		R0:     "the number of bytes copied",
		Doc:    "Copies bytes out of a region. Absent pages of a kept region read as zero.",
	},
	OpRegionWrite: {
		Name: "region_write", Iface: IfaceRegion, Rights: RightWrite,

		Errors: []OpError{{ErrInvalidArg, "offset is beyond the region"}, errRegionGone},
		Args:   []Arg{{"offset", ArgValue, "where in the region to start"}, {"data", ArgIn, "the bytes to copy"}},
		R0:     "the number of bytes copied",
		Doc:    "Copies bytes into a region.",
	},
	OpRegionSize: {
		Name: "region_size", Iface: IfaceRegion,
		R0:  "the size in bytes",
		Doc: "Reports a region's size. Needs no rights.",
	},
	OpRegionSetKeeper: {
		Name: "region_set_keeper", Iface: IfaceRegion, Rights: RightControl,

		Errors: []OpError{{ErrBadHandle, "port names nothing (or is NV_NO_HANDLE)"}, {ErrWrongType, "port names no port"}, {ErrRights, "the port handle lacks call"}, {ErrInvalidArg, "the port is served by monitor code, which receives no page requests"}, {ErrBusy, "the region has a keeper already"}},
		Args:   []Arg{{"port", ArgHandle, "the keeper's port (needs call); its badge tells the keeper which region asks"}},
		Doc:    "Makes a port the keeper of a region that is mapped nowhere yet: every page becomes absent, and a thread touching an absent page stops while the keeper receives an NV_MSG_PAGE request, supplies the page and replies.",
	},
	OpRegionSupply: {
		Name: "region_supply", Iface: IfaceRegion, Rights: RightWrite,

		Errors: []OpError{{ErrInvalidArg, "the range is unaligned or outside the region"}, errRegionGone},
		Args:   []Arg{{"offset", ArgValue, "page-aligned offset"}, {"data", ArgIn, "whole pages of contents; empty to supply one zero page"}},
		Doc:    "Fills pages of a region and makes them present in every space that maps it.",
	},
	OpRegionDirty: {
		Name: "region_dirty", Iface: IfaceRegion, Rights: RightRead,

		Errors: []OpError{{ErrTooBig, "the bitmap has less than one bit per page"}, {ErrInvalidArg, "flags has unknown bits"}, {ErrBusy, "a thread other than the caller runs in a space that maps the region: stop it first"}, {ErrQuota, "too many other spaces keep records of the region"}, errRegionGone},
		Args:   []Arg{{"bitmap", ArgOut, "one bit per page, page 0 in bit 0 of byte 0"}, {"flags", ArgValue, "NV_DIRTY_EVER: report every page written since the region was created, whatever was asked before"}},
		R0:     "the number of dirty pages",
		Doc:    "Reports the pages written since the calling space last asked (at its first ask, or with NV_DIRTY_EVER: since the region was created, so the pages not reported are still zero), and clears that space's record. Each space keeps its own record, so two readers (a checkpointer and the program's own dirty tracking) never take pages from each other. Every thread of the spaces mapping the region, but the caller, must be stopped (NV_EBUSY otherwise): a running thread's cached translations could hide its next write. At most 16 spaces keep records of one region (NV_EQUOTA).",
	},
	OpPortCreate: {
		Name: "port_create", Iface: IfaceSpace, Rights: RightControl, R0Handle: true,

		Errors: []OpError{errTableFull, {ErrQuota, "the space owns as many ports and port sets as its handle quota, or the caller's handle table is full"}, errSpaceEnding},
		R0:     "a handle to the new port, with every right",
		Doc:    "Creates a port whose server is whoever holds it with receive. The port lives until the space it was created in ends, and counts against that space's handle quota as long: a space owns at most as many ports and port sets as it may hold handles (NV_EQUOTA beyond).",
	},
	OpPortReceive: {
		Name: "port_receive", Iface: IfacePort, Rights: RightReceive,

		Errors: []OpError{{ErrTooBig, "msg is smaller than an nv_msg"}, {ErrPeerGone, "the port or port set was closed: its owner ended"}},
		Args:   []Arg{{"msg", ArgOut, "an nv_msg record to fill"}, {"data", ArgOut, "where the message's bytes go (truncated to fit; nv_msg.data_len says how many there were)"}},
		R0:     "the number of bytes copied into data",
		Doc:    "Waits for a message on a port or port set. Handles the message carries are inserted into the caller's table; their numbers are in nv_msg.handles.",
	},
	OpPortReply: {
		Name: "port_reply", Iface: IfacePort, Rights: RightReceive, Transfer: "handle",

		Errors: []OpError{{ErrBadHandle, "the handle argument names nothing in the caller's table, or the handle was revoked before it could travel"}, {ErrRights, "the handle argument lacks grant"}, {ErrNotFound, "no call with this id waits for a reply from this port"}},
		Args: []Arg{
			{"call_id", ArgValue, "nv_msg.call_id of the call being answered"},
			{"r0", ArgValue, "R0 for the caller: a value, or a negated error code"},
			{"r1", ArgValue, "R1 for the caller"},
			{"data", ArgIn, "bytes for the caller's output buffer, if its operation has one"},
			{"handle", ArgHandle, "a handle to give the caller (needs grant), or NV_NO_HANDLE; the caller's R0 is then its number there"},
		},
		Doc: "Answers a call received on this port (or on a port set holding it): the caller's operation returns r0 and r1. A handle given travels as a copy derived from the replier's, which the replier may close at once. A call stays answerable until answered, even once its caller has ended (the reply is then dropped); a call_id not received here, or already answered, gets NV_ENOTFOUND.",
	},
	OpPortSend: {
		Name: "port_send", Iface: IfacePort, Rights: RightCall, Transfer: "handle",
		Errors: []OpError{
			{ErrBadHandle, "the handle argument names nothing in the caller's table, or was revoked before it could travel"},
			{ErrRights, "the handle argument lacks grant"},
			{ErrQuota, "the data would exceed the memory quota of the sending space or an ancestor"},
			{ErrWouldBlock, "the sending space has as many messages, or bytes, queued as it may"},
			{ErrPeerGone, "the port was closed: its owner ended"},
		},
		Args: []Arg{{"tag", ArgValue, "a value for the receiver"}, {"data", ArgIn, "bytes for the receiver"}, {"handle", ArgHandle, "a handle to pass (needs grant), or NV_NO_HANDLE"}},
		Doc:  "Sends a one-way message; returns once it is queued. The handle travels as a copy derived from the sender's: the sender may close its own at once, and a revoke of it or of any handle it came from reaches the copy on the way (it then arrives as NV_NO_HANDLE). A space may have 1024 messages, and 16 MiB of their bytes, queued and not yet received; past that port_send fails with NV_EWOULDBLOCK until receivers catch up. The bytes count against the memory quota of the sending space and of its ancestors until the message is received or dropped (NV_EQUOTA beyond it), so a tree of spaces cannot make the monitor hold more than its quota allows.",
	},
	OpPortCall: {
		Name: "port_call", Iface: IfacePort, Rights: RightCall,
		Errors: []OpError{
			{ErrQuota, "the data would exceed the memory quota of the calling space or an ancestor"},
			{ErrPeerGone, "the port was closed, or its owner ended before a reply"},
		},
		Args: []Arg{{"tag", ArgValue, "a value for the server"}, {"data", ArgIn, "bytes for the server"}, {"reply", ArgOut, "where the server's reply bytes go"}},
		R0:   "the server's r0",
		R1:   "the server's r1",
		Doc:  "Calls a port's server and waits for its reply. Until a server receives it, the call's data counts against the memory quota of the calling space and of its ancestors (NV_EQUOTA beyond it), as port_send's does.",
	},
	OpPortSetCreate: {
		Name: "port_set_create", Iface: IfaceSpace, Rights: RightControl, R0Handle: true,

		Errors: []OpError{errTableFull, {ErrQuota, "the space owns as many ports and port sets as its handle quota, or the caller's handle table is full"}, errSpaceEnding},
		R0:     "a handle to the new port set",
		Doc:    "Creates a port set: a server waits on it to receive from any of its ports. It counts against the space's handle quota as a port does (see port_create).",
	},
	OpPortSetAdd: {
		Name: "port_set_add", Iface: IfacePortSet, Rights: RightReceive,

		Errors: []OpError{{ErrBadHandle, "port names nothing (or is NV_NO_HANDLE)"}, {ErrWrongType, "the handle names no port set, or port names no port a guest serves"}, {ErrRights, "the handle or port lacks receive"}, {ErrBusy, "the port belongs to a set already"}, {ErrPeerGone, "the port or the set was closed"}},
		Args:   []Arg{{"port", ArgHandle, "the port to add (needs receive)"}},
		Doc:    "Adds a port to a port set. A port belongs to at most one set; nv_msg.badge tells the receiver which port a message came through.",
	},
	OpFutexWait: {
		Name: "futex_wait", Iface: IfaceSpace, Rights: RightRead,

		Errors: []OpError{{ErrInvalidArg, "addr is not 4-byte aligned"}, {ErrBadAddress, "the word is not mapped readable"}, {ErrWouldBlock, "the word does not hold expected"}, {ErrTimeout, "timeout_ns ran out"}},
		Args:   []Arg{{"addr", ArgValue, "4-byte aligned address of a 32-bit word"}, {"expected", ArgValue, "the value to sleep on"}, {"timeout_ns", ArgValue, "how long to sleep at most; 0 for no limit"}},
		Doc:    "Sleeps while the word at addr holds expected: returns NV_EWOULDBLOCK at once if it does not, NV_ETIMEOUT when the time runs out.",
	},
	OpFutexWake: {
		Name: "futex_wake", Iface: IfaceSpace, Rights: RightRead,
		Args: []Arg{{"addr", ArgValue, "the address threads sleep on"}, {"count", ArgValue, "how many to wake at most"}},
		R0:   "the number woken",
		Doc:  "Wakes threads sleeping in futex_wait on a word of the space.",
	},
	OpFilesOpen: {
		Name: "files_open", Iface: IfaceFiles, Rights: RightRead, R0Handle: true,

		Errors: append([]OpError{filesTableFull, {ErrInvalidArg, "flags is an impossible combination, or the path is malformed"}, {ErrDenied, "writing needs write on the root, and a root the user allowed writes to; or the path leads out of the root"}}, filesHost...),
		Args:   []Arg{{"path", ArgIn, "a relative path under the root, '/'-separated"}, {"flags", ArgValue, "NV_OPEN_* bits"}},
		R0:     "a handle to the open file",
		Doc:    "Opens a file under a files root. Paths cannot leave the root. Writing needs write on the root handle.",
	},
	OpFilesList: {
		Name: "files_list", Iface: IfaceFiles, Rights: RightRead,

		Errors: append([]OpError{{ErrInvalidArg, "the path is malformed"}}, filesHost...),
		Args:   []Arg{{"path", ArgIn, "a directory under the root; empty for the root"}, {"buf", ArgOut, "receives the names, each ending in a NUL byte; directories end in '/'"}},
		R0:     "the number of bytes the full list needs (more than the buffer means it was cut)",
		Doc:    "Lists a directory under a files root, sorted by name.",
	},
	OpFileRead: {
		Name: "file_read", Iface: IfaceFile, Rights: RightRead,

		Errors: append([]OpError{{ErrInvalidArg, "offset is beyond what a file can hold"}}, filesHost...),
		Args:   []Arg{{"offset", ArgValue, "where to start"}, {"buf", ArgOut, "where to copy to"}},
		R0:     "the number of bytes read; 0 at the end",
		Doc:    "Reads bytes from an open file.",
	},
	OpFileWrite: {
		Name: "file_write", Iface: IfaceFile, Rights: RightWrite,

		Errors: append([]OpError{{ErrRights, "the file was not opened for writing"}, {ErrInvalidArg, "offset plus the length is beyond what a file can hold"}}, filesHost...),
		Args:   []Arg{{"offset", ArgValue, "where to start"}, {"data", ArgIn, "the bytes to write"}},
		R0:     "the number of bytes written",
		Doc:    "Writes bytes to an open file.",
	},
	OpFileSize: {
		Name: "file_size", Iface: IfaceFile, Rights: RightRead,

		Errors: filesHost,
		R0:     "the size in bytes",
		Doc:    "Reports an open file's size.",
	},
	OpConsoleRead: {
		Name: "console_read", Iface: IfaceConsole, Rights: RightRead,

		Errors: []OpError{{ErrWouldBlock, "no guest thread made the call (monitor code cannot wait for input)"}, {ErrIO, "the host could not read its input"}},
		Args:   []Arg{{"buf", ArgOut, "where the bytes go"}},
		R0:     "the number of bytes read: what was available, at most the buffer's capacity; 0 at the end of input (and for a buffer of length 0)",
		Doc:    "Reads from an input console: the program's standard input. Waits until some input is available or the input ends. A thread stopped while it waits re-issues the call when resumed, and no input is lost; a thread killed while it waits ends.",
	},
	OpClockTimePage: {
		Name: "clock_time_page", Iface: IfaceClock, Rights: RightRead, R0Handle: true,
		Errors: []OpError{errTableFull, errHostMemory},
		R0:     "a handle to a one-page region (read, map) holding an nv_time_page record",
		Doc:    "Gives the caller the page a clock keeps its time in, so that a program can read the time with no call (as a vDSO does): map the region read-only and extrapolate the nv_time_page record with rdtsc, retrying while its seq is odd or changed, and calling clock_read instead when flags lacks NV_TIME_TSC or the counter has moved more than max_delta ticks past tsc_base. The clock keeps the record current for as long as it serves clock_read. A clock that cannot offer one fails with NV_EINVALOP; a layer standing in for a clock supplies a page of its own, or refuses.",
	},
	OpServerGetState: {
		Name: "server_get_state", Iface: IfacePort, Rights: RightCall,
		Errors: []OpError{{ErrTooBig, "the buffer is smaller than the record (R1 says what it needs)"}, {ErrBusy, "the server is half way through a change of its own (a personality ending a process): ask again"}, {ErrIO, "the server could not make its record"}},
		Args:   []Arg{{"buf", ArgOut, "receives the server's record: a name, NUL-terminated, then bytes in a format of that server's"}},
		R0:     "the bytes written; with NV_ETOOBIG, R1 is the size needed",
		R1:     "the size needed, when the buffer was too small",
		Doc:    "Reads the state a port's server keeps about the spaces it serves (a system-call personality's descriptors, signal state and process tree), so that a checkpoint taken above the server carries it and a restore can rebuild the server. It is answered by the server (no kernel port has one): a server that keeps no such state answers NV_EINVALOP. Ask it while every thread the server serves is stopped, so the record and the threads agree. It needs only call: a space's exception port, as space_get_state copies it, carries that, and the server answers whom it will by the handle's badge.",
	},
	OpHandleIdentify: {
		Name: "handle_identify", Iface: IfaceHandle,
		Errors: []OpError{{ErrTooBig, "the buffer is smaller than the record (R1 says what it needs)"}},
		Args:   []Arg{{"buf", ArgOut, "receives an nv_handle_identity record"}},
		R0:     "the bytes written; with NV_ETOOBIG, R1 is the size needed",
		R1:     "the size needed, when the buffer was too small",
		Doc:    "Describes a handle as an nv_handle_identity record: the identity of the object it names (unique for the monitor's life and never reused, so two handles name one object exactly when their identities are equal, whichever spaces they came from); a layer's stand-in reports the identity of the object it stands for, as handle_info reports its type, so a program compares its handles under a layer as it would without one, the object type and rights handle_info reports, the handle's badge, and NV_IDENT_SERVED when the object is a port the monitor's own code serves (a files root, a console, a layer's stand-in) rather than one a space receives on. A layer that saves or compares objects needs nothing more than its handles. Needs no rights.",
	},
}

// The operations with which a layer owns time for its subtree: the timed
// wait every wait below a clock goes through, and the count that tells it
// when every thread below it waits.
var clockWaitOps = map[Op]OpInfo{
	OpClockWait: {
		Name: "clock_wait", Iface: IfaceClock, Rights: RightRead,
		Errors: []OpError{{ErrInvalidArg, "which names no clock"}},
		Args:   []Arg{{"which", ArgValue, "NV_CLOCK_MONOTONIC or NV_CLOCK_REALTIME"}, {"deadline_ns", ArgValue, "the time to wait for on that clock, in its nanoseconds; 0 for no time (wait until woken)"}},
		R0:     "the clock's time when the wait ended",
		Doc:    "Waits until the clock reads at least deadline_ns, or until the caller is woken for another reason (a personality's thread by whoever changes what it waits for): the caller compares R0 with its deadline and waits again when it is early. Every timed wait below a clock can be expressed with it, so a layer standing in for the clock owns time for its subtree (services/timewarp). A thread stopped while it waits re-issues the call when resumed.",
	},
	OpSpaceRunning: {
		Name: "space_running", Iface: IfaceSpace, Rights: RightRead,
		R0:  "the number of threads of the space and of every space below it that do not wait: running guest code (or a server's work on a fault of theirs served inline), stopped (by thread_stop, or in a fault whose handler has not answered: someone may resume them), held in a call by a server that will let them go (a checkpoint holding a writer until it stops it for a save), or created and not yet started",
		R1:  "the number of those threads that wait: asleep in an operation, not woken since they last looked at what they wait for",
		Doc: "Counts the threads of a space's subtree that wait and those that do not, so that a layer can tell when every thread below it waits (R0 is 0 and R1 is not: a virtual clock then jumps to the earliest deadline, or, with no deadline, the program is deadlocked). A subtree with no thread at all (being loaded, or ended) has both 0: nothing waits. A thread woken since it last looked at what it waits for (a futex_wake, a message, a reply) does not wait: it is about to run.",
	},
	OpFutexWaitClock: {
		Name: "futex_wait_clock", Iface: IfaceSpace, Rights: RightRead,
		Errors: []OpError{
			{ErrInvalidArg, "addr is not 4-byte aligned, or expected is beyond 32 bits; or the clock's clock_wait refused which"},
			{ErrBadAddress, "the word is not mapped readable"},
			{ErrWouldBlock, "the word does not hold expected"},
			{ErrTimeout, "the clock reached deadline_ns"},
			{ErrBadHandle, "clock names nothing (or is NV_NO_HANDLE)"},
			{ErrWrongType, "clock names no port (a clock is a port its server serves)"},
			{ErrRights, "the clock handle lacks read"},
			{ErrInvalidOp, "the clock's server performs no clock_wait"},
		},
		Args: []Arg{
			{"addr", ArgValue, "4-byte aligned address of a 32-bit word"},
			{"expected", ArgValue, "the value to sleep on"},
			{"clock", ArgHandle, "the clock the deadline is on (needs read)"},
			{"which", ArgValue, "NV_CLOCK_MONOTONIC or NV_CLOCK_REALTIME"},
			{"deadline_ns", ArgValue, "the time on that clock to sleep until at most, in its nanoseconds; 0 for no limit"},
		},
		Doc: "futex_wait with its time limit on a clock: the caller becomes a waiter on the word, the word is checked (NV_EWOULDBLOCK at once if it does not hold expected), then the caller waits with clock_wait on the clock, as itself, until the clock reaches deadline_ns (NV_ETIMEOUT) or a futex_wake of the word wakes it (0). So a layer standing in for the clock (services/timewarp) sees the wait and owns its time, as it owns every other timed wait below it; futex_wait's timeout_ns runs on the host's time. A wake ends the clock_wait of a server that holds the caller as a thread (the monitor's clock, a Go layer's) at once, and withdraws a call a guest server has yet to answer. Errors of the clock's clock_wait are the call's. A thread stopped while it waits re-issues the call when resumed; the deadline is absolute, so it waits no longer for having been stopped.",
	},
}

// The state operations: with them a parent holding a space with control
// can read everything its child is, and rebuild it elsewhere with ordinary
// operations (space_create, region_create, region_write, space_map,
// thread_create, thread_set_state, space_insert_at, port_send). Handles a
// record mentions arrive as copies in the caller's table, derived from the
// originals.
var stateOps = map[Op]OpInfo{
	OpSpaceGetState: {
		Name: "space_get_state", Iface: IfaceSpace, Rights: RightRead | RightControl,

		Errors: []OpError{errStateTooBig, errStateCopies, {ErrPeerGone, "the caller's space is ending"}},
		Args:   []Arg{{"buf", ArgOut, "receives an nv_space_state record, then its nv_space_map, nv_space_handle and nv_space_thread entries"}},
		R0:     "the bytes written; with NV_ETOOBIG, R1 is the size needed",
		R1:     "the size needed, when the buffer was too small",
		Doc:    "Reads a space's whole state: quotas, exception port, every mapping (with a copy of a handle to its region), every handle of its table (number, a copy with the same rights and badge, and its place in the derivation tree), every thread (a copy of a handle to it). Stop the space's threads first for a consistent picture. Copies go into the caller's table; a buffer too small gets nothing and no copies.",
	},
	OpSpaceInsertAt: {
		Name: "space_insert_at", Iface: IfaceSpace, Rights: RightControl,

		Errors:   []OpError{{ErrInvalidArg, "flags has unknown bits, or number is NV_NO_HANDLE"}, {ErrBadHandle, "the handle argument names nothing in the caller's table (or was revoked meanwhile)"}, {ErrRights, "the handle argument lacks grant"}, {ErrExists, "number is taken"}, {ErrQuota, "the space's handle table is full"}, errSpaceEnding},
		Transfer: "handle",
		Args:     []Arg{{"handle", ArgHandle, "the caller's handle to copy; needs grant"}, {"rights", ArgValue, "the rights the copy keeps"}, {"number", ArgValue, "the number it gets in the space's table"}, {"flags", ArgValue, "NV_INSERT_MOVE: move the caller's handle there instead of copying it"}},
		R0:       "the number",
		Doc:      "Copies a handle into a space's table at a given number, as space_insert does at the lowest free one: how a rebuilt space gets the numbers its program knows. NV_EEXISTS when the number is taken. With NV_INSERT_MOVE the caller's handle itself moves, with the handles derived from it still under it: a restorer derives a tree of handles in its own table and moves each into place, and revoke then reaches the same handles as before the save.",
	},
	OpRegionGetState: {
		Name: "region_get_state", Iface: IfaceRegion, Rights: RightRead,

		Errors: []OpError{errStateTooBig, errStateCopies, {ErrPeerGone, "the caller's space is ending"}},
		Args:   []Arg{{"buf", ArgOut, "receives an nv_region_state record, then the supplied-page bitmap (one bit per page) when the region has a keeper"}},
		R0:     "the bytes written; with NV_ETOOBIG, R1 is the size needed",
		R1:     "the size needed, when the buffer was too small",
		Doc:    "Reads a region's size, its keeper (a copy of the keeper port handle, into the caller's table, with the call, grant, derive and read rights of the handle it was set through: a keeper set with read answers region_read on its port with the pages it keeps, as services/pager does) and which pages were supplied. Its contents are read with region_read.",
	},
	OpPortGetState: {
		Name: "port_get_state", Iface: IfacePort, Rights: RightReceive | RightControl,

		Errors: []OpError{{ErrWrongType, "the handle names a port set"}, errStateTooBig, errStateCopies, {ErrPeerGone, "the caller's space is ending"}},
		Args:   []Arg{{"buf", ArgOut, "receives an nv_port_state record, then for each queued message its nv_msg and its bytes, padded to 8"}},
		R0:     "the bytes written; with NV_ETOOBIG, R1 is the size needed",
		R1:     "the size needed, when the buffer was too small",
		Doc:    "Reads the one-way messages queued on a port (calls are never queued while their callers are stopped: a stopped caller takes its call back and re-issues it when resumed). Handles the messages carry arrive as copies in the caller's table.",
	},
}

// OpRegionEvict's description: what a pager needs besides keeping.
var evictOp = OpInfo{
	Name: "region_evict", Iface: IfaceRegion, Rights: RightControl,

	Errors: []OpError{{ErrInvalidArg, "the range is empty, unaligned or outside the region, or the region has no keeper"}, {ErrTooBig, "data is shorter than size (and not empty)"}, errRegionGone},
	Args:   []Arg{{"offset", ArgValue, "page-aligned offset"}, {"size", ArgValue, "page-aligned length"}, {"data", ArgOut, "receives the pages' contents (size bytes) before their memory is released; length 0 to discard them"}},
	Doc:    "Makes pages of a region with a keeper absent again, in every space that maps it, and releases their memory: the next touch sends the keeper a page request, as at first, and until then region_read reads zeros there. Threads running in those spaces leave guest code for a moment to drop their cached translations. The contents go to data first, with no thread able to write them in between, so a pager saves exactly what it evicts. A data buffer shorter than size gets NV_ETOOBIG, and nothing is evicted.",
}

// OpRegionAccessed's description: the reference bits a keeper's
// replacement policy (clock, LRU approximations) needs.
var accessedOp = OpInfo{
	Name: "region_accessed", Iface: IfaceRegion, Rights: RightControl,

	Errors: []OpError{{ErrTooBig, "the bitmap has less than one bit per page"}, {ErrQuota, "too many other spaces keep records of the region"}, errRegionGone},
	Args:   []Arg{{"bitmap", ArgOut, "one bit per page, page 0 in bit 0 of byte 0"}},
	R0:     "the number of pages touched",
	Doc:    "Reports the pages of a region read or written through any mapping since the calling space last asked (at its first ask: since the region was created or the pages supplied), and clears that space's record. Threads may keep running: one whose cached translation outlives the ask may show a touch only at the next ask, which makes the bits a hint for a replacement policy, never a record of writes (region_dirty is that).",
}

// OpPortSetGetState's description: the rest of the state operations.
var portSetStateOp = OpInfo{
	Name: "port_set_get_state", Iface: IfacePortSet, Rights: RightReceive | RightControl,

	Errors: []OpError{{ErrWrongType, "the handle names a port"}, errStateTooBig, errStateCopies, {ErrPeerGone, "the caller's space is ending"}},
	Args:   []Arg{{"buf", ArgOut, "receives an nv_port_set_state record, then one handle number per port"}},
	R0:     "the bytes written; with NV_ETOOBIG, R1 is the size needed",
	R1:     "the size needed, when the buffer was too small",
	Doc:    "Reads the ports a port set holds: a copy of a handle to each (with receive and control), into the caller's table. Rebuild the set with port_set_create and port_set_add.",
}

func init() {
	Ops[OpRegionEvict] = evictOp
	Ops[OpCallBatch] = batchOp
	Ops[OpRegionAccessed] = accessedOp
	Ops[OpPortSetGetState] = portSetStateOp
	for op, info := range stateOps {
		Ops[op] = info
	}
	for op, info := range clockWaitOps {
		Ops[op] = info
	}
}

// Clock selectors for OpClockRead.
const (
	ClockMonotonic = 0 // nanoseconds since an arbitrary point, never going back
	ClockRealtime  = 1 // nanoseconds since the Unix epoch
)

// TimeTSC is the flag of TimePage.Flags saying the record may be
// extrapolated with the rdtsc instruction.
const TimeTSC = 1

// Permission bits of space_map and space_protect.
const (
	PermRead  = 1 << 0
	PermWrite = 1 << 1
	PermExec  = 1 << 2
	PermAll   = PermRead | PermWrite | PermExec
)

// Space states, as space_status reports them.
const (
	SpaceRunning = 0 // has not ended
	SpaceExited  = 1 // its last thread exited; R1 is that thread's status
	SpaceKilled  = 2 // killed by space_kill, by a fault nobody handled, or by the monitor
)

// Thread states, as thread_status reports them.
const (
	ThreadNew     = 0 // created, never started
	ThreadRunning = 1 // running, blocked in an operation, or its fault served by a host server (a personality)
	ThreadStopped = 2 // stopped by thread_stop, or its fault waiting for a reply to its fault message
	ThreadExited  = 3 // ended; R1 is its status
)

// Flags of files_open.
const (
	OpenRead     = 1 << 0 // allow file_read
	OpenWrite    = 1 << 1 // allow file_write (the root must allow writes)
	OpenCreate   = 1 << 2 // create the file if it does not exist
	OpenTruncate = 1 << 3 // empty the file
	// OpenDir opens a directory (with OpenRead alone): the handle answers
	// file_readdir and file_stat. Without it a directory does not open
	// (ErrIsDir); with it anything else does not (ErrNotDir).
	OpenDir = 1 << 4
	// OpenExclusive, with OpenCreate, fails with ErrExists when the name
	// exists (even as a dangling link): the file is the caller's own new
	// one, as with O_CREAT|O_EXCL (lock files, mkstemp).
	OpenExclusive = 1 << 5
)

// Message kinds, in Msg.Kind.
const (
	// MsgCall is an operation invoked on a port handle: Op is the
	// operation, Words its argument slots, the data its first input
	// buffer. Reply with port_reply.
	MsgCall = 1
	// MsgSend is a one-way message (port_send): Op is its tag.
	MsgSend = 2
	// MsgFault is a thread's fault, sent to its space's exception port:
	// Words are FaultWord*, the data an nv_thread_state, Handles[0] the
	// thread (with control). Reply with r0 = FaultResume, FaultResumeState
	// (data: a new nv_thread_state) or FaultKill (r1: the space's status).
	MsgFault = 3
	// MsgPage is a page request, sent to a region's keeper (or, for a
	// region with none, the exception port): Words are FaultWord*, with
	// FaultWordOffset the page's offset in the region. Supply the page and
	// reply r0 = FaultResume, or FaultKill.
	MsgPage = 4
	// MsgExit is the notice of a space's end, sent one-way to its
	// exception port: Words[0] is SpaceExited or SpaceKilled, Words[1]
	// the status, and for a death by fault Words[2..5] as FaultWord*+2.
	MsgExit = 5
)

// Indexes into Msg.Words of MsgFault and MsgPage messages.
const (
	FaultWordVector = 0 // the CPU exception vector (14 for a page fault), or VecSyscall
	FaultWordError  = 1 // the error code the CPU pushed
	FaultWordAddr   = 2 // the faulting address (page faults)
	FaultWordRIP    = 3 // the faulting instruction
	FaultWordThread = 4 // the thread's number in its space
	FaultWordOffset = 5 // MsgPage: offset of the page in the region
)

// VecSyscall is the vector a MsgFault carries for a thread that executed
// the syscall instruction. It is no CPU exception (those are below 32, and
// every "int $n" of a guest arrives as a general-protection fault), so a
// handler tells a system call from any real fault by this word alone, on
// every backend. The thread's RIP is at the syscall instruction (two bytes,
// 0f 05): resuming it unchanged issues the call again, which is what makes
// a call held by its handler restartable. RCX and R11 already hold what
// Linux's syscall leaves there on every backend (RCX the address after the
// instruction, R11 RFLAGS), so a handler that completes the call sets RAX
// and moves RIP past the instruction.
const VecSyscall = 0x80

// Replies to MsgFault and MsgPage, in r0.
const (
	FaultResume      = 0 // resume the thread as it is (retry the instruction)
	FaultResumeState = 1 // resume it with the state in the reply's data
	FaultKill        = 2 // kill the space, with r1 as its status
)

// Info returns the description of op, and false when op is not a valid
// operation.
func (op Op) Info() (*OpInfo, bool) {
	if op == OpNone || op >= OpCount {
		return nil, false
	}
	return &Ops[op], true
}

// String returns the operation's name.
func (op Op) String() string {
	if info, ok := op.Info(); ok {
		return info.Name
	}
	return fmt.Sprintf("op(%d)", uint32(op))
}

// Slots is the number of argument slots the operation uses.
func (info *OpInfo) Slots() int {
	n := 0
	for _, a := range info.Args {
		n += a.Kind.Slots()
	}
	return n
}
