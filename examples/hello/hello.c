/* hello: greets its arguments. "hello world" prints "Hello, world!". */
#include "nestvm.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		nv_puts("Hello, nestvm!");
		return 0;
	}
	nv_write("Hello, ", 7);
	for (int i = 1; i < argc; i++) {
		if (i > 1)
			nv_write(" ", 1);
		nv_write(argv[i], strlen(argv[i]));
	}
	nv_puts("!");
	return 0;
}
