/* kerneltest: exercises the object kernel from a guest, one area per
 * argument (derive, threads, ipc, interpose, restart, fault, keeper, dirty,
 * quota, mem, batch, batchprint). Each check that fails prints a FAIL line; an area that passes
 * prints "PASS <area>". The exit status is the number of failures (capped). */
#include "nestvm.h"

static int failures;

#define CHECK(what, got, want)                                                                  \
	do {                                                                                    \
		int64_t g_ = (int64_t)(got), w_ = (int64_t)(want);                             \
		if (g_ != w_) {                                                                 \
			nv_printf("FAIL: %s: got %lld want %lld\n", what, (long long)g_, (long long)w_); \
			failures++;                                                             \
		}                                                                               \
	} while (0)

#define OK(what, got)                                                                           \
	do {                                                                                    \
		int64_t g_ = (int64_t)(got);                                                   \
		if (g_ < 0) {                                                                   \
			nv_printf("FAIL: %s: %s\n", what, nv_strerror(g_));                    \
			failures++;                                                             \
		}                                                                               \
	} while (0)

/* A thread of this space: entry gets arg; it must end with thread_exit. */
struct thread {
	nv_handle_t h;
	void (*fn)(struct thread *);
	uint64_t arg;
	volatile uint64_t out;
};

static void thread_entry(uint64_t p)
{
	struct thread *t = (struct thread *)(uintptr_t)p;
	t->fn(t);
	nv_thread_exit(t->h, 0);
	for (;;)
		;
}

static int spawn(struct thread *t)
{
	const size_t size = 64 << 10;
	char *stack = nv_alloc(size);
	if (!stack)
		return -NV_ENOMEM;
	/* As after a call: RSP+8 is 16-byte aligned. */
	uint64_t sp = ((NV_ADDR(stack) + size) & ~15ull) - 8;
	int64_t h = nv_thread_create(nv_self_space(), NV_ADDR(thread_entry), sp, NV_ADDR(t));
	if (h < 0)
		return h;
	t->h = h;
	return nv_thread_start(h);
}

static volatile uint32_t word;

static void wait_word(uint32_t until)
{
	/* Read the word once per round: sleeping on a second read would
	 * sleep forever when set_word runs between the two and stores until
	 * (its wake then found nobody asleep). */
	for (uint32_t w; (w = word) != until;)
		nv_futex_wait(nv_self_space(), NV_ADDR(&word), w, 0);
}

static void set_word(uint32_t v)
{
	word = v;
	nv_futex_wake(nv_self_space(), NV_ADDR(&word), 100);
}

/* yield gives the other threads a moment between two looks at a state
 * nothing wakes this thread for (a thread's status): the loops around it
 * wait for the state, never for a time, which a loaded host can exceed. */
static void yield(void)
{
	nv_futex_wait(nv_self_space(), NV_ADDR(&word), word, 1000000);
}

/* wait_exited waits for thread h to have exited. */
static void wait_exited(nv_handle_t h)
{
	while (nv_thread_status(h) != NV_THREAD_EXITED)
		yield();
}

/* wait_blocked waits for thread h to be blocked in operation op, as
 * thread_status reports it. */
static void wait_blocked(nv_handle_t h, uint64_t op)
{
	for (;;) {
		nv_result_t st = nv_thread_status_r(h);
		if (st.r0 == NV_THREAD_RUNNING && (uint64_t)st.r1 == op)
			return;
		if (st.r0 == NV_THREAD_EXITED) {
			CHECK("a thread waited for to block", st.r0, NV_THREAD_RUNNING);
			return;
		}
		yield();
	}
}

/* derive: rights only shrink; revoke reaches every space. */
static void test_derive(void)
{
	nv_handle_t con = nv_console();
	char hi[] = "derived\n";
	int64_t w = nv_handle_derive(con, NV_R_WRITE | NV_R_DERIVE | NV_R_GRANT, 0);
	OK("derive console", w);
	CHECK("write through the copy", nv_console_write(w, NV_ADDR(hi), sizeof hi - 1), sizeof hi - 1);
	CHECK("derive more rights", nv_handle_derive(con, NV_R_WRITE | NV_R_READ, 0), -NV_ERIGHTS);
	int64_t ro = nv_handle_derive(w, NV_R_GRANT, 0);
	OK("derive without write", ro);
	CHECK("write without the right", nv_console_write(ro, NV_ADDR(hi), 1), -NV_ERIGHTS);
	CHECK("derive from a handle without derive", nv_handle_derive(ro, 0, 0), -NV_ERIGHTS);
	int64_t b = nv_handle_derive(w, NV_R_WRITE | NV_R_DERIVE, 7);
	OK("derive with a badge", b);
	CHECK("a badge is set once", nv_handle_derive(b, NV_R_WRITE, 8), -NV_EINVAL);

	int64_t child = nv_space_create(nv_self_space(), 64, 1, 16, 0);
	OK("space_create", child);
	int64_t in = nv_space_insert(child, w, NV_R_WRITE | NV_R_GRANT);
	OK("insert into the child", in);

	nv_result_t r = nv_handle_revoke_r(con);
	CHECK("revoke count", r.r0, 4); /* w, ro, b, and the child's copy */
	CHECK("copy gone", nv_console_write(w, NV_ADDR(hi), 1), -NV_EBADHANDLE);
	CHECK("copy of copy gone", nv_handle_info(ro), -NV_EBADHANDLE);
	CHECK("child's copy gone", nv_space_remove(child, in), -NV_EBADHANDLE);
	CHECK("source kept", nv_console_write(con, NV_ADDR(hi), 0), 0);
	CHECK("close child", nv_handle_close(child), 0);
	CHECK("closed handle", nv_handle_close(child), -NV_EBADHANDLE);
}

/* threads: create, futex, stop, get/set state, status. */
static void counter(struct thread *t)
{
	t->out = t->arg * 2;
	set_word(1);
}

static volatile uint64_t spin_flag, spins;

static void spinner(struct thread *t)
{
	(void)t;
	while (!spin_flag)
		spins++;
}

static void test_threads(void)
{
	struct thread t = {.fn = counter, .arg = 21};
	word = 0;
	OK("spawn", spawn(&t));
	wait_word(1);
	CHECK("thread result", t.out, 42);
	wait_exited(t.h);
	CHECK("its exit status", nv_thread_status_r(t.h).r1, 0);
	CHECK("futex mismatch", nv_futex_wait(nv_self_space(), NV_ADDR(&word), 5, 0), -NV_EWOULDBLOCK);
	CHECK("futex timeout", nv_futex_wait(nv_self_space(), NV_ADDR(&word), 1, 1000000), -NV_ETIMEOUT);
	CHECK("futex unaligned", nv_futex_wait(nv_self_space(), NV_ADDR(&word) + 1, 1, 0), -NV_EINVAL);
	int64_t now = nv_clock_read(nv_clock(), NV_CLOCK_MONOTONIC);
	CHECK("clock_wait for a time gone by", nv_clock_wait(nv_clock(), NV_CLOCK_MONOTONIC, 1) >= now, 1);
	int64_t until = now + 1000000, got;
	while ((got = nv_clock_wait(nv_clock(), NV_CLOCK_MONOTONIC, until)) >= 0 && got < until)
		; /* woken early: wait again */
	CHECK("clock_wait reaches its deadline", got >= until, 1);
	/* However the monitor served the waits, the thread is back in ring 3
	 * (emu resumes a waiting thread on a fresh engine). */
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	CHECK("ring 3 after the waits", cs & 3, 3);
	CHECK("clock_wait on no clock", nv_clock_wait(nv_clock(), 9, 1), -NV_EINVAL);
	CHECK("space_running: the caller alone", nv_space_running(nv_self_space()), 1);

	struct thread s = {.fn = spinner};
	spin_flag = 0;
	OK("spawn spinner", spawn(&s));
	while (spins < 1000)
		;
	CHECK("space_running: the caller and the spinner", nv_space_running(nv_self_space()), 2);
	CHECK("space_running: none waits", nv_space_running_r(nv_self_space()).r1, 0);
	CHECK("stop", nv_thread_stop(s.h), 0);
	CHECK("space_running: a stopped thread may be resumed: it does not wait", nv_space_running(nv_self_space()), 2);
	CHECK("space_running: still none waits", nv_space_running_r(nv_self_space()).r1, 0);
	CHECK("status stopped", nv_thread_status(s.h), NV_THREAD_STOPPED);
	uint64_t before = spins;
	struct nv_thread_state st;
	CHECK("get_state", nv_thread_get_state(s.h, NV_ADDR(&st), sizeof st), sizeof st);
	CHECK("get_state too small", nv_thread_get_state(s.h, NV_ADDR(&st), 8), -NV_ETOOBIG);
	CHECK("stopped means stopped", spins, before);
	if (st.regs.rip < NV_USER_BASE || st.regs.rip >= 0x10000000)
		CHECK("rip in the program", st.regs.rip, 0);
	CHECK("set_state", nv_thread_set_state(s.h, NV_ADDR(&st), sizeof st), 0);
	CHECK("get_state of self", nv_thread_get_state(nv_self_thread(), NV_ADDR(&st), sizeof st), -NV_EBUSY);
	CHECK("resume", nv_thread_start(s.h), 0);
	while (spins == before) /* it runs again */
		yield();
	spin_flag = 1;
	wait_exited(s.h);
}

/* ipc: call/reply, send, port sets with badges. */
static nv_handle_t srv_port;

static void echo_server(struct thread *t)
{
	char buf[64];
	struct nv_msg m;
	for (uint64_t i = 0; i < t->arg; i++) {
		int64_t n = nv_port_receive(srv_port, NV_ADDR(&m), sizeof m, NV_ADDR(buf), sizeof buf);
		if (n < 0)
			return;
		if (m.kind == NV_MSG_SEND) {
			t->out += m.op;
			continue;
		}
		for (int64_t k = 0; k < n; k++)
			if (buf[k] >= 'a' && buf[k] <= 'z')
				buf[k] -= 32;
		nv_port_reply(srv_port, m.call_id, m.op * 100 + m.badge, m.words[0], NV_ADDR(buf), n, 0);
	}
}

static void test_ipc(void)
{
	int64_t p = nv_port_create(nv_self_space());
	OK("port_create", p);
	srv_port = p;
	struct thread t = {.fn = echo_server, .arg = 3};
	OK("spawn server", spawn(&t));
	int64_t c = nv_handle_derive(p, NV_R_CALL, 5);
	char out[16] = {0};
	nv_result_t r = nv_port_call_r(c, 9, NV_ADDR("hello"), 5, NV_ADDR(out), sizeof out);
	CHECK("call r0", r.r0, NV_OP_PORT_CALL * 100 + 5);
	CHECK("call r1", r.r1, 9);
	CHECK("reply data", memcmp(out, "HELLO", 6), 0);
	CHECK("send", nv_port_send(c, 30, 0, 0, 0), 0);
	CHECK("send", nv_port_send(c, 12, 0, 0, 0), 0);
	wait_exited(t.h);
	CHECK("sends arrived", t.out, 42);
	CHECK("receive without the right", nv_port_receive(c, NV_ADDR(out), sizeof out, 0, 0), -NV_ERIGHTS);

	/* A port set: two ports, told apart by badge. */
	int64_t set = nv_port_set_create(nv_self_space());
	int64_t p1 = nv_port_create(nv_self_space()), p2 = nv_port_create(nv_self_space());
	CHECK("set add", nv_port_set_add(set, p1), 0);
	CHECK("set add", nv_port_set_add(set, p2), 0);
	CHECK("set add twice", nv_port_set_add(set, p2), -NV_EBUSY);
	int64_t s1 = nv_handle_derive(p1, NV_R_CALL, 11), s2 = nv_handle_derive(p2, NV_R_CALL, 22);
	CHECK("send 1", nv_port_send(s2, 2, 0, 0, 0), 0);
	CHECK("send 2", nv_port_send(s1, 1, 0, 0, 0), 0);
	struct nv_msg m;
	CHECK("receive on set", nv_port_receive(set, NV_ADDR(&m), sizeof m, 0, 0), 0);
	uint64_t first = m.badge;
	CHECK("receive on set", nv_port_receive(set, NV_ADDR(&m), sizeof m, 0, 0), 0);
	CHECK("badges", first + m.badge, 33);
	CHECK("msg too small", nv_port_receive(set, NV_ADDR(out), 8, 0, 0), -NV_ETOOBIG);
}

/* interpose: a guest server stands in for a console and for a region. */
static nv_handle_t stand_port;

static void stand_in(struct thread *t)
{
	char buf[256];
	struct nv_msg m;
	for (;;) {
		int64_t n = nv_port_receive(stand_port, NV_ADDR(&m), sizeof m, NV_ADDR(buf), sizeof buf);
		if (n < 0)
			return;
		switch (m.op) {
		case NV_OP_CONSOLE_WRITE:
			nv_write("[interposed] ", 13);
			nv_write(buf, n);
			nv_port_reply(stand_port, m.call_id, n, 0, 0, 0, 0);
			break;
		case NV_OP_REGION_SIZE:
			nv_port_reply(stand_port, m.call_id, 8192, 0, 0, 0, 0);
			break;
		case NV_OP_REGION_READ: {
			uint64_t want = m.reply_cap < sizeof buf ? m.reply_cap : sizeof buf;
			for (uint64_t i = 0; i < want; i++)
				buf[i] = (char)('a' + (m.words[0] + i) % 26);
			nv_port_reply(stand_port, m.call_id, want, 0, NV_ADDR(buf), want, 0);
			break;
		}
		case NV_OP_FILES_OPEN:
			/* Answer with a handle: the caller gets its own number for it. */
			nv_port_reply(stand_port, m.call_id, 0, 0, 0, 0, nv_console());
			break;
		case NV_OP_THREAD_EXIT:
			nv_port_reply(stand_port, m.call_id, 0, 0, 0, 0, 0);
			t->out = 1;
			return;
		default:
			nv_port_reply(stand_port, m.call_id, -NV_EINVALOP, 0, 0, 0, 0);
		}
	}
}

static void test_interpose(void)
{
	int64_t p = nv_port_create(nv_self_space());
	stand_port = p;
	struct thread t = {.fn = stand_in};
	OK("spawn stand-in", spawn(&t));
	int64_t con = nv_handle_derive(p, NV_R_WRITE | NV_R_READ | NV_R_CALL, 0);
	char msg[] = "console through a guest server\n";
	CHECK("console_write on the stand-in", nv_console_write(con, NV_ADDR(msg), sizeof msg - 1), sizeof msg - 1);
	CHECK("region_size on the stand-in", nv_region_size(con), 8192);
	char buf[8] = {0};
	CHECK("region_read on the stand-in", nv_region_read(con, 2, NV_ADDR(buf), 5), 5);
	CHECK("region_read data", memcmp(buf, "cdefg", 5), 0);
	CHECK("clock_read refused by the server", nv_clock_read(con, 0), -NV_EINVALOP);
	int64_t h = nv_files_open(con, NV_ADDR("x"), 1, NV_OPEN_READ);
	OK("handle in the reply", h);
	CHECK("the reply's handle is the console", nv_handle_info(h), NV_OBJ_PORT);
	CHECK("rights still checked", nv_thread_start(con), -NV_ERIGHTS);
	int64_t ctl = nv_handle_derive(p, NV_R_CONTROL | NV_R_CALL, 0);
	CHECK("thread_exit on the stand-in", nv_thread_exit(ctl, 3), 0);
	wait_exited(t.h);
	CHECK("stand-in saw thread_exit", t.out, 1);
}

/* restart: a thread stopped in a blocking receive re-issues it. */
static nv_handle_t rs_port;

static void blocked_receiver(struct thread *t)
{
	struct nv_msg m;
	int64_t r = nv_port_receive(rs_port, NV_ADDR(&m), sizeof m, 0, 0);
	t->out = r == 0 ? m.op : 999;
	set_word(7);
}

static void test_restart(void)
{
	rs_port = nv_port_create(nv_self_space());
	struct thread t = {.fn = blocked_receiver};
	word = 0;
	OK("spawn receiver", spawn(&t));
	wait_blocked(t.h, NV_OP_PORT_RECEIVE);
	struct nv_thread_state st;
	CHECK("stop the blocked thread", nv_thread_stop(t.h), 0);
	CHECK("get_state", nv_thread_get_state(t.h, NV_ADDR(&st), sizeof st), sizeof st);
	CHECK("stopped at the entry", st.regs.rip, NV_ABI_ENTRY);
	CHECK("op in rsi", st.regs.rsi, NV_OP_PORT_RECEIVE);
	CHECK("send while stopped", nv_port_send(rs_port, 77, 0, 0, 0), 0);
	CHECK("still stopped", nv_thread_status(t.h), NV_THREAD_STOPPED);
	CHECK("resume", nv_thread_start(t.h), 0);
	wait_word(7);
	CHECK("re-issued receive got the message", t.out, 77);
	/* The receiver still runs on its way out after setting the word: an
	 * area after this one that needs every other thread stopped (dirty)
	 * must not meet it. */
	wait_exited(t.h);
}

/* fault: the exception port gets the fault; the reply resumes with new
 * state. */
static nv_handle_t exc_port;
static volatile uint64_t recovered;

static void recover(void)
{
	recovered = 1;
	set_word(9);
	for (;;)
		nv_futex_wait(nv_self_space(), NV_ADDR(&word), 9, 0);
}

static void faulter(struct thread *t)
{
	(void)t;
	uintptr_t addr = 16;
	__asm__ volatile("" : "+r"(addr)); /* hide the constant from the compiler's bounds checks */
	*(volatile uint64_t *)addr = 1;
}

static void handler(struct thread *t)
{
	char buf[sizeof(struct nv_thread_state)];
	struct nv_msg m;
	int64_t n = nv_port_receive(exc_port, NV_ADDR(&m), sizeof m, NV_ADDR(buf), sizeof buf);
	if (n != sizeof buf || m.kind != NV_MSG_FAULT) {
		t->out = 1000 + m.kind;
		return;
	}
	t->out = m.words[NV_FW_VECTOR] * 1000 + m.words[NV_FW_ADDR];
	struct nv_thread_state *st = (struct nv_thread_state *)buf;
	CHECK("fault state matches", st->regs.rip, m.words[NV_FW_RIP]);
	CHECK("fault handle is the thread", nv_handle_info(m.handles[0]), NV_OBJ_THREAD);
	CHECK("faulted thread is stopped", nv_thread_status(m.handles[0]), NV_THREAD_STOPPED);
	st->regs.rip = NV_ADDR(recover);
	st->regs.rsp = (st->regs.rsp & ~15ull) - 8;
	nv_port_reply(exc_port, m.call_id, NV_FAULT_RESUME_STATE, 0, NV_ADDR(buf), sizeof buf, 0);
}

static void test_fault(void)
{
	exc_port = nv_port_create(nv_self_space());
	CHECK("set exception port", nv_space_set_exception_port(nv_self_space(), exc_port), 0);
	struct thread h = {.fn = handler}, f = {.fn = faulter};
	word = 0;
	OK("spawn handler", spawn(&h));
	OK("spawn faulter", spawn(&f));
	wait_word(9);
	CHECK("handler saw a page fault at 16", h.out, 14 * 1000 + 16);
	CHECK("resumed in recover", recovered, 1);
	CHECK("clear exception port", nv_space_set_exception_port(nv_self_space(), 0), 0);
	nv_thread_exit(f.h, 0);
	wait_exited(f.h);
	wait_exited(h.h);
}

/* keeper: pages of a kept region are supplied on first touch. */
static nv_handle_t keep_port, keep_region;
static volatile uint64_t requests;

static void keeper(struct thread *t)
{
	static char page[4096];
	struct nv_msg m;
	for (;;) {
		if (nv_port_receive(keep_port, NV_ADDR(&m), sizeof m, 0, 0) < 0 || m.kind != NV_MSG_PAGE)
			return;
		requests++;
		uint64_t off = m.words[NV_FW_OFFSET];
		for (int i = 0; i < 4096; i++)
			page[i] = (char)(off / 4096 + 1);
		nv_region_supply(keep_region, off, NV_ADDR(page), sizeof page);
		nv_port_reply(keep_port, m.call_id, NV_FAULT_RESUME, 0, 0, 0, 0);
		(void)t;
	}
}

static void test_keeper(void)
{
	keep_port = nv_port_create(nv_self_space());
	int64_t r = nv_region_create(nv_self_space(), 4 * 4096);
	OK("region_create", r);
	keep_region = r;
	int64_t kp = nv_handle_derive(keep_port, NV_R_CALL, 3);
	CHECK("set keeper", nv_region_set_keeper(r, kp), 0);
	const uint64_t at = 0xf00000000ull - 0x100000;
	CHECK("map", nv_space_map(nv_self_space(), r, at, 0, 4 * 4096, NV_PERM_READ | NV_PERM_WRITE), 0);
	CHECK("keeper after map", nv_region_set_keeper(r, kp), -NV_EBUSY);
	struct thread k = {.fn = keeper};
	OK("spawn keeper", spawn(&k));
	volatile char *mem = (volatile char *)(uintptr_t)at;
	CHECK("page 2 from the keeper", mem[2 * 4096 + 5], 3);
	CHECK("page 0 from the keeper", mem[7], 1);
	mem[9] = 42;
	CHECK("write sticks", mem[9], 42);
	CHECK("page 0 again: no request", requests, 2);
	char back[4];
	CHECK("region_read sees it", nv_region_read(r, 8, NV_ADDR(back), 2), 2);
	CHECK("region_read data", back[1], 42);
	/* The keeper thread runs; pages 1 and 3, never supplied, stay absent. */
	CHECK("protect while the keeper runs", nv_space_protect(nv_self_space(), at, 4 * 4096, NV_PERM_READ | NV_PERM_WRITE), 0);

	/* Accessed bits: the pages touched since the last ask, the keeper
	 * thread running all along. */
	uint8_t acc = 0;
	CHECK("accessed: bitmap too small", nv_region_accessed(r, NV_ADDR(&acc), 0), -NV_ETOOBIG);
	CHECK("accessed: first ask", nv_region_accessed(r, NV_ADDR(&acc), 1), 2);
	CHECK("accessed: pages 0 and 2", acc, 1 << 0 | 1 << 2);
	CHECK("accessed: none since", nv_region_accessed(r, NV_ADDR(&acc), 1), 0);
	CHECK("accessed: read page 2", mem[2 * 4096 + 6], 3);
	CHECK("accessed: one since", nv_region_accessed(r, NV_ADDR(&acc), 1), 1);
	CHECK("accessed: page 2", acc, 1 << 2);
	mem[10] = 43;
	CHECK("accessed: a write counts", nv_region_accessed(r, NV_ADDR(&acc), 1), 1);
	CHECK("accessed: page 0", acc, 1 << 0);
	CHECK("accessed: region_read is no touch", nv_region_read(r, 4096 * 2, NV_ADDR(back), 1), 1);
	CHECK("accessed: none after region_read", nv_region_accessed(r, NV_ADDR(&acc), 1), 0);

	/* Evicted pages are asked for again, and supplied afresh. */
	static char saved[2 * 4096];
	CHECK("evict: data too small", nv_region_evict(r, 0, 4096, NV_ADDR(saved), 4095), -NV_ETOOBIG);
	CHECK("evict: not evicted", requests, 2);
	CHECK("evict page 0", nv_region_evict(r, 0, 4096, NV_ADDR(saved), sizeof saved), 0);
	CHECK("evict: contents saved", saved[9] == 42 && saved[10] == 43 && saved[11] == 1, 1);
	CHECK("evict: saved no more than size", saved[4096], 0);
	CHECK("evict: region_read reads zeros", nv_region_read(r, 8, NV_ADDR(back), 4), 4);
	CHECK("evict: zeros", back[0] | back[1] | back[2] | back[3], 0);
	CHECK("evict unaligned", nv_region_evict(r, 1, 4096, 0, 0), -NV_EINVAL);
	CHECK("evict past the end", nv_region_evict(r, 4096, 4 * 4096, 0, 0), -NV_EINVAL);
	CHECK("evict: no request yet", requests, 2);
	CHECK("page 0 supplied again", mem[9], 1); /* the keeper's pattern, not the 42 written before */
	CHECK("a third request", requests, 3);
	CHECK("page 2 still there", mem[2 * 4096 + 5], 3);
	CHECK("no request for page 2", requests, 3);
	CHECK("accessed: pages 0 and 2 again", nv_region_accessed(r, NV_ADDR(&acc), 1), 2);
	CHECK("accessed: bits", acc, 1 << 0 | 1 << 2);

	/* Evicting pages 0-1 (1 never supplied) with nothing to save. */
	CHECK("evict two, discarding", nv_region_evict(r, 0, 2 * 4096, 0, 0), 0);
	CHECK("page 1 from the keeper", mem[4096 + 3], 2);
	CHECK("a fourth request", requests, 4);

	/* A thread that faults between loading an SSE register and storing
	 * it resumes with the register as it was (emu once resumed with the
	 * x87/SSE state of when it entered ring 3: zeros). */
	static const uint8_t pattern[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	__asm__ volatile("movdqu (%0), %%xmm0\n\tmovdqu %%xmm0, (%1)"
			 :
			 : "r"(pattern), "r"(mem + 3 * 4096)
			 : "xmm0", "memory");
	CHECK("a fifth request", requests, 5);
	CHECK("SSE store across a page-in", mem[3 * 4096 + 15], 16);
	CHECK("the rest from the keeper", mem[3 * 4096 + 16], 4);
	/* The keeper, blocked in its receive, counts as running: an area
	 * after this one that needs every other thread stopped (dirty) must
	 * not meet it. */
	nv_thread_exit(k.h, 0);
	wait_exited(k.h);
}

/* dirty: written pages are reported once. */
static void test_dirty(void)
{
	int64_t r = nv_region_create(nv_self_space(), 16 * 4096);
	const uint64_t at = 0xf00000000ull - 0x200000;
	CHECK("map", nv_space_map(nv_self_space(), r, at, 0, 16 * 4096, NV_PERM_READ | NV_PERM_WRITE), 0);
	uint8_t bits[2], acc[2];
	volatile char *mem = (volatile char *)(uintptr_t)at;
	/* The first ask reports every page written since creation. */
	mem[1 * 4096] = 1;
	char one = 1;
	CHECK("region_write", nv_region_write(r, 12 * 4096, NV_ADDR(&one), 1), 1);
	CHECK("first ask", nv_region_dirty(r, NV_ADDR(bits), sizeof bits, 0), 2);
	CHECK("first ask bits", bits[0] | bits[1] << 8, (1 << 1) | (1 << 12));
	CHECK("accessed: first ask", nv_region_accessed(r, NV_ADDR(acc), sizeof acc), 1);
	CHECK("accessed: first ask bits", acc[0] | acc[1] << 8, 1 << 1);
	mem[3 * 4096] = 1;
	mem[9 * 4096 + 100] = 1;
	(void)mem[5 * 4096];
	CHECK("dirty count", nv_region_dirty(r, NV_ADDR(bits), sizeof bits, 0), 2);
	CHECK("dirty bits", bits[0] | bits[1] << 8, (1 << 3) | (1 << 9));
	CHECK("accessed count", nv_region_accessed(r, NV_ADDR(acc), sizeof acc), 3);
	CHECK("accessed bits: read ones too", acc[0] | acc[1] << 8, (1 << 3) | (1 << 5) | (1 << 9));
	CHECK("clean after", nv_region_dirty(r, NV_ADDR(bits), sizeof bits, 0), 0);
	CHECK("untouched after", nv_region_accessed(r, NV_ADDR(acc), sizeof acc), 0);
	mem[3 * 4096 + 1] = 2;
	char back = 0;
	nv_region_read(r, 3 * 4096 + 1, NV_ADDR(&back), 1);
	CHECK("write landed", back, 2);
	CHECK("dirty again", nv_region_dirty(r, NV_ADDR(bits), sizeof bits, 0), 1);
	CHECK("bitmap too small", nv_region_dirty(r, NV_ADDR(bits), 1, 0), -NV_ETOOBIG);
	/* The monitor writing a result into a buffer sets no dirty bit in a
	 * page table: it marks the page itself. */
	CHECK("read into page 7", nv_region_read(r, 0, NV_ADDR(mem + 7 * 4096), 8), 8);
	CHECK("monitor's write", nv_region_dirty(r, NV_ADDR(bits), sizeof bits, 0), 1);
	CHECK("monitor's write: bits", bits[0] | bits[1] << 8, 1 << 7);
	/* A write the page tables hold when the mapping goes is not lost. */
	mem[4 * 4096] = 1;
	CHECK("unmap", nv_space_unmap(nv_self_space(), at, 16 * 4096), 0);
	CHECK("unmap again", nv_space_unmap(nv_self_space(), at, 16 * 4096), -NV_ENOTFOUND);
	CHECK("written before unmap", nv_region_dirty(r, NV_ADDR(bits), sizeof bits, 0), 1);
	CHECK("written before unmap: bits", bits[0] | bits[1] << 8, 1 << 4);
	/* NV_DIRTY_EVER: every page written since creation, and a fresh start. */
	CHECK("ever", nv_region_dirty(r, NV_ADDR(bits), sizeof bits, NV_DIRTY_EVER), 6);
	CHECK("ever: bits", bits[0] | bits[1] << 8, (1 << 1) | (1 << 3) | (1 << 4) | (1 << 7) | (1 << 9) | (1 << 12));
	CHECK("after ever", nv_region_dirty(r, NV_ADDR(bits), sizeof bits, 0), 0);
	CHECK("unknown flags", nv_region_dirty(r, NV_ADDR(bits), sizeof bits, 2), -NV_EINVAL);
	/* A part of a mapping unmapped or made inaccessible hands its written
	 * pages over; the parts left keep theirs. */
	CHECK("map again", nv_space_map(nv_self_space(), r, at, 0, 16 * 4096, NV_PERM_READ | NV_PERM_WRITE), 0);
	mem[2 * 4096] = 1;
	mem[6 * 4096] = 1;
	mem[10 * 4096] = 1;
	CHECK("unmap page 2", nv_space_unmap(nv_self_space(), at + 2 * 4096, 4096), 0);
	CHECK("no access to page 6", nv_space_protect(nv_self_space(), at + 6 * 4096, 4096, 0), 0);
	CHECK("dirty through splits", nv_region_dirty(r, NV_ADDR(bits), sizeof bits, 0), 3);
	CHECK("dirty through splits: bits", bits[0] | bits[1] << 8, (1 << 2) | (1 << 6) | (1 << 10));
	CHECK("unmap the pieces", nv_space_unmap(nv_self_space(), at, 16 * 4096), 0);
}

/* quota: children cannot exceed their ancestors. */
static void test_quota(void)
{
	nv_handle_t self = nv_self_space();
	CHECK("child above the parent", nv_space_create(self, 1ull << 40, 0, 0, 0), -NV_EQUOTA);
	int64_t c = nv_space_create(self, 16, 0, 0, 1);
	OK("small child", c);
	CHECK("region within", nv_region_create(c, 8 * 4096) > 0, 1);
	CHECK("region beyond", nv_region_create(c, 16 * 4096), -NV_EQUOTA);
	int64_t g = nv_space_create(c, 0, 0, 0, 0);
	OK("grandchild", g);
	CHECK("grandchild's region charged to the child", nv_region_create(g, 12 * 4096), -NV_EQUOTA);
	CHECK("second grandchild", nv_space_create(c, 0, 0, 0, 0), -NV_EQUOTA);
	CHECK("child status", nv_space_status(c), NV_SPACE_RUNNING);
	CHECK("kill child", nv_space_kill(c, 5), 0);
	nv_result_t st = nv_space_status_r(c);
	CHECK("child killed", st.r0, NV_SPACE_KILLED);
	CHECK("kill status", st.r1, 5);
	CHECK("grandchild killed with it", nv_space_status(g), NV_SPACE_KILLED);
	/* space_abort ends a subtree as killed, with a reason for the host. */
	static const char why[] = "kerneltest aborts it";
	c = nv_space_create(self, 16, 0, 0, 1);
	OK("child to abort", c);
	g = nv_space_create(c, 0, 0, 0, 0);
	OK("its child", g);
	int64_t ro = nv_handle_derive(c, NV_R_READ, 0);
	OK("read-only copy", ro);
	CHECK("abort without control", nv_space_abort(ro, NV_ADDR(why), sizeof why - 1), -NV_ERIGHTS);
	CHECK("still running", nv_space_status(c), NV_SPACE_RUNNING);
	CHECK("abort", nv_space_abort(c, NV_ADDR(why), sizeof why - 1), 0);
	st = nv_space_status_r(c);
	CHECK("aborted child killed", st.r0, NV_SPACE_KILLED);
	CHECK("abort status", st.r1, 137);
	CHECK("its child killed with it", nv_space_status(g), NV_SPACE_KILLED);
	CHECK("second child after the abort", nv_space_create(self, 16, 0, 0, 1) > 0, 1);
}

/* mem: space_unmap and space_protect split mappings, perm 0 makes pages
 * inaccessible and keeps them, and both take effect for threads that run
 * meanwhile. Probes report a fault instead of taking it: the handler
 * makes the faulting probe return PROBE_FAULT. */
#define PROBE_FAULT 0xfa17ull
uint64_t probe_load(uint64_t addr);              /* the byte at addr */
uint64_t probe_store(uint64_t addr, uint64_t v); /* 0 */
uint64_t probe_call(uint64_t addr);              /* 0: runs the ret at addr */
__asm__(".text\n"
	".globl probe_load\nprobe_load:\n\tmovzbl (%rdi), %eax\n\tret\n"
	".globl probe_store\nprobe_store:\n\tmovb %sil, (%rdi)\n\txorl %eax, %eax\n\tret\n"
	".globl probe_call\nprobe_call:\n\txorl %eax, %eax\n\tjmp *%rdi\n");

static nv_handle_t mem_port;
static volatile uint64_t last_err, last_addr, last_rip, stray, faults;
static uint64_t code_lo, code_hi; /* where probe_call's targets lie */

static void prober(struct thread *t)
{
	char buf[sizeof(struct nv_thread_state)];
	struct nv_msg m;
	(void)t;
	for (;;) {
		int64_t n = nv_port_receive(mem_port, NV_ADDR(&m), sizeof m, NV_ADDR(buf), sizeof buf);
		if (n != sizeof buf || m.kind != NV_MSG_FAULT)
			return;
		struct nv_thread_state *st = (struct nv_thread_state *)buf;
		uint64_t rip = st->regs.rip;
		if (m.words[NV_FW_VECTOR] != 14 ||
		    (rip != NV_ADDR(probe_load) && rip != NV_ADDR(probe_store) && (rip < code_lo || rip >= code_hi)))
			stray++;
		last_err = m.words[NV_FW_ERROR];
		last_addr = m.words[NV_FW_ADDR];
		last_rip = st->regs.rip;
		faults++;
		/* As if the probe returned PROBE_FAULT. */
		st->regs.rax = PROBE_FAULT;
		st->regs.rip = *(uint64_t *)(uintptr_t)st->regs.rsp;
		st->regs.rsp += 8;
		nv_port_reply(mem_port, m.call_id, NV_FAULT_RESUME_STATE, 0, NV_ADDR(buf), sizeof buf, 0);
	}
}

/* A thread reading target until a read faults. A read that began after
 * the main thread set phase (right after the call that took the page
 * away returned) and did not fault is late. */
static volatile uint64_t target, phase, reads, late;

static void reader(struct thread *t)
{
	for (;;) {
		uint64_t p = phase;
		if (probe_load(target) == PROBE_FAULT)
			break;
		if (p)
			late++;
		reads++;
	}
	set_word(t->arg);
}

/* race runs a reader on addr and takes the page away with take while it
 * reads: its next read must fault. rd outlives the call: the reader
 * still uses it after it wakes the caller. */
static void race(const char *what, struct thread *rd, uint64_t addr, int64_t (*take)(uint64_t))
{
	*rd = (struct thread){.fn = reader, .arg = 20};
	target = addr;
	phase = late = reads = 0;
	word = 0;
	OK(what, spawn(rd));
	for (uint64_t n = 0; reads < 1000; n++) {
		if (n == 1000000000ull) {
			nv_printf("FAIL: %s: the reader does not read: %llu faults, the last at %llx (rip %llx, error %llx) reads %llu\n", what,
				  (unsigned long long)faults, (unsigned long long)last_addr, (unsigned long long)last_rip, (unsigned long long)last_err,
				  (unsigned long long)reads);
			failures++;
			return;
		}
	}
	CHECK(what, take(addr), 0);
	phase = 1;
	wait_word(20);
	CHECK("no read after the page went", late, 0);
	CHECK("the reader's fault", last_addr, addr);
	CHECK("the reader's fault: not present", last_err & 1, 0);
}

static int64_t take_unmap(uint64_t a) { return nv_space_unmap(nv_self_space(), a, 4096); }
static int64_t take_protect(uint64_t a) { return nv_space_protect(nv_self_space(), a, 4096, 0); }

static void test_mem(void)
{
	const nv_handle_t self = nv_self_space();
	const uint64_t rw = NV_PERM_READ | NV_PERM_WRITE;
	mem_port = nv_port_create(self);
	CHECK("set exception port", nv_space_set_exception_port(self, mem_port), 0);
	struct thread h = {.fn = prober};
	OK("spawn handler", spawn(&h));
	int64_t r = nv_region_create(self, 8 * 4096);
	OK("region_create", r);
	static char page[4096];
	for (int i = 0; i < 8; i++) {
		for (int k = 0; k < 4096; k++)
			page[k] = (char)(i + 1);
		nv_region_write(r, i * 4096, NV_ADDR(page), sizeof page);
	}
	const uint64_t at = 0xf00000000ull - 0x400000;
#define PG(i) (at + (uint64_t)(i) * 4096)
	CHECK("map", nv_space_map(self, r, at, 0, 8 * 4096, rw), 0);
	CHECK("mapped", probe_load(PG(0) + 1), 1);

	/* Unmapping the start, the end, the middle of a mapping. */
	CHECK("unmap the start", nv_space_unmap(self, PG(0), 4096), 0);
	CHECK("the start faults", probe_load(PG(0)), PROBE_FAULT);
	CHECK("the start: not present", last_err & 1, 0);
	CHECK("the start: address", last_addr, PG(0));
	CHECK("page 1 stays", probe_load(PG(1) + 5), 2);
	CHECK("unmap the end", nv_space_unmap(self, PG(7), 4096), 0);
	CHECK("the end faults", probe_load(PG(7) + 8), PROBE_FAULT);
	CHECK("page 6 stays", probe_load(PG(6) + 4095), 7);
	CHECK("unmap the middle", nv_space_unmap(self, PG(3), 2 * 4096), 0);
	CHECK("the middle faults", probe_load(PG(3)), PROBE_FAULT);
	CHECK("the middle faults: page 4", probe_load(PG(4) + 4095), PROBE_FAULT);
	CHECK("below the hole", probe_load(PG(2) + 4095), 3);
	CHECK("above the hole", probe_load(PG(5)), 6);
	CHECK("write above the hole", probe_store(PG(5) + 1, 0x55), 0);
	char b = 0;
	nv_region_read(r, 5 * 4096 + 1, NV_ADDR(&b), 1);
	CHECK("the write is the region's", b, 0x55);
	CHECK("unmap the hole again", nv_space_unmap(self, PG(3), 2 * 4096), -NV_ENOTFOUND);
	CHECK("unmap across the hole", nv_space_unmap(self, PG(2), 4 * 4096), 0);
	CHECK("across: page 2", probe_load(PG(2)), PROBE_FAULT);
	CHECK("across: page 5", probe_load(PG(5)), PROBE_FAULT);
	CHECK("across: page 1 stays", probe_load(PG(1)), 2);
	CHECK("across: page 6 stays", probe_load(PG(6)), 7);
	CHECK("unmap what is left", nv_space_unmap(self, at, 8 * 4096), 0);
	CHECK("page 1 gone", probe_load(PG(1)), PROBE_FAULT);

	/* Protecting the middle of a mapping. */
	CHECK("map again", nv_space_map(self, r, at, 0, 8 * 4096, rw), 0);
	CHECK("protect the middle read-only", nv_space_protect(self, PG(2), 2 * 4096, NV_PERM_READ), 0);
	CHECK("write below", probe_store(PG(1), 0x11), 0);
	CHECK("write in the middle faults", probe_store(PG(2) + 3, 0x22), PROBE_FAULT);
	CHECK("a write to a present page", last_err & 3, 3);
	CHECK("read in the middle", probe_load(PG(3)), 4);
	CHECK("write above", probe_store(PG(4), 0x44), 0);
	CHECK("protect beyond the mapping", nv_space_protect(self, PG(7), 2 * 4096, rw), -NV_EFAULT);

	/* No access: faults, the contents stay. */
	CHECK("protect no-access", nv_space_protect(self, PG(3), 4096, 0), 0);
	CHECK("no-access read faults", probe_load(PG(3) + 9), PROBE_FAULT);
	CHECK("no-access: not present", last_err & 1, 0);
	CHECK("no-access write faults", probe_store(PG(3), 1), PROBE_FAULT);
	CHECK("no-access: a write", last_err & 3, 2);
	CHECK("no-access page is no buffer", nv_region_read(r, 0, PG(3), 1), -NV_EFAULT);
	CHECK("region_read reads it", nv_region_read(r, 3 * 4096 + 9, NV_ADDR(&b), 1), 1);
	CHECK("region_read: its bytes", b, 4);
	CHECK("protect it all back", nv_space_protect(self, at, 8 * 4096, rw), 0);
	CHECK("the same bytes", probe_load(PG(3) + 9), 4);
	CHECK("writable again", probe_store(PG(2) + 3, 0x22), 0);
	CHECK("page 4 kept its write", probe_load(PG(4)), 0x44);

	CHECK("unmap it all", nv_space_unmap(self, at, 8 * 4096), 0);

	/* space_map with perm 0 reserves. */
	CHECK("map no-access", nv_space_map(self, r, at, 0, 2 * 4096, 0), 0);
	CHECK("no access from the start", probe_load(at), PROBE_FAULT);
	CHECK("grant read", nv_space_protect(self, at, 2 * 4096, NV_PERM_READ), 0);
	CHECK("readable", probe_load(at + 4096 + 5), 2);
	CHECK("unmap the reserve", nv_space_unmap(self, at, 2 * 4096), 0);

	/* Exec permission through splits (which emu keeps outside the page
	 * tables): each page of the mapping holds a ret at 100. */
	static const char ret = (char)0xc3;
	for (int i = 0; i < 8; i++)
		nv_region_write(r, i * 4096 + 100, NV_ADDR(&ret), 1);
	code_lo = at, code_hi = at + 8 * 4096;
	CHECK("map executable", nv_space_map(self, r, at, 0, 8 * 4096, rw | NV_PERM_EXEC), 0);
	CHECK("run page 3", probe_call(PG(3) + 100), 0);
	CHECK("page 3 not executable", nv_space_protect(self, PG(3), 4096, rw), 0);
	CHECK("run page 3: faults", probe_call(PG(3) + 100), PROBE_FAULT);
	CHECK("run page 3: a fetch", last_err & 0x11, 0x11);
	CHECK("run page 2", probe_call(PG(2) + 100), 0);
	CHECK("page 3 executable again", nv_space_protect(self, PG(3), 4096, rw | NV_PERM_EXEC), 0);
	CHECK("run page 3 again", probe_call(PG(3) + 100), 0);
	CHECK("pages 2-4 not executable", nv_space_protect(self, PG(2), 3 * 4096, rw), 0);
	CHECK("run page 4: faults", probe_call(PG(4) + 100), PROBE_FAULT);
	CHECK("run page 2: faults", probe_call(PG(2) + 100), PROBE_FAULT);
	CHECK("run page 5", probe_call(PG(5) + 100), 0);
	CHECK("run page 1", probe_call(PG(1) + 100), 0);
	/* Code the monitor writes (region_write) where the program runs it
	 * runs as written: no translation of the old code survives. */
	static const unsigned char ret1[] = {0xb8, 1, 0, 0, 0, 0xc3}; /* mov eax, 1; ret */
	static const unsigned char ret2[] = {0xb8, 2, 0, 0, 0, 0xc3}; /* mov eax, 2; ret */
	CHECK("write code", nv_region_write(r, 6 * 4096 + 200, NV_ADDR(ret1), sizeof ret1), sizeof ret1);
	int (*fn)(void) = (int (*)(void))(PG(6) + 200);
	CHECK("run the code", fn(), 1);
	CHECK("run it again", fn(), 1);
	CHECK("rewrite the code", nv_region_write(r, 6 * 4096 + 200, NV_ADDR(ret2), sizeof ret2), sizeof ret2);
	CHECK("run the rewritten code", fn(), 2);
	/* And other code mapped where code ran runs as mapped. */
	static const unsigned char ret3[] = {0xb8, 3, 0, 0, 0, 0xc3}; /* mov eax, 3; ret */
	int64_t r3 = nv_region_create(self, 4096);
	OK("region_create for other code", r3);
	CHECK("write other code", nv_region_write(r3, 200, NV_ADDR(ret3), sizeof ret3), sizeof ret3);
	CHECK("unmap the code page", nv_space_unmap(self, PG(6), 4096), 0);
	CHECK("map other code there", nv_space_map(self, r3, PG(6), 0, 4096, NV_PERM_READ | NV_PERM_EXEC), 0);
	CHECK("run the other code", fn(), 3);
	CHECK("unmap the other code", nv_space_unmap(self, PG(6), 4096), 0);
	CHECK("close its region", nv_handle_close(r3), 0);
	CHECK("unmap the code", nv_space_unmap(self, at, 8 * 4096), 0);

	/* While another thread reads the page. */
	CHECK("map for the races", nv_space_map(self, r, at, 0, 8 * 4096, rw), 0);
	static struct thread readers[2];
	race("unmap while read", &readers[0], PG(5), take_unmap);
	CHECK("the rest stays", probe_load(PG(4)), 0x44);
	race("no-access while read", &readers[1], PG(2), take_protect);
	CHECK("protect back", nv_space_protect(self, PG(2), 4096, rw), 0);
	CHECK("kept while no-access", probe_load(PG(2) + 3), 0x22);
	CHECK("no stray faults", stray, 0);
	CHECK("clear exception port", nv_space_set_exception_port(self, 0), 0);
#undef PG
}

/* batch: call_batch performs entries in order, takes values from earlier
 * entries, stops at the first error, refuses hostile batches, and a batch
 * stopped in a blocking entry skips on resume what it already did. */
static struct nv_batch bt, bs;
static nv_handle_t bt_port, bt_count;

static void batch_receiver(struct thread *t)
{
	static struct nv_msg m;
	nv_batch_reset(&bt);
	nv_batch_add(&bt, bt_count, NV_OP_PORT_SEND, 0, 1, 0, 0, 0, 0, 0);
	nv_batch_add(&bt, bt_port, NV_OP_PORT_RECEIVE, 0, NV_ADDR(&m), sizeof m, 0, 0, 0, 0);
	t->out = (uint64_t)nv_batch_run(&bt);
	set_word(9);
}

/* batch_stopper stops itself in the middle of a batch. */
static void batch_stopper(struct thread *t)
{
	nv_batch_reset(&bs);
	nv_batch_add(&bs, bt_count, NV_OP_PORT_SEND, 0, 1, 0, 0, 0, 0, 0);
	nv_batch_add(&bs, t->h, NV_OP_THREAD_STOP, 0, 0, 0, 0, 0, 0, 0);
	nv_batch_add(&bs, bt_count, NV_OP_PORT_SEND, 0, 2, 0, 0, 0, 0, 0);
	t->out = (uint64_t)nv_batch_run(&bs);
	set_word(10);
}

static uint64_t queued(nv_handle_t port)
{
	uint64_t buf[64];
	struct nv_port_state *st = (struct nv_port_state *)buf;
	if (nv_port_get_state(port, NV_ADDR(buf), sizeof buf) < 0)
		return ~0ull;
	return st->n_msgs;
}

static void test_batch(void)
{
	nv_handle_t self = nv_self_space();
	static uint64_t data = 0x1122334455667788ull, back;
	static struct nv_batch b;

	/* Results, and values taken from earlier entries. */
	nv_batch_reset(&b);
	uint64_t reg = nv_batch_add(&b, self, NV_OP_REGION_CREATE, 0, 4096, 0, 0, 0, 0, 0);
	nv_batch_add(&b, 0, NV_OP_REGION_WRITE, NV_FROM_HANDLE(reg), 8, NV_ADDR(&data), 8, 0, 0, 0);
	nv_batch_add(&b, 0, NV_OP_REGION_SIZE, NV_FROM_HANDLE(reg), 0, 0, 0, 0, 0, 0);
	nv_batch_add(&b, 0, NV_OP_HANDLE_INFO, NV_FROM_HANDLE(reg), 0, 0, 0, 0, 0, 0);
	/* region_read's buffer is the r0 field of entry 0: the entry that
	 * reads it finds it written. */
	nv_batch_add(&b, 0, NV_OP_REGION_WRITE, NV_FROM_HANDLE(reg), 16, NV_ADDR(&b.e[reg].r0), 8, 0, 0, 0);
	CHECK("batch: all done", nv_batch_run(&b), 5);
	for (int i = 0; i < 5; i++) {
		CHECK("batch: done mark", b.e[i].done, 1);
		CHECK("batch: no error", b.e[i].error, 0);
	}
	nv_handle_t r = b.e[reg].r0;
	CHECK("batch: region_write r0", b.e[1].r0, 8);
	CHECK("batch: region_size r0", b.e[2].r0, 4096);
	CHECK("batch: handle_info r0", b.e[3].r0, NV_OBJ_REGION);
	CHECK("batch: handle_info r1", b.e[3].r1, nv_handle_info_r(r).r1);
	CHECK("batch: region_read", nv_region_read(r, 8, NV_ADDR(&back), 8), 8);
	CHECK("batch: the bytes written", back == data, 1);
	CHECK("batch: region_read 2", nv_region_read(r, 16, NV_ADDR(&back), 8), 8);
	CHECK("batch: an earlier r0 as data", back, r);

	/* Stops at the first error, which its entry reports. */
	nv_batch_reset(&b);
	nv_batch_add(&b, r, NV_OP_REGION_SIZE, 0, 0, 0, 0, 0, 0, 0);
	nv_batch_add(&b, 9999, NV_OP_HANDLE_INFO, 0, 0, 0, 0, 0, 0, 0);
	nv_batch_add(&b, r, NV_OP_REGION_WRITE, 0, 0, NV_ADDR(&data), 8, 0, 0, 0);
	CHECK("batch: stops at entry 1", nv_batch_run(&b), 1);
	CHECK("batch: entry 0 done", b.e[0].done, 1);
	CHECK("batch: entry 1 not done", b.e[1].done, 0);
	CHECK("batch: entry 1 error", b.e[1].error, NV_EBADHANDLE);
	CHECK("batch: entry 1 r0", b.e[1].r0, -NV_EBADHANDLE);
	CHECK("batch: entry 2 not done", b.e[2].done, 0);
	CHECK("batch: entry 2 not performed", nv_region_read(r, 0, NV_ADDR(&back), 8) == 8 && back == 0, 1);

	/* Entries a batch refuses, each alone. */
	struct {
		const char *what;
		uint64_t op, from, want;
	} bad[] = {
		{"an operation that is none", 0xffff, 0, NV_EINVALOP},
		{"an operation beyond 32 bits", (1ull << 32) | NV_OP_HANDLE_INFO, 0, NV_EINVALOP},
		{"a batch in a batch", NV_OP_CALL_BATCH, 0, NV_EINVAL},
		{"from naming the entry itself", NV_OP_HANDLE_INFO, NV_FROM_HANDLE(1), NV_EINVAL},
		{"from naming a later entry", NV_OP_HANDLE_INFO, NV_FROM_ARG(2, 5), NV_EINVAL},
		{"from's last byte", NV_OP_HANDLE_INFO, 1ull << 56, NV_EINVAL},
	};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		nv_batch_reset(&b);
		nv_batch_add(&b, r, NV_OP_REGION_SIZE, 0, 0, 0, 0, 0, 0, 0);
		nv_batch_add(&b, r, bad[i].op, bad[i].from, NV_ADDR(b.e), 1, 0, 0, 0, 0);
		int64_t got = nv_batch_run(&b);
		if (got != 1 || b.e[1].error != bad[i].want || b.e[1].done) {
			nv_printf("FAIL: batch: %s: got %lld, error %llu, want 1, error %llu\n", bad[i].what,
				  (long long)got, (unsigned long long)b.e[1].error, (unsigned long long)bad[i].want);
			failures++;
		}
	}

	/* Batches refused whole. */
	CHECK("batch: count 0", nv_call_batch(r, NV_ADDR(b.e), 0), 0);
	CHECK("batch: count too big", nv_call_batch(r, NV_ADDR(b.e), NV_MAX_BATCH + 1), -NV_ETOOBIG);
	CHECK("batch: count huge", nv_call_batch(r, NV_ADDR(b.e), ~0ull), -NV_ETOOBIG);
	CHECK("batch: entries unmapped", nv_call_batch(r, 0x1000, 1), -NV_EFAULT);
	CHECK("batch: entries past the top", nv_call_batch(r, NV_USER_TOP - 8, 1), -NV_EFAULT);
	CHECK("batch: entries wrap", nv_call_batch(r, ~0ull - 16, 2), -NV_EFAULT);
	CHECK("batch: entries in read-only code", nv_call_batch(r, NV_ADDR(test_batch), 1), -NV_EFAULT);
	CHECK("batch: bad handle", nv_call_batch(9999, NV_ADDR(b.e), 1), -NV_EBADHANDLE);

	/* Restart: stopped in its blocking entry, the batch is re-issued on
	 * resume and does not send again. */
	bt_port = nv_port_create(self);
	bt_count = nv_port_create(self);
	struct thread t = {.fn = batch_receiver};
	word = 0;
	OK("batch: spawn receiver", spawn(&t));
	wait_blocked(t.h, NV_OP_PORT_RECEIVE);
	struct nv_thread_state st;
	CHECK("batch: stop the blocked thread", nv_thread_stop(t.h), 0);
	CHECK("batch: get_state", nv_thread_get_state(t.h, NV_ADDR(&st), sizeof st), sizeof st);
	CHECK("batch: stopped at the entry", st.regs.rip, NV_ABI_ENTRY);
	CHECK("batch: call_batch in rsi", st.regs.rsi, NV_OP_CALL_BATCH);
	CHECK("batch: the send is done", bt.e[0].done, 1);
	CHECK("batch: the receive is not", bt.e[1].done, 0);
	CHECK("batch: resume", nv_thread_start(t.h), 0);
	wait_blocked(t.h, NV_OP_PORT_RECEIVE);
	CHECK("batch: send while blocked again", nv_port_send(bt_port, 5, 0, 0, 0), 0);
	wait_word(9);
	CHECK("batch: re-issued batch done", t.out, 2);
	CHECK("batch: received", bt.e[1].done, 1);
	CHECK("batch: sent once", queued(bt_count), 1);
	wait_exited(t.h);
	nv_handle_close(t.h);

	/* A thread stopped during a batch stops between two entries, as
	 * between two direct calls, and goes on from there when resumed. */
	struct thread s = {.fn = batch_stopper};
	word = 0;
	OK("batch: spawn stopper", spawn(&s));
	/* Stopped is not enough to wait for: a thread whose page its
	 * keeper has yet to supply is stopped too (under a nester that
	 * builds the stack's pages as they are touched, the stopper's first
	 * push), and thread_start refuses it. The done mark of its
	 * thread_stop, read first, says the stop to come is that one. */
	while (!(*(volatile uint64_t *)&bs.e[1].done && nv_thread_status(s.h) == NV_THREAD_STOPPED))
		yield();
	CHECK("batch: the stopper's get_state", nv_thread_get_state(s.h, NV_ADDR(&st), sizeof st), sizeof st);
	CHECK("batch: stopped at the entry, to re-issue the batch", st.regs.rip, NV_ABI_ENTRY);
	CHECK("batch: stopped in call_batch", st.regs.rsi, NV_OP_CALL_BATCH);
	CHECK("batch: and before the next entry", bs.e[2].done, 0);
	CHECK("batch: one sent before the stop", queued(bt_count), 2);
	CHECK("batch: resume the stopper", nv_thread_start(s.h), 0);
	wait_word(10);
	CHECK("batch: the stopper's batch done", s.out, 3);
	CHECK("batch: one more sent after", queued(bt_count), 3);
	wait_exited(s.h);
	nv_handle_close(s.h);
	nv_handle_close(bt_port);
	nv_handle_close(bt_count);
	nv_handle_close(r);
}

/* batchprint: prints 1 to 6, a line each, with one call_batch of six
 * console_writes: a layer that stops the program after a write (a
 * checkpoint) stops it between two entries, and the batch re-issued after
 * a restore goes on from there, writing no line twice. */
static void test_batchprint(void)
{
	static const char lines[] = "1\n2\n3\n4\n5\n6\n";
	static struct nv_batch b;
	nv_batch_reset(&b);
	for (int i = 0; i < 6; i++)
		nv_batch_add(&b, nv_console(), NV_OP_CONSOLE_WRITE, 0, NV_ADDR(lines + 2 * i), 2, 0, 0, 0, 0);
	CHECK("batchprint: six writes", nv_batch_run(&b), 6);
}

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
	{"derive", test_derive}, {"threads", test_threads}, {"ipc", test_ipc},
	{"interpose", test_interpose}, {"restart", test_restart}, {"fault", test_fault},
	{"keeper", test_keeper}, {"dirty", test_dirty}, {"quota", test_quota},
	{"mem", test_mem}, {"batch", test_batch}, {"batchprint", test_batchprint},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		nv_printf("usage: kerneltest AREA...\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		int found = 0;
		for (unsigned k = 0; k < sizeof tests / sizeof tests[0]; k++) {
			if (strcmp(argv[i], tests[k].name) == 0) {
				int before = failures;
				tests[k].fn();
				if (failures == before)
					nv_printf("PASS %s\n", tests[k].name);
				found = 1;
			}
		}
		if (!found) {
			nv_printf("unknown area %s\n", argv[i]);
			return 2;
		}
	}
	return failures > 100 ? 100 : failures;
}
