/* counter N: prints 1..N, one line each, with some compute between lines,
 * then "total T". Its state is spread on purpose, so that saving and
 * rebuilding it (a checkpoint) has something real to carry: the numbers
 * come from a second thread, which keeps its count in its own registers
 * and stack and hands each out in reply to a call; the main thread keeps
 * its loop in registers and a running total in memory; between lines the
 * main thread is blocked in that call, or computing. */
#include "nestvm.h"

static nv_handle_t port;
static uint64_t total; /* the memory part of the state */

static void adder(uint64_t unused)
{
	(void)unused;
	uint64_t next = 0; /* the thread part of the state */
	struct nv_msg m;
	for (;;) {
		if (nv_port_receive(port, NV_ADDR(&m), sizeof m, 0, 0) < 0)
			break;
		next++;
		nv_port_reply(port, m.call_id, next, 0, 0, 0, NV_NO_HANDLE);
	}
	nv_exit(125);
}

static uint64_t work(uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 30000000; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	return x >> 40;
}

int main(int argc, char **argv)
{
	int ok = 0;
	uint64_t n = argc > 1 ? nv_atou64(argv[1], &ok) : 0;
	if (!ok || n == 0 || n > 1000000) {
		nv_fprintf(nv_stderr(), "usage: counter N (1..1000000)\n");
		return 2;
	}
	int64_t p = nv_port_create(nv_self_space());
	if (p < 0) {
		nv_fprintf(nv_stderr(), "counter: port_create: %s\n", nv_strerror(p));
		return 125;
	}
	port = p;
	const size_t size = 64 << 10;
	char *stack = nv_alloc(size);
	int64_t t = stack ? nv_thread_create(nv_self_space(), NV_ADDR(adder), ((NV_ADDR(stack) + size) & ~15ull) - 8, 0)
			  : -NV_ENOMEM;
	if (t < 0 || nv_thread_start(t) < 0) {
		nv_fprintf(nv_stderr(), "counter: second thread: %s\n", nv_strerror(t));
		return 125;
	}
	for (uint64_t i = 1; i <= n; i++) {
		total += work(i);
		nv_result_t r = nv_port_call_r(p, i, 0, 0, 0, 0);
		if (r.r0 < 0) {
			nv_fprintf(nv_stderr(), "counter: port_call: %s\n", nv_strerror(r.r0));
			return 125;
		}
		nv_printf("%llu\n", (unsigned long long)r.r0);
	}
	nv_printf("total %llu\n", (unsigned long long)total);
	return 0;
}
