// A write to an unmapped page with no handler: the process dies of
// SIGSEGV, which a shell reports as status 139.
#include <stdio.h>

int main(void) {
	printf("before the fault\n");
	fflush(stdout);
	int *volatile p = (int *)16;
	*p = 1;
	printf("after the fault\n");
	return 0;
}
