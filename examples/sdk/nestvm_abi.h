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

#include <stdint.h>

#define NESTVM_ABI_VERSION   0x1ull /* bumped on any change a guest could observe */
#define NV_PAGE_SIZE         0x1000ull /* the smallest mapping unit */
#define NV_RESERVED_BASE     0x100000ull /* start of the monitor's range in every space */
#define NV_RESERVED_TOP      0x400000ull /* end of the monitor's range */
#define NV_ABI_PAGE          0x100000ull /* the read-only ABI page */
#define NV_ABI_ENTRY         0x100000ull /* the entry point of every operation */
#define NV_NULLTRAP_ENTRY    0x100020ull /* a function that only traps and returns (benchmarks) */
#define NV_USER_BASE         0x400000ull /* lowest address a program may load or map at */
#define NV_USER_TOP          0x1000000000ull /* one past the highest such address */
#define NV_MAX_BUFFER        0x1000000ull /* the longest buffer one operation accepts */
#define NV_MAX_ARG_SLOTS     0x6ull /* argument slots of an operation */
#define NV_NO_HANDLE         0x0ull /* the handle number that names nothing */
#define NV_CLOCK_MONOTONIC   0x0ull /* clock_read: time since an arbitrary point */
#define NV_CLOCK_REALTIME    0x1ull /* clock_read: time since the Unix epoch */
#define NV_START_MAGIC       0x315452415453564eull /* nv_start_info.magic */
#define NV_AT_STARTINFO      0x4e56ull /* auxv type whose value is the nv_start_info address */
#define NV_FXSAVE_SIZE       0x200ull /* size of the x87/SSE state */

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
	NV_ERR_COUNT = 17
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
	NV_OBJ_COUNT = 5
};

/* Operations. 0 is reserved; numbers are never reused. */
enum nv_op {
	NV_OP_NONE = 0,
	NV_OP_HANDLE_INFO = 1, /* handle: Reports what a handle names and what it allows. */
	NV_OP_HANDLE_CLOSE = 2, /* handle: Removes the handle from the caller's table. */
	NV_OP_CONSOLE_WRITE = 3, /* console: Writes bytes to the console: the program's standard output. */
	NV_OP_CLOCK_READ = 4, /* clock: Reads a clock. */
	NV_OP_THREAD_EXIT = 5, /* thread: Ends the thread the handle names with a status. */
	NV_OP_COUNT = 6
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
 * R0: the ObjectType the handle names.
 * R1: the handle's Rights.
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
 *   which (IN): ClockMonotonic or ClockRealtime
 * R0: the time in nanoseconds.
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
 */
static inline nv_result_t nv_thread_exit_r(nv_handle_t h, uint64_t status)
{
	return nv_invoke(h, NV_OP_THREAD_EXIT, status, 0, 0, 0, 0, 0);
}
static inline int64_t nv_thread_exit(nv_handle_t h, uint64_t status)
{
	return nv_thread_exit_r(h, status).r0;
}

/* Records. Fields are fixed-width; records only grow at the end. */

struct nv_start_info {
	uint64_t magic;
	uint64_t size;
	uint64_t abi_version;
	uint64_t space;
	uint64_t thread;
	uint64_t console;
	uint64_t clock;
	uint64_t argc;
	uint64_t argv;
	uint64_t heap_base;
	uint64_t heap_size;
	uint64_t stack_base;
	uint64_t stack_size;
};
_Static_assert(sizeof(struct nv_start_info) == 104, "struct nv_start_info size");
_Static_assert(__builtin_offsetof(struct nv_start_info, magic) == 0, "nv_start_info.magic offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, size) == 8, "nv_start_info.size offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, abi_version) == 16, "nv_start_info.abi_version offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, space) == 24, "nv_start_info.space offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, thread) == 32, "nv_start_info.thread offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, console) == 40, "nv_start_info.console offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, clock) == 48, "nv_start_info.clock offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, argc) == 56, "nv_start_info.argc offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, argv) == 64, "nv_start_info.argv offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, heap_base) == 72, "nv_start_info.heap_base offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, heap_size) == 80, "nv_start_info.heap_size offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, stack_base) == 88, "nv_start_info.stack_base offset");
_Static_assert(__builtin_offsetof(struct nv_start_info, stack_size) == 96, "nv_start_info.stack_size offset");

struct nv_thread_regs {
	uint64_t rax;
	uint64_t rbx;
	uint64_t rcx;
	uint64_t rdx;
	uint64_t rsi;
	uint64_t rdi;
	uint64_t rbp;
	uint64_t rsp;
	uint64_t r8;
	uint64_t r9;
	uint64_t r10;
	uint64_t r11;
	uint64_t r12;
	uint64_t r13;
	uint64_t r14;
	uint64_t r15;
	uint64_t rip;
	uint64_t rflags;
	uint64_t fs_base;
	uint64_t gs_base;
};
_Static_assert(sizeof(struct nv_thread_regs) == 160, "struct nv_thread_regs size");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, rax) == 0, "nv_thread_regs.rax offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, rbx) == 8, "nv_thread_regs.rbx offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, rcx) == 16, "nv_thread_regs.rcx offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, rdx) == 24, "nv_thread_regs.rdx offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, rsi) == 32, "nv_thread_regs.rsi offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, rdi) == 40, "nv_thread_regs.rdi offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, rbp) == 48, "nv_thread_regs.rbp offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, rsp) == 56, "nv_thread_regs.rsp offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, r8) == 64, "nv_thread_regs.r8 offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, r9) == 72, "nv_thread_regs.r9 offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, r10) == 80, "nv_thread_regs.r10 offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, r11) == 88, "nv_thread_regs.r11 offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, r12) == 96, "nv_thread_regs.r12 offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, r13) == 104, "nv_thread_regs.r13 offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, r14) == 112, "nv_thread_regs.r14 offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, r15) == 120, "nv_thread_regs.r15 offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, rip) == 128, "nv_thread_regs.rip offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, rflags) == 136, "nv_thread_regs.rflags offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, fs_base) == 144, "nv_thread_regs.fs_base offset");
_Static_assert(__builtin_offsetof(struct nv_thread_regs, gs_base) == 152, "nv_thread_regs.gs_base offset");

struct nv_thread_state {
	struct nv_thread_regs regs;
	uint8_t fpu[512];
};
_Static_assert(sizeof(struct nv_thread_state) == 672, "struct nv_thread_state size");
_Static_assert(__builtin_offsetof(struct nv_thread_state, regs) == 0, "nv_thread_state.regs offset");
_Static_assert(__builtin_offsetof(struct nv_thread_state, fpu) == 160, "nv_thread_state.fpu offset");

#endif /* NESTVM_ABI_H */
