/* bench MODE N: runs N iterations of MODE and prints
 * "bench MODE N ELAPSED_NS". Modes:
 *
 *   nulltrap  the raw trap, no ABI work (NV_NULLTRAP_ENTRY)
 *   info      handle_info: a bare ABI call
 *   write     a 1-byte console write
 *   clock     a clock_read of the monotonic clock on the clock handle: the
 *             call a layer that wraps the clock interposes on (nestvm
 *             bench's ipc workload)
 *   compute   N rounds of the compute loop
 *   ipc       a port_call answered by a server thread of this space
 *             (port_receive, port_reply): one round trip
 *   keeper    the first touch of a page of a region whose keeper is a
 *             thread of this space: the fault, the page request, the
 *             keeper's region_supply and its reply that resumes the toucher
 *   spawn     a child space with a one-page region holding a few
 *             instructions, and a thread in it that exits at once: create
 *             everything, start the thread, wait for the child's exit
 *             notice on its exception port, close the handles
 *
 * The timed span is the N iterations alone: set-up (threads started, one
 * untimed round of each kind so that first-use costs stay out) comes
 * before it. Any operation that fails ends the program with status 1. */
#include "../compute/loop.h"
#include "nestvm.h"

#define PAGE NV_PAGE_SIZE

typedef void (*trap_fn)(void);

/* check returns r when it is a value, and otherwise ends the program. */
static int64_t check(int64_t r, const char *what)
{
	if (r < 0) {
		nv_fprintf(nv_stderr(), "bench: %s: %s\n", what, nv_strerror(r));
		nv_exit(1);
	}
	return r;
}

/* --- threads of this space, as kerneltest starts them -------------------- */

struct thread {
	nv_handle_t h;
	void (*fn)(struct thread *);
	uint64_t arg;
};

static void thread_entry(uint64_t p)
{
	struct thread *t = (struct thread *)(uintptr_t)p;
	t->fn(t);
	nv_thread_exit(t->h, 0);
	for (;;)
		;
}

static void spawn_thread(struct thread *t)
{
	const size_t size = 64 << 10;
	char *stack = nv_alloc(size);
	if (!stack)
		check(-NV_ENOMEM, "thread stack");
	/* As after a call: RSP+8 is 16-byte aligned. */
	uint64_t sp = ((NV_ADDR(stack) + size) & ~15ull) - 8;
	t->h = (nv_handle_t)check(nv_thread_create(nv_self_space(), NV_ADDR(thread_entry), sp, NV_ADDR(t)),
				  "thread_create");
	check(nv_thread_start(t->h), "thread_start");
}

/* --- ipc ------------------------------------------------------------------ */

static nv_handle_t ipc_port;

/* echo answers every call with its tag, until the port goes away. */
static void echo(struct thread *t)
{
	(void)t;
	struct nv_msg m;
	while (nv_port_receive(ipc_port, NV_ADDR(&m), sizeof m, 0, 0) >= 0)
		nv_port_reply(ipc_port, m.call_id, (int64_t)m.words[0], 0, 0, 0, NV_NO_HANDLE);
}

static void ipc_call(nv_handle_t c, uint64_t tag)
{
	int64_t r = check(nv_port_call(c, tag, 0, 0, 0, 0), "port_call");
	if ((uint64_t)r != tag)
		nv_panic("bench ipc: the server answered %lld to tag %llu", (long long)r, (unsigned long long)tag);
}

static uint64_t bench_ipc(uint64_t n)
{
	ipc_port = (nv_handle_t)check(nv_port_create(nv_self_space()), "port_create");
	nv_handle_t c = (nv_handle_t)check(nv_handle_derive(ipc_port, NV_R_CALL, 1), "handle_derive");
	static struct thread server = {.fn = echo};
	spawn_thread(&server);
	ipc_call(c, 0); /* the server is up */
	uint64_t start = nv_now_ns();
	for (uint64_t i = 1; i <= n; i++)
		ipc_call(c, i);
	return nv_now_ns() - start;
}

/* --- keeper --------------------------------------------------------------- */

/* Where the kept region is mapped: far above the image and heap, far below
 * the stack at the top of the user range. */
#define KEPT_AT 0x800000000ull

static nv_handle_t keep_port, keep_region;

/* keeper supplies every page asked for, filled with its page number, as a
 * user-level pager builds a page and hands it over. */
static void keeper(struct thread *t)
{
	(void)t;
	static uint64_t page[PAGE / 8] __attribute__((aligned(PAGE)));
	struct nv_msg m;
	while (nv_port_receive(keep_port, NV_ADDR(&m), sizeof m, 0, 0) >= 0) {
		if (m.kind != NV_MSG_PAGE) {
			if (m.call_id)
				nv_port_reply(keep_port, m.call_id, -NV_EINVALOP, 0, 0, 0, NV_NO_HANDLE);
			continue;
		}
		uint64_t off = m.words[NV_FW_OFFSET];
		for (size_t i = 0; i < PAGE / 8; i++)
			page[i] = off / PAGE;
		check(nv_region_supply(keep_region, off, NV_ADDR(page), PAGE), "region_supply");
		nv_port_reply(keep_port, m.call_id, NV_FAULT_RESUME, 0, 0, 0, NV_NO_HANDLE);
	}
}

static uint64_t bench_keeper(uint64_t n)
{
	nv_handle_t self = nv_self_space();
	keep_port = (nv_handle_t)check(nv_port_create(self), "port_create");
	uint64_t size = (n + 1) * PAGE; /* page 0 is the untimed first */
	keep_region = (nv_handle_t)check(nv_region_create(self, size), "region_create");
	nv_handle_t kp = (nv_handle_t)check(nv_handle_derive(keep_port, NV_R_CALL, 1), "handle_derive");
	check(nv_region_set_keeper(keep_region, kp), "region_set_keeper");
	check(nv_space_map(self, keep_region, KEPT_AT, 0, size, NV_PERM_READ | NV_PERM_WRITE), "space_map");
	static struct thread k = {.fn = keeper};
	spawn_thread(&k);
	volatile uint64_t *mem = (volatile uint64_t *)(uintptr_t)KEPT_AT;
	uint64_t sum = mem[0];
	uint64_t start = nv_now_ns();
	for (uint64_t i = 1; i <= n; i++)
		sum += mem[i * (PAGE / 8)];
	uint64_t elapsed = nv_now_ns() - start;
	if (sum != n * (n + 1) / 2)
		nv_panic("bench keeper: pages hold %llu in all, want %llu", (unsigned long long)sum,
			 (unsigned long long)(n * (n + 1) / 2));
	return elapsed;
}

/* --- spawn ---------------------------------------------------------------- */

/* Where the child's one page lies: its code at the start, its thread's
 * handle number (for thread_exit) at CHILD_HANDLE_OFF, its stack below the
 * page's end. */
#define CHILD_AT NV_USER_BASE
#define CHILD_HANDLE_OFF 24

/* The child's code: thread_exit(handle, 0) through the ABI entry. */
static const uint8_t child_code[CHILD_HANDLE_OFF] = {
	0x48, 0x8b, 0x3d, CHILD_HANDLE_OFF - 7, 0, 0, 0, /* mov rdi, [rip+17]: the handle */
	0xbe, NV_OP_THREAD_EXIT, 0, 0, 0,		   /* mov esi, NV_OP_THREAD_EXIT */
	0x31, 0xd2,					   /* xor edx, edx: status 0 */
	0xb8, 0x00, 0x00, 0x10, 0x00,			   /* mov eax, NV_ABI_ENTRY */
	0xff, 0xd0,					   /* call rax */
	0x0f, 0x0b,					   /* ud2: thread_exit returned */
	0x90,						   /* nop, up to the handle */
};
_Static_assert(NV_ABI_ENTRY == 0x100000, "child_code calls NV_ABI_ENTRY");

/* batch_check ends the program when a batch did not complete. */
static void batch_check(struct nv_batch *b, int64_t done, const char *what)
{
	if (done == (int64_t)b->n)
		return;
	if (done < 0)
		nv_panic("bench spawn: %s: call_batch failed: %lld", what, (long long)done);
	nv_panic("bench spawn: %s: entry %lld (op %llu) failed: error %llu", what, (long long)done,
		 (unsigned long long)b->e[done].op, (unsigned long long)b->e[done].error);
}

/* spawn_child creates a child, starts it and waits for its exit in three
 * calls to the monitor: one batch from space_create to thread_start, the
 * wait, and one batch of closes. The child's code finds the handle of its
 * thread, known only once space_insert is done, in the region: the second
 * region_write copies it from that entry's r0. */
static void spawn_child(nv_handle_t ep)
{
	static struct nv_batch b;
	uint8_t image[CHILD_HANDLE_OFF];
	memcpy(image, child_code, CHILD_HANDLE_OFF);
	nv_batch_reset(&b);
	uint64_t child = nv_batch_add(&b, nv_self_space(), NV_OP_SPACE_CREATE, 0, 0, 0, 0, 0, 0, 0);
	nv_batch_add(&b, 0, NV_OP_SPACE_SET_EXCEPTION_PORT, NV_FROM_HANDLE(child), ep, 0, 0, 0, 0, 0);
	uint64_t region = nv_batch_add(&b, 0, NV_OP_REGION_CREATE, NV_FROM_HANDLE(child), PAGE, 0, 0, 0, 0, 0);
	nv_batch_add(&b, 0, NV_OP_SPACE_MAP, NV_FROM_HANDLE(child) | NV_FROM_ARG(0, region), 0, CHILD_AT, 0, PAGE,
		     NV_PERM_READ | NV_PERM_WRITE | NV_PERM_EXEC, 0);
	uint64_t thread = nv_batch_add(&b, 0, NV_OP_THREAD_CREATE, NV_FROM_HANDLE(child), CHILD_AT, CHILD_AT + PAGE, 0,
				       0, 0, 0);
	uint64_t inserted = nv_batch_add(&b, 0, NV_OP_SPACE_INSERT, NV_FROM_HANDLE(child) | NV_FROM_ARG(0, thread), 0,
					 NV_R_CONTROL, 0, 0, 0, 0);
	nv_batch_add(&b, 0, NV_OP_REGION_WRITE, NV_FROM_HANDLE(region), 0, NV_ADDR(image), CHILD_HANDLE_OFF, 0, 0, 0);
	nv_batch_add(&b, 0, NV_OP_REGION_WRITE, NV_FROM_HANDLE(region), CHILD_HANDLE_OFF, NV_ADDR(&b.e[inserted].r0), 8,
		     0, 0, 0);
	nv_batch_add(&b, 0, NV_OP_THREAD_START, NV_FROM_HANDLE(thread), 0, 0, 0, 0, 0, 0);
	batch_check(&b, nv_batch_run(&b), "create and start");
	nv_handle_t handles[3] = {b.e[thread].r0, b.e[region].r0, b.e[child].r0};

	struct nv_msg m;
	check(nv_port_receive(ep, NV_ADDR(&m), sizeof m, 0, 0), "port_receive");
	if (m.kind != NV_MSG_EXIT || m.words[0] != NV_SPACE_EXITED || m.words[1] != 0)
		nv_panic("bench spawn: the child ended as kind %llu how %llu status %llu, want an exit with 0",
			 (unsigned long long)m.kind, (unsigned long long)m.words[0], (unsigned long long)m.words[1]);
	nv_batch_reset(&b);
	for (uint64_t i = 0; i < m.n_handles && i < NV_MSG_HANDLES; i++)
		if (m.handles[i] != NV_NO_HANDLE)
			nv_batch_add(&b, m.handles[i], NV_OP_HANDLE_CLOSE, 0, 0, 0, 0, 0, 0, 0);
	for (int i = 0; i < 3; i++)
		nv_batch_add(&b, handles[i], NV_OP_HANDLE_CLOSE, 0, 0, 0, 0, 0, 0, 0);
	batch_check(&b, nv_batch_run(&b), "handle_close");
}

static uint64_t bench_spawn(uint64_t n)
{
	nv_handle_t ep = (nv_handle_t)check(nv_port_create(nv_self_space()), "port_create");
	spawn_child(ep);
	uint64_t start = nv_now_ns();
	for (uint64_t i = 0; i < n; i++)
		spawn_child(ep);
	return nv_now_ns() - start;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		nv_panic("usage: bench nulltrap|info|write|clock|compute|ipc|keeper|spawn N");
	int ok;
	uint64_t n = nv_atou64(argv[2], &ok);
	if (!ok)
		nv_panic("bench: %s is not a number", argv[2]);
	const char *mode = argv[1];
	nv_handle_t con = nv_console();
	uint64_t sink = 0;
	uint64_t elapsed;
	if (strcmp(mode, "ipc") == 0) {
		elapsed = bench_ipc(n);
	} else if (strcmp(mode, "keeper") == 0) {
		elapsed = bench_keeper(n);
	} else if (strcmp(mode, "spawn") == 0) {
		elapsed = bench_spawn(n);
	} else {
		uint64_t start = nv_now_ns();
		if (strcmp(mode, "nulltrap") == 0) {
			trap_fn trap = (trap_fn)NV_NULLTRAP_ENTRY;
			for (uint64_t i = 0; i < n; i++)
				trap();
		} else if (strcmp(mode, "info") == 0) {
			for (uint64_t i = 0; i < n; i++)
				sink += (uint64_t)nv_handle_info(con);
		} else if (strcmp(mode, "write") == 0) {
			for (uint64_t i = 0; i < n; i++)
				sink += (uint64_t)nv_console_write(con, NV_ADDR("x"), 1);
		} else if (strcmp(mode, "clock") == 0) {
			nv_handle_t clk = nv_clock();
			for (uint64_t i = 0; i < n; i++)
				sink += (uint64_t)check(nv_clock_read(clk, NV_CLOCK_MONOTONIC), "clock_read");
		} else if (strcmp(mode, "compute") == 0) {
			sink = compute_loop(n);
		} else {
			nv_panic("bench: unknown mode %s", mode);
		}
		elapsed = nv_now_ns() - start;
	}
	nv_printf("bench %s %llu %llu\n", mode, (unsigned long long)n, (unsigned long long)elapsed);
	return sink == 0xdeadbeef; /* keeps sink alive */
}
