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
 *   futexclock held MS LIMIT   a minute in, a second thread waits with
 *                              a limit of LIMIT ms; once the first sees
 *                              it waiting in futex_wait_clock, it says
 *                              so (a line to take a checkpoint after),
 *                              prints the clock, and wakes the waiter
 *                              MS ms after its wait began; the program
 *                              ends when the wait does
 *   futexclock forever         waits with no limit (futex_wait_clock
 *                              with no deadline, a clock_wait with none)
 *                              on a word nobody changes: a deadlock */
#include "nestvm.h"

#define MS ((uint64_t)1000000)

static volatile uint32_t word;
static uint64_t wake_at;
static nv_handle_t waker_thread;
static uint64_t start, limit;

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

static const char *how(int64_t r)
{
	return r == 0 ? "woken" : nv_strerror(r);
}

/* held_waiter waits in a thread of its own, so that the first thread can
 * see it wait, and ends the program with what the wait gave. */
static void held_waiter(uint64_t unused)
{
	(void)unused;
	int64_t r;
	do
		r = nv_futex_wait_for(&word, 0, limit);
	while (r == 0 && word == 0);
	nv_printf("held: %s after %lu ms\n", how(r), (nv_now_ns() - start) / MS);
	nv_exit(0);
}

/* held starts held_waiter, waits until it sleeps in futex_wait_clock (by
 * its status, not for a time), says so, and is then the waker. Until the
 * line is written this thread runs, so time does not jump under timewarp,
 * and a checkpoint taken after the line saves the waiter inside its
 * wait. */
static int held(uint64_t ms)
{
	/* The wait starts a minute in, so that a clock that began again on
	 * restore would read earlier than the time the line below is written
	 * at. */
	start += 60000 * MS;
	while (nv_now_ns() < start)
		nv_clock_wait(nv_clock(), NV_CLOCK_MONOTONIC, start);
	wake_at = start + ms;
	const size_t size = 16 << 10;
	char *stack = nv_alloc(size);
	int64_t t = stack ? nv_thread_create(nv_self_space(), NV_ADDR(held_waiter), ((NV_ADDR(stack) + size) & ~15ull) - 8, 0)
			  : -NV_ENOMEM;
	if (t < 0 || nv_thread_start(t) < 0) {
		nv_fprintf(nv_stderr(), "futexclock: second thread: %s\n", nv_strerror(t));
		return 125;
	}
	for (;;) {
		nv_result_t s = nv_thread_status_r((nv_handle_t)t);
		if ((int64_t)s.r0 < 0 || s.r0 == NV_THREAD_EXITED) {
			nv_fprintf(nv_stderr(), "futexclock: the waiter ended before it waited\n");
			return 125;
		}
		if (s.r0 == NV_THREAD_RUNNING && s.r1 == NV_OP_FUTEX_WAIT_CLOCK)
			break;
	}
	nv_printf("held: waiting\n"); /* one write: the line a checkpoint is taken after */
	nv_printf("held: clock at %lu us\n", nv_now_ns() / 1000);
	waker_thread = nv_self_thread();
	waker(0);
	return 0;
}

static uint64_t arg(int argc, char **argv, int i)
{
	int ok = 0;
	uint64_t v = i < argc ? nv_atou64(argv[i], &ok) : 0;
	if (!ok || v > 1000000000) {
		nv_fprintf(nv_stderr(), "usage: futexclock timeout MS | wake MS LIMIT | held MS LIMIT | forever\n");
		nv_exit(2);
	}
	return v;
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
	start = nv_now_ns();
	int64_t r;
	if (strcmp(mode, "held") == 0) {
		uint64_t ms = arg(argc, argv, 2) * MS;
		limit = arg(argc, argv, 3) * MS;
		return held(ms);
	} else if (strcmp(mode, "timeout") == 0) {
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
