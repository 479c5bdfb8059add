/* deadlock: two threads, each waiting (futex_wait, no time limit) for a
 * word only the other sets after its own wait ends: neither ever runs
 * again. Prints "deadlock: both waiting" first. For timewarp's deadlock
 * report: a layer that owns time must end such a program, not spin. */
#include "nestvm.h"

static volatile uint32_t mine, theirs;

static void other(uint64_t unused)
{
	(void)unused;
	while (!theirs)
		nv_futex_wait(nv_self_space(), NV_ADDR(&theirs), 0, 0);
	mine = 1;
	nv_futex_wake(nv_self_space(), NV_ADDR(&mine), 1);
	nv_exit(0);
}

int main(void)
{
	const size_t size = 16 << 10;
	char *stack = nv_alloc(size);
	int64_t t = stack ? nv_thread_create(nv_self_space(), NV_ADDR(other), ((NV_ADDR(stack) + size) & ~15ull) - 8, 0)
			  : -NV_ENOMEM;
	if (t < 0 || nv_thread_start(t) < 0) {
		nv_fprintf(nv_stderr(), "deadlock: second thread: %s\n", nv_strerror(t));
		return 125;
	}
	nv_puts("deadlock: both waiting");
	while (!mine)
		nv_futex_wait(nv_self_space(), NV_ADDR(&mine), 0, 0);
	theirs = 1;
	nv_futex_wake(nv_self_space(), NV_ADDR(&theirs), 1);
	return 0;
}
