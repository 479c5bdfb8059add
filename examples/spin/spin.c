/* spin: prints a line, then loops forever without calling the monitor, for
 * testing that --timeout and Ctrl-C stop a guest that runs away. */
#include "nestvm.h"

int main(void)
{
	nv_puts("spin: spinning forever");
	volatile uint64_t n = 0;
	for (;;)
		n++;
}
