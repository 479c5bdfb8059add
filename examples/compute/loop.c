#include "loop.h"

uint64_t compute_loop(uint64_t n)
{
	/* xorshift64* with a running sum: each round depends on the last, so
	 * the compiler can neither vectorise nor skip it. */
	uint64_t x = 0x9e3779b97f4a7c15ull, sum = 0;
	for (uint64_t i = 0; i < n; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		sum += x * 0x2545f4914f6cdd1dull;
		sum = (sum << 7) | (sum >> 57);
	}
	return sum ^ x;
}
