/* hello: the smallest C program, statically linked; it exits with 3 so a
 * test sees the status come through. */
#include <stdio.h>

int main(int argc, char **argv) {
	printf("hello %s\n", argc > 1 ? argv[1] : "world");
	return 3;
}
