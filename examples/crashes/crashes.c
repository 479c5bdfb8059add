/* crashes: faults that real x86-64 hardware reports in one way, which
 * every backend must report the same way, so that one program ends with
 * one status whatever runs it.
 *
 *	crashes stack      push with a non-canonical stack pointer: #SS(0)
 *	crashes rbp        a load through a non-canonical RBP: #SS(0)
 *	crashes load       a load from a non-canonical address: #GP(0)
 *	crashes int3       int3: its gate is for the kernel only, #GP
 *	crashes int80      int $0x80: no such gate, #GP
 *	crashes abifill    a jump to the ABI page past its stubs
 *	crashes abimid     a jump into the middle of the ABI entry stub
 *
 * Each prints "crashes: MODE" first; none is meant to return. */
#include "nestvm.h"

#define NONCANONICAL 0x8000000000000000ull

typedef void (*fn)(void);

int main(int argc, char **argv)
{
	if (argc != 2)
		nv_panic("usage: crashes stack|rbp|load|int3|int80|abifill|abimid\n");
	const char *m = argv[1];
	nv_printf("crashes: %s\n", m);
	if (strcmp(m, "stack") == 0)
		__asm__ volatile("mov %0, %%rsp; push %%rax" ::"r"(NONCANONICAL) : "memory");
	else if (strcmp(m, "rbp") == 0)
		__asm__ volatile("mov %0, %%rbp; mov (%%rbp), %%rax" ::"r"(NONCANONICAL) : "rax", "memory");
	else if (strcmp(m, "load") == 0)
		__asm__ volatile("mov (%0), %%rax" ::"r"(NONCANONICAL) : "rax", "memory");
	else if (strcmp(m, "int3") == 0)
		__asm__ volatile("int3");
	else if (strcmp(m, "int80") == 0)
		__asm__ volatile("int $0x80");
	else if (strcmp(m, "abifill") == 0)
		((fn)(uintptr_t)(NV_ABI_PAGE + 0x800))();
	else if (strcmp(m, "abimid") == 0)
		((fn)(uintptr_t)(NV_ABI_ENTRY + 1))();
	else
		nv_panic("crashes: no mode %s\n", m);
	nv_puts("crashes: still here");
	return 0;
}
