// Arguments, environment and exit status through the C library's startup.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
	printf("hello from C, %d args\n", argc);
	for (int i = 1; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	const char *v = getenv("CORPUS");
	printf("CORPUS=%s\n", v ? v : "(unset)");
	fprintf(stderr, "to stderr\n");
	return argc > 2 ? 7 : 0;
}
