// A big anonymous mapping used in part: 1 GiB mapped, 1 MiB of it
// written (and its last page), as a program sizing a buffer generously
// does. Linux charges only what is touched, so it runs under a memory
// limit far below 1 GiB.
#include <stdio.h>
#include <sys/mman.h>

int main(void) {
	size_t n = (size_t)1 << 30, used = (size_t)1 << 20;
	unsigned char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t i = 0; i < used; i++)
		p[i] = (unsigned char)(i * 7);
	p[n - 1] = 42;
	unsigned long sum = 0;
	for (size_t i = 0; i < used; i++)
		sum += p[i];
	printf("bigmap: 1 GiB mapped, sum %lu, last %d, untouched %d\n", sum, p[n - 1], p[n / 2]);
	return 0;
}
