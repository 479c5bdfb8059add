/* sleeper N: sleeps N seconds in steps of at most a minute, printing both
 * clocks after each step, then "slept N s". Each step waits with
 * clock_wait on the program's clock, so a layer standing in for the clock
 * (timewarp) decides how long a step really takes. */
#include "nestvm.h"

#define SEC ((uint64_t)1000000000)

/* sleep_until waits until the monotonic clock reads at least deadline:
 * clock_wait may end early (a wake), so it waits again until then. */
static int sleep_until(uint64_t deadline)
{
	for (;;) {
		nv_result_t r = nv_clock_wait_r(nv_clock(), NV_CLOCK_MONOTONIC, deadline);
		if ((int64_t)r.r0 < 0)
			return (int)(int64_t)r.r0;
		if ((uint64_t)r.r0 >= deadline)
			return 0;
	}
}

int main(int argc, char **argv)
{
	int ok = 0;
	uint64_t n = argc > 1 ? nv_atou64(argv[1], &ok) : 0;
	if (!ok || n > 100000000) {
		nv_fprintf(nv_stderr(), "usage: sleeper N (seconds, 0..100000000)\n");
		return 2;
	}
	int64_t start = nv_clock_read(nv_clock(), NV_CLOCK_MONOTONIC);
	if (start < 0) {
		nv_fprintf(nv_stderr(), "sleeper: clock_read: %s\n", nv_strerror(start));
		return 125;
	}
	uint64_t step = n < 60 ? 1 : 60, done = 0;
	while (done < n) {
		uint64_t s = n - done < step ? n - done : step;
		done += s;
		int e = sleep_until((uint64_t)start + done * SEC);
		if (e < 0) {
			nv_fprintf(nv_stderr(), "sleeper: clock_wait: %s\n", nv_strerror(e));
			return 125;
		}
		int64_t mono = nv_clock_read(nv_clock(), NV_CLOCK_MONOTONIC);
		int64_t real = nv_clock_read(nv_clock(), NV_CLOCK_REALTIME);
		nv_printf("after %lu s: monotonic %lu.%09lu realtime %lu.%09lu\n", done,
			  (uint64_t)mono / SEC, (uint64_t)mono % SEC, (uint64_t)real / SEC,
			  (uint64_t)real % SEC);
	}
	nv_printf("slept %lu s\n", n);
	return 0;
}
