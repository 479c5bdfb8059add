/* The compute guest as a native Linux program, for comparing speed. It
 * prints the same line as the guest on stdout, and on stderr the time the
 * loop itself took ("elapsed_ns N"), measured like the bench guest does. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "loop.h"

static unsigned long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : COMPUTE_DEFAULT_N;
	unsigned long long start = now_ns();
	uint64_t sum = compute_loop(n);
	unsigned long long elapsed = now_ns() - start;
	printf("compute: %llu iterations, checksum 0x%016llx\n", (unsigned long long)n, (unsigned long long)sum);
	fprintf(stderr, "elapsed_ns %llu\n", elapsed);
	return 0;
}
