/* crash-null: reads address 0, which is never mapped. */
#include "nestvm.h"

int main(void)
{
	nv_puts("crash-null: reading address 0");
	volatile int *p = (volatile int *)0;
	return *p;
}
