/* memtouch [MiB [ROUNDS]]: allocates MiB (default 16) of heap, writes a
 * word every 64 bytes, reads them all back and prints a checksum. Then, for
 * each of ROUNDS (default 0), waits 300 ms, rewrites one MiB of it and
 * prints the checksum of the whole again: what an incremental checkpoint
 * after touching 1 MiB is measured on, and a check that a restored run
 * has every page back. */
#include "nestvm.h"

int main(int argc, char **argv)
{
	uint64_t mib = 16;
	if (argc > 1) {
		int ok;
		mib = nv_atou64(argv[1], &ok);
		if (!ok || mib == 0)
			nv_panic("memtouch: %s is not a positive number of MiB", argv[1]);
	}
	size_t size = (size_t)mib << 20;
	uint64_t *mem = nv_alloc(size);
	if (mem == NULL) {
		nv_printf("memtouch: cannot allocate %llu MiB: the heap has %llu MiB left (run with a larger --mem)\n",
			  (unsigned long long)mib, (unsigned long long)(nv_heap_remaining() >> 20));
		return 1;
	}
	size_t words = size / 8;
	for (size_t i = 0; i < words; i += 8)
		mem[i] = i * 0x9e3779b97f4a7c15ull ^ (i >> 3);
	uint64_t sum = 0;
	for (size_t i = 0; i < words; i += 8)
		sum = (sum << 1 | sum >> 63) ^ mem[i];
	nv_printf("memtouch: %llu MiB, checksum 0x%016llx\n", (unsigned long long)mib, (unsigned long long)sum);
	uint64_t rounds = 0;
	if (argc > 2) {
		int ok;
		rounds = nv_atou64(argv[2], &ok);
		if (!ok)
			nv_panic("memtouch: %s is not a number of rounds", argv[2]);
	}
	for (uint64_t r = 1; r <= rounds; r++) {
		int64_t until = nv_clock_read(nv_clock(), NV_CLOCK_MONOTONIC) + 300000000;
		while (nv_clock_read(nv_clock(), NV_CLOCK_MONOTONIC) < until)
			;
		uint64_t *mib1 = mem + ((r - 1) % mib) * ((1 << 20) / 8);
		for (size_t i = 0; i < (1 << 20) / 8; i += 8)
			mib1[i] += r * (i + 1);
		sum = 0;
		for (size_t i = 0; i < words; i += 8)
			sum = (sum << 1 | sum >> 63) ^ mem[i];
		nv_printf("memtouch: round %llu, 1 MiB rewritten, checksum 0x%016llx\n", (unsigned long long)r,
			  (unsigned long long)sum);
	}
	return 0;
}
