/* crash-ud2: executes an invalid instruction. */
#include "nestvm.h"

int main(void)
{
	nv_puts("crash-ud2: executing ud2");
	__builtin_trap();
}
