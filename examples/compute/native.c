/* The compute guest as a native Linux program, for comparing speed. */
#include <stdio.h>
#include <stdlib.h>

#include "loop.h"

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : COMPUTE_DEFAULT_N;
	printf("compute: %llu iterations, checksum 0x%016llx\n", (unsigned long long)n,
	       (unsigned long long)compute_loop(n));
	return 0;
}
