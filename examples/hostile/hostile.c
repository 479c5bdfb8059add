/* hostile: tries from inside a guest the bad input the monitor must
 * survive: forged and stale handles, handles revoked while a thread uses
 * them, rights escalation through derive, pointers into the monitor's
 * reserved range and across unmapped pages, lengths and offsets that
 * overflow, handles passed on without grant, ports whose server's space
 * died, every quota of a child, a loop of children, files names that try
 * to leave the files root, garbage thread states, mappings until the
 * monitor's host budget is spent. Every call must come
 * back with the right error code (or succeed) and the monitor must go on
 * answering. Each group prints "PASS <group>" when all its checks hold,
 * "FAIL: ..." lines otherwise; the exit status is the number of failures.
 *
 *	hostile [GROUP...]   the groups named, or all of them
 *	hostile churn N      N rounds of creating a child (with a region, a
 *	                     port and a running thread) and killing it, for
 *	                     the monitor's memory test */
#include "nestvm.h"

static int failures;

#define CHECK(what, got, want)                                                                  \
	do {                                                                                    \
		int64_t g_ = (int64_t)(got), w_ = (int64_t)(want);                             \
		if (g_ != w_) {                                                                 \
			nv_printf("FAIL: %s: got %lld (%s) want %lld (%s)\n", what, (long long)g_, \
				  g_ < 0 ? nv_strerror(g_) : "ok", (long long)w_,               \
				  w_ < 0 ? nv_strerror(w_) : "ok");                             \
			failures++;                                                             \
		}                                                                               \
	} while (0)

/* OK checks that a call succeeded and gives its result. */
static int64_t ok_(const char *what, int64_t got)
{
	if (got < 0) {
		nv_printf("FAIL: %s: %s\n", what, nv_strerror(got));
		failures++;
	}
	return got;
}
#define OK(what, got) ok_(what, (int64_t)(got))

#define TRUE(what, cond) CHECK(what, !!(cond), 1)

#define PAGE 4096ull

/* Addresses this program maps regions at: well above its image and heap,
 * below the top of the user range. */
#define MAP_A 0xe00000000ull
#define MAP_B 0xe00100000ull
#define MAP_C 0xe00200000ull

/* Threads of this space. */
struct thread {
	nv_handle_t h;
	void (*fn)(struct thread *);
	uint64_t arg;
	volatile int64_t out;
	volatile uint64_t done;
};

static volatile uint32_t word;

static void wake_word(void)
{
	word++;
	nv_futex_wake(nv_self_space(), NV_ADDR(&word), 100);
}

static void thread_entry(uint64_t p)
{
	struct thread *t = (struct thread *)(uintptr_t)p;
	t->fn(t);
	t->done = 1;
	wake_word();
	nv_thread_exit(t->h, 0);
	for (;;)
		;
}

static void spawn(struct thread *t)
{
	const size_t size = 64 << 10;
	char *stack = nv_alloc(size);
	if (!stack)
		nv_panic("hostile: out of heap for a stack\n");
	uint64_t sp = ((NV_ADDR(stack) + size) & ~15ull) - 8;
	t->done = 0;
	t->h = OK("thread_create", nv_thread_create(nv_self_space(), NV_ADDR(thread_entry), sp, NV_ADDR(t)));
	OK("thread_start", nv_thread_start(t->h));
}

/* pause sleeps for about ms milliseconds, or until the word changes: a
 * yield between two looks at a state that nothing wakes this thread for.
 * No check here depends on a time having been long enough: on a loaded
 * host any time can be too short. */
static void pause_ms(uint64_t ms)
{
	uint32_t w = word;
	nv_futex_wait(nv_self_space(), NV_ADDR(&word), w, ms * 1000000);
}

/* join waits for a thread to be done and gone: operations that need the
 * space's other threads stopped (region_dirty) must not find it still on
 * its way to thread_exit. Its end is the test's to bound (the harness's
 * timeout). */
static void join(struct thread *t)
{
	for (uint32_t w; !t->done;) {
		w = word;
		if (!t->done)
			nv_futex_wait(nv_self_space(), NV_ADDR(&word), w, 0);
	}
	while (nv_thread_status(t->h) != NV_THREAD_EXITED)
		pause_ms(1);
}

/* wait_blocked waits for thread h to be blocked in operation op, as
 * thread_status reports it: a receiver so reported is waiting on its
 * port, a caller has its call queued. */
static void wait_blocked(nv_handle_t h, uint64_t op)
{
	for (;;) {
		nv_result_t st = nv_thread_status_r(h);
		if (st.r0 == NV_THREAD_RUNNING && (uint64_t)st.r1 == op)
			return;
		if (st.r0 != NV_THREAD_RUNNING && st.r0 != NV_THREAD_NEW) {
			nv_printf("FAIL: waiting for a thread to block in operation %llu: its state is %lld\n",
				  (unsigned long long)op, (long long)st.r0);
			failures++;
			return;
		}
		pause_ms(1);
	}
}

/* A child space with a thread running `jmp .` at 0x400000. */
struct child {
	nv_handle_t space, code, thread;
};

static const uint8_t spin_code[] = {0xeb, 0xfe}; /* jmp . */

static void make_child_in(nv_handle_t parent, struct child *c, uint64_t pages, uint64_t threads, uint64_t handles,
			  uint64_t children, int run)
{
	c->space = OK("space_create", nv_space_create(parent, pages, threads, handles, children));
	c->code = OK("region_create(code)", nv_region_create(c->space, PAGE));
	OK("region_write(code)", nv_region_write(c->code, 0, NV_ADDR(spin_code), sizeof spin_code));
	OK("space_map(code)", nv_space_map(c->space, c->code, NV_USER_BASE, 0, PAGE, NV_PERM_READ | NV_PERM_EXEC));
	c->thread = OK("thread_create", nv_thread_create(c->space, NV_USER_BASE, 0, 0));
	if (run)
		OK("thread_start", nv_thread_start(c->thread));
}

static void make_child(struct child *c, uint64_t pages, uint64_t threads, uint64_t handles, uint64_t children, int run)
{
	make_child_in(nv_self_space(), c, pages, threads, handles, children, run);
}

static void drop_child(struct child *c)
{
	nv_space_kill(c->space, 0);
	nv_handle_close(c->thread);
	nv_handle_close(c->code);
	nv_handle_close(c->space);
}

/* Waits for a space to end (a death by fault: nothing to wait on but its
 * state, the space having no exception port); its status. */
static int64_t wait_ended(nv_handle_t s)
{
	int64_t st;
	while ((st = nv_space_status(s)) == NV_SPACE_RUNNING)
		pause_ms(1);
	return st;
}

/* forged: numbers that name nothing, operations that do not exist, and
 * every operation on a handle that cannot perform it. */
static void g_forged(void)
{
	char b[8] = "x";
	nv_handle_t con = nv_console();
	CHECK("handle 0", nv_console_write(0, NV_ADDR(b), 1), -NV_EBADHANDLE);
	CHECK("handle 4096", nv_handle_info(4096), -NV_EBADHANDLE);
	CHECK("handle 2^63", nv_handle_info(1ull << 63), -NV_EBADHANDLE);
	CHECK("handle ~0", nv_handle_info(~0ull), -NV_EBADHANDLE);
	CHECK("handle 2^32 + console", nv_console_write((1ull << 32) + con, NV_ADDR(b), 1), -NV_EBADHANDLE);
	for (uint64_t op = 0; op < NV_OP_COUNT + 2; op++)
		CHECK("any operation on a forged handle", nv_invoke(0xdead, op, 0, 0, 0, 0, 0, 0).r0, -NV_EBADHANDLE);
	CHECK("op 2^32 + handle_info", nv_invoke(con, (1ull << 32) + NV_OP_HANDLE_INFO, 0, 0, 0, 0, 0, 0).r0, -NV_EINVALOP);
	CHECK("op ~0", nv_invoke(con, ~0ull, 0, 0, 0, 0, 0, 0).r0, -NV_EINVALOP);
	/* A read-only copy of the clock: every operation but the handle's own,
	 * clock_read and clock_time_page fails, whatever its arguments. */
	nv_handle_t clk = OK("derive clock", nv_handle_derive(nv_clock(), NV_R_READ, 0));
	for (uint64_t op = 1; op < NV_OP_COUNT; op++) {
		if (op == NV_OP_HANDLE_INFO || op == NV_OP_HANDLE_REVOKE || op == NV_OP_CLOCK_READ || op == NV_OP_HANDLE_CLOSE ||
		    op == NV_OP_CLOCK_TIME_PAGE)
			continue;
		nv_result_t r = nv_invoke(clk, op, NV_RESERVED_BASE, ~0ull, 1ull << 63, 7, ~0ull, 0);
		if (r.r0 >= 0) {
			nv_printf("FAIL: operation %llu on a read-only clock succeeded\n", (unsigned long long)op);
			failures++;
		}
	}
	CHECK("clock still reads", nv_clock_read(clk, NV_CLOCK_MONOTONIC) > 0, 1);
	/* Its time page is the clock's to write: the handle it gives reads
	 * and maps, and nothing more. */
	nv_handle_t tp = OK("clock_time_page", nv_clock_time_page(clk));
	CHECK("time page is a region", nv_handle_info(tp), NV_OBJ_REGION);
	CHECK("time page write", nv_region_write(tp, 0, NV_ADDR(b), 8), -NV_ERIGHTS);
	CHECK("time page writable map", nv_space_map(nv_self_space(), tp, MAP_A, 0, PAGE, NV_PERM_READ | NV_PERM_WRITE), -NV_ERIGHTS);
	CHECK("time page handle close", nv_handle_close(tp), 0);
	CHECK("thread_exit on the space", nv_thread_exit(nv_self_space(), 0), -NV_EWRONGTYPE);
	CHECK("region_read on a thread", nv_region_read(nv_self_thread(), 0, NV_ADDR(b), 1), -NV_EWRONGTYPE);
	CHECK("port_receive on the space", nv_port_receive(nv_self_space(), NV_ADDR(b), 8, 0, 0), -NV_EWRONGTYPE);
}

/* stale: handles closed, revoked, or revoked at their source in another
 * space. */
static void g_stale(void)
{
	char b[4] = "s";
	nv_handle_t con = nv_console();
	int64_t c = OK("derive", nv_handle_derive(con, NV_R_WRITE | NV_R_DERIVE, 0));
	CHECK("close", nv_handle_close(c), 0);
	CHECK("write through a closed handle", nv_console_write(c, NV_ADDR(b), 1), -NV_EBADHANDLE);
	CHECK("derive from a closed handle", nv_handle_derive(c, NV_R_WRITE, 0), -NV_EBADHANDLE);
	CHECK("revoke a closed handle", nv_handle_revoke(c), -NV_EBADHANDLE);
	CHECK("close it again", nv_handle_close(c), -NV_EBADHANDLE);

	int64_t root = OK("derive a root", nv_handle_derive(con, NV_R_WRITE | NV_R_DERIVE | NV_R_GRANT, 0));
	int64_t d1 = OK("derive", nv_handle_derive(root, NV_R_WRITE | NV_R_DERIVE | NV_R_GRANT, 0));
	int64_t d2 = OK("derive a derived", nv_handle_derive(d1, NV_R_WRITE | NV_R_GRANT, 0));
	CHECK("close the middle", nv_handle_close(d1), 0);
	int64_t child = OK("space_create", nv_space_create(nv_self_space(), 1, 1, 4, 0));
	int64_t in = OK("insert into the child", nv_space_insert(child, d2, NV_R_WRITE));
	CHECK("revoke reaches past a closed middle and into the child", nv_handle_revoke(root), 2);
	CHECK("derived gone", nv_console_write(d2, NV_ADDR(b), 1), -NV_EBADHANDLE);
	CHECK("child's copy gone", nv_space_remove(child, in), -NV_EBADHANDLE);
	CHECK("the root stays", nv_console_write(root, NV_ADDR(b), 0), 0);
	CHECK("close the root", nv_handle_close(root), 0);
	CHECK("kill child", nv_space_kill(child, 0), 0);
	CHECK("a killed child's handle still answers", nv_space_status(child), NV_SPACE_KILLED);
	CHECK("remove from a dead child", nv_space_remove(child, 1), -NV_EBADHANDLE);
	CHECK("insert into a dead child", nv_space_insert(child, con, NV_R_WRITE), -NV_EPEERGONE);
	CHECK("close child", nv_handle_close(child), 0);
	/* A number freed is given to the next handle: it names the new object. */
	int64_t p = OK("port_create", nv_port_create(nv_self_space()));
	CHECK("close the port", nv_handle_close(p), 0);
	int64_t r = OK("region_create", nv_region_create(nv_self_space(), PAGE));
	if (r == p)
		CHECK("the reused number names the region", nv_handle_info(r), NV_OBJ_REGION);
	CHECK("port ops on the reused number", nv_port_send(r, 1, 0, 0, 0), -NV_EWRONGTYPE);
	nv_handle_close(r);
}

/* revoke: handles revoked (or closed) while another thread is blocked in
 * an operation through them. The operation goes on with the object; new
 * operations through the handle fail. */
static nv_handle_t rv_port, rv_rcv, rv_call;

static void rv_receiver(struct thread *t)
{
	struct nv_msg m;
	int64_t r = nv_port_receive(rv_rcv, NV_ADDR(&m), sizeof m, 0, 0);
	t->out = r < 0 ? r : (int64_t)m.op;
	t->arg = nv_port_receive(rv_rcv, NV_ADDR(&m), sizeof m, 0, 0);
}

static void rv_caller(struct thread *t)
{
	char reply[8] = {0};
	t->out = nv_port_call(rv_call, 5, 0, 0, NV_ADDR(reply), sizeof reply);
	t->arg = nv_port_call(rv_call, 5, 0, 0, 0, 0);
}

static void g_revoke(void)
{
	rv_port = OK("port_create", nv_port_create(nv_self_space()));
	rv_rcv = OK("derive receive", nv_handle_derive(rv_port, NV_R_RECEIVE, 0));
	struct thread rcv = {.fn = rv_receiver};
	spawn(&rcv);
	wait_blocked(rcv.h, NV_OP_PORT_RECEIVE);
	CHECK("revoke under a blocked receive", nv_handle_revoke(rv_port), 1);
	CHECK("send", nv_port_send(rv_port, 42, 0, 0, 0), 0);
	join(&rcv);
	CHECK("the blocked receive got the message", rcv.out, 42);
	CHECK("the next receive through the revoked handle", (int64_t)rcv.arg, -NV_EBADHANDLE);

	rv_call = OK("derive call", nv_handle_derive(rv_port, NV_R_CALL, 3));
	struct thread cl = {.fn = rv_caller};
	spawn(&cl);
	wait_blocked(cl.h, NV_OP_PORT_CALL);
	CHECK("revoke under a blocked call", nv_handle_revoke(rv_port), 1);
	struct nv_msg m;
	CHECK("receive the call", nv_port_receive(rv_port, NV_ADDR(&m), sizeof m, 0, 0), 0);
	CHECK("badge of the revoked handle", m.badge, 3);
	CHECK("reply", nv_port_reply(rv_port, m.call_id, 77, 0, NV_ADDR("ok"), 2, 0), 0);
	join(&cl);
	CHECK("the blocked call got its reply", cl.out, 77);
	CHECK("the next call through the revoked handle", (int64_t)cl.arg, -NV_EBADHANDLE);

	/* The handle a blocked thread uses, closed under it. */
	rv_rcv = OK("derive receive", nv_handle_derive(rv_port, NV_R_RECEIVE, 0));
	struct thread rcv2 = {.fn = rv_receiver};
	spawn(&rcv2);
	wait_blocked(rcv2.h, NV_OP_PORT_RECEIVE);
	CHECK("close under a blocked receive", nv_handle_close(rv_rcv), 0);
	CHECK("send", nv_port_send(rv_port, 43, 0, 0, 0), 0);
	join(&rcv2);
	CHECK("the blocked receive got the message", rcv2.out, 43);
	CHECK("the next receive through the closed handle", (int64_t)rcv2.arg, -NV_EBADHANDLE);
	nv_handle_close(rv_port);
}

/* derive: rights never grow; a badge is set once; weakened handles keep
 * their limits when used through other operations. */
static void g_derive(void)
{
	nv_handle_t con = nv_console();
	CHECK("add read", nv_handle_derive(con, NV_R_WRITE | NV_R_READ, 0), -NV_ERIGHTS);
	CHECK("add control", nv_handle_derive(con, NV_R_CONTROL, 0), -NV_ERIGHTS);
	CHECK("unknown rights", nv_handle_derive(con, 1ull << 20, 0), -NV_ERIGHTS);
	CHECK("rights beyond 32 bits", nv_handle_derive(con, (1ull << 32) | NV_R_WRITE, 0), -NV_ERIGHTS);
	int64_t w = OK("write only", nv_handle_derive(con, NV_R_WRITE, 0));
	CHECK("derive without derive", nv_handle_derive(w, NV_R_WRITE, 0), -NV_ERIGHTS);
	CHECK("derive nothing without derive", nv_handle_derive(w, 0, 0), -NV_ERIGHTS);
	int64_t b = OK("badged", nv_handle_derive(con, NV_R_WRITE | NV_R_DERIVE, 7));
	CHECK("a badge is set once", nv_handle_derive(b, NV_R_WRITE, 8), -NV_EINVAL);
	CHECK("the same badge again", nv_handle_derive(b, NV_R_WRITE, 7) > 0, 1);

	int64_t r = OK("region_create", nv_region_create(nv_self_space(), PAGE));
	int64_t ro = OK("read-only region", nv_handle_derive(r, NV_R_READ | NV_R_MAP | NV_R_DERIVE, 0));
	CHECK("map writable through read-only", nv_space_map(nv_self_space(), ro, MAP_A, 0, PAGE, NV_PERM_READ | NV_PERM_WRITE), -NV_ERIGHTS);
	CHECK("map executable through read-only", nv_space_map(nv_self_space(), ro, MAP_A, 0, PAGE, NV_PERM_READ | NV_PERM_EXEC), -NV_ERIGHTS);
	CHECK("map read-only", nv_space_map(nv_self_space(), ro, MAP_A, 0, PAGE, NV_PERM_READ), 0);
	CHECK("protect beyond the handle's rights", nv_space_protect(nv_self_space(), MAP_A, PAGE, NV_PERM_READ | NV_PERM_WRITE), -NV_ERIGHTS);
	CHECK("write through read-only", nv_region_write(ro, 0, NV_ADDR("x"), 1), -NV_ERIGHTS);
	CHECK("unmap", nv_space_unmap(nv_self_space(), MAP_A, PAGE), 0);
	int64_t t = OK("read-only thread", nv_handle_derive(nv_self_thread(), NV_R_READ, 0));
	CHECK("stop through it", nv_thread_stop(t), -NV_ERIGHTS);
	CHECK("exit through it", nv_thread_exit(t, 0), -NV_ERIGHTS);
	CHECK("status through it", nv_thread_status(t), NV_THREAD_RUNNING);
	int64_t s = OK("status-only space", nv_handle_derive(nv_self_space(), NV_R_READ, 0));
	CHECK("create through it", nv_space_create(s, 1, 1, 1, 0), -NV_ERIGHTS);
	CHECK("kill through it", nv_space_kill(s, 0), -NV_ERIGHTS);
	CHECK("map through it", nv_space_map(s, r, MAP_A, 0, PAGE, NV_PERM_READ), -NV_ERIGHTS);
	nv_handle_close(w);
	nv_handle_close(b);
	nv_handle_close(ro);
	nv_handle_close(r);
	nv_handle_close(t);
	nv_handle_close(s);
}

/* pointers: buffers in the monitor's reserved range, across unmapped
 * pages, and outputs into read-only memory. */
static void g_pointers(void)
{
	nv_handle_t con = nv_console(), self = nv_self_space();
	uint8_t buf[64];
	struct nv_msg m;
	struct nv_thread_state st;
	int64_t r = OK("region_create", nv_region_create(self, 2 * PAGE));
	int64_t p = OK("port_create", nv_port_create(self));

	static const uint64_t reserved[] = {NV_RESERVED_BASE, NV_ABI_PAGE + 8, NV_RESERVED_BASE + 0x3000,
					    NV_RESERVED_TOP - 8, NV_RESERVED_TOP - PAGE};
	for (unsigned i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
		uint64_t a = reserved[i];
		CHECK("console_write from reserved", nv_console_write(con, a, 8), -NV_EFAULT);
		CHECK("region_read into reserved", nv_region_read(r, 0, a, 8), -NV_EFAULT);
		CHECK("region_write from reserved", nv_region_write(r, 0, a, 8), -NV_EFAULT);
		CHECK("region_supply from reserved", nv_region_supply(r, 0, a, PAGE), -NV_EFAULT);
		CHECK("region_dirty into reserved", nv_region_dirty(r, a, 8, 0), -NV_EFAULT);
		CHECK("port_receive into reserved", nv_port_receive(p, a, sizeof m, 0, 0), -NV_EFAULT);
		CHECK("port_send from reserved", nv_port_send(p, 1, a, 8, 0), -NV_EFAULT);
		CHECK("port_call from reserved", nv_port_call(p, 1, a, 8, 0, 0), -NV_EFAULT);
		CHECK("port_call reply into reserved", nv_port_call(p, 1, 0, 0, a, 8), -NV_EFAULT);
		CHECK("thread_set_state from reserved", nv_thread_set_state(nv_self_thread(), a, sizeof st), -NV_EFAULT);
		CHECK("futex_wait on reserved", nv_futex_wait(self, a, 0, 1000), -NV_EFAULT);
		CHECK("futex_wait_clock on reserved", nv_futex_wait_clock(self, a, 0, nv_clock(), NV_CLOCK_MONOTONIC, 1), -NV_EFAULT);
		CHECK("futex_wake on reserved", nv_futex_wake(self, a, ~0ull), 0);
	}
	CHECK("reading from page 0", nv_console_write(con, 0, 1), -NV_EFAULT);
	CHECK("crossing the user top", nv_console_write(con, NV_USER_TOP - 4, 8), -NV_EFAULT);
	CHECK("a wrapping address", nv_console_write(con, ~0ull - 3, 8), -NV_EFAULT);

	/* One page mapped, the next not. */
	CHECK("map one page", nv_space_map(self, r, MAP_A, 0, PAGE, NV_PERM_READ | NV_PERM_WRITE), 0);
	CHECK("map it read-only after a gap", nv_space_map(self, r, MAP_A + 2 * PAGE, PAGE, PAGE, NV_PERM_READ), 0);
	uint64_t edge = MAP_A + PAGE - 4;
	CHECK("console_write across an unmapped page", nv_console_write(con, edge, 8), -NV_EFAULT);
	CHECK("region_read across an unmapped page", nv_region_read(r, 0, edge, 8), -NV_EFAULT);
	CHECK("region_write across an unmapped page", nv_region_write(r, 0, edge, 8), -NV_EFAULT);
	CHECK("port_receive across an unmapped page", nv_port_receive(p, MAP_A + PAGE - 8, sizeof m, 0, 0), -NV_EFAULT);
	CHECK("thread_get_state across", nv_thread_get_state(nv_self_thread(), MAP_A + PAGE - 8, sizeof st), -NV_EFAULT);
	CHECK("within the page is fine", nv_console_write(con, edge, 0), 0);
	CHECK("region_read into read-only memory", nv_region_read(r, 0, MAP_A + 2 * PAGE, 8), -NV_EFAULT);
	CHECK("region_write from read-only memory", nv_region_write(r, 0, MAP_A + 2 * PAGE, 8), 8);
	CHECK("futex_wait on an unmapped page", nv_futex_wait(self, MAP_A + PAGE, 0, 1000), -NV_EFAULT);
	CHECK("futex_wait_clock on an unmapped page", nv_futex_wait_clock(self, MAP_A + PAGE, 0, nv_clock(), NV_CLOCK_MONOTONIC, 1), -NV_EFAULT);
	CHECK("unmap", nv_space_unmap(self, MAP_A, PAGE), 0);
	CHECK("unmap", nv_space_unmap(self, MAP_A + 2 * PAGE, PAGE), 0);
	CHECK("console_write from an unmapped page", nv_console_write(con, MAP_A, 8), -NV_EFAULT);
	(void)buf;
	nv_handle_close(r);
	nv_handle_close(p);
}

/* lengths: offsets and sizes that overflow or lie past the end. */
static void g_lengths(void)
{
	nv_handle_t con = nv_console(), self = nv_self_space();
	static uint8_t page[PAGE] __attribute__((aligned(4096)));
	uint8_t buf[16];
	const uint64_t top = ~0ull & ~(PAGE - 1);
	int64_t r = OK("region_create", nv_region_create(self, 2 * PAGE));
	CHECK("region_read at ~0", nv_region_read(r, ~0ull, NV_ADDR(buf), 8), -NV_EINVAL);
	CHECK("region_read past the end", nv_region_read(r, 2 * PAGE + 1, NV_ADDR(buf), 8), -NV_EINVAL);
	CHECK("region_read at the end", nv_region_read(r, 2 * PAGE, NV_ADDR(buf), 8), 0);
	CHECK("region_read over the end", nv_region_read(r, 2 * PAGE - 4, NV_ADDR(buf), 8), 4);
	CHECK("region_write over the end", nv_region_write(r, 2 * PAGE - 4, NV_ADDR(buf), 8), -NV_EINVAL);
	CHECK("region_write wrapping", nv_region_write(r, ~0ull - 3, NV_ADDR(buf), 8), -NV_EINVAL);
	CHECK("region_supply wrapping", nv_region_supply(r, top, NV_ADDR(page), PAGE), -NV_EINVAL);
	CHECK("region_supply past the end", nv_region_supply(r, PAGE, NV_ADDR(page), 2 * PAGE), -NV_EINVAL);
	CHECK("region_supply unaligned", nv_region_supply(r, 1, NV_ADDR(page), PAGE), -NV_EINVAL);
	CHECK("region_supply a part of a page", nv_region_supply(r, 0, NV_ADDR(page), 100), -NV_EINVAL);
	CHECK("region_dirty bitmap too small", nv_region_dirty(r, NV_ADDR(buf), 0, 0), -NV_ETOOBIG);
	CHECK("map at a wrapping offset", nv_space_map(self, r, MAP_A, top, 2 * PAGE, NV_PERM_READ), -NV_EINVAL);
	CHECK("map at a wrapping address", nv_space_map(self, r, top, 0, 2 * PAGE, NV_PERM_READ), -NV_EINVAL);
	CHECK("map a wrapping size", nv_space_map(self, r, MAP_A, PAGE, top, NV_PERM_READ), -NV_EINVAL);
	CHECK("map past the region", nv_space_map(self, r, MAP_A, PAGE, 2 * PAGE, NV_PERM_READ), -NV_EINVAL);
	CHECK("map nothing", nv_space_map(self, r, MAP_A, 0, 0, NV_PERM_READ), -NV_EINVAL);
	CHECK("map unaligned", nv_space_map(self, r, MAP_A + 1, 0, PAGE, NV_PERM_READ), -NV_EINVAL);
	CHECK("map into reserved", nv_space_map(self, r, NV_RESERVED_BASE, 0, PAGE, NV_PERM_READ), -NV_EINVAL);
	CHECK("map across the user top", nv_space_map(self, r, NV_USER_TOP - PAGE, 0, 2 * PAGE, NV_PERM_READ), -NV_EINVAL);
	CHECK("map with no permission reserves", nv_space_map(self, r, MAP_A, 0, PAGE, 0), 0);
	CHECK("map over a reserve", nv_space_map(self, r, MAP_A, 0, PAGE, NV_PERM_READ), -NV_EEXISTS);
	CHECK("unmap the reserve", nv_space_unmap(self, MAP_A, PAGE), 0);
	CHECK("map with unknown permissions", nv_space_map(self, r, MAP_A, 0, PAGE, 1ull << 40), -NV_EINVAL);
	CHECK("map over this program", nv_space_map(self, r, NV_USER_BASE, 0, PAGE, NV_PERM_READ), -NV_EEXISTS);
	CHECK("unmap a wrapping range", nv_space_unmap(self, MAP_A, top), -NV_EINVAL);
	CHECK("unmap the reserved range", nv_space_unmap(self, NV_RESERVED_BASE, NV_RESERVED_TOP - NV_RESERVED_BASE), -NV_EINVAL);
	CHECK("protect a wrapping range", nv_space_protect(self, MAP_A, top, NV_PERM_READ), -NV_EINVAL);
	CHECK("unmap nothing mapped", nv_space_unmap(self, MAP_A, PAGE), -NV_ENOTFOUND);
	CHECK("region of ~0 bytes", nv_region_create(self, top), -NV_EINVAL);
	CHECK("region of part of a page", nv_region_create(self, 100), -NV_EINVAL);
	CHECK("region of no bytes", nv_region_create(self, 0), -NV_EINVAL);
	CHECK("region beyond the quota", nv_region_create(self, 1ull << 36), -NV_EQUOTA);
	CHECK("console_write of ~0 bytes", nv_console_write(con, NV_ADDR(buf), ~0ull), -NV_ETOOBIG);
	CHECK("console_write over the limit", nv_console_write(con, NV_ADDR(buf), NV_MAX_BUFFER + 1), -NV_ETOOBIG);
	struct nv_thread_state st;
	CHECK("get_state of itself", nv_thread_get_state(nv_self_thread(), NV_ADDR(&st), sizeof st), -NV_EBUSY);
	CHECK("a child of ~0 pages", nv_space_create(self, ~0ull, 0, 0, 0), -NV_EQUOTA);
	CHECK("a child of ~0 threads", nv_space_create(self, 0, ~0ull, 0, 0), -NV_EQUOTA);
	CHECK("a child of ~0 handles", nv_space_create(self, 0, 0, ~0ull, 0), -NV_EQUOTA);
	CHECK("a child of ~0 children", nv_space_create(self, 0, 0, 0, ~0ull), -NV_EQUOTA);
	CHECK("clock ~0", nv_clock_read(nv_clock(), ~0ull), -NV_EINVAL);
	CHECK("futex value beyond 32 bits", nv_futex_wait(self, NV_ADDR(&word), 1ull << 32, 0), -NV_EINVAL);
	CHECK("futex unaligned", nv_futex_wait(self, NV_ADDR(&word) + 1, 0, 0), -NV_EINVAL);
	CHECK("futex ~0 ns, value differs", nv_futex_wait(self, NV_ADDR(&word), word + 1, ~0ull), -NV_EWOULDBLOCK);
	CHECK("futex_wake ~0", nv_futex_wake(self, NV_ADDR(&word), ~0ull), 0);
	/* futex_wait_clock: the clock is checked first, then the word, then
	 * what the clock's clock_wait says. */
	uint64_t w = word;
	nv_handle_t noread = OK("derive a clock with no read", nv_handle_derive(nv_clock(), NV_R_DERIVE, 0));
	CHECK("futex_wait_clock, no clock", nv_futex_wait_clock(self, NV_ADDR(&word), w, NV_NO_HANDLE, NV_CLOCK_MONOTONIC, 1), -NV_EBADHANDLE);
	CHECK("futex_wait_clock, clock ~0", nv_futex_wait_clock(self, NV_ADDR(&word), w, ~0ull, NV_CLOCK_MONOTONIC, 1), -NV_EBADHANDLE);
	CHECK("futex_wait_clock on a region", nv_futex_wait_clock(self, NV_ADDR(&word), w, r, NV_CLOCK_MONOTONIC, 1), -NV_EWRONGTYPE);
	CHECK("futex_wait_clock, clock without read", nv_futex_wait_clock(self, NV_ADDR(&word), w, noread, NV_CLOCK_MONOTONIC, 1), -NV_ERIGHTS);
	CHECK("futex_wait_clock, bad clock, word differs", nv_futex_wait_clock(self, NV_ADDR(&word), w + 1, r, NV_CLOCK_MONOTONIC, 1), -NV_EWRONGTYPE);
	CHECK("futex_wait_clock value beyond 32 bits", nv_futex_wait_clock(self, NV_ADDR(&word), 1ull << 32, nv_clock(), NV_CLOCK_MONOTONIC, 1), -NV_EINVAL);
	CHECK("futex_wait_clock unaligned", nv_futex_wait_clock(self, NV_ADDR(&word) + 1, w, nv_clock(), NV_CLOCK_MONOTONIC, 1), -NV_EINVAL);
	CHECK("futex_wait_clock, value differs", nv_futex_wait_clock(self, NV_ADDR(&word), w + 1, nv_clock(), NV_CLOCK_MONOTONIC, ~0ull), -NV_EWOULDBLOCK);
	CHECK("futex_wait_clock, clock ~0", nv_futex_wait_clock(self, NV_ADDR(&word), w, nv_clock(), ~0ull, 1), -NV_EINVAL);
	CHECK("futex_wait_clock, a deadline past", nv_futex_wait_clock(self, NV_ADDR(&word), w, nv_clock(), NV_CLOCK_MONOTONIC, 1), -NV_ETIMEOUT);
	CHECK("futex_wait_clock, realtime past", nv_futex_wait_clock(self, NV_ADDR(&word), w, nv_clock(), NV_CLOCK_REALTIME, 1), -NV_ETIMEOUT);
	CHECK("futex_wake after them: nobody waits", nv_futex_wake(self, NV_ADDR(&word), ~0ull), 0);
	nv_handle_close(noread);
	nv_handle_close(r);
}

/* grant: a handle without grant goes nowhere else: not by send, not by
 * reply, not by insert. */
static nv_handle_t gr_port;
static void gr_caller(struct thread *t)
{
	nv_result_t r = nv_port_call_r(gr_port, 1, 0, 0, 0, 0);
	t->out = r.r0;
	if (r.r0 > 0)
		t->arg = nv_handle_info(r.r0);
}

static void g_grant(void)
{
	nv_handle_t self = nv_self_space();
	int64_t p = OK("port_create", nv_port_create(self));
	gr_port = p;
	int64_t ng = OK("derive without grant", nv_handle_derive(nv_console(), NV_R_WRITE, 0));
	int64_t r = OK("region_create", nv_region_create(self, PAGE));
	int64_t rng = OK("region without grant", nv_handle_derive(r, NV_R_READ | NV_R_MAP, 0));
	CHECK("send without grant", nv_port_send(p, 1, 0, 0, ng), -NV_ERIGHTS);
	CHECK("send a region without grant", nv_port_send(p, 1, 0, 0, rng), -NV_ERIGHTS);
	int64_t child = OK("space_create", nv_space_create(self, 1, 1, 4, 0));
	CHECK("insert without grant", nv_space_insert(child, ng, NV_R_WRITE), -NV_ERIGHTS);
	CHECK("insert a region without grant", nv_space_insert(child, rng, NV_R_READ), -NV_ERIGHTS);
	CHECK("the exception port needs call", nv_space_set_exception_port(child, ng), -NV_ERIGHTS);

	struct thread cl = {.fn = gr_caller};
	spawn(&cl);
	struct nv_msg m;
	CHECK("receive the call", nv_port_receive(p, NV_ADDR(&m), sizeof m, 0, 0), 0);
	CHECK("reply with a handle without grant", nv_port_reply(p, m.call_id, 0, 0, 0, 0, ng), -NV_ERIGHTS);
	CHECK("reply with a forged handle", nv_port_reply(p, m.call_id, 0, 0, 0, 0, 0xdead), -NV_EBADHANDLE);
	CHECK("reply with a handle with grant", nv_port_reply(p, m.call_id, 0, 0, 0, 0, nv_console()), 0);
	join(&cl);
	TRUE("the caller got a handle", cl.out > 0);
	CHECK("it is a port", cl.arg, NV_OBJ_PORT);
	CHECK("reply twice", nv_port_reply(p, m.call_id, 0, 0, 0, 0, 0), -NV_ENOTFOUND);
	CHECK("reply to a call never made", nv_port_reply(p, 999999, 0, 0, 0, 0, 0), -NV_ENOTFOUND);
	nv_space_kill(child, 0);
	nv_handle_close(child);
	nv_handle_close(ng);
	nv_handle_close(rng);
	nv_handle_close(r);
	nv_handle_close(p);
}

/* peergone: ports owned by a child (port_create on its handle), used
 * after the child is killed and while it is killed under a call; a
 * region of the child's likewise. */
static nv_handle_t pg_port;
static void pg_caller(struct thread *t)
{
	t->out = nv_port_call(pg_port, 1, 0, 0, 0, 0);
}

static void g_peergone(void)
{
	nv_handle_t self = nv_self_space();
	struct child c;
	make_child(&c, 16, 2, 8, 1, 1);
	pg_port = OK("the child's port", nv_port_create(c.space));
	int64_t r = OK("the child's region", nv_region_create(c.space, PAGE));
	CHECK("map the child's region here", nv_space_map(self, r, MAP_B, 0, PAGE, NV_PERM_READ | NV_PERM_WRITE), 0);
	int64_t ep = OK("exception port", nv_port_create(self));
	int64_t epc = OK("derive call", nv_handle_derive(ep, NV_R_CALL, 5));
	CHECK("set the child's exception port", nv_space_set_exception_port(c.space, epc), 0);
	struct thread cl = {.fn = pg_caller};
	spawn(&cl);
	wait_blocked(cl.h, NV_OP_PORT_CALL); /* for a server that never comes */
	CHECK("kill the child", nv_space_kill(c.space, 9), 0);
	join(&cl);
	CHECK("a call waiting on a dead server's port", cl.out, -NV_EPEERGONE);
	nv_result_t st = nv_space_status_r(c.space);
	CHECK("child killed", st.r0, NV_SPACE_KILLED);
	CHECK("with the status given", st.r1, 9);
	struct nv_msg m;
	CHECK("the exit notice", nv_port_receive(ep, NV_ADDR(&m), sizeof m, 0, 0), 0);
	CHECK("notice kind", m.kind, NV_MSG_EXIT);
	CHECK("notice says killed", m.words[0], NV_SPACE_KILLED);
	CHECK("notice badge", m.badge, 5);
	CHECK("call after", nv_port_call(pg_port, 1, 0, 0, 0, 0), -NV_EPEERGONE);
	CHECK("send after", nv_port_send(pg_port, 1, 0, 0, 0), -NV_EPEERGONE);
	CHECK("receive after", nv_port_receive(pg_port, NV_ADDR(&m), sizeof m, 0, 0), -NV_EPEERGONE);
	uint8_t b[8];
	/* space_kill returned once the child was gone, its regions freed. */
	CHECK("region_read after", nv_region_read(r, 0, NV_ADDR(b), 8), -NV_EPEERGONE);
	CHECK("region_write after", nv_region_write(r, 0, NV_ADDR(b), 8), -NV_EPEERGONE);
	CHECK("region_size after", nv_region_size(r), PAGE);
	CHECK("map it again after", nv_space_map(self, r, MAP_C, 0, PAGE, NV_PERM_READ), -NV_EPEERGONE);
	volatile uint8_t *mapped = (volatile uint8_t *)(uintptr_t)MAP_B;
	mapped[5] = 7; /* the mapping made before keeps its pages */
	CHECK("the mapping made before still works", mapped[5], 7);
	CHECK("unmap it", nv_space_unmap(self, MAP_B, PAGE), 0);
	CHECK("region_create in the dead child", nv_region_create(c.space, PAGE), -NV_EPEERGONE);
	CHECK("thread_create in the dead child", nv_thread_create(c.space, 0, 0, 0), -NV_EPEERGONE);
	CHECK("port_create in the dead child", nv_port_create(c.space), -NV_EPEERGONE);
	CHECK("space_create in the dead child", nv_space_create(c.space, 0, 0, 0, 0), -NV_EPEERGONE);
	CHECK("start its thread", nv_thread_start(c.thread), -NV_EBUSY);
	CHECK("its thread exited", nv_thread_status(c.thread), NV_THREAD_EXITED);
	drop_child(&c);
	nv_handle_close(pg_port);
	nv_handle_close(r);
	nv_handle_close(ep);
	nv_handle_close(epc);
}

/* quota: a child exceeding each of its quotas gets NV_EQUOTA, which a
 * program can print. */
static void g_quota(void)
{
	nv_handle_t self = nv_self_space(), con = nv_console();
	int64_t c = OK("space_create", nv_space_create(self, 16, 2, 4, 1));
	int64_t e = nv_region_create(c, 17 * PAGE);
	CHECK("region beyond the child's pages", e, -NV_EQUOTA);
	nv_printf("hostile: a region beyond a child's pages: %s\n", nv_strerror(e));
	int64_t r1 = OK("region within", nv_region_create(c, 8 * PAGE));
	CHECK("region beyond what is left", nv_region_create(c, 9 * PAGE), -NV_EQUOTA);
	int64_t t1 = OK("thread 1", nv_thread_create(c, NV_USER_BASE, 0, 0));
	int64_t t2 = OK("thread 2", nv_thread_create(c, NV_USER_BASE, 0, 0));
	CHECK("thread 3", nv_thread_create(c, NV_USER_BASE, 0, 0), -NV_EQUOTA);
	for (int i = 0; i < 10; i++) {
		/* Threads ended before they ran give their places back. */
		CHECK("exit an unstarted thread", nv_thread_exit(t2, 0), 0);
		nv_handle_close(t2);
		t2 = OK("thread 2 again", nv_thread_create(c, NV_USER_BASE, 0, 0));
	}
	for (int i = 0; i < 4; i++)
		OK("insert within", nv_space_insert(c, con, NV_R_WRITE));
	CHECK("insert beyond the child's handles", nv_space_insert(c, con, NV_R_WRITE), -NV_EQUOTA);
	CHECK("remove one", nv_space_remove(c, 1), 0);
	CHECK("insert again", nv_space_insert(c, con, NV_R_WRITE), 1);
	int64_t g = OK("grandchild", nv_space_create(c, 0, 0, 0, 0));
	CHECK("a second grandchild", nv_space_create(c, 0, 0, 0, 0), -NV_EQUOTA);
	CHECK("a great-grandchild", nv_space_create(g, 0, 0, 0, 0), -NV_EQUOTA);
	CHECK("a grandchild above the child's pages", nv_space_create(g, 17, 0, 0, 0), -NV_EQUOTA);
	CHECK("the grandchild's region counts against the child", nv_region_create(g, 9 * PAGE), -NV_EQUOTA);
	for (int i = 0; i < 4; i++)
		OK("port within", nv_port_create(c));
	CHECK("ports beyond the child's handles", nv_port_create(c), -NV_EQUOTA);
	CHECK("kill", nv_space_kill(c, 0), 0);
	CHECK("grandchild killed with it", nv_space_status(g), NV_SPACE_KILLED);
	nv_handle_close(r1);
	nv_handle_close(t1);
	nv_handle_close(t2);
	nv_handle_close(g);
	nv_handle_close(c);
}

/* children: a loop creating children until the quota says no, then
 * killing them; the places come back. */
static void g_children(void)
{
	nv_handle_t self = nv_self_space();
	static nv_handle_t kids[256];
	int n = 0, again = 0;
	for (;;) {
		int64_t k = nv_space_create(self, 1, 1, 2, 0);
		if (k < 0) {
			CHECK("the loop ends on the quota", k, -NV_EQUOTA);
			break;
		}
		if (n == 256) {
			nv_printf("FAIL: 256 children and no quota\n");
			failures++;
			break;
		}
		kids[n++] = k;
	}
	TRUE("some children", n > 0);
	for (int i = 0; i < n; i++) {
		CHECK("kill", nv_space_kill(kids[i], 0), 0);
		CHECK("close", nv_handle_close(kids[i]), 0);
	}
	for (;;) {
		int64_t k = nv_space_create(self, 1, 1, 2, 0);
		if (k < 0)
			break;
		kids[again++] = k;
		if (again == 256)
			break;
	}
	CHECK("as many again after killing them", again, n);
	for (int i = 0; i < again; i++) {
		nv_space_kill(kids[i], 0);
		nv_handle_close(kids[i]);
	}
	/* A place held by a space with a running thread is free as soon as
	 * space_kill returns: a child with room for one grandchild makes one
	 * again at once, a few times (each round makes and ends a machine). */
	int64_t parent = OK("a child for one grandchild", nv_space_create(self, 64, 1, 16, 1));
	for (int i = 0; i < 4 && parent > 0; i++) {
		struct child g;
		make_child_in(parent, &g, 16, 1, 8, 0, 1);
		CHECK("kill the grandchild", nv_space_kill(g.space, 0), 0);
		CHECK("its thread exited as space_kill returned", nv_thread_status(g.thread), NV_THREAD_EXITED);
		int64_t again = nv_space_create(parent, 1, 1, 2, 0);
		CHECK("its place is free at once", again > 0, 1);
		nv_space_kill(again, 0);
		nv_handle_close(again);
		drop_child(&g);
	}
	nv_space_kill(parent, 0);
	nv_handle_close(parent);
	/* Create and kill, many times. */
	for (int i = 0; i < 200; i++) {
		int64_t k = nv_space_create(self, 1, 1, 2, 0);
		if (k < 0) {
			CHECK("create after kill", k, 0);
			break;
		}
		nv_space_kill(k, 0);
		nv_handle_close(k);
	}
}

/* files: names that try to leave the files root. */
static void g_files(void)
{
	nv_handle_t f = nv_files();
	if (f == NV_NO_HANDLE)
		return;
#define OPEN(path, flags) nv_files_open(f, NV_ADDR(path), sizeof(path) - 1, flags)
	CHECK("..", OPEN("..", NV_OPEN_READ), -NV_EDENIED);
	CHECK("../outside.txt", OPEN("../outside.txt", NV_OPEN_READ), -NV_EDENIED);
	CHECK("sub/../../outside.txt", OPEN("sub/../../outside.txt", NV_OPEN_READ), -NV_EDENIED);
	CHECK("a link out", OPEN("escape", NV_OPEN_READ), -NV_EDENIED);
	CHECK("an absolute link", OPEN("abs", NV_OPEN_READ), -NV_EDENIED);
	CHECK("an absolute path", OPEN("/etc/passwd", NV_OPEN_READ), -NV_EINVAL);
	CHECK("a NUL inside", OPEN("hello.txt\0/../..", NV_OPEN_READ), -NV_EINVAL);
	CHECK("an empty path", OPEN("", NV_OPEN_READ), -NV_EINVAL);
	CHECK("no access asked", OPEN("hello.txt", 0), -NV_EINVAL);
	CHECK("unknown flags", OPEN("hello.txt", NV_OPEN_READ | (1ull << 40)), -NV_EINVAL);
	CHECK("write on a read-only root", OPEN("hello.txt", NV_OPEN_WRITE), -NV_EDENIED);
	CHECK("create on a read-only root", OPEN("new.txt", NV_OPEN_WRITE | NV_OPEN_CREATE), -NV_EDENIED);
	CHECK("a directory", OPEN("sub", NV_OPEN_READ), -NV_EISDIR);
	CHECK("a directory to write", OPEN("sub", NV_OPEN_READ | NV_OPEN_WRITE | NV_OPEN_DIR), -NV_EINVAL);
	CHECK("a file as a directory", OPEN("hello.txt", NV_OPEN_READ | NV_OPEN_DIR), -NV_ENOTDIR);
	CHECK("stat into reserved", nv_files_stat(f, NV_ADDR("hello.txt"), 9, 0, NV_RESERVED_BASE, 64), -NV_EFAULT);
	CHECK("stat from reserved", nv_files_stat(f, NV_RESERVED_BASE, 8, 0, 0, 0), -NV_EFAULT);
	CHECK("stat a link out", nv_files_stat(f, NV_ADDR("escape"), 6, 0, 0, 0), -NV_EDENIED);
	CHECK("stat with unknown flags", nv_files_stat(f, NV_ADDR("hello.txt"), 9, 1ull << 40, 0, 0), -NV_EINVAL);
	CHECK("unlink on a read-only root", nv_files_unlink(f, NV_ADDR("hello.txt"), 9), -NV_ERIGHTS);
	CHECK("mkdir on a read-only root", nv_files_mkdir(f, NV_ADDR("d"), 1, 0755), -NV_ERIGHTS);
	CHECK("rename on a read-only root", nv_files_rename(f, NV_ADDR("hello.txt\0x"), 11), -NV_ERIGHTS);
	CHECK("readlink into reserved", nv_files_readlink(f, NV_ADDR("inlink"), 6, NV_RESERVED_BASE, 64), -NV_EFAULT);
	CHECK("readlink a link out", nv_files_readlink(f, NV_ADDR("escape"), 6, 0, 0), 14);
	CHECK("path from reserved", nv_files_open(f, NV_RESERVED_BASE, 8, NV_OPEN_READ), -NV_EFAULT);
	CHECK("path of ~0 bytes", nv_files_open(f, NV_ADDR("x"), ~0ull, NV_OPEN_READ), -NV_ETOOBIG);
	char *longp = nv_alloc(5000);
	if (longp) {
		for (int i = 0; i < 5000; i++)
			longp[i] = (i % 3 == 2) ? '/' : 'a';
		CHECK("a path over the limit", nv_files_open(f, NV_ADDR(longp), 5000, NV_OPEN_READ), -NV_ETOOBIG);
	}
	char names[256];
	CHECK("list ..", nv_files_list(f, NV_ADDR(".."), 2, NV_ADDR(names), sizeof names), -NV_EDENIED);
	CHECK("list a link out", nv_files_list(f, NV_ADDR("escape"), 6, NV_ADDR(names), sizeof names), -NV_EDENIED);
	CHECK("list into reserved", nv_files_list(f, 0, 0, NV_RESERVED_BASE, 64), -NV_EFAULT);
	int64_t h = OK("open hello.txt", OPEN("hello.txt", NV_OPEN_READ));
	char b[16];
	CHECK("read at ~0", nv_file_read(h, ~0ull, NV_ADDR(b), sizeof b), -NV_EINVAL);
	CHECK("read into reserved", nv_file_read(h, 0, NV_RESERVED_BASE, 8), -NV_EFAULT);
	CHECK("write a read-only file", nv_file_write(h, 0, NV_ADDR(b), 1), -NV_ERIGHTS);
	CHECK("read", nv_file_read(h, 0, NV_ADDR(b), 5), 5);
	CHECK("what it read", memcmp(b, "hello", 5), 0);
	nv_handle_close(h);
#undef OPEN
}

/* state: garbage and hostile thread states for a child's thread; the
 * child dies of them, this program goes on. */
static void g_state(void)
{
	struct nv_thread_state st;
	struct child c;

	/* All ones: addresses in the monitor's half, every flag. */
	make_child(&c, 16, 2, 8, 0, 0);
	memset(&st, 0xff, sizeof st);
	CHECK("set_state of all ones", nv_thread_set_state(c.thread, NV_ADDR(&st), sizeof st), 0);
	CHECK("set_state too short", nv_thread_set_state(c.thread, NV_ADDR(&st), sizeof st - 1), -NV_EINVAL);
	CHECK("start it", nv_thread_start(c.thread), 0);
	CHECK("the child dies of it", wait_ended(c.space), NV_SPACE_KILLED);
	drop_child(&c);

	/* Running code, stopped, sent into the monitor's pages. */
	static const uint64_t rips[] = {NV_ABI_ENTRY + 1, NV_RESERVED_BASE + 0x1000, NV_RESERVED_TOP - 8, 0,
					0xffff800000000000ull, NV_USER_TOP};
	for (unsigned i = 0; i < sizeof rips / sizeof rips[0]; i++) {
		make_child(&c, 16, 2, 8, 0, 1);
		CHECK("stop", nv_thread_stop(c.thread), 0);
		CHECK("get_state into too little", nv_thread_get_state(c.thread, NV_ADDR(&st), sizeof st - 1), -NV_ETOOBIG);
		CHECK("get_state", nv_thread_get_state(c.thread, NV_ADDR(&st), sizeof st), sizeof st);
		CHECK("stopped in its loop", st.regs.rip, NV_USER_BASE);
		st.regs.rip = rips[i];
		st.regs.rsp = NV_RESERVED_TOP - 16;
		st.regs.rflags = ~0ull;
		st.regs.fs_base = 0xffff800000000000ull;
		CHECK("set_state", nv_thread_set_state(c.thread, NV_ADDR(&st), sizeof st), 0);
		CHECK("resume", nv_thread_start(c.thread), 0);
		CHECK("the child dies of it", wait_ended(c.space), NV_SPACE_KILLED);
		drop_child(&c);
	}

	/* Non-canonical addresses, which kvm would spin on: refused. */
	make_child(&c, 16, 2, 8, 0, 1);
	CHECK("stop", nv_thread_stop(c.thread), 0);
	CHECK("get_state", nv_thread_get_state(c.thread, NV_ADDR(&st), sizeof st), sizeof st);
	uint64_t *regs[] = {&st.regs.rip, &st.regs.rsp, &st.regs.fs_base, &st.regs.gs_base};
	for (unsigned i = 0; i < sizeof regs / sizeof regs[0]; i++) {
		uint64_t keep = *regs[i];
		*regs[i] = 0x0000800000000000ull;
		CHECK("set_state non-canonical", nv_thread_set_state(c.thread, NV_ADDR(&st), sizeof st), -NV_EINVAL);
		*regs[i] = keep;
	}
	CHECK("kill it", nv_space_kill(c.space, 0), 0);
	CHECK("the child ended", wait_ended(c.space), NV_SPACE_KILLED);
	drop_child(&c);

	/* A bad FPU state: reserved MXCSR bits. */
	make_child(&c, 16, 2, 8, 0, 1);
	CHECK("stop", nv_thread_stop(c.thread), 0);
	CHECK("get_state", nv_thread_get_state(c.thread, NV_ADDR(&st), sizeof st), sizeof st);
	memset(st.fpu + 24, 0xff, 8); /* mxcsr and its mask */
	nv_thread_set_state(c.thread, NV_ADDR(&st), sizeof st);
	nv_thread_start(c.thread);
	pause_ms(10); /* a chance to run with it; no check depends on whether it did */
	CHECK("kill it", nv_space_kill(c.space, 0), 0);
	CHECK("the child ended as space_kill returned", nv_space_status(c.space), NV_SPACE_KILLED);
	drop_child(&c);
	CHECK("get_state of a thread that runs", nv_thread_get_state(nv_self_thread(), NV_ADDR(&st), sizeof st), -NV_EBUSY);
}

/* ipc: replies that answer nothing, receives that cannot hold a message,
 * sends past what the monitor will queue. */
static void g_ipc(void)
{
	nv_handle_t self = nv_self_space();
	int64_t p = OK("port_create", nv_port_create(self));
	int64_t set = OK("port_set_create", nv_port_set_create(self));
	struct nv_msg m;
	CHECK("receive into too little", nv_port_receive(p, NV_ADDR(&m), 8, 0, 0), -NV_ETOOBIG);
	CHECK("set_add a console", nv_port_set_add(set, nv_console()), -NV_EWRONGTYPE);
	CHECK("set_add a region", nv_port_set_add(set, self), -NV_EWRONGTYPE);
	CHECK("set_add", nv_port_set_add(set, p), 0);
	CHECK("set_add twice", nv_port_set_add(set, p), -NV_EBUSY);
	CHECK("send on a set", nv_port_send(set, 1, 0, 0, 0), -NV_EINVALOP);
	int sent = 0;
	static uint8_t page[PAGE];
	for (; sent < 5000; sent++) {
		int64_t r = nv_port_send(p, sent, NV_ADDR(page), sizeof page, 0);
		if (r < 0) {
			CHECK("sends past the bound", r, -NV_EWOULDBLOCK);
			break;
		}
	}
	TRUE("the monitor bounds what waits", sent > 0 && sent < 5000);
	CHECK("receive one", nv_port_receive(set, NV_ADDR(&m), sizeof m, 0, 0), 0);
	CHECK("the first sent", m.op, 0);
	CHECK("send again", nv_port_send(p, 1, 0, 0, 0), 0);
	nv_handle_close(p); /* its messages stay queued until this program ends */
	nv_handle_close(set);
}

/* exhaust: a one-page region mapped at every other page until the
 * monitor says no. Each mapping costs the monitor host mappings its
 * process shares with the Go runtime; the monitor must stop at its
 * budget, answer ENOMEM and keep working (it used to run out and die at
 * its next allocation). */
static void g_exhaust(void)
{
	nv_handle_t self = nv_self_space();
	const uint64_t base = 0x800000000ull, bigsize = 4 << 20;
	int64_t r = OK("region_create", nv_region_create(self, PAGE));
	int64_t big = OK("region_create", nv_region_create(self, bigsize));
	CHECK("map big", nv_space_map(self, big, MAP_C, 0, bigsize, NV_PERM_READ | NV_PERM_WRITE), 0);
	uint64_t n = 0;
	int64_t e = 0;
	for (; n < (1ull << 21); n++) {
		e = nv_space_map(self, r, base + 2 * n * PAGE, 0, PAGE, NV_PERM_READ);
		if (e < 0)
			break;
	}
	CHECK("mapping ends on the monitor's budget", e, -NV_ENOMEM);
	for (int k = 0; k < 8; k++)
		CHECK("the monitor still copies", nv_region_read(big, 0, MAP_C, bigsize), bigsize);
	/* Unmapping gives back what a child needs (the rest goes when this
	 * program ends: unmapping is slow, each one a TLB flush). */
	for (uint64_t i = 0; i < 64 && i < n; i++)
		CHECK("unmap", nv_space_unmap(self, base + 2 * i * PAGE, PAGE), 0);
	CHECK("unmap big", nv_space_unmap(self, MAP_C, bigsize), 0);
	struct child c;
	make_child(&c, 16, 1, 8, 0, 1);
	drop_child(&c);
	nv_handle_close(r);
	nv_handle_close(big);
}

static const struct {
	const char *name;
	void (*fn)(void);
} groups[] = {
	{"forged", g_forged}, {"stale", g_stale}, {"revoke", g_revoke}, {"derive", g_derive},
	{"pointers", g_pointers}, {"lengths", g_lengths}, {"grant", g_grant}, {"peergone", g_peergone},
	{"quota", g_quota}, {"children", g_children}, {"files", g_files}, {"state", g_state},
	{"ipc", g_ipc}, {"exhaust", g_exhaust},
};

/* churn: n rounds of a child with a region, a port and a running thread,
 * killed. space_kill returns once the child is gone, so every round finds
 * the children quota as the last one found it. */
static int churn(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		struct child c;
		make_child(&c, 16, 1, 8, 0, 1);
		int64_t p = OK("port_create", nv_port_create(c.space));
		int64_t r = OK("region_create", nv_region_create(c.space, 4 * PAGE));
		OK("space_map", nv_space_map(c.space, r, NV_USER_BASE + PAGE, 0, 4 * PAGE, NV_PERM_READ | NV_PERM_WRITE));
		drop_child(&c);
		nv_handle_close(p);
		nv_handle_close(r);
		if (failures)
			break;
	}
	nv_printf("churn %llu done\n", (unsigned long long)n);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "churn") == 0) {
		int valid;
		uint64_t n = nv_atou64(argv[2], &valid);
		if (!valid)
			nv_panic("hostile: churn wants a number\n");
		return churn(n);
	}
	for (unsigned k = 0; k < sizeof groups / sizeof groups[0]; k++) {
		int run = argc < 2;
		for (int i = 1; i < argc; i++)
			run |= strcmp(argv[i], groups[k].name) == 0;
		if (!run)
			continue;
		int before = failures;
		groups[k].fn();
		if (failures == before)
			nv_printf("PASS %s\n", groups[k].name);
	}
	return failures > 100 ? 100 : failures;
}
