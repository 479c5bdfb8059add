/* compute [N]: a CPU-bound loop of N rounds; prints a checksum. */
#include "loop.h"
#include "nestvm.h"

int main(int argc, char **argv)
{
	uint64_t n = COMPUTE_DEFAULT_N;
	if (argc > 1) {
		int ok;
		n = nv_atou64(argv[1], &ok);
		if (!ok)
			nv_panic("compute: %s is not a number", argv[1]);
	}
	nv_printf("compute: %llu iterations, checksum 0x%016llx\n", (unsigned long long)n,
		  (unsigned long long)compute_loop(n));
	return 0;
}
