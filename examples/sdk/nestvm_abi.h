/* nestvm_abi.h: the nestvm guest ABI.
 *
 * Generated from package nestvm/abi by "go generate ./abi"; do not edit.
 *
 * Every operation is invoked on a handle (a small integer naming an object
 * in the caller's own handle table) by calling NV_ABI_ENTRY with the System
 * V calling convention: handle and operation in rdi and rsi, arguments
 * a0..a3 in rdx, rcx, r8, r9, a4 and a5 on the stack. R0 comes back in rax:
 * a value >= 0, or a negated error code (NV_E...). Some operations also
 * return R1 in rdx. Guest addresses in records are plain integers
 * (nv_addr_t), never pointers.
 */
#ifndef NESTVM_ABI_H
#define NESTVM_ABI_H

#include <stddef.h>
#include <stdint.h>

#define NESTVM_ABI_VERSION   0xbull /* bumped on any change a guest could observe */
#define NV_PAGE_SIZE         0x1000ull /* the smallest mapping unit */
#define NV_RESERVED_BASE     0x100000ull /* start of the monitor's range in every space */
#define NV_RESERVED_TOP      0x400000ull /* end of the monitor's range */
#define NV_ABI_PAGE          0x100000ull /* the read-only ABI page */
#define NV_ABI_ENTRY         0x100000ull /* the entry point of every operation */
#define NV_NULLTRAP_ENTRY    0x100020ull /* a function that only traps and returns (benchmarks) */
#define NV_USER_BASE         0x400000ull /* lowest address a program may load or map at */
#define NV_USER_TOP          0x1000000000ull /* one past the highest such address */
#define NV_MAX_BUFFER        0x1000000ull /* the longest buffer one operation accepts */
#define NV_MAX_REASON        0x1000ull /* space_abort: the most of a reason it keeps */
#define NV_MAX_BATCH         0x40ull /* call_batch: the most entries one call performs */
#define NV_BATCH_FROM_BITS   0x8ull /* nv_batch_entry.from: bits of each value it takes from an earlier entry */
#define NV_MAX_ARG_SLOTS     0x6ull /* argument slots of an operation */
#define NV_NO_HANDLE         0x0ull /* the handle number that names nothing */
#define NV_CLOCK_MONOTONIC   0x0ull /* clock_read: time since an arbitrary point */
#define NV_CLOCK_REALTIME    0x1ull /* clock_read: time since the Unix epoch */
#define NV_TIME_TSC          0x1ull /* nv_time_page.flags: extrapolate the record with rdtsc */
#define NV_START_MAGIC       0x315452415453564eull /* nv_start_info.magic */
#define NV_AT_STARTINFO      0x4e56ull /* auxv type whose value is the nv_start_info address */
#define NV_FXSAVE_SIZE       0x200ull /* size of the x87/SSE state */
#define NV_PERM_READ         0x1ull /* space_map: readable */
#define NV_PERM_WRITE        0x2ull /* space_map: writable */
#define NV_PERM_EXEC         0x4ull /* space_map: executable */
#define NV_PERM_ALL          0x7ull /* space_map: every permission */
#define NV_SPACE_RUNNING     0x0ull /* space_status: not ended */
#define NV_SPACE_EXITED      0x1ull /* space_status: its last thread exited */
#define NV_SPACE_KILLED      0x2ull /* space_status: killed */
#define NV_THREAD_NEW        0x0ull /* thread_status: never started */
#define NV_THREAD_RUNNING    0x1ull /* thread_status: running or blocked */
#define NV_THREAD_STOPPED    0x2ull /* thread_status: stopped */
#define NV_THREAD_EXITED     0x3ull /* thread_status: ended */
#define NV_OPEN_READ         0x1ull /* files_open: allow reads */
#define NV_OPEN_WRITE        0x2ull /* files_open: allow writes */
#define NV_OPEN_CREATE       0x4ull /* files_open: create if missing */
#define NV_OPEN_TRUNCATE     0x8ull /* files_open: empty the file */
#define NV_OPEN_DIR          0x10ull /* files_open: open a directory (for file_readdir, file_stat) */
#define NV_OPEN_EXCL         0x20ull /* files_open: with NV_OPEN_CREATE, fail if the name exists */
#define NV_STAT_NOFOLLOW     0x1ull /* files_stat: describe a symbolic link itself */
#define NV_FT_OTHER          0x0ull /* nv_stat.type, nv_dirent.type: none of the others, or unknown */
#define NV_FT_REGULAR        0x1ull /* file type: a regular file */
#define NV_FT_DIR            0x2ull /* file type: a directory */
#define NV_FT_SYMLINK        0x3ull /* file type: a symbolic link */
#define NV_FT_CHAR           0x4ull /* file type: a character device */
#define NV_FT_BLOCK          0x5ull /* file type: a block device */
#define NV_FT_FIFO           0x6ull /* file type: a FIFO */
#define NV_FT_SOCKET         0x7ull /* file type: a socket */
#define NV_UTIME_NOW         0xffffffffffffffffull /* files_utimes: the current time */
#define NV_UTIME_OMIT        0xfffffffffffffffeull /* files_utimes: leave this time unchanged */
#define NV_MSG_CALL          0x1ull /* nv_msg.kind: an operation invoked on a port */
#define NV_MSG_SEND          0x2ull /* nv_msg.kind: a one-way message */
#define NV_MSG_FAULT         0x3ull /* nv_msg.kind: a thread fault */
#define NV_MSG_PAGE          0x4ull /* nv_msg.kind: a page request */
#define NV_MSG_EXIT          0x5ull /* nv_msg.kind: a space ended */
#define NV_FW_VECTOR         0x0ull /* nv_msg.words index: exception vector */
#define NV_FW_ERROR          0x1ull /* nv_msg.words index: error code */
#define NV_FW_ADDR           0x2ull /* nv_msg.words index: faulting address */
#define NV_FW_RIP            0x3ull /* nv_msg.words index: faulting instruction */
#define NV_FW_THREAD         0x4ull /* nv_msg.words index: thread number */
#define NV_FW_OFFSET         0x5ull /* nv_msg.words index: page offset in the region */
#define NV_VEC_SYSCALL       0x80ull /* nv_msg.words[NV_FW_VECTOR] of a thread that executed syscall */
#define NV_FAULT_RESUME      0x0ull /* fault reply: retry the instruction */
#define NV_FAULT_RESUME_STATE 0x1ull /* fault reply: resume with the state sent */
#define NV_FAULT_KILL        0x2ull /* fault reply: kill the space */
#define NV_MSG_HANDLES       0x4ull /* handles one message carries at most */
#define NV_STATE_OWNED       0x1ull /* nv_space_map, nv_space_handle flags: charged to this space */
#define NV_IDENT_SERVED      0x1ull /* nv_handle_identity flags: a port the monitor's own code serves */
#define NV_INSERT_MOVE       0x1ull /* space_insert_at: move the handle, do not copy it */
#define NV_DIRTY_EVER        0x1ull /* region_dirty: every page written since the region was created */

/* Error codes: operations return them negated in R0. */
enum nv_error {
	NV_OK = 0, /* ok */
	NV_EINVALOP = 1, /* invalid operation */
	NV_EBADHANDLE = 2, /* bad handle */
	NV_ERIGHTS = 3, /* insufficient rights */
	NV_EINVAL = 4, /* invalid argument */
	NV_EFAULT = 5, /* bad address */
	NV_ENOMEM = 6, /* out of memory */
	NV_EQUOTA = 7, /* quota exceeded */
	NV_ETOOBIG = 8, /* too big */
	NV_EWRONGTYPE = 9, /* wrong object type */
	NV_EPEERGONE = 10, /* peer gone */
	NV_EDENIED = 11, /* denied */
	NV_ENOTFOUND = 12, /* not found */
	NV_EEXISTS = 13, /* already exists */
	NV_EIO = 14, /* i/o error */
	NV_EWOULDBLOCK = 15, /* would block */
	NV_EBUSY = 16, /* busy */
	NV_ETIMEOUT = 17, /* timed out */
	NV_ENOTEMPTY = 18, /* directory not empty */
	NV_ENOTDIR = 19, /* not a directory */
	NV_EISDIR = 20, /* is a directory */
	NV_ELOOP = 21, /* too many symbolic links */
	NV_EXDEV = 22, /* cross-device link */
	NV_ENOSPC = 23, /* no space left */
	NV_ERR_COUNT = 24
};

/* Rights: what a handle allows. Derived handles only lose rights. */
#define NV_R_READ      0x1u /* read */
#define NV_R_WRITE     0x2u /* write */
#define NV_R_EXEC      0x4u /* exec */
#define NV_R_MAP       0x8u /* map */
#define NV_R_CALL      0x10u /* call */
#define NV_R_RECEIVE   0x20u /* receive */
#define NV_R_GRANT     0x40u /* grant */
#define NV_R_DERIVE    0x80u /* derive */
#define NV_R_CONTROL   0x100u /* control */
#define NV_R_ALL       0x1ffu

/* Object types, as handle_info reports them. */
enum nv_object_type {
	NV_OBJ_NONE = 0,
	NV_OBJ_SPACE = 1,
	NV_OBJ_THREAD = 2,
	NV_OBJ_REGION = 3,
	NV_OBJ_PORT = 4,
	NV_OBJ_PORT_SET = 5,
	NV_OBJ_COUNT = 6
};

/* Operations. 0 is reserved; numbers are never reused. */
enum nv_op {
	NV_OP_NONE = 0,
	NV_OP_HANDLE_INFO = 1, /* handle: Reports what a handle names and what it allows. */
	NV_OP_HANDLE_CLOSE = 2, /* handle: Removes the handle from the caller's table. */
	NV_OP_CONSOLE_WRITE = 3, /* console: Writes bytes to the console: the program's standard output. */
	NV_OP_CLOCK_READ = 4, /* clock: Reads a clock. */
	NV_OP_THREAD_EXIT = 5, /* thread: Ends the thread the handle names with a status. */
	NV_OP_HANDLE_DERIVE = 6, /* handle: Copies a handle into the caller's table with fewer rights and, optionally, a badge. */
	NV_OP_HANDLE_REVOKE = 7, /* handle: Removes every handle derived from this one (and from those, recursively), in every space. */
	NV_OP_SPACE_CREATE = 8, /* space: Creates an empty child space: no memory, no threads, no handles. */
	NV_OP_SPACE_MAP = 9, /* space: Maps part of a region into a space. */
	NV_OP_SPACE_UNMAP = 10, /* space: Unmaps a range of a space: whatever is mapped in it goes, and a mapping that crosses either end of the range is split there, its other part staying mapped at the same region offsets (NV_ENOTFOUND when nothing is mapped in the range). */
	NV_OP_SPACE_PROTECT = 11, /* space: Changes the permissions of a mapped range; every page of it must be mapped (NV_EFAULT otherwise). */
	NV_OP_SPACE_INSERT = 12, /* space: Copies one of the caller's handles into a space's table, with the given subset of its rights. */
	NV_OP_SPACE_REMOVE = 13, /* space: Removes a handle from a space's table. */
	NV_OP_SPACE_SET_EXCEPTION_PORT = 14, /* space: Names the port that receives the space's thread faults, its page requests for regions with no keeper, and the notice of its end, as nv_msg records. */
	NV_OP_SPACE_STATUS = 15, /* space: Reports whether a space is running and how it ended. */
	NV_OP_SPACE_KILL = 16, /* space: Ends a space and every thread in it, and its child spaces with it, and returns once all of them have ended: what they held is given back, so their places in the children quota and their pages in the memory quota of every ancestor are free again when it returns. */
	NV_OP_THREAD_CREATE = 17, /* space: Creates a thread in a space, stopped; thread_start runs it. */
	NV_OP_THREAD_START = 18, /* thread: Starts a new thread or resumes a stopped one. */
	NV_OP_THREAD_STOP = 19, /* thread: Stops a thread and returns when it has stopped. */
	NV_OP_THREAD_GET_STATE = 20, /* thread: Reads a stopped thread's whole CPU state. */
	NV_OP_THREAD_SET_STATE = 21, /* thread: Replaces a stopped (or not yet started) thread's whole CPU state. */
	NV_OP_THREAD_STATUS = 22, /* thread: Reports a thread's run state. */
	NV_OP_REGION_CREATE = 23, /* space: Creates a zero-filled region charged to the space's page quota (and its ancestors'). */
	NV_OP_REGION_READ = 24, /* region: Copies bytes out of a region. */
	NV_OP_REGION_WRITE = 25, /* region: Copies bytes into a region. */
	NV_OP_REGION_SIZE = 26, /* region: Reports a region's size. */
	NV_OP_REGION_SET_KEEPER = 27, /* region: Makes a port the keeper of a region that is mapped nowhere yet: every page becomes absent, and a thread touching an absent page stops while the keeper receives an NV_MSG_PAGE request, supplies the page and replies. */
	NV_OP_REGION_SUPPLY = 28, /* region: Fills pages of a region and makes them present in every space that maps it. */
	NV_OP_REGION_DIRTY = 29, /* region: Reports the pages written since the calling space last asked (at its first ask, or with NV_DIRTY_EVER: since the region was created, so the pages not reported are still zero), and clears that space's record. */
	NV_OP_PORT_CREATE = 30, /* space: Creates a port whose server is whoever holds it with receive. */
	NV_OP_PORT_RECEIVE = 31, /* port: Waits for a message on a port or port set. */
	NV_OP_PORT_REPLY = 32, /* port: Answers a call received on this port (or on a port set holding it): the caller's operation returns r0 and r1. */
	NV_OP_PORT_SEND = 33, /* port: Sends a one-way message; returns once it is queued. */
	NV_OP_PORT_CALL = 34, /* port: Calls a port's server and waits for its reply. */
	NV_OP_PORT_SET_CREATE = 35, /* space: Creates a port set: a server waits on it to receive from any of its ports. */
	NV_OP_PORT_SET_ADD = 36, /* port_set: Adds a port to a port set. */
	NV_OP_FUTEX_WAIT = 37, /* space: Sleeps while the word at addr holds expected: returns NV_EWOULDBLOCK at once if it does not, NV_ETIMEOUT when the time runs out. */
	NV_OP_FUTEX_WAKE = 38, /* space: Wakes threads sleeping in futex_wait on a word of the space. */
	NV_OP_FILES_OPEN = 39, /* files: Opens a file under a files root. */
	NV_OP_FILES_LIST = 40, /* files: Lists a directory under a files root, sorted by name. */
	NV_OP_FILE_READ = 41, /* file: Reads bytes from an open file. */
	NV_OP_FILE_WRITE = 42, /* file: Writes bytes to an open file. */
	NV_OP_FILE_SIZE = 43, /* file: Reports an open file's size. */
	NV_OP_SPACE_GET_STATE = 44, /* space: Reads a space's whole state: quotas, exception port, every mapping (with a copy of a handle to its region), every handle of its table (number, a copy with the same rights and badge, and its place in the derivation tree), every thread (a copy of a handle to it). */
	NV_OP_SPACE_INSERT_AT = 45, /* space: Copies a handle into a space's table at a given number, as space_insert does at the lowest free one: how a rebuilt space gets the numbers its program knows. */
	NV_OP_REGION_GET_STATE = 46, /* region: Reads a region's size, its keeper (a copy of the keeper port handle, into the caller's table, with the call, grant, derive and read rights of the handle it was set through: a keeper set with read answers region_read on its port with the pages it keeps, as services/pager does) and which pages were supplied. */
	NV_OP_PORT_GET_STATE = 47, /* port: Reads the one-way messages queued on a port (calls are never queued while their callers are stopped: a stopped caller takes its call back and re-issues it when resumed). */
	NV_OP_REGION_EVICT = 48, /* region: Makes pages of a region with a keeper absent again, in every space that maps it, and releases their memory: the next touch sends the keeper a page request, as at first, and until then region_read reads zeros there. */
	NV_OP_REGION_ACCESSED = 49, /* region: Reports the pages of a region read or written through any mapping since the calling space last asked (at its first ask: since the region was created or the pages supplied), and clears that space's record. */
	NV_OP_PORT_SET_GET_STATE = 50, /* port_set: Reads the ports a port set holds: a copy of a handle to each (with receive and control), into the caller's table. */
	NV_OP_FILES_STAT = 51, /* files: Describes a file under a files root as an nv_stat record: its type, permission bits, size, links, owner, inode, device, blocks and times. */
	NV_OP_FILE_STAT = 52, /* file: Describes an open file or directory as files_stat does its name. */
	NV_OP_FILES_UNLINK = 53, /* files: Removes a name that is not a directory (NV_EISDIR for one). */
	NV_OP_FILES_MKDIR = 54, /* files: Creates a directory (NV_EEXISTS if the name exists, even as a dangling link). */
	NV_OP_FILES_RMDIR = 55, /* files: Removes an empty directory: NV_ENOTEMPTY when it holds entries, NV_ENOTDIR for anything else (a link to a directory included). */
	NV_OP_FILES_RENAME = 56, /* files: Renames an entry within the root, replacing what the new name held (a non-directory, or an empty directory when the entry is one). */
	NV_OP_FILES_SYMLINK = 57, /* files: Creates a symbolic link holding the target text as given, which may name anything: following the link later is confined like any path (NV_EDENIED where it leads out of the root). */
	NV_OP_FILES_READLINK = 58, /* files: Reads the target text of a symbolic link (NV_EINVAL for anything else): the text as stored, whether or not it leads inside the root. */
	NV_OP_FILES_CHMOD = 59, /* files: Sets a file's permission bits. */
	NV_OP_FILES_TRUNCATE = 60, /* files: Sets a regular file's size (NV_EISDIR for a directory, NV_EINVAL for another kind). */
	NV_OP_FILES_UTIMES = 61, /* files: Sets a file's access and modification times. */
	NV_OP_FILE_READDIR = 62, /* file: Reads the entries of a directory opened with NV_OPEN_DIR, sorted by name, without '.' and '..', each with the type and inode the directory holds for it (no stat per entry). */
	NV_OP_CONSOLE_READ = 63, /* console: Reads from an input console: the program's standard input. */
	NV_OP_CLOCK_TIME_PAGE = 64, /* clock: Gives the caller the page a clock keeps its time in, so that a program can read the time with no call (as a vDSO does): map the region read-only and extrapolate the nv_time_page record with rdtsc, retrying while its seq is odd or changed, and calling clock_read instead when flags lacks NV_TIME_TSC or the counter has moved more than max_delta ticks past tsc_base. */
	NV_OP_SERVER_GET_STATE = 65, /* port: Reads the state a port's server keeps about the spaces it serves (a system-call personality's descriptors, signal state and process tree), so that a checkpoint taken above the server carries it and a restore can rebuild the server. */
	NV_OP_HANDLE_IDENTIFY = 66, /* handle: Describes a handle as an nv_handle_identity record: the identity of the object it names (unique for the monitor's life and never reused, so two handles name one object exactly when their identities are equal, whichever spaces they came from); a layer's stand-in reports the identity of the object it stands for, as handle_info reports its type, so a program compares its handles under a layer as it would without one, the object type and rights handle_info reports, the handle's badge, and NV_IDENT_SERVED when the object is a port the monitor's own code serves (a files root, a console, a layer's stand-in) rather than one a space receives on. */
	NV_OP_CLOCK_WAIT = 67, /* clock: Waits until the clock reads at least deadline_ns, or until the caller is woken for another reason (a personality's thread by whoever changes what it waits for): the caller compares R0 with its deadline and waits again when it is early. */
	NV_OP_SPACE_RUNNING = 68, /* space: Counts the threads of a space's subtree that wait and those that do not, so that a layer can tell when every thread below it waits (R0 is 0 and R1 is not: a virtual clock then jumps to the earliest deadline, or, with no deadline, the program is deadlocked). */
	NV_OP_FUTEX_WAIT_CLOCK = 69, /* space: futex_wait with its time limit on a clock: the caller becomes a waiter on the word, the word is checked (NV_EWOULDBLOCK at once if it does not hold expected), then the caller waits with clock_wait on the clock, as itself, until the clock reaches deadline_ns (NV_ETIMEOUT) or a futex_wake of the word wakes it (0). */
	NV_OP_SPACE_ABORT = 70, /* space: Ends a space and every thread in it, and its child spaces with it, as killed (space_status reports NV_SPACE_KILLED with status 137, as for a kill by the monitor), and records the reason as the space's, where whoever waits on the space (a parent's exception port, the monitor's log, the command that ran the program) reads why it ended. */
	NV_OP_CALL_BATCH = 71, /* handle: Performs a sequence of operations in one call, in order, each exactly as a direct call of it would be: the same checks, the same rights, and on a handle that names a port (a layer's stand-in) delivered to its server, so every layer sees every entry. */
	NV_OP_COUNT = 72
};

typedef uint64_t nv_handle_t;
typedef uint64_t nv_addr_t;

/* What every operation returns: R0 in rax, R1 in rdx. */
typedef struct nv_result {
	int64_t r0;
	uint64_t r1;
} nv_result_t;

typedef nv_result_t (*nv_entry_fn)(uint64_t h, uint64_t op, uint64_t a0, uint64_t a1,
				   uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5);

/* nv_invoke performs operation op on handle h. */
static inline nv_result_t nv_invoke(nv_handle_t h, uint64_t op, uint64_t a0, uint64_t a1,
				    uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	return ((nv_entry_fn)NV_ABI_ENTRY)(h, op, a0, a1, a2, a3, a4, a5);
}

/* nv_handle_info: Reports what a handle names and what it allows. Needs no rights.
 * Interface: handle. Rights needed: none.
 * R0: the object type (NV_OBJ_*) the handle names.
 * R1: the handle's rights (NV_R_* bits).
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 */
static inline nv_result_t nv_handle_info_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_HANDLE_INFO, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_handle_info(nv_handle_t h)
{
	return nv_handle_info_r(h).r0;
}

/* nv_handle_close: Removes the handle from the caller's table. The object lives on while other handles name it. Needs no rights.
 * Interface: handle. Rights needed: none.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 */
static inline nv_result_t nv_handle_close_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_HANDLE_CLOSE, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_handle_close(nv_handle_t h)
{
	return nv_handle_close_r(h).r0;
}

/* nv_console_write: Writes bytes to the console: the program's standard output.
 * Interface: console. Rights needed: write.
 *   data, data_len (IN buffer): the bytes to write
 * R0: the number of bytes written.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER
 *   NV_EIO: the host could not write any of the bytes
 */
static inline nv_result_t nv_console_write_r(nv_handle_t h, nv_addr_t data, uint64_t data_len)
{
	return nv_invoke(h, NV_OP_CONSOLE_WRITE, data, data_len, 0, 0, 0, 0);
}
static inline int64_t nv_console_write(nv_handle_t h, nv_addr_t data, uint64_t data_len)
{
	return nv_console_write_r(h, data, data_len).r0;
}

/* nv_clock_read: Reads a clock. Monotonic time starts at an arbitrary point; realtime counts from the Unix epoch.
 * Interface: clock. Rights needed: read.
 *   which (IN): NV_CLOCK_MONOTONIC or NV_CLOCK_REALTIME
 * R0: the time in nanoseconds.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EINVAL: which names no clock
 */
static inline nv_result_t nv_clock_read_r(nv_handle_t h, uint64_t which)
{
	return nv_invoke(h, NV_OP_CLOCK_READ, which, 0, 0, 0, 0, 0);
}
static inline int64_t nv_clock_read(nv_handle_t h, uint64_t which)
{
	return nv_clock_read_r(h, which).r0;
}

/* nv_thread_exit: Ends the thread the handle names with a status. When the last thread of a space ends, the space ends with that status.
 * Interface: thread. Rights needed: control.
 *   status (IN): the exit status; the low 8 bits are the program's exit status
 * Does not return on success; returns a negated error code otherwise.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 */
static inline nv_result_t nv_thread_exit_r(nv_handle_t h, uint64_t status)
{
	return nv_invoke(h, NV_OP_THREAD_EXIT, status, 0, 0, 0, 0, 0);
}
static inline int64_t nv_thread_exit(nv_handle_t h, uint64_t status)
{
	return nv_thread_exit_r(h, status).r0;
}

/* nv_handle_derive: Copies a handle into the caller's table with fewer rights and, optionally, a badge. The copy is recorded under the handle, so revoking the handle removes it.
 * Interface: handle. Rights needed: derive.
 *   rights (IN): the rights the copy keeps (a subset of the handle's)
 *   badge (IN): the copy's badge: 0 keeps the handle's; another value only where the handle has none
 * R0: the new handle's number.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table; or the handle was revoked while the copy was made
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or rights has a bit the handle lacks, or one beyond NV_R_ALL
 *   NV_EQUOTA: the caller's handle table is full
 *   NV_EPEERGONE: the caller's space is ending
 *   NV_EINVAL: the handle has a badge and badge names another
 */
static inline nv_result_t nv_handle_derive_r(nv_handle_t h, uint64_t rights, uint64_t badge)
{
	return nv_invoke(h, NV_OP_HANDLE_DERIVE, rights, badge, 0, 0, 0, 0);
}
static inline int64_t nv_handle_derive(nv_handle_t h, uint64_t rights, uint64_t badge)
{
	return nv_handle_derive_r(h, rights, badge).r0;
}

/* nv_handle_revoke: Removes every handle derived from this one (and from those, recursively), in every space. The handle itself stays. Needs no rights.
 * Interface: handle. Rights needed: none.
 * R0: the number of handles removed.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 */
static inline nv_result_t nv_handle_revoke_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_HANDLE_REVOKE, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_handle_revoke(nv_handle_t h)
{
	return nv_handle_revoke_r(h).r0;
}

/* nv_space_create: Creates an empty child space: no memory, no threads, no handles. A quota of 0 means the creating space's own; no quota may exceed it. The child's pages, threads and the spaces below it count against its ancestors' quotas too, so no descendant can hold more than any ancestor allows.
 * Interface: space. Rights needed: control.
 *   pages (IN): the most pages of memory the child and its descendants may hold
 *   threads (IN): the most threads the child and its descendants may have at once (one space runs at most 64)
 *   handles (IN): the most handles the child's table may hold
 *   children (IN): the most spaces the child may have below it at once: its children, theirs, and so on
 * R0: a handle to the new space, with every right.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EQUOTA: the caller's handle table is full
 *   NV_EPEERGONE: the space, or the caller's, is ending
 *   NV_ENOMEM: the monitor's host memory or mapping budget is spent
 */
static inline nv_result_t nv_space_create_r(nv_handle_t h, uint64_t pages, uint64_t threads, uint64_t handles, uint64_t children)
{
	return nv_invoke(h, NV_OP_SPACE_CREATE, pages, threads, handles, children, 0, 0);
}
static inline int64_t nv_space_create(nv_handle_t h, uint64_t pages, uint64_t threads, uint64_t handles, uint64_t children)
{
	return nv_space_create_r(h, pages, threads, handles, children).r0;
}

/* nv_space_map: Maps part of a region into a space. Spaces that map the same region share its pages. With perm 0 the range is reserved but inaccessible (every touch is a not-present page fault) until space_protect grants access.
 * Interface: space. Rights needed: map.
 *   region (IN, handle): the region to map; needs map, and read, write or exec as perm asks
 *   addr (IN): page-aligned address in the space
 *   offset (IN): page-aligned offset in the region
 *   size (IN): page-aligned length
 *   perm (IN): NV_PERM_* bits
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table; or region names nothing (or is NV_NO_HANDLE)
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface; or region names no region
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or the region handle lacks map or a right perm asks for
 *   NV_EFAULT: the stack words holding a4 and a5 are not mapped readable
 *   NV_EINVAL: perm has unknown bits, or the range is unaligned, outside the user range or outside the region
 *   NV_EEXISTS: the range overlaps a mapping
 *   NV_EPEERGONE: the space is ending
 *   NV_ENOMEM: the monitor's host memory or mapping budget is spent
 */
static inline nv_result_t nv_space_map_r(nv_handle_t h, nv_handle_t region, uint64_t addr, uint64_t offset, uint64_t size, uint64_t perm)
{
	return nv_invoke(h, NV_OP_SPACE_MAP, region, addr, offset, size, perm, 0);
}
static inline int64_t nv_space_map(nv_handle_t h, nv_handle_t region, uint64_t addr, uint64_t offset, uint64_t size, uint64_t perm)
{
	return nv_space_map_r(h, region, addr, offset, size, perm).r0;
}

/* nv_space_unmap: Unmaps a range of a space: whatever is mapped in it goes, and a mapping that crosses either end of the range is split there, its other part staying mapped at the same region offsets (NV_ENOTFOUND when nothing is mapped in the range). Other threads of the space may run meanwhile: when the call returns, none of them can touch the range any more without a page fault.
 * Interface: space. Rights needed: map.
 *   addr (IN): page-aligned address
 *   size (IN): page-aligned length
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EINVAL: the range is unaligned or outside the user range
 *   NV_ENOTFOUND: nothing is mapped in the range
 *   NV_EPEERGONE: the space is ending
 *   NV_ENOMEM: the monitor's host memory or mapping budget is spent
 */
static inline nv_result_t nv_space_unmap_r(nv_handle_t h, uint64_t addr, uint64_t size)
{
	return nv_invoke(h, NV_OP_SPACE_UNMAP, addr, size, 0, 0, 0, 0);
}
static inline int64_t nv_space_unmap(nv_handle_t h, uint64_t addr, uint64_t size)
{
	return nv_space_unmap_r(h, addr, size).r0;
}

/* nv_space_protect: Changes the permissions of a mapped range; every page of it must be mapped (NV_EFAULT otherwise). A mapping that crosses either end of the range is split there, its other part keeping its permissions. perm 0 makes the range inaccessible (every touch is a not-present page fault) while the memory keeps its contents, which a later space_protect makes accessible again. Other threads of the space may run meanwhile: when the call returns, none of them can touch the range with the old permissions any more.
 * Interface: space. Rights needed: map.
 *   addr (IN): page-aligned address
 *   size (IN): page-aligned length
 *   perm (IN): NV_PERM_* bits, within what the mapping's region handle allowed
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or perm exceeds what a mapping's region handle allowed
 *   NV_EINVAL: perm has unknown bits, or the range is unaligned or outside the user range
 *   NV_EFAULT: a page of the range is not mapped
 *   NV_EPEERGONE: the space is ending
 *   NV_ENOMEM: the monitor's host memory or mapping budget is spent
 */
static inline nv_result_t nv_space_protect_r(nv_handle_t h, uint64_t addr, uint64_t size, uint64_t perm)
{
	return nv_invoke(h, NV_OP_SPACE_PROTECT, addr, size, perm, 0, 0, 0);
}
static inline int64_t nv_space_protect(nv_handle_t h, uint64_t addr, uint64_t size, uint64_t perm)
{
	return nv_space_protect_r(h, addr, size, perm).r0;
}

/* nv_space_insert: Copies one of the caller's handles into a space's table, with the given subset of its rights. The copy is derived from the caller's handle, so revoking that handle takes it back.
 * Interface: space. Rights needed: control.
 *   handle (IN, handle): the caller's handle to copy; needs grant
 *   rights (IN): the rights the copy keeps
 * R0: the copy's number in the space's table.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table; or the handle argument names nothing in the caller's table (or was revoked meanwhile)
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or the handle argument lacks grant
 *   NV_EQUOTA: the space's handle table is full
 *   NV_EPEERGONE: the space is ending
 */
static inline nv_result_t nv_space_insert_r(nv_handle_t h, nv_handle_t handle, uint64_t rights)
{
	return nv_invoke(h, NV_OP_SPACE_INSERT, handle, rights, 0, 0, 0, 0);
}
static inline int64_t nv_space_insert(nv_handle_t h, nv_handle_t handle, uint64_t rights)
{
	return nv_space_insert_r(h, handle, rights).r0;
}

/* nv_space_remove: Removes a handle from a space's table.
 * Interface: space. Rights needed: control.
 *   number (IN): a handle number in the space's table
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table; or number names nothing in the space's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 */
static inline nv_result_t nv_space_remove_r(nv_handle_t h, uint64_t number)
{
	return nv_invoke(h, NV_OP_SPACE_REMOVE, number, 0, 0, 0, 0, 0);
}
static inline int64_t nv_space_remove(nv_handle_t h, uint64_t number)
{
	return nv_space_remove_r(h, number).r0;
}

/* nv_space_set_exception_port: Names the port that receives the space's thread faults, its page requests for regions with no keeper, and the notice of its end, as nv_msg records. A space with no exception port dies at its first fault.
 * Interface: space. Rights needed: control.
 *   port (IN, handle): the port (needs call), or NV_NO_HANDLE for none
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table; or port names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface; or port names no port
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or the port handle lacks call
 *   NV_EINVAL: the port is served by monitor code that receives no faults
 */
static inline nv_result_t nv_space_set_exception_port_r(nv_handle_t h, nv_handle_t port)
{
	return nv_invoke(h, NV_OP_SPACE_SET_EXCEPTION_PORT, port, 0, 0, 0, 0, 0);
}
static inline int64_t nv_space_set_exception_port(nv_handle_t h, nv_handle_t port)
{
	return nv_space_set_exception_port_r(h, port).r0;
}

/* nv_space_status: Reports whether a space is running and how it ended.
 * Interface: space. Rights needed: read.
 * R0: NV_SPACE_RUNNING, NV_SPACE_EXITED or NV_SPACE_KILLED.
 * R1: the exit status, once ended.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 */
static inline nv_result_t nv_space_status_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_SPACE_STATUS, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_space_status(nv_handle_t h)
{
	return nv_space_status_r(h).r0;
}

/* nv_space_kill: Ends a space and every thread in it, and its child spaces with it, and returns once all of them have ended: what they held is given back, so their places in the children quota and their pages in the memory quota of every ancestor are free again when it returns. A program killing its own space is exiting: the space ends as exited with the status. A caller inside the space killed (below it) does not wait: it is ending too; nor does monitor code killing through a host Caller of its own, which may run on a thread it kills (it waits on the space's Done).
 * Interface: space. Rights needed: control.
 *   status (IN): the status the space ends with
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 */
static inline nv_result_t nv_space_kill_r(nv_handle_t h, uint64_t status)
{
	return nv_invoke(h, NV_OP_SPACE_KILL, status, 0, 0, 0, 0, 0);
}
static inline int64_t nv_space_kill(nv_handle_t h, uint64_t status)
{
	return nv_space_kill_r(h, status).r0;
}

/* nv_thread_create: Creates a thread in a space, stopped; thread_start runs it. Every other register starts at zero. A non-canonical entry or stack is refused (NV_EINVAL).
 * Interface: space. Rights needed: control.
 *   entry (IN): the address the thread starts at
 *   stack (IN): its initial stack pointer
 *   arg (IN): its initial rdi
 * R0: a handle to the new thread, with every right.
 * R1: the thread's number in its space, as its faults name it (NV_FW_THREAD).
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EQUOTA: the caller's handle table is full
 *   NV_EINVAL: entry or stack is not canonical, or the space is a host space
 *   NV_EPEERGONE: the space is ending
 */
static inline nv_result_t nv_thread_create_r(nv_handle_t h, uint64_t entry, uint64_t stack, uint64_t arg)
{
	return nv_invoke(h, NV_OP_THREAD_CREATE, entry, stack, arg, 0, 0, 0);
}
static inline int64_t nv_thread_create(nv_handle_t h, uint64_t entry, uint64_t stack, uint64_t arg)
{
	return nv_thread_create_r(h, entry, stack, arg).r0;
}

/* nv_thread_start: Starts a new thread or resumes a stopped one.
 * Interface: thread. Rights needed: control.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EBUSY: the thread has ended or is ending, or is stopped at a fault its handler has yet to answer
 *   NV_EPEERGONE: its space is ending (a thread never started)
 */
static inline nv_result_t nv_thread_start_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_THREAD_START, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_thread_start(nv_handle_t h)
{
	return nv_thread_start_r(h).r0;
}

/* nv_thread_stop: Stops a thread and returns when it has stopped. A thread blocked in an operation (port_call, port_receive, futex_wait) stops with its registers set to issue that operation again when resumed.
 * Interface: thread. Rights needed: control.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EBUSY: the caller was told to end while it waited for the thread to stop
 */
static inline nv_result_t nv_thread_stop_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_THREAD_STOP, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_thread_stop(nv_handle_t h)
{
	return nv_thread_stop_r(h).r0;
}

/* nv_thread_get_state: Reads a stopped thread's whole CPU state.
 * Interface: thread. Rights needed: read|control.
 *   state, state_cap (OUT buffer): an nv_thread_state record
 * R0: the size of the record.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or the buffer is smaller than an nv_thread_state
 *   NV_EBUSY: the thread is the caller, or is running (stop it first)
 *   NV_EIO: the backend could not read the state
 */
static inline nv_result_t nv_thread_get_state_r(nv_handle_t h, nv_addr_t state, uint64_t state_cap)
{
	return nv_invoke(h, NV_OP_THREAD_GET_STATE, state, state_cap, 0, 0, 0, 0);
}
static inline int64_t nv_thread_get_state(nv_handle_t h, nv_addr_t state, uint64_t state_cap)
{
	return nv_thread_get_state_r(h, state, state_cap).r0;
}

/* nv_thread_set_state: Replaces a stopped (or not yet started) thread's whole CPU state. Flags a program may not set are forced to their usual values; a non-canonical rip, rsp, fs_base or gs_base is refused (NV_EINVAL).
 * Interface: thread. Rights needed: control.
 *   state, state_len (IN buffer): an nv_thread_state record
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER
 *   NV_EBUSY: the thread is the caller, or is running (stop it first)
 *   NV_EINVAL: the buffer is not an nv_thread_state, or holds a non-canonical address
 *   NV_EIO: the backend could not write the state
 */
static inline nv_result_t nv_thread_set_state_r(nv_handle_t h, nv_addr_t state, uint64_t state_len)
{
	return nv_invoke(h, NV_OP_THREAD_SET_STATE, state, state_len, 0, 0, 0, 0);
}
static inline int64_t nv_thread_set_state(nv_handle_t h, nv_addr_t state, uint64_t state_len)
{
	return nv_thread_set_state_r(h, state, state_len).r0;
}

/* nv_thread_status: Reports a thread's run state. A running thread blocked in an operation (port_receive, port_call, futex_wait, space_kill, ...) reports that operation in R1 from the moment it waits: a thread reported blocked in port_receive is among the port's waiting receivers, so another thread can wait for that state instead of for a time.
 * Interface: thread. Rights needed: read.
 * R0: NV_THREAD_NEW, NV_THREAD_RUNNING, NV_THREAD_STOPPED or NV_THREAD_EXITED.
 * R1: the exit status, once exited; while running, the operation (NV_OP_*) it is blocked in, or 0 when it is not blocked.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 */
static inline nv_result_t nv_thread_status_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_THREAD_STATUS, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_thread_status(nv_handle_t h)
{
	return nv_thread_status_r(h).r0;
}

/* nv_region_create: Creates a zero-filled region charged to the space's page quota (and its ancestors').
 * Interface: space. Rights needed: control.
 *   size (IN): page-aligned size in bytes
 * R0: a handle to the new region, with every right.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EQUOTA: the caller's handle table is full
 *   NV_EINVAL: size is 0, not whole pages, or beyond NV_USER_TOP
 *   NV_EPEERGONE: the space is ending
 *   NV_ENOMEM: the monitor's host memory or mapping budget is spent
 */
static inline nv_result_t nv_region_create_r(nv_handle_t h, uint64_t size)
{
	return nv_invoke(h, NV_OP_REGION_CREATE, size, 0, 0, 0, 0, 0);
}
static inline int64_t nv_region_create(nv_handle_t h, uint64_t size)
{
	return nv_region_create_r(h, size).r0;
}

/* nv_region_read: Copies bytes out of a region. Absent pages of a kept region read as zero.
 * Interface: region. Rights needed: read.
 *   offset (IN): where in the region to start
 *   buf, buf_cap (OUT buffer): where to copy to
 * R0: the number of bytes copied.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER
 *   NV_EINVAL: offset is beyond the region
 *   NV_EPEERGONE: the region's memory was released: its owner ended
 */
static inline nv_result_t nv_region_read_r(nv_handle_t h, uint64_t offset, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_REGION_READ, offset, buf, buf_cap, 0, 0, 0);
}
static inline int64_t nv_region_read(nv_handle_t h, uint64_t offset, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_region_read_r(h, offset, buf, buf_cap).r0;
}

/* nv_region_write: Copies bytes into a region.
 * Interface: region. Rights needed: write.
 *   offset (IN): where in the region to start
 *   data, data_len (IN buffer): the bytes to copy
 * R0: the number of bytes copied.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER
 *   NV_EINVAL: offset is beyond the region
 *   NV_EPEERGONE: the region's memory was released: its owner ended
 */
static inline nv_result_t nv_region_write_r(nv_handle_t h, uint64_t offset, nv_addr_t data, uint64_t data_len)
{
	return nv_invoke(h, NV_OP_REGION_WRITE, offset, data, data_len, 0, 0, 0);
}
static inline int64_t nv_region_write(nv_handle_t h, uint64_t offset, nv_addr_t data, uint64_t data_len)
{
	return nv_region_write_r(h, offset, data, data_len).r0;
}

/* nv_region_size: Reports a region's size. Needs no rights.
 * Interface: region. Rights needed: none.
 * R0: the size in bytes.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 */
static inline nv_result_t nv_region_size_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_REGION_SIZE, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_region_size(nv_handle_t h)
{
	return nv_region_size_r(h).r0;
}

/* nv_region_set_keeper: Makes a port the keeper of a region that is mapped nowhere yet: every page becomes absent, and a thread touching an absent page stops while the keeper receives an NV_MSG_PAGE request, supplies the page and replies.
 * Interface: region. Rights needed: control.
 *   port (IN, handle): the keeper's port (needs call); its badge tells the keeper which region asks
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table; or port names nothing (or is NV_NO_HANDLE)
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface; or port names no port
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or the port handle lacks call
 *   NV_EINVAL: the port is served by monitor code, which receives no page requests
 *   NV_EBUSY: the region has a keeper already
 */
static inline nv_result_t nv_region_set_keeper_r(nv_handle_t h, nv_handle_t port)
{
	return nv_invoke(h, NV_OP_REGION_SET_KEEPER, port, 0, 0, 0, 0, 0);
}
static inline int64_t nv_region_set_keeper(nv_handle_t h, nv_handle_t port)
{
	return nv_region_set_keeper_r(h, port).r0;
}

/* nv_region_supply: Fills pages of a region and makes them present in every space that maps it.
 * Interface: region. Rights needed: write.
 *   offset (IN): page-aligned offset
 *   data, data_len (IN buffer): whole pages of contents; empty to supply one zero page
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER
 *   NV_EINVAL: the range is unaligned or outside the region
 *   NV_EPEERGONE: the region's memory was released: its owner ended
 */
static inline nv_result_t nv_region_supply_r(nv_handle_t h, uint64_t offset, nv_addr_t data, uint64_t data_len)
{
	return nv_invoke(h, NV_OP_REGION_SUPPLY, offset, data, data_len, 0, 0, 0);
}
static inline int64_t nv_region_supply(nv_handle_t h, uint64_t offset, nv_addr_t data, uint64_t data_len)
{
	return nv_region_supply_r(h, offset, data, data_len).r0;
}

/* nv_region_dirty: Reports the pages written since the calling space last asked (at its first ask, or with NV_DIRTY_EVER: since the region was created, so the pages not reported are still zero), and clears that space's record. Each space keeps its own record, so two readers (a checkpointer and the program's own dirty tracking) never take pages from each other. Every thread of the spaces mapping the region, but the caller, must be stopped (NV_EBUSY otherwise): a running thread's cached translations could hide its next write. At most 16 spaces keep records of one region (NV_EQUOTA).
 * Interface: region. Rights needed: read.
 *   bitmap, bitmap_cap (OUT buffer): one bit per page, page 0 in bit 0 of byte 0
 *   flags (IN): NV_DIRTY_EVER: report every page written since the region was created, whatever was asked before
 * R0: the number of dirty pages.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or the bitmap has less than one bit per page
 *   NV_EINVAL: flags has unknown bits
 *   NV_EBUSY: a thread other than the caller runs in a space that maps the region: stop it first
 *   NV_EQUOTA: too many other spaces keep records of the region
 *   NV_EPEERGONE: the region's memory was released: its owner ended
 */
static inline nv_result_t nv_region_dirty_r(nv_handle_t h, nv_addr_t bitmap, uint64_t bitmap_cap, uint64_t flags)
{
	return nv_invoke(h, NV_OP_REGION_DIRTY, bitmap, bitmap_cap, flags, 0, 0, 0);
}
static inline int64_t nv_region_dirty(nv_handle_t h, nv_addr_t bitmap, uint64_t bitmap_cap, uint64_t flags)
{
	return nv_region_dirty_r(h, bitmap, bitmap_cap, flags).r0;
}

/* nv_port_create: Creates a port whose server is whoever holds it with receive. The port lives until the space it was created in ends, and counts against that space's handle quota as long: a space owns at most as many ports and port sets as it may hold handles (NV_EQUOTA beyond).
 * Interface: space. Rights needed: control.
 * R0: a handle to the new port, with every right.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EQUOTA: the caller's handle table is full
 *   NV_EPEERGONE: the space is ending
 */
static inline nv_result_t nv_port_create_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_PORT_CREATE, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_port_create(nv_handle_t h)
{
	return nv_port_create_r(h).r0;
}

/* nv_port_receive: Waits for a message on a port or port set. Handles the message carries are inserted into the caller's table; their numbers are in nv_msg.handles.
 * Interface: port. Rights needed: receive.
 *   msg, msg_cap (OUT buffer): an nv_msg record to fill
 *   data, data_cap (OUT buffer): where the message's bytes go (truncated to fit; nv_msg.data_len says how many there were)
 * R0: the number of bytes copied into data.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or msg is smaller than an nv_msg
 *   NV_EPEERGONE: the port or port set was closed: its owner ended
 */
static inline nv_result_t nv_port_receive_r(nv_handle_t h, nv_addr_t msg, uint64_t msg_cap, nv_addr_t data, uint64_t data_cap)
{
	return nv_invoke(h, NV_OP_PORT_RECEIVE, msg, msg_cap, data, data_cap, 0, 0);
}
static inline int64_t nv_port_receive(nv_handle_t h, nv_addr_t msg, uint64_t msg_cap, nv_addr_t data, uint64_t data_cap)
{
	return nv_port_receive_r(h, msg, msg_cap, data, data_cap).r0;
}

/* nv_port_reply: Answers a call received on this port (or on a port set holding it): the caller's operation returns r0 and r1. A handle given travels as a copy derived from the replier's, which the replier may close at once. A call stays answerable until answered, even once its caller has ended (the reply is then dropped); a call_id not received here, or already answered, gets NV_ENOTFOUND.
 * Interface: port. Rights needed: receive.
 *   call_id (IN): nv_msg.call_id of the call being answered
 *   r0 (IN): R0 for the caller: a value, or a negated error code
 *   r1 (IN): R1 for the caller
 *   data, data_len (IN buffer): bytes for the caller's output buffer, if its operation has one
 *   handle (IN, handle): a handle to give the caller (needs grant), or NV_NO_HANDLE; the caller's R0 is then its number there
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table; or the handle argument names nothing in the caller's table, or the handle was revoked before it could travel
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or the handle argument lacks grant
 *   NV_EFAULT: the stack words holding a4 and a5 are not mapped readable, or a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER
 *   NV_ENOTFOUND: no call with this id waits for a reply from this port
 */
static inline nv_result_t nv_port_reply_r(nv_handle_t h, uint64_t call_id, uint64_t r0, uint64_t r1, nv_addr_t data, uint64_t data_len, nv_handle_t handle)
{
	return nv_invoke(h, NV_OP_PORT_REPLY, call_id, r0, r1, data, data_len, handle);
}
static inline int64_t nv_port_reply(nv_handle_t h, uint64_t call_id, uint64_t r0, uint64_t r1, nv_addr_t data, uint64_t data_len, nv_handle_t handle)
{
	return nv_port_reply_r(h, call_id, r0, r1, data, data_len, handle).r0;
}

/* nv_port_send: Sends a one-way message; returns once it is queued. The handle travels as a copy derived from the sender's: the sender may close its own at once, and a revoke of it or of any handle it came from reaches the copy on the way (it then arrives as NV_NO_HANDLE). A space may have 1024 messages, and 16 MiB of their bytes, queued and not yet received; past that port_send fails with NV_EWOULDBLOCK until receivers catch up. The bytes count against the memory quota of the sending space and of its ancestors until the message is received or dropped (NV_EQUOTA beyond it), so a tree of spaces cannot make the monitor hold more than its quota allows.
 * Interface: port. Rights needed: call.
 *   tag (IN): a value for the receiver
 *   data, data_len (IN buffer): bytes for the receiver
 *   handle (IN, handle): a handle to pass (needs grant), or NV_NO_HANDLE
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table; or the handle argument names nothing in the caller's table, or was revoked before it could travel
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or the handle argument lacks grant
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER
 *   NV_EQUOTA: the data would exceed the memory quota of the sending space or an ancestor
 *   NV_EWOULDBLOCK: the sending space has as many messages, or bytes, queued as it may
 *   NV_EPEERGONE: the port was closed: its owner ended
 */
static inline nv_result_t nv_port_send_r(nv_handle_t h, uint64_t tag, nv_addr_t data, uint64_t data_len, nv_handle_t handle)
{
	return nv_invoke(h, NV_OP_PORT_SEND, tag, data, data_len, handle, 0, 0);
}
static inline int64_t nv_port_send(nv_handle_t h, uint64_t tag, nv_addr_t data, uint64_t data_len, nv_handle_t handle)
{
	return nv_port_send_r(h, tag, data, data_len, handle).r0;
}

/* nv_port_call: Calls a port's server and waits for its reply. Until a server receives it, the call's data counts against the memory quota of the calling space and of its ancestors (NV_EQUOTA beyond it), as port_send's does.
 * Interface: port. Rights needed: call.
 *   tag (IN): a value for the server
 *   data, data_len (IN buffer): bytes for the server
 *   reply, reply_cap (OUT buffer): where the server's reply bytes go
 * R0: the server's r0.
 * R1: the server's r1.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: the stack words holding a4 and a5 are not mapped readable, or a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER
 *   NV_EQUOTA: the data would exceed the memory quota of the calling space or an ancestor
 *   NV_EPEERGONE: the port was closed, or its owner ended before a reply
 */
static inline nv_result_t nv_port_call_r(nv_handle_t h, uint64_t tag, nv_addr_t data, uint64_t data_len, nv_addr_t reply, uint64_t reply_cap)
{
	return nv_invoke(h, NV_OP_PORT_CALL, tag, data, data_len, reply, reply_cap, 0);
}
static inline int64_t nv_port_call(nv_handle_t h, uint64_t tag, nv_addr_t data, uint64_t data_len, nv_addr_t reply, uint64_t reply_cap)
{
	return nv_port_call_r(h, tag, data, data_len, reply, reply_cap).r0;
}

/* nv_port_set_create: Creates a port set: a server waits on it to receive from any of its ports. It counts against the space's handle quota as a port does (see port_create).
 * Interface: space. Rights needed: control.
 * R0: a handle to the new port set.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EQUOTA: the caller's handle table is full
 *   NV_EPEERGONE: the space is ending
 */
static inline nv_result_t nv_port_set_create_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_PORT_SET_CREATE, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_port_set_create(nv_handle_t h)
{
	return nv_port_set_create_r(h).r0;
}

/* nv_port_set_add: Adds a port to a port set. A port belongs to at most one set; nv_msg.badge tells the receiver which port a message came through.
 * Interface: port_set. Rights needed: receive.
 *   port (IN, handle): the port to add (needs receive)
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table; or port names nothing (or is NV_NO_HANDLE)
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface; or the handle names no port set, or port names no port a guest serves
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or the handle or port lacks receive
 *   NV_EBUSY: the port belongs to a set already
 *   NV_EPEERGONE: the port or the set was closed
 */
static inline nv_result_t nv_port_set_add_r(nv_handle_t h, nv_handle_t port)
{
	return nv_invoke(h, NV_OP_PORT_SET_ADD, port, 0, 0, 0, 0, 0);
}
static inline int64_t nv_port_set_add(nv_handle_t h, nv_handle_t port)
{
	return nv_port_set_add_r(h, port).r0;
}

/* nv_futex_wait: Sleeps while the word at addr holds expected: returns NV_EWOULDBLOCK at once if it does not, NV_ETIMEOUT when the time runs out.
 * Interface: space. Rights needed: read.
 *   addr (IN): 4-byte aligned address of a 32-bit word
 *   expected (IN): the value to sleep on
 *   timeout_ns (IN): how long to sleep at most; 0 for no limit
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EINVAL: addr is not 4-byte aligned
 *   NV_EFAULT: the word is not mapped readable
 *   NV_EWOULDBLOCK: the word does not hold expected
 *   NV_ETIMEOUT: timeout_ns ran out
 */
static inline nv_result_t nv_futex_wait_r(nv_handle_t h, uint64_t addr, uint64_t expected, uint64_t timeout_ns)
{
	return nv_invoke(h, NV_OP_FUTEX_WAIT, addr, expected, timeout_ns, 0, 0, 0);
}
static inline int64_t nv_futex_wait(nv_handle_t h, uint64_t addr, uint64_t expected, uint64_t timeout_ns)
{
	return nv_futex_wait_r(h, addr, expected, timeout_ns).r0;
}

/* nv_futex_wake: Wakes threads sleeping in futex_wait on a word of the space.
 * Interface: space. Rights needed: read.
 *   addr (IN): the address threads sleep on
 *   count (IN): how many to wake at most
 * R0: the number woken.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 */
static inline nv_result_t nv_futex_wake_r(nv_handle_t h, uint64_t addr, uint64_t count)
{
	return nv_invoke(h, NV_OP_FUTEX_WAKE, addr, count, 0, 0, 0, 0);
}
static inline int64_t nv_futex_wake(nv_handle_t h, uint64_t addr, uint64_t count)
{
	return nv_futex_wake_r(h, addr, count).r0;
}

/* nv_files_open: Opens a file under a files root. Paths cannot leave the root. Writing needs write on the root handle.
 * Interface: files. Rights needed: read.
 *   path, path_len (IN buffer): a relative path under the root, '/'-separated
 *   flags (IN): NV_OPEN_* bits
 * R0: a handle to the open file.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EQUOTA: the caller's handle table is full
 *   NV_EINVAL: flags is an impossible combination, or the path is malformed
 *   NV_EDENIED: writing needs write on the root, and a root the user allowed writes to; or the path leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_open_r(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t flags)
{
	return nv_invoke(h, NV_OP_FILES_OPEN, path, path_len, flags, 0, 0, 0);
}
static inline int64_t nv_files_open(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t flags)
{
	return nv_files_open_r(h, path, path_len, flags).r0;
}

/* nv_files_list: Lists a directory under a files root, sorted by name.
 * Interface: files. Rights needed: read.
 *   path, path_len (IN buffer): a directory under the root; empty for the root
 *   buf, buf_cap (OUT buffer): receives the names, each ending in a NUL byte; directories end in '/'
 * R0: the number of bytes the full list needs (more than the buffer means it was cut).
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EINVAL: the path is malformed
 *   NV_EDENIED: the host refused access, or a path or link leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_list_r(nv_handle_t h, nv_addr_t path, uint64_t path_len, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_FILES_LIST, path, path_len, buf, buf_cap, 0, 0);
}
static inline int64_t nv_files_list(nv_handle_t h, nv_addr_t path, uint64_t path_len, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_files_list_r(h, path, path_len, buf, buf_cap).r0;
}

/* nv_file_read: Reads bytes from an open file.
 * Interface: file. Rights needed: read.
 *   offset (IN): where to start
 *   buf, buf_cap (OUT buffer): where to copy to
 * R0: the number of bytes read; 0 at the end.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EINVAL: offset is beyond what a file can hold
 *   NV_EDENIED: the host refused access, or a path or link leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_file_read_r(nv_handle_t h, uint64_t offset, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_FILE_READ, offset, buf, buf_cap, 0, 0, 0);
}
static inline int64_t nv_file_read(nv_handle_t h, uint64_t offset, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_file_read_r(h, offset, buf, buf_cap).r0;
}

/* nv_file_write: Writes bytes to an open file.
 * Interface: file. Rights needed: write.
 *   offset (IN): where to start
 *   data, data_len (IN buffer): the bytes to write
 * R0: the number of bytes written.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or the file was not opened for writing
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EINVAL: offset plus the length is beyond what a file can hold
 *   NV_EDENIED: the host refused access, or a path or link leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_file_write_r(nv_handle_t h, uint64_t offset, nv_addr_t data, uint64_t data_len)
{
	return nv_invoke(h, NV_OP_FILE_WRITE, offset, data, data_len, 0, 0, 0);
}
static inline int64_t nv_file_write(nv_handle_t h, uint64_t offset, nv_addr_t data, uint64_t data_len)
{
	return nv_file_write_r(h, offset, data, data_len).r0;
}

/* nv_file_size: Reports an open file's size.
 * Interface: file. Rights needed: read.
 * R0: the size in bytes.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EDENIED: the host refused access, or a path or link leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EINVAL: a path is empty where a name is needed, absolute, or holds a NUL byte; or the host refused an argument
 *   NV_ETOOBIG: a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_file_size_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_FILE_SIZE, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_file_size(nv_handle_t h)
{
	return nv_file_size_r(h).r0;
}

/* nv_space_get_state: Reads a space's whole state: quotas, exception port, every mapping (with a copy of a handle to its region), every handle of its table (number, a copy with the same rights and badge, and its place in the derivation tree), every thread (a copy of a handle to it). Stop the space's threads first for a consistent picture. Copies go into the caller's table; a buffer too small gets nothing and no copies.
 * Interface: space. Rights needed: read|control.
 *   buf, buf_cap (OUT buffer): receives an nv_space_state record, then its nv_space_map, nv_space_handle and nv_space_thread entries
 * R0: the bytes written; with NV_ETOOBIG, R1 is the size needed.
 * R1: the size needed, when the buffer was too small.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or the buffer is too small for the whole state; R1 is the size needed
 *   NV_EQUOTA: the caller's handle table cannot hold the copies
 *   NV_EPEERGONE: the caller's space is ending
 */
static inline nv_result_t nv_space_get_state_r(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_SPACE_GET_STATE, buf, buf_cap, 0, 0, 0, 0);
}
static inline int64_t nv_space_get_state(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_space_get_state_r(h, buf, buf_cap).r0;
}

/* nv_space_insert_at: Copies a handle into a space's table at a given number, as space_insert does at the lowest free one: how a rebuilt space gets the numbers its program knows. NV_EEXISTS when the number is taken. With NV_INSERT_MOVE the caller's handle itself moves, with the handles derived from it still under it: a restorer derives a tree of handles in its own table and moves each into place, and revoke then reaches the same handles as before the save.
 * Interface: space. Rights needed: control.
 *   handle (IN, handle): the caller's handle to copy; needs grant
 *   rights (IN): the rights the copy keeps
 *   number (IN): the number it gets in the space's table
 *   flags (IN): NV_INSERT_MOVE: move the caller's handle there instead of copying it
 * R0: the number.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table; or the handle argument names nothing in the caller's table (or was revoked meanwhile)
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or the handle argument lacks grant
 *   NV_EINVAL: flags has unknown bits, or number is NV_NO_HANDLE
 *   NV_EEXISTS: number is taken
 *   NV_EQUOTA: the space's handle table is full
 *   NV_EPEERGONE: the space is ending
 */
static inline nv_result_t nv_space_insert_at_r(nv_handle_t h, nv_handle_t handle, uint64_t rights, uint64_t number, uint64_t flags)
{
	return nv_invoke(h, NV_OP_SPACE_INSERT_AT, handle, rights, number, flags, 0, 0);
}
static inline int64_t nv_space_insert_at(nv_handle_t h, nv_handle_t handle, uint64_t rights, uint64_t number, uint64_t flags)
{
	return nv_space_insert_at_r(h, handle, rights, number, flags).r0;
}

/* nv_region_get_state: Reads a region's size, its keeper (a copy of the keeper port handle, into the caller's table, with the call, grant, derive and read rights of the handle it was set through: a keeper set with read answers region_read on its port with the pages it keeps, as services/pager does) and which pages were supplied. Its contents are read with region_read.
 * Interface: region. Rights needed: read.
 *   buf, buf_cap (OUT buffer): receives an nv_region_state record, then the supplied-page bitmap (one bit per page) when the region has a keeper
 * R0: the bytes written; with NV_ETOOBIG, R1 is the size needed.
 * R1: the size needed, when the buffer was too small.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or the buffer is too small for the whole state; R1 is the size needed
 *   NV_EQUOTA: the caller's handle table cannot hold the copies
 *   NV_EPEERGONE: the caller's space is ending
 */
static inline nv_result_t nv_region_get_state_r(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_REGION_GET_STATE, buf, buf_cap, 0, 0, 0, 0);
}
static inline int64_t nv_region_get_state(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_region_get_state_r(h, buf, buf_cap).r0;
}

/* nv_port_get_state: Reads the one-way messages queued on a port (calls are never queued while their callers are stopped: a stopped caller takes its call back and re-issues it when resumed). Handles the messages carry arrive as copies in the caller's table.
 * Interface: port. Rights needed: receive|control.
 *   buf, buf_cap (OUT buffer): receives an nv_port_state record, then for each queued message its nv_msg and its bytes, padded to 8
 * R0: the bytes written; with NV_ETOOBIG, R1 is the size needed.
 * R1: the size needed, when the buffer was too small.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface; or the handle names a port set
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or the buffer is too small for the whole state; R1 is the size needed
 *   NV_EQUOTA: the caller's handle table cannot hold the copies
 *   NV_EPEERGONE: the caller's space is ending
 */
static inline nv_result_t nv_port_get_state_r(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_PORT_GET_STATE, buf, buf_cap, 0, 0, 0, 0);
}
static inline int64_t nv_port_get_state(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_port_get_state_r(h, buf, buf_cap).r0;
}

/* nv_region_evict: Makes pages of a region with a keeper absent again, in every space that maps it, and releases their memory: the next touch sends the keeper a page request, as at first, and until then region_read reads zeros there. Threads running in those spaces leave guest code for a moment to drop their cached translations. The contents go to data first, with no thread able to write them in between, so a pager saves exactly what it evicts. A data buffer shorter than size gets NV_ETOOBIG, and nothing is evicted.
 * Interface: region. Rights needed: control.
 *   offset (IN): page-aligned offset
 *   size (IN): page-aligned length
 *   data, data_cap (OUT buffer): receives the pages' contents (size bytes) before their memory is released; length 0 to discard them
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or data is shorter than size (and not empty)
 *   NV_EINVAL: the range is empty, unaligned or outside the region, or the region has no keeper
 *   NV_EPEERGONE: the region's memory was released: its owner ended
 */
static inline nv_result_t nv_region_evict_r(nv_handle_t h, uint64_t offset, uint64_t size, nv_addr_t data, uint64_t data_cap)
{
	return nv_invoke(h, NV_OP_REGION_EVICT, offset, size, data, data_cap, 0, 0);
}
static inline int64_t nv_region_evict(nv_handle_t h, uint64_t offset, uint64_t size, nv_addr_t data, uint64_t data_cap)
{
	return nv_region_evict_r(h, offset, size, data, data_cap).r0;
}

/* nv_region_accessed: Reports the pages of a region read or written through any mapping since the calling space last asked (at its first ask: since the region was created or the pages supplied), and clears that space's record. Threads may keep running: one whose cached translation outlives the ask may show a touch only at the next ask, which makes the bits a hint for a replacement policy, never a record of writes (region_dirty is that).
 * Interface: region. Rights needed: control.
 *   bitmap, bitmap_cap (OUT buffer): one bit per page, page 0 in bit 0 of byte 0
 * R0: the number of pages touched.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or the bitmap has less than one bit per page
 *   NV_EQUOTA: too many other spaces keep records of the region
 *   NV_EPEERGONE: the region's memory was released: its owner ended
 */
static inline nv_result_t nv_region_accessed_r(nv_handle_t h, nv_addr_t bitmap, uint64_t bitmap_cap)
{
	return nv_invoke(h, NV_OP_REGION_ACCESSED, bitmap, bitmap_cap, 0, 0, 0, 0);
}
static inline int64_t nv_region_accessed(nv_handle_t h, nv_addr_t bitmap, uint64_t bitmap_cap)
{
	return nv_region_accessed_r(h, bitmap, bitmap_cap).r0;
}

/* nv_port_set_get_state: Reads the ports a port set holds: a copy of a handle to each (with receive and control), into the caller's table. Rebuild the set with port_set_create and port_set_add.
 * Interface: port_set. Rights needed: receive|control.
 *   buf, buf_cap (OUT buffer): receives an nv_port_set_state record, then one handle number per port
 * R0: the bytes written; with NV_ETOOBIG, R1 is the size needed.
 * R1: the size needed, when the buffer was too small.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface; or the handle names a port
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or the buffer is too small for the whole state; R1 is the size needed
 *   NV_EQUOTA: the caller's handle table cannot hold the copies
 *   NV_EPEERGONE: the caller's space is ending
 */
static inline nv_result_t nv_port_set_get_state_r(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_PORT_SET_GET_STATE, buf, buf_cap, 0, 0, 0, 0);
}
static inline int64_t nv_port_set_get_state(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_port_set_get_state_r(h, buf, buf_cap).r0;
}

/* nv_files_stat: Describes a file under a files root as an nv_stat record: its type, permission bits, size, links, owner, inode, device, blocks and times. A symbolic link is followed, within the root only (NV_EDENIED for one leading out), unless NV_STAT_NOFOLLOW is given.
 * Interface: files. Rights needed: read.
 *   path, path_len (IN buffer): a path under the root; empty for the root itself
 *   flags (IN): NV_STAT_NOFOLLOW to describe a symbolic link itself, not what it leads to
 *   buf, buf_cap (OUT buffer): receives an nv_stat record
 * R0: the size of the whole record (a shorter buffer gets its first bytes: records only grow at the end).
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: the stack words holding a4 and a5 are not mapped readable, or a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EINVAL: flags has unknown bits, or the path is malformed
 *   NV_EDENIED: the host refused access, or a path or link leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_stat_r(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t flags, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_FILES_STAT, path, path_len, flags, buf, buf_cap, 0);
}
static inline int64_t nv_files_stat(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t flags, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_files_stat_r(h, path, path_len, flags, buf, buf_cap).r0;
}

/* nv_file_stat: Describes an open file or directory as files_stat does its name. Needs no rights, so a file open only for writing can be described too.
 * Interface: file. Rights needed: none.
 *   buf, buf_cap (OUT buffer): receives an nv_stat record
 * R0: the size of the whole record (a shorter buffer gets its first bytes).
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EDENIED: the host refused access, or a path or link leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EINVAL: a path is empty where a name is needed, absolute, or holds a NUL byte; or the host refused an argument
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_file_stat_r(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_FILE_STAT, buf, buf_cap, 0, 0, 0, 0);
}
static inline int64_t nv_file_stat(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_file_stat_r(h, buf, buf_cap).r0;
}

/* nv_files_unlink: Removes a name that is not a directory (NV_EISDIR for one). A symbolic link is removed itself, never what it leads to. Needs a writable root.
 * Interface: files. Rights needed: write.
 *   path, path_len (IN buffer): the name to remove
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EDENIED: the root handle lacks write, the root is read-only, or the path leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EINVAL: a path is empty where a name is needed, absolute, or holds a NUL byte; or the host refused an argument
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_unlink_r(nv_handle_t h, nv_addr_t path, uint64_t path_len)
{
	return nv_invoke(h, NV_OP_FILES_UNLINK, path, path_len, 0, 0, 0, 0);
}
static inline int64_t nv_files_unlink(nv_handle_t h, nv_addr_t path, uint64_t path_len)
{
	return nv_files_unlink_r(h, path, path_len).r0;
}

/* nv_files_mkdir: Creates a directory (NV_EEXISTS if the name exists, even as a dangling link). Needs a writable root.
 * Interface: files. Rights needed: write.
 *   path, path_len (IN buffer): the directory to create
 *   mode (IN): its permission bits (at most 07777), less the monitor's umask
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EINVAL: mode is beyond 07777, or the path is malformed
 *   NV_EDENIED: the root handle lacks write, the root is read-only, or the path leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_mkdir_r(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t mode)
{
	return nv_invoke(h, NV_OP_FILES_MKDIR, path, path_len, mode, 0, 0, 0);
}
static inline int64_t nv_files_mkdir(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t mode)
{
	return nv_files_mkdir_r(h, path, path_len, mode).r0;
}

/* nv_files_rmdir: Removes an empty directory: NV_ENOTEMPTY when it holds entries, NV_ENOTDIR for anything else (a link to a directory included). Needs a writable root.
 * Interface: files. Rights needed: write.
 *   path, path_len (IN buffer): the directory to remove
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EDENIED: the root handle lacks write, the root is read-only, or the path leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EINVAL: a path is empty where a name is needed, absolute, or holds a NUL byte; or the host refused an argument
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_rmdir_r(nv_handle_t h, nv_addr_t path, uint64_t path_len)
{
	return nv_invoke(h, NV_OP_FILES_RMDIR, path, path_len, 0, 0, 0, 0);
}
static inline int64_t nv_files_rmdir(nv_handle_t h, nv_addr_t path, uint64_t path_len)
{
	return nv_files_rmdir_r(h, path, path_len).r0;
}

/* nv_files_rename: Renames an entry within the root, replacing what the new name held (a non-directory, or an empty directory when the entry is one). A link as the last component of either path is not followed: the link itself moves or is replaced. Both paths travel in one buffer, so the call reaches a port's server whole. Needs a writable root.
 * Interface: files. Rights needed: write.
 *   paths, paths_len (IN buffer): the old path, a NUL byte, then the new path
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EDENIED: the root handle lacks write, the root is read-only, or the path leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EINVAL: a path is empty where a name is needed, absolute, or holds a NUL byte; or the host refused an argument
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_rename_r(nv_handle_t h, nv_addr_t paths, uint64_t paths_len)
{
	return nv_invoke(h, NV_OP_FILES_RENAME, paths, paths_len, 0, 0, 0, 0);
}
static inline int64_t nv_files_rename(nv_handle_t h, nv_addr_t paths, uint64_t paths_len)
{
	return nv_files_rename_r(h, paths, paths_len).r0;
}

/* nv_files_symlink: Creates a symbolic link holding the target text as given, which may name anything: following the link later is confined like any path (NV_EDENIED where it leads out of the root). Needs a writable root.
 * Interface: files. Rights needed: write.
 *   paths, paths_len (IN buffer): the link's target text, a NUL byte, then the path of the link to create
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EDENIED: the root handle lacks write, the root is read-only, or the path leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EINVAL: a path is empty where a name is needed, absolute, or holds a NUL byte; or the host refused an argument
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_symlink_r(nv_handle_t h, nv_addr_t paths, uint64_t paths_len)
{
	return nv_invoke(h, NV_OP_FILES_SYMLINK, paths, paths_len, 0, 0, 0, 0);
}
static inline int64_t nv_files_symlink(nv_handle_t h, nv_addr_t paths, uint64_t paths_len)
{
	return nv_files_symlink_r(h, paths, paths_len).r0;
}

/* nv_files_readlink: Reads the target text of a symbolic link (NV_EINVAL for anything else): the text as stored, whether or not it leads inside the root.
 * Interface: files. Rights needed: read.
 *   path, path_len (IN buffer): a symbolic link
 *   buf, buf_cap (OUT buffer): receives the target text, with no NUL byte
 * R0: the length of the whole target (more than the buffer means it was cut).
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EINVAL: the path names no symbolic link, or is malformed
 *   NV_EDENIED: the host refused access, or a path or link leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_readlink_r(nv_handle_t h, nv_addr_t path, uint64_t path_len, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_FILES_READLINK, path, path_len, buf, buf_cap, 0, 0);
}
static inline int64_t nv_files_readlink(nv_handle_t h, nv_addr_t path, uint64_t path_len, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_files_readlink_r(h, path, path_len, buf, buf_cap).r0;
}

/* nv_files_chmod: Sets a file's permission bits. Needs a writable root.
 * Interface: files. Rights needed: write.
 *   path, path_len (IN buffer): a file or directory (a link is followed, within the root)
 *   mode (IN): the permission bits, at most 07777
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EINVAL: mode is beyond 07777, or the path is malformed
 *   NV_EDENIED: the root handle lacks write, the root is read-only, or the path leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_chmod_r(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t mode)
{
	return nv_invoke(h, NV_OP_FILES_CHMOD, path, path_len, mode, 0, 0, 0);
}
static inline int64_t nv_files_chmod(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t mode)
{
	return nv_files_chmod_r(h, path, path_len, mode).r0;
}

/* nv_files_truncate: Sets a regular file's size (NV_EISDIR for a directory, NV_EINVAL for another kind). Needs a writable root.
 * Interface: files. Rights needed: write.
 *   path, path_len (IN buffer): a regular file (a link is followed, within the root)
 *   size (IN): its new size: shorter cuts it, longer adds zeros
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EINVAL: the path names no regular file, or is malformed
 *   NV_EDENIED: the root handle lacks write, the root is read-only, or the path leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_truncate_r(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t size)
{
	return nv_invoke(h, NV_OP_FILES_TRUNCATE, path, path_len, size, 0, 0, 0);
}
static inline int64_t nv_files_truncate(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t size)
{
	return nv_files_truncate_r(h, path, path_len, size).r0;
}

/* nv_files_utimes: Sets a file's access and modification times. Needs a writable root.
 * Interface: files. Rights needed: write.
 *   path, path_len (IN buffer): a file or directory (a link is followed, within the root)
 *   atime_ns (IN): the access time in nanoseconds since the Unix epoch (as int64), NV_UTIME_NOW or NV_UTIME_OMIT
 *   mtime_ns (IN): the modification time, likewise
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_EDENIED: the root handle lacks write, the root is read-only, or the path leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_ENOTDIR: a path component is not a directory
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EINVAL: a path is empty where a name is needed, absolute, or holds a NUL byte; or the host refused an argument
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_files_utimes_r(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t atime_ns, uint64_t mtime_ns)
{
	return nv_invoke(h, NV_OP_FILES_UTIMES, path, path_len, atime_ns, mtime_ns, 0, 0);
}
static inline int64_t nv_files_utimes(nv_handle_t h, nv_addr_t path, uint64_t path_len, uint64_t atime_ns, uint64_t mtime_ns)
{
	return nv_files_utimes_r(h, path, path_len, atime_ns, mtime_ns).r0;
}

/* nv_file_readdir: Reads the entries of a directory opened with NV_OPEN_DIR, sorted by name, without '.' and '..', each with the type and inode the directory holds for it (no stat per entry). Only whole entries are written: a buffer too small for the first gets NV_ETOOBIG. Offsets index the sorted list, so a directory changed between calls may show an entry twice or skip one.
 * Interface: file. Rights needed: read.
 *   offset (IN): the index of the first entry to report: 0 at first, then R1 of the last call
 *   buf, buf_cap (OUT buffer): receives nv_dirent records, each followed by its name, a NUL byte, and zeros up to a multiple of 8 bytes
 * R0: the bytes written; 0 past the last entry.
 * R1: the offset of the entry after the last one written.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or the buffer cannot hold the first entry; or a path is longer than the service accepts, or a name or file is beyond the host's limits
 *   NV_ENOTDIR: the handle was not opened with NV_OPEN_DIR
 *   NV_EDENIED: the host refused access, or a path or link leads out of the root
 *   NV_ENOTFOUND: a path names nothing
 *   NV_EISDIR: a path names a directory where the operation needs another kind
 *   NV_ENOTEMPTY: a directory to remove or replace holds entries
 *   NV_EEXISTS: a name to create exists
 *   NV_ELOOP: a path leads through too many symbolic links
 *   NV_EXDEV: a rename would cross host file systems
 *   NV_ENOSPC: the host file system or quota is full
 *   NV_EINVAL: a path is empty where a name is needed, absolute, or holds a NUL byte; or the host refused an argument
 *   NV_EPEERGONE: the files service was closed
 *   NV_EIO: any other host failure
 */
static inline nv_result_t nv_file_readdir_r(nv_handle_t h, uint64_t offset, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_FILE_READDIR, offset, buf, buf_cap, 0, 0, 0);
}
static inline int64_t nv_file_readdir(nv_handle_t h, uint64_t offset, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_file_readdir_r(h, offset, buf, buf_cap).r0;
}

/* nv_console_read: Reads from an input console: the program's standard input. Waits until some input is available or the input ends. A thread stopped while it waits re-issues the call when resumed, and no input is lost; a thread killed while it waits ends.
 * Interface: console. Rights needed: read.
 *   buf, buf_cap (OUT buffer): where the bytes go
 * R0: the number of bytes read: what was available, at most the buffer's capacity; 0 at the end of input (and for a buffer of length 0).
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER
 *   NV_EWOULDBLOCK: no guest thread made the call (monitor code cannot wait for input)
 *   NV_EIO: the host could not read its input
 */
static inline nv_result_t nv_console_read_r(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_CONSOLE_READ, buf, buf_cap, 0, 0, 0, 0);
}
static inline int64_t nv_console_read(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_console_read_r(h, buf, buf_cap).r0;
}

/* nv_clock_time_page: Gives the caller the page a clock keeps its time in, so that a program can read the time with no call (as a vDSO does): map the region read-only and extrapolate the nv_time_page record with rdtsc, retrying while its seq is odd or changed, and calling clock_read instead when flags lacks NV_TIME_TSC or the counter has moved more than max_delta ticks past tsc_base. The clock keeps the record current for as long as it serves clock_read. A clock that cannot offer one fails with NV_EINVALOP; a layer standing in for a clock supplies a page of its own, or refuses.
 * Interface: clock. Rights needed: read.
 * R0: a handle to a one-page region (read, map) holding an nv_time_page record.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EQUOTA: the caller's handle table is full
 *   NV_ENOMEM: the monitor's host memory or mapping budget is spent
 */
static inline nv_result_t nv_clock_time_page_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_CLOCK_TIME_PAGE, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_clock_time_page(nv_handle_t h)
{
	return nv_clock_time_page_r(h).r0;
}

/* nv_server_get_state: Reads the state a port's server keeps about the spaces it serves (a system-call personality's descriptors, signal state and process tree), so that a checkpoint taken above the server carries it and a restore can rebuild the server. It is answered by the server (no kernel port has one): a server that keeps no such state answers NV_EINVALOP. Ask it while every thread the server serves is stopped, so the record and the threads agree. It needs only call: a space's exception port, as space_get_state copies it, carries that, and the server answers whom it will by the handle's badge.
 * Interface: port. Rights needed: call.
 *   buf, buf_cap (OUT buffer): receives the server's record: a name, NUL-terminated, then bytes in a format of that server's
 * R0: the bytes written; with NV_ETOOBIG, R1 is the size needed.
 * R1: the size needed, when the buffer was too small.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or the buffer is smaller than the record (R1 says what it needs)
 *   NV_EBUSY: the server is half way through a change of its own (a personality ending a process): ask again
 *   NV_EIO: the server could not make its record
 */
static inline nv_result_t nv_server_get_state_r(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_SERVER_GET_STATE, buf, buf_cap, 0, 0, 0, 0);
}
static inline int64_t nv_server_get_state(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_server_get_state_r(h, buf, buf_cap).r0;
}

/* nv_handle_identify: Describes a handle as an nv_handle_identity record: the identity of the object it names (unique for the monitor's life and never reused, so two handles name one object exactly when their identities are equal, whichever spaces they came from); a layer's stand-in reports the identity of the object it stands for, as handle_info reports its type, so a program compares its handles under a layer as it would without one, the object type and rights handle_info reports, the handle's badge, and NV_IDENT_SERVED when the object is a port the monitor's own code serves (a files root, a console, a layer's stand-in) rather than one a space receives on. A layer that saves or compares objects needs nothing more than its handles. Needs no rights.
 * Interface: handle. Rights needed: none.
 *   buf, buf_cap (OUT buffer): receives an nv_handle_identity record
 * R0: the bytes written; with NV_ETOOBIG, R1 is the size needed.
 * R1: the size needed, when the buffer was too small.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER; or the buffer is smaller than the record (R1 says what it needs)
 */
static inline nv_result_t nv_handle_identify_r(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_invoke(h, NV_OP_HANDLE_IDENTIFY, buf, buf_cap, 0, 0, 0, 0);
}
static inline int64_t nv_handle_identify(nv_handle_t h, nv_addr_t buf, uint64_t buf_cap)
{
	return nv_handle_identify_r(h, buf, buf_cap).r0;
}

/* nv_clock_wait: Waits until the clock reads at least deadline_ns, or until the caller is woken for another reason (a personality's thread by whoever changes what it waits for): the caller compares R0 with its deadline and waits again when it is early. Every timed wait below a clock can be expressed with it, so a layer standing in for the clock owns time for its subtree (services/timewarp). A thread stopped while it waits re-issues the call when resumed.
 * Interface: clock. Rights needed: read.
 *   which (IN): NV_CLOCK_MONOTONIC or NV_CLOCK_REALTIME
 *   deadline_ns (IN): the time to wait for on that clock, in its nanoseconds; 0 for no time (wait until woken)
 * R0: the clock's time when the wait ended.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EINVAL: which names no clock
 */
static inline nv_result_t nv_clock_wait_r(nv_handle_t h, uint64_t which, uint64_t deadline_ns)
{
	return nv_invoke(h, NV_OP_CLOCK_WAIT, which, deadline_ns, 0, 0, 0, 0);
}
static inline int64_t nv_clock_wait(nv_handle_t h, uint64_t which, uint64_t deadline_ns)
{
	return nv_clock_wait_r(h, which, deadline_ns).r0;
}

/* nv_space_running: Counts the threads of a space's subtree that wait and those that do not, so that a layer can tell when every thread below it waits (R0 is 0 and R1 is not: a virtual clock then jumps to the earliest deadline, or, with no deadline, the program is deadlocked). A subtree with no thread at all (being loaded, or ended) has both 0: nothing waits. A thread woken since it last looked at what it waits for (a futex_wake, a message, a reply) does not wait: it is about to run.
 * Interface: space. Rights needed: read.
 * R0: the number of threads of the space and of every space below it that do not wait: running guest code (or a server's work on a fault of theirs served inline), stopped (by thread_stop, or in a fault whose handler has not answered: someone may resume them), held in a call by a server that will let them go (a checkpoint holding a writer until it stops it for a save), or created and not yet started.
 * R1: the number of those threads that wait: asleep in an operation, not woken since they last looked at what they wait for.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 */
static inline nv_result_t nv_space_running_r(nv_handle_t h)
{
	return nv_invoke(h, NV_OP_SPACE_RUNNING, 0, 0, 0, 0, 0, 0);
}
static inline int64_t nv_space_running(nv_handle_t h)
{
	return nv_space_running_r(h).r0;
}

/* nv_futex_wait_clock: futex_wait with its time limit on a clock: the caller becomes a waiter on the word, the word is checked (NV_EWOULDBLOCK at once if it does not hold expected), then the caller waits with clock_wait on the clock, as itself, until the clock reaches deadline_ns (NV_ETIMEOUT) or a futex_wake of the word wakes it (0). So a layer standing in for the clock (services/timewarp) sees the wait and owns its time, as it owns every other timed wait below it; futex_wait's timeout_ns runs on the host's time. A wake ends the clock_wait of a server that holds the caller as a thread (the monitor's clock, a Go layer's) at once, and withdraws a call a guest server has yet to answer. Errors of the clock's clock_wait are the call's. A thread stopped while it waits re-issues the call when resumed; the deadline is absolute, so it waits no longer for having been stopped.
 * Interface: space. Rights needed: read.
 *   addr (IN): 4-byte aligned address of a 32-bit word
 *   expected (IN): the value to sleep on
 *   clock (IN, handle): the clock the deadline is on (needs read)
 *   which (IN): NV_CLOCK_MONOTONIC or NV_CLOCK_REALTIME
 *   deadline_ns (IN): the time on that clock to sleep until at most, in its nanoseconds; 0 for no limit
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table; or clock names nothing (or is NV_NO_HANDLE)
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation; or the clock's server performs no clock_wait
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface; or clock names no port (a clock is a port its server serves)
 *   NV_ERIGHTS: the handle lacks a right the operation needs; or the clock handle lacks read
 *   NV_EFAULT: the stack words holding a4 and a5 are not mapped readable; or the word is not mapped readable
 *   NV_EINVAL: addr is not 4-byte aligned, or expected is beyond 32 bits; or the clock's clock_wait refused which
 *   NV_EWOULDBLOCK: the word does not hold expected
 *   NV_ETIMEOUT: the clock reached deadline_ns
 */
static inline nv_result_t nv_futex_wait_clock_r(nv_handle_t h, uint64_t addr, uint64_t expected, nv_handle_t clock, uint64_t which, uint64_t deadline_ns)
{
	return nv_invoke(h, NV_OP_FUTEX_WAIT_CLOCK, addr, expected, clock, which, deadline_ns, 0);
}
static inline int64_t nv_futex_wait_clock(nv_handle_t h, uint64_t addr, uint64_t expected, nv_handle_t clock, uint64_t which, uint64_t deadline_ns)
{
	return nv_futex_wait_clock_r(h, addr, expected, clock, which, deadline_ns).r0;
}

/* nv_space_abort: Ends a space and every thread in it, and its child spaces with it, as killed (space_status reports NV_SPACE_KILLED with status 137, as for a kill by the monitor), and records the reason as the space's, where whoever waits on the space (a parent's exception port, the monitor's log, the command that ran the program) reads why it ended. It is how a layer that fails ends the subtree below it and says so. A space that has ended already keeps how it ended. A caller in another space waits until the space is gone, as with space_kill; a caller inside the space (or below it) does not wait: it is ending too; nor does monitor code through a host Caller of its own, which may run on a thread it ends.
 * Interface: space. Rights needed: control.
 *   reason, reason_len (IN buffer): why the space ends, as text: its first NV_MAX_REASON bytes are kept, invalid UTF-8 replaced; empty for none given
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_EINVALOP: the handle names a port whose server does not answer this operation
 *   NV_EWRONGTYPE: the handle's object does not implement the operation's interface
 *   NV_ERIGHTS: the handle lacks a right the operation needs
 *   NV_EFAULT: a buffer is not mapped with the access needed
 *   NV_ETOOBIG: a buffer is longer than NV_MAX_BUFFER
 */
static inline nv_result_t nv_space_abort_r(nv_handle_t h, nv_addr_t reason, uint64_t reason_len)
{
	return nv_invoke(h, NV_OP_SPACE_ABORT, reason, reason_len, 0, 0, 0, 0);
}
static inline int64_t nv_space_abort(nv_handle_t h, nv_addr_t reason, uint64_t reason_len)
{
	return nv_space_abort_r(h, reason, reason_len).r0;
}

/* nv_call_batch: Performs a sequence of operations in one call, in order, each exactly as a direct call of it would be: the same checks, the same rights, and on a handle that names a port (a layer's stand-in) delivered to its server, so every layer sees every entry. An entry may take its handle or an argument from the R0 of an earlier one (nv_batch_entry.from). Each entry that completes gets its R0 and R1 and its done mark; the batch stops at the first entry that fails, whose error field says why, and returns how many are done. An entry fails as a direct call of it would, and with NV_EINVAL where it is not allowed in a batch: call_batch itself, a from byte naming no earlier entry, or byte 7 of from set. An entry that blocks (port_receive, port_call, futex_wait, clock_wait, a call a server holds) blocks the batch. A thread stopped during a batch (thread_stop, a layer saving it) stops between two entries, or in the one that blocks, as it would between or in direct calls; the call is re-issued when it resumes, and skips the entries marked done, so none is performed twice: to issue a batch again, clear its done marks. Needs no rights; the handle may be any handle of the caller's. The entries stay the caller's memory: another thread changing them meanwhile changes what the batch does, never what the monitor may do.
 * Interface: handle. Rights needed: none.
 *   entries (IN): the guest address of the first of count nv_batch_entry records, in memory the caller may read and write
 *   count (IN): how many entries, at most NV_MAX_BATCH
 * R0: how many entries are done: count when all completed, else the index of the entry that failed.
 * Errors (a port a guest serves returns what its server replies):
 *   NV_EBADHANDLE: the handle names nothing in the caller's table
 *   NV_ETOOBIG: count exceeds NV_MAX_BATCH
 *   NV_EFAULT: the entries are not all in writable memory of the caller's space, or stopped being so during the batch (an entry unmapped them): the entries before are done
 *   NV_EINVAL: invoked by monitor code, which has no guest memory to hold entries
 */
static inline nv_result_t nv_call_batch_r(nv_handle_t h, uint64_t entries, uint64_t count)
{
	return nv_invoke(h, NV_OP_CALL_BATCH, entries, count, 0, 0, 0, 0);
}
static inline int64_t nv_call_batch(nv_handle_t h, uint64_t entries, uint64_t count)
{
	return nv_call_batch_r(h, entries, count).r0;
}

/* Records. Fields are fixed-width; records only grow at the end. Each
 * says which way it crosses: OUT the monitor writes, IN it reads. The
 * layout checks need C11's _Static_assert; a C99 compiler goes without. */

/* nv_start_info (OUT: the monitor writes it at start). */
struct nv_start_info {
	uint64_t magic; /* NV_START_MAGIC */
	uint64_t size; /* size of this record as the monitor wrote it */
	uint64_t abi_version; /* NESTVM_ABI_VERSION */
	uint64_t space; /* Handles the program starts with; NV_NO_HANDLE when absent. the program's own space */
	uint64_t thread; /* the starting thread */
	uint64_t console; /* the console (write) */
	uint64_t clock; /* a clock (read) */
	uint64_t argc; /* argc and Argv are the arguments, as on the stack. */
	uint64_t argv; /* guest address of an array of Argc+1 addresses */
	uint64_t heap_base; /* heap_base and HeapSize describe a zero-filled read-write area the program may use as it likes (the runtime's allocator uses it). */
	uint64_t heap_size; /* bytes of the heap area */
	uint64_t stack_base; /* stack_base and StackSize describe the initial thread's stack. */
	uint64_t stack_size; /* bytes of the stack */
	uint64_t files; /* files is a files root (the monitor's: a host directory, read-only unless the user allowed writes); NV_NO_HANDLE when absent. */
	uint64_t stderr; /* stderr is a console for diagnostics (the monitor's standard error); NV_NO_HANDLE when absent. */
	uint64_t stdin; /* stdin is an input console (console_read: the monitor's standard input); NV_NO_HANDLE when absent. */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_start_info) == 128, "struct nv_start_info size");
_Static_assert(offsetof(struct nv_start_info, magic) == 0, "nv_start_info.magic offset");
_Static_assert(offsetof(struct nv_start_info, size) == 8, "nv_start_info.size offset");
_Static_assert(offsetof(struct nv_start_info, abi_version) == 16, "nv_start_info.abi_version offset");
_Static_assert(offsetof(struct nv_start_info, space) == 24, "nv_start_info.space offset");
_Static_assert(offsetof(struct nv_start_info, thread) == 32, "nv_start_info.thread offset");
_Static_assert(offsetof(struct nv_start_info, console) == 40, "nv_start_info.console offset");
_Static_assert(offsetof(struct nv_start_info, clock) == 48, "nv_start_info.clock offset");
_Static_assert(offsetof(struct nv_start_info, argc) == 56, "nv_start_info.argc offset");
_Static_assert(offsetof(struct nv_start_info, argv) == 64, "nv_start_info.argv offset");
_Static_assert(offsetof(struct nv_start_info, heap_base) == 72, "nv_start_info.heap_base offset");
_Static_assert(offsetof(struct nv_start_info, heap_size) == 80, "nv_start_info.heap_size offset");
_Static_assert(offsetof(struct nv_start_info, stack_base) == 88, "nv_start_info.stack_base offset");
_Static_assert(offsetof(struct nv_start_info, stack_size) == 96, "nv_start_info.stack_size offset");
_Static_assert(offsetof(struct nv_start_info, files) == 104, "nv_start_info.files offset");
_Static_assert(offsetof(struct nv_start_info, stderr) == 112, "nv_start_info.stderr offset");
_Static_assert(offsetof(struct nv_start_info, stdin) == 120, "nv_start_info.stdin offset");
#endif

/* nv_thread_regs (IN/OUT: as part of nv_thread_state). */
struct nv_thread_regs {
	uint64_t rax; /* the general-purpose registers */
	uint64_t rbx; /* the general-purpose registers */
	uint64_t rcx; /* the general-purpose registers */
	uint64_t rdx; /* the general-purpose registers */
	uint64_t rsi; /* the general-purpose registers */
	uint64_t rdi; /* the general-purpose registers */
	uint64_t rbp; /* the general-purpose registers */
	uint64_t rsp; /* the general-purpose registers */
	uint64_t r8; /* the general-purpose registers */
	uint64_t r9; /* the general-purpose registers */
	uint64_t r10; /* the general-purpose registers */
	uint64_t r11; /* the general-purpose registers */
	uint64_t r12; /* the general-purpose registers */
	uint64_t r13; /* the general-purpose registers */
	uint64_t r14; /* the general-purpose registers */
	uint64_t r15; /* the general-purpose registers */
	uint64_t rip; /* the instruction pointer and the flags (only those user code may hold are kept) */
	uint64_t rflags; /* the instruction pointer and the flags (only those user code may hold are kept) */
	uint64_t fs_base; /* the FS and GS segment bases (thread-local storage) */
	uint64_t gs_base; /* the FS and GS segment bases (thread-local storage) */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_thread_regs) == 160, "struct nv_thread_regs size");
_Static_assert(offsetof(struct nv_thread_regs, rax) == 0, "nv_thread_regs.rax offset");
_Static_assert(offsetof(struct nv_thread_regs, rbx) == 8, "nv_thread_regs.rbx offset");
_Static_assert(offsetof(struct nv_thread_regs, rcx) == 16, "nv_thread_regs.rcx offset");
_Static_assert(offsetof(struct nv_thread_regs, rdx) == 24, "nv_thread_regs.rdx offset");
_Static_assert(offsetof(struct nv_thread_regs, rsi) == 32, "nv_thread_regs.rsi offset");
_Static_assert(offsetof(struct nv_thread_regs, rdi) == 40, "nv_thread_regs.rdi offset");
_Static_assert(offsetof(struct nv_thread_regs, rbp) == 48, "nv_thread_regs.rbp offset");
_Static_assert(offsetof(struct nv_thread_regs, rsp) == 56, "nv_thread_regs.rsp offset");
_Static_assert(offsetof(struct nv_thread_regs, r8) == 64, "nv_thread_regs.r8 offset");
_Static_assert(offsetof(struct nv_thread_regs, r9) == 72, "nv_thread_regs.r9 offset");
_Static_assert(offsetof(struct nv_thread_regs, r10) == 80, "nv_thread_regs.r10 offset");
_Static_assert(offsetof(struct nv_thread_regs, r11) == 88, "nv_thread_regs.r11 offset");
_Static_assert(offsetof(struct nv_thread_regs, r12) == 96, "nv_thread_regs.r12 offset");
_Static_assert(offsetof(struct nv_thread_regs, r13) == 104, "nv_thread_regs.r13 offset");
_Static_assert(offsetof(struct nv_thread_regs, r14) == 112, "nv_thread_regs.r14 offset");
_Static_assert(offsetof(struct nv_thread_regs, r15) == 120, "nv_thread_regs.r15 offset");
_Static_assert(offsetof(struct nv_thread_regs, rip) == 128, "nv_thread_regs.rip offset");
_Static_assert(offsetof(struct nv_thread_regs, rflags) == 136, "nv_thread_regs.rflags offset");
_Static_assert(offsetof(struct nv_thread_regs, fs_base) == 144, "nv_thread_regs.fs_base offset");
_Static_assert(offsetof(struct nv_thread_regs, gs_base) == 152, "nv_thread_regs.gs_base offset");
#endif

/* nv_thread_state (IN/OUT: thread_get_state and a fault message write it; thread_set_state and a NV_FAULT_RESUME_STATE reply read it). */
struct nv_thread_state {
	struct nv_thread_regs regs; /* the integer registers */
	uint8_t fpu[512]; /* the x87/SSE state, as FXSAVE writes it */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_thread_state) == 672, "struct nv_thread_state size");
_Static_assert(offsetof(struct nv_thread_state, regs) == 0, "nv_thread_state.regs offset");
_Static_assert(offsetof(struct nv_thread_state, fpu) == 160, "nv_thread_state.fpu offset");
#endif

/* nv_msg (OUT: port_receive and port_get_state write it). */
struct nv_msg {
	uint64_t kind; /* NV_MSG_CALL, NV_MSG_SEND, NV_MSG_FAULT, NV_MSG_PAGE or NV_MSG_EXIT */
	uint64_t op; /* NV_MSG_CALL: the operation invoked; NV_MSG_SEND: the tag */
	uint64_t badge; /* the badge of the handle the sender invoked (or of the keeper or exception port) */
	uint64_t call_id; /* the id to answer with port_reply; 0 for one-way messages */
	uint64_t words[6]; /* words are the caller's argument slots (NV_MSG_CALL, NV_MSG_SEND) or the NV_FW_* values (NV_MSG_FAULT, NV_MSG_PAGE, NV_MSG_EXIT). Buffer arguments keep the caller's address, which means nothing to the receiver, and their length. */
	uint64_t data_len; /* data_len is the length of the bytes the message carries: the first input buffer of a call, a send's data, a fault's thread state. */
	uint64_t reply_cap; /* reply_cap is the capacity of the caller's output buffer, the most reply data it accepts; 0 when the operation has none. */
	uint64_t n_handles; /* n_handles handles arrived with the message, inserted into the receiver's table: a call's handle arguments in order, a send's handle, a fault's thread. */
	uint64_t handles[4]; /* their numbers in the receiver's table; NV_NO_HANDLE for one that did not arrive */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_msg) == 136, "struct nv_msg size");
_Static_assert(offsetof(struct nv_msg, kind) == 0, "nv_msg.kind offset");
_Static_assert(offsetof(struct nv_msg, op) == 8, "nv_msg.op offset");
_Static_assert(offsetof(struct nv_msg, badge) == 16, "nv_msg.badge offset");
_Static_assert(offsetof(struct nv_msg, call_id) == 24, "nv_msg.call_id offset");
_Static_assert(offsetof(struct nv_msg, words) == 32, "nv_msg.words offset");
_Static_assert(offsetof(struct nv_msg, data_len) == 80, "nv_msg.data_len offset");
_Static_assert(offsetof(struct nv_msg, reply_cap) == 88, "nv_msg.reply_cap offset");
_Static_assert(offsetof(struct nv_msg, n_handles) == 96, "nv_msg.n_handles offset");
_Static_assert(offsetof(struct nv_msg, handles) == 104, "nv_msg.handles offset");
#endif

/* nv_space_state (OUT: space_get_state writes it). */
struct nv_space_state {
	uint64_t size; /* bytes of the whole state, this record included */
	uint64_t pages; /* Quotas: pages, threads, handles, child spaces. */
	uint64_t threads; /* Quotas: pages, threads, handles, child spaces. */
	uint64_t handles; /* Quotas: pages, threads, handles, child spaces. */
	uint64_t children; /* Quotas: pages, threads, handles, child spaces. */
	uint64_t exception_port; /* exception_port is a copy of the exception port handle (with its badge), or NV_NO_HANDLE. */
	uint64_t exception_object; /* the exception port's object number in this stream */
	uint64_t status; /* NV_SPACE_RUNNING, NV_SPACE_EXITED or NV_SPACE_KILLED */
	uint64_t n_maps; /* nv_space_map records that follow */
	uint64_t n_handles; /* nv_space_handle records that follow them */
	uint64_t n_threads; /* nv_space_thread records that follow those */
	uint64_t identity; /* identity is the space's identity, as handle_identify reports it for a handle to the space: unique for the monitor's life, never 0 or reused, unlike the Object numbers, which hold for one stream. */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_space_state) == 96, "struct nv_space_state size");
_Static_assert(offsetof(struct nv_space_state, size) == 0, "nv_space_state.size offset");
_Static_assert(offsetof(struct nv_space_state, pages) == 8, "nv_space_state.pages offset");
_Static_assert(offsetof(struct nv_space_state, threads) == 16, "nv_space_state.threads offset");
_Static_assert(offsetof(struct nv_space_state, handles) == 24, "nv_space_state.handles offset");
_Static_assert(offsetof(struct nv_space_state, children) == 32, "nv_space_state.children offset");
_Static_assert(offsetof(struct nv_space_state, exception_port) == 40, "nv_space_state.exception_port offset");
_Static_assert(offsetof(struct nv_space_state, exception_object) == 48, "nv_space_state.exception_object offset");
_Static_assert(offsetof(struct nv_space_state, status) == 56, "nv_space_state.status offset");
_Static_assert(offsetof(struct nv_space_state, n_maps) == 64, "nv_space_state.n_maps offset");
_Static_assert(offsetof(struct nv_space_state, n_handles) == 72, "nv_space_state.n_handles offset");
_Static_assert(offsetof(struct nv_space_state, n_threads) == 80, "nv_space_state.n_threads offset");
_Static_assert(offsetof(struct nv_space_state, identity) == 88, "nv_space_state.identity offset");
#endif

/* nv_space_map (OUT: space_get_state writes it). */
struct nv_space_map {
	uint64_t addr; /* the mapped range, and where it starts in the region */
	uint64_t size; /* the mapped range, and where it starts in the region */
	uint64_t offset; /* the mapped range, and where it starts in the region */
	uint64_t perm; /* NV_PERM_READ|NV_PERM_WRITE|NV_PERM_EXEC as mapped now */
	uint64_t limit; /* the most space_protect may grant (the region handle's) */
	uint64_t region; /* a copy of a handle to the region, or NV_NO_HANDLE for memory the monitor mapped itself */
	uint64_t object; /* the region's object number in this stream */
	uint64_t flags; /* NV_STATE_OWNED when the region is charged to this space */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_space_map) == 64, "struct nv_space_map size");
_Static_assert(offsetof(struct nv_space_map, addr) == 0, "nv_space_map.addr offset");
_Static_assert(offsetof(struct nv_space_map, size) == 8, "nv_space_map.size offset");
_Static_assert(offsetof(struct nv_space_map, offset) == 16, "nv_space_map.offset offset");
_Static_assert(offsetof(struct nv_space_map, perm) == 24, "nv_space_map.perm offset");
_Static_assert(offsetof(struct nv_space_map, limit) == 32, "nv_space_map.limit offset");
_Static_assert(offsetof(struct nv_space_map, region) == 40, "nv_space_map.region offset");
_Static_assert(offsetof(struct nv_space_map, object) == 48, "nv_space_map.object offset");
_Static_assert(offsetof(struct nv_space_map, flags) == 56, "nv_space_map.flags offset");
#endif

/* nv_space_handle (OUT: space_get_state writes it). */
struct nv_space_handle {
	uint64_t number; /* its number in the space */
	uint64_t handle; /* a copy in the caller's table, with the same rights and badge */
	uint64_t type; /* the object type it names */
	uint64_t rights; /* its rights */
	uint64_t badge; /* its badge; 0 for none */
	uint64_t object; /* its object's number in this stream */
	uint64_t node; /* node identifies this handle and Parent the handle it was derived from (0: none, or one since closed with no ancestor left). They are tags, not handles: unique for the monitor's life, never reused, and granting nothing. Reading several spaces, a restorer finds which handle of which space each one came from. */
	uint64_t parent; /* Node identifies this handle and Parent the handle it was derived from (0: none, or one since closed with no ancestor left). They are tags, not handles: unique for the monitor's life, never reused, and granting nothing. Reading several spaces, a restorer finds which handle of which space each one came from. */
	uint64_t flags; /* NV_STATE_OWNED when the object (a region, port or port set) is charged to this space */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_space_handle) == 72, "struct nv_space_handle size");
_Static_assert(offsetof(struct nv_space_handle, number) == 0, "nv_space_handle.number offset");
_Static_assert(offsetof(struct nv_space_handle, handle) == 8, "nv_space_handle.handle offset");
_Static_assert(offsetof(struct nv_space_handle, type) == 16, "nv_space_handle.type offset");
_Static_assert(offsetof(struct nv_space_handle, rights) == 24, "nv_space_handle.rights offset");
_Static_assert(offsetof(struct nv_space_handle, badge) == 32, "nv_space_handle.badge offset");
_Static_assert(offsetof(struct nv_space_handle, object) == 40, "nv_space_handle.object offset");
_Static_assert(offsetof(struct nv_space_handle, node) == 48, "nv_space_handle.node offset");
_Static_assert(offsetof(struct nv_space_handle, parent) == 56, "nv_space_handle.parent offset");
_Static_assert(offsetof(struct nv_space_handle, flags) == 64, "nv_space_handle.flags offset");
#endif

/* nv_space_thread (OUT: space_get_state writes it). */
struct nv_space_thread {
	uint64_t handle; /* a copy in the caller's table, with every right */
	uint64_t object; /* the thread's object number in this stream */
	uint64_t number; /* the thread's number in the space, as its faults name it (NV_FW_THREAD) */
	uint64_t identity; /* identity is the thread's identity, as handle_identify reports it for a handle to the thread: unique for the monitor's life, never 0 or reused. */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_space_thread) == 32, "struct nv_space_thread size");
_Static_assert(offsetof(struct nv_space_thread, handle) == 0, "nv_space_thread.handle offset");
_Static_assert(offsetof(struct nv_space_thread, object) == 8, "nv_space_thread.object offset");
_Static_assert(offsetof(struct nv_space_thread, number) == 16, "nv_space_thread.number offset");
_Static_assert(offsetof(struct nv_space_thread, identity) == 24, "nv_space_thread.identity offset");
#endif

/* nv_handle_identity (OUT: handle_identify writes it). */
struct nv_handle_identity {
	uint64_t object; /* the object's identity: unique for the monitor's life, never 0 or reused */
	uint64_t type; /* the object type (NV_OBJ_*), as handle_info reports it */
	uint64_t rights; /* the handle's rights */
	uint64_t badge; /* the handle's badge; 0 for none */
	uint64_t flags; /* NV_IDENT_SERVED when the monitor's own code serves the object */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_handle_identity) == 40, "struct nv_handle_identity size");
_Static_assert(offsetof(struct nv_handle_identity, object) == 0, "nv_handle_identity.object offset");
_Static_assert(offsetof(struct nv_handle_identity, type) == 8, "nv_handle_identity.type offset");
_Static_assert(offsetof(struct nv_handle_identity, rights) == 16, "nv_handle_identity.rights offset");
_Static_assert(offsetof(struct nv_handle_identity, badge) == 24, "nv_handle_identity.badge offset");
_Static_assert(offsetof(struct nv_handle_identity, flags) == 32, "nv_handle_identity.flags offset");
#endif

/* nv_region_state (OUT: region_get_state writes it). */
struct nv_region_state {
	uint64_t size; /* the region's size in bytes */
	uint64_t keeper; /* a copy of the keeper port handle, or NV_NO_HANDLE */
	uint64_t keeper_badge; /* the badge the keeper was set with */
	uint64_t bitmap_words; /* uint64 words of bitmap that follow; 0 without a keeper */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_region_state) == 32, "struct nv_region_state size");
_Static_assert(offsetof(struct nv_region_state, size) == 0, "nv_region_state.size offset");
_Static_assert(offsetof(struct nv_region_state, keeper) == 8, "nv_region_state.keeper offset");
_Static_assert(offsetof(struct nv_region_state, keeper_badge) == 16, "nv_region_state.keeper_badge offset");
_Static_assert(offsetof(struct nv_region_state, bitmap_words) == 24, "nv_region_state.bitmap_words offset");
#endif

/* nv_port_state (OUT: port_get_state writes it). */
struct nv_port_state {
	uint64_t size; /* bytes of the whole state, this record included */
	uint64_t n_msgs; /* messages that follow */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_port_state) == 16, "struct nv_port_state size");
_Static_assert(offsetof(struct nv_port_state, size) == 0, "nv_port_state.size offset");
_Static_assert(offsetof(struct nv_port_state, n_msgs) == 8, "nv_port_state.n_msgs offset");
#endif

/* nv_port_set_state (OUT: port_set_get_state writes it). */
struct nv_port_set_state {
	uint64_t size; /* bytes of the whole state, this record included */
	uint64_t n_ports; /* handle numbers that follow */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_port_set_state) == 16, "struct nv_port_set_state size");
_Static_assert(offsetof(struct nv_port_set_state, size) == 0, "nv_port_set_state.size offset");
_Static_assert(offsetof(struct nv_port_set_state, n_ports) == 8, "nv_port_set_state.n_ports offset");
#endif

/* nv_stat (OUT: files_stat and file_stat write it). */
struct nv_stat {
	uint64_t type; /* NV_FT_* */
	uint64_t mode; /* the permission bits (07777: rwx for owner, group, others; setuid, setgid, sticky) */
	uint64_t size; /* bytes; a link's is the length of its target text */
	uint64_t nlink; /* hard links to it */
	uint64_t uid; /* its owner on the host */
	uint64_t gid; /* its owner on the host */
	uint64_t inode; /* its number on its device: with Device, it tells files apart */
	uint64_t device; /* the host device holding it */
	uint64_t rdev; /* for a device file, the device it stands for */
	uint64_t blocks; /* 512-byte blocks allocated to it */
	uint64_t block_size; /* the preferred size of an I/O on it */
	int64_t atime_sec; /* last access */
	uint64_t atime_nsec; /* its nanoseconds */
	int64_t mtime_sec; /* last change of contents */
	uint64_t mtime_nsec; /* its nanoseconds */
	int64_t ctime_sec; /* last change of contents or metadata */
	uint64_t ctime_nsec; /* its nanoseconds */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_stat) == 136, "struct nv_stat size");
_Static_assert(offsetof(struct nv_stat, type) == 0, "nv_stat.type offset");
_Static_assert(offsetof(struct nv_stat, mode) == 8, "nv_stat.mode offset");
_Static_assert(offsetof(struct nv_stat, size) == 16, "nv_stat.size offset");
_Static_assert(offsetof(struct nv_stat, nlink) == 24, "nv_stat.nlink offset");
_Static_assert(offsetof(struct nv_stat, uid) == 32, "nv_stat.uid offset");
_Static_assert(offsetof(struct nv_stat, gid) == 40, "nv_stat.gid offset");
_Static_assert(offsetof(struct nv_stat, inode) == 48, "nv_stat.inode offset");
_Static_assert(offsetof(struct nv_stat, device) == 56, "nv_stat.device offset");
_Static_assert(offsetof(struct nv_stat, rdev) == 64, "nv_stat.rdev offset");
_Static_assert(offsetof(struct nv_stat, blocks) == 72, "nv_stat.blocks offset");
_Static_assert(offsetof(struct nv_stat, block_size) == 80, "nv_stat.block_size offset");
_Static_assert(offsetof(struct nv_stat, atime_sec) == 88, "nv_stat.atime_sec offset");
_Static_assert(offsetof(struct nv_stat, atime_nsec) == 96, "nv_stat.atime_nsec offset");
_Static_assert(offsetof(struct nv_stat, mtime_sec) == 104, "nv_stat.mtime_sec offset");
_Static_assert(offsetof(struct nv_stat, mtime_nsec) == 112, "nv_stat.mtime_nsec offset");
_Static_assert(offsetof(struct nv_stat, ctime_sec) == 120, "nv_stat.ctime_sec offset");
_Static_assert(offsetof(struct nv_stat, ctime_nsec) == 128, "nv_stat.ctime_nsec offset");
#endif

/* nv_dirent (OUT: file_readdir writes it). */
struct nv_dirent {
	uint64_t inode; /* as the directory holds it */
	uint32_t type; /* NV_FT_* */
	uint32_t name_len; /* bytes of the name, not counting its NUL byte */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_dirent) == 16, "struct nv_dirent size");
_Static_assert(offsetof(struct nv_dirent, inode) == 0, "nv_dirent.inode offset");
_Static_assert(offsetof(struct nv_dirent, type) == 8, "nv_dirent.type offset");
_Static_assert(offsetof(struct nv_dirent, name_len) == 12, "nv_dirent.name_len offset");
#endif

/* nv_time_page (OUT: the monitor keeps it current in the page clock_time_page hands out). */
struct nv_time_page {
	uint64_t seq; /* odd while the clock rewrites the record */
	uint64_t flags; /* NV_TIME_TSC when the fields below can be used */
	uint64_t tsc_base; /* the counter at the record's anchor */
	uint64_t mult; /* nanoseconds per counter tick, times 2^Shift */
	uint64_t shift; /* the scale of Mult, in bits (at most 63) */
	uint64_t mono_base; /* monotonic nanoseconds at TSCBase */
	uint64_t real_base; /* realtime nanoseconds at TSCBase */
	uint64_t max_delta; /* counter ticks past TSCBase the record holds for */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_time_page) == 64, "struct nv_time_page size");
_Static_assert(offsetof(struct nv_time_page, seq) == 0, "nv_time_page.seq offset");
_Static_assert(offsetof(struct nv_time_page, flags) == 8, "nv_time_page.flags offset");
_Static_assert(offsetof(struct nv_time_page, tsc_base) == 16, "nv_time_page.tsc_base offset");
_Static_assert(offsetof(struct nv_time_page, mult) == 24, "nv_time_page.mult offset");
_Static_assert(offsetof(struct nv_time_page, shift) == 32, "nv_time_page.shift offset");
_Static_assert(offsetof(struct nv_time_page, mono_base) == 40, "nv_time_page.mono_base offset");
_Static_assert(offsetof(struct nv_time_page, real_base) == 48, "nv_time_page.real_base offset");
_Static_assert(offsetof(struct nv_time_page, max_delta) == 56, "nv_time_page.max_delta offset");
#endif

/* nv_batch_entry (IN/OUT: call_batch reads the operations and writes their results). */
struct nv_batch_entry {
	uint64_t handle; /* the handle the operation is invoked on */
	uint64_t op; /* the operation (NV_OP_*) */
	uint64_t args[6]; /* args are the operation's argument slots, as a direct call passes them (a buffer is its guest address and length). */
	uint64_t from; /* from takes values from earlier entries: byte 0 stands for the handle, byte 1+i for args[i]. A byte k of 1 to the entry's own index replaces that value with the R0 of entry k-1 (so thread_create can name the space space_create made); 0 keeps the value as written. Byte 7 must be 0. */
	uint64_t r0; /* the entry's R0, once done */
	uint64_t r1; /* the entry's R1, once done */
	uint64_t error; /* the entry's error code (NV_E*) when it failed, else 0 */
	uint64_t done; /* done is 1 once the entry completed; a batch issued again skips the entries marked done, using the R0 they recorded. */
};
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct nv_batch_entry) == 104, "struct nv_batch_entry size");
_Static_assert(offsetof(struct nv_batch_entry, handle) == 0, "nv_batch_entry.handle offset");
_Static_assert(offsetof(struct nv_batch_entry, op) == 8, "nv_batch_entry.op offset");
_Static_assert(offsetof(struct nv_batch_entry, args) == 16, "nv_batch_entry.args offset");
_Static_assert(offsetof(struct nv_batch_entry, from) == 64, "nv_batch_entry.from offset");
_Static_assert(offsetof(struct nv_batch_entry, r0) == 72, "nv_batch_entry.r0 offset");
_Static_assert(offsetof(struct nv_batch_entry, r1) == 80, "nv_batch_entry.r1 offset");
_Static_assert(offsetof(struct nv_batch_entry, error) == 88, "nv_batch_entry.error offset");
_Static_assert(offsetof(struct nv_batch_entry, done) == 96, "nv_batch_entry.done offset");
#endif

#endif /* NESTVM_ABI_H */
