/* crash-wtext: writes to its own code, which is mapped read-only. */
#include "nestvm.h"

int main(void)
{
	nv_puts("crash-wtext: writing to my own text");
	volatile unsigned char *text = (volatile unsigned char *)(uintptr_t)&main;
	*text = 0xc3;
	return 0;
}
