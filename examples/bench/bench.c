/* bench MODE N: runs N iterations of MODE and prints
 * "bench MODE N ELAPSED_NS". Modes: nulltrap (the raw trap, no ABI work),
 * info (handle_info: a bare ABI call), write (a 1-byte console write),
 * compute (N rounds of the compute loop). */
#include "../compute/loop.h"
#include "nestvm.h"

typedef void (*trap_fn)(void);

int main(int argc, char **argv)
{
	if (argc != 3)
		nv_panic("usage: bench nulltrap|info|write|compute N");
	int ok;
	uint64_t n = nv_atou64(argv[2], &ok);
	if (!ok)
		nv_panic("bench: %s is not a number", argv[2]);
	const char *mode = argv[1];
	nv_handle_t con = nv_console();
	uint64_t sink = 0;
	uint64_t start = nv_now_ns();
	if (strcmp(mode, "nulltrap") == 0) {
		trap_fn trap = (trap_fn)NV_NULLTRAP_ENTRY;
		for (uint64_t i = 0; i < n; i++)
			trap();
	} else if (strcmp(mode, "info") == 0) {
		for (uint64_t i = 0; i < n; i++)
			sink += (uint64_t)nv_handle_info(con);
	} else if (strcmp(mode, "write") == 0) {
		for (uint64_t i = 0; i < n; i++)
			sink += (uint64_t)nv_console_write(con, NV_ADDR("x"), 1);
	} else if (strcmp(mode, "compute") == 0) {
		sink = compute_loop(n);
	} else {
		nv_panic("bench: unknown mode %s", mode);
	}
	uint64_t elapsed = nv_now_ns() - start;
	nv_printf("bench %s %llu %llu\n", mode, (unsigned long long)n, (unsigned long long)elapsed);
	return sink == 0xdeadbeef; /* keeps sink alive */
}
