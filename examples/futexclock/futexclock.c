/* futexclock: waits on a futex word with its time limit on the program's
 * clock (futex_wait_clock, through nv_futex_wait_for), so that a layer
 * standing in for the clock (timewarp) owns the limit.
 *
 *   futexclock timeout MS      waits MS milliseconds on a word nobody
 *                              changes; prints how the wait ended and how
 *                              long it took on the clock, in whole ms
 *   futexclock wake MS LIMIT   a second thread sleeps MS ms (clock_wait),
 *                              then sets the word and wakes it; the first
 *                              waits with a limit of LIMIT ms
 *   futexclock forever         waits with no limit (futex_wait_clock
 *                              with no deadline, a clock_wait with none)
 *                              on a word nobody changes: a deadlock */
#include "nestvm.h"

#define MS ((uint64_t)1000000)

static volatile uint32_t word;
static uint64_t wake_at;
static nv_handle_t waker_thread;

/* waker sleeps until wake_at on the monotonic clock, then sets the word
 * and wakes the waiter. clock_wait may end early (a wake), so it waits
 * again until then. */
static void waker(uint64_t unused)
{
	(void)unused;
	for (;;) {
		nv_result_t r = nv_clock_wait_r(nv_clock(), NV_CLOCK_MONOTONIC, wake_at);
		if ((int64_t)r.r0 < 0) {
			nv_fprintf(nv_stderr(), "futexclock: clock_wait: %s\n", nv_strerror((int64_t)r.r0));
			nv_exit(125);
		}
		if ((uint64_t)r.r0 >= wake_at)
			break;
	}
	word = 1;
	nv_futex_wake(nv_self_space(), NV_ADDR(&word), 1);
	nv_thread_exit(waker_thread, 0);
}

static uint64_t arg(int argc, char **argv, int i)
{
	int ok = 0;
	uint64_t v = i < argc ? nv_atou64(argv[i], &ok) : 0;
	if (!ok || v > 1000000000) {
		nv_fprintf(nv_stderr(), "usage: futexclock timeout MS | wake MS LIMIT | forever\n");
		nv_exit(2);
	}
	return v;
}

static const char *how(int64_t r)
{
	return r == 0 ? "woken" : nv_strerror(r);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (strcmp(mode, "forever") == 0) {
		nv_puts("futexclock: waiting with no limit");
		int64_t r = nv_futex_wait_clock(nv_self_space(), NV_ADDR(&word), 0, nv_clock(), NV_CLOCK_MONOTONIC, 0);
		nv_printf("forever: %s\n", how(r));
		return 1;
	}
	uint64_t start = nv_now_ns();
	int64_t r;
	if (strcmp(mode, "timeout") == 0) {
		r = nv_futex_wait_for(&word, 0, arg(argc, argv, 2) * MS);
	} else if (strcmp(mode, "wake") == 0) {
		wake_at = start + arg(argc, argv, 2) * MS;
		uint64_t limit = arg(argc, argv, 3) * MS;
		const size_t size = 16 << 10;
		char *stack = nv_alloc(size);
		int64_t t = stack ? nv_thread_create(nv_self_space(), NV_ADDR(waker), ((NV_ADDR(stack) + size) & ~15ull) - 8, 0)
				  : -NV_ENOMEM;
		waker_thread = (nv_handle_t)t;
		if (t < 0 || nv_thread_start(t) < 0) {
			nv_fprintf(nv_stderr(), "futexclock: second thread: %s\n", nv_strerror(t));
			return 125;
		}
		do
			r = nv_futex_wait_for(&word, 0, limit);
		while (r == 0 && word == 0);
	} else {
		arg(0, argv, 0);
		return 2;
	}
	uint64_t took = nv_now_ns() - start;
	nv_printf("%s: %s after %lu ms\n", mode, how(r), took / MS);
	return 0;
}
