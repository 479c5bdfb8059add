/* layered: what a program reads back must not change when layers stand
 * between it and the monitor.
 *
 *	layered replies N   N port_calls to a server thread of its own, each
 *	                    answered with a handle to one of three regions
 *	                    (1, 2 or 3 pages, by the call's tag): the handle
 *	                    must arrive in the caller's table and name that
 *	                    region, every time
 *	layered state       reads its own space's state and prints each
 *	                    handle's number and type, checking the type
 *	                    against handle_info on the handle and on its copy
 *
 * Each prints "PASS <mode>" when every check holds, "FAIL: ..." lines
 * otherwise; the exit status is the number of failures (at most 100). */
#include "nestvm.h"

#define PAGE 4096ull

static int failures;

#define CHECK(what, got, want)                                                                  \
	do {                                                                                    \
		int64_t g_ = (int64_t)(got), w_ = (int64_t)(want);                             \
		if (g_ != w_) {                                                                 \
			if (failures < 20)                                                      \
				nv_printf("FAIL: %s: got %lld (%s) want %lld (%s)\n", what,     \
					  (long long)g_, g_ < 0 ? nv_strerror(g_) : "ok",       \
					  (long long)w_, w_ < 0 ? nv_strerror(w_) : "ok");      \
			failures++;                                                             \
		}                                                                               \
	} while (0)

static int64_t ok_(const char *what, int64_t got)
{
	if (got < 0) {
		nv_printf("FAIL: %s: %s\n", what, nv_strerror(got));
		failures++;
	}
	return got;
}
#define OK(what, got) ok_(what, (int64_t)(got))

struct thread {
	nv_handle_t h;
	void (*fn)(struct thread *);
	volatile uint32_t done;
};

static void thread_entry(uint64_t p)
{
	struct thread *t = (struct thread *)(uintptr_t)p;
	t->fn(t);
	t->done = 1;
	nv_futex_wake(nv_self_space(), NV_ADDR(&t->done), 1);
	nv_thread_exit(t->h, 0);
	for (;;)
		;
}

static int64_t spawn(struct thread *t)
{
	const size_t size = 64 << 10;
	char *stack = nv_alloc(size);
	if (!stack)
		return -NV_ENOMEM;
	uint64_t sp = ((NV_ADDR(stack) + size) & ~15ull) - 8;
	int64_t h = nv_thread_create(nv_self_space(), NV_ADDR(thread_entry), sp, NV_ADDR(t));
	if (h < 0)
		return h;
	t->h = h;
	return nv_thread_start(h);
}

static void join(struct thread *t)
{
	while (!t->done)
		nv_futex_wait(nv_self_space(), NV_ADDR(&t->done), 0, 0);
}

/* replies */
#define STOP_TAG (~0ull)
static nv_handle_t srv_port;
static nv_handle_t regions[3];

static void server(struct thread *t)
{
	(void)t;
	struct nv_msg m;
	for (;;) {
		if (OK("port_receive", nv_port_receive(srv_port, NV_ADDR(&m), sizeof m, 0, 0)) < 0)
			return;
		if (m.words[0] == STOP_TAG) {
			nv_port_reply(srv_port, m.call_id, 0, 0, 0, 0, 0);
			return;
		}
		OK("port_reply", nv_port_reply(srv_port, m.call_id, 0, 0, 0, 0, regions[m.words[0] % 3]));
	}
}

static void replies(uint64_t n)
{
	nv_handle_t self = nv_self_space();
	for (int i = 0; i < 3; i++)
		regions[i] = OK("region_create", nv_region_create(self, (i + 1) * PAGE));
	srv_port = OK("port_create", nv_port_create(self));
	struct thread t = {.fn = server};
	OK("spawn the server", spawn(&t));
	for (uint64_t i = 0; i < n && failures < 20; i++) {
		int64_t h = nv_port_call(srv_port, i, 0, 0, 0, 0);
		CHECK("port_call answered with a handle", h > 0, 1);
		if (h <= 0)
			continue;
		CHECK("the handle names a region", nv_handle_info(h), NV_OBJ_REGION);
		CHECK("the region the server gave", nv_region_size(h), (int64_t)((i % 3 + 1) * PAGE));
		CHECK("handle_close", nv_handle_close(h), 0);
	}
	CHECK("stop the server", nv_port_call(srv_port, STOP_TAG, 0, 0, 0, 0), 0);
	join(&t);
}

/* state */
static void state(void)
{
	const uint64_t size = 64 << 10;
	uint8_t *buf = nv_alloc(size);
	if (!buf)
		nv_panic("layered: no heap\n");
	int64_t n = OK("space_get_state", nv_space_get_state(nv_self_space(), NV_ADDR(buf), size));
	if (n < 0)
		return;
	struct nv_space_state *st = (struct nv_space_state *)buf;
	struct nv_space_handle *hs = (struct nv_space_handle *)(buf + sizeof *st + st->n_maps * sizeof(struct nv_space_map));
	int self_space = 0, self_thread = 0;
	for (uint64_t i = 0; i < st->n_handles; i++) {
		struct nv_space_handle *e = &hs[i];
		nv_printf("handle %llu type %llu\n", (unsigned long long)e->number, (unsigned long long)e->type);
		CHECK("the record's type is handle_info's", e->type, nv_handle_info(e->number));
		CHECK("the copy's type is the same", nv_handle_info(e->handle), e->type);
		if (e->number == nv_self_space()) {
			CHECK("the space's own handle names a space", e->type, NV_OBJ_SPACE);
			self_space = 1;
		}
		if (e->number == nv_self_thread()) {
			CHECK("the thread's own handle names a thread", e->type, NV_OBJ_THREAD);
			self_thread = 1;
		}
	}
	CHECK("its own space is listed", self_space, 1);
	CHECK("its own thread is listed", self_thread, 1);
	struct nv_space_thread *ts = (struct nv_space_thread *)(hs + st->n_handles);
	for (uint64_t i = 0; i < st->n_threads; i++)
		CHECK("a thread entry names a thread", nv_handle_info(ts[i].handle), NV_OBJ_THREAD);
}

int main(int argc, char **argv)
{
	int valid = 0;
	if (argc == 3 && strcmp(argv[1], "replies") == 0) {
		uint64_t n = nv_atou64(argv[2], &valid);
		if (!valid)
			nv_panic("layered: replies wants a number\n");
		replies(n);
	} else if (argc == 2 && strcmp(argv[1], "state") == 0) {
		state();
	} else {
		nv_panic("usage: layered replies N | layered state\n");
	}
	if (!failures)
		nv_printf("PASS %s\n", argv[1]);
	return failures > 100 ? 100 : failures;
}
