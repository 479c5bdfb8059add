/* crash-div0: divides by zero. */
#include "nestvm.h"

int main(void)
{
	nv_puts("crash-div0: dividing by zero");
	/* Both operands volatile: gcc turns 1 / x into a comparison. */
	volatile int one = 1, zero = 0;
	return one / zero;
}
