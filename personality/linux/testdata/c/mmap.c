// Anonymous mappings, mprotect, munmap of part of a mapping, and a private
// mapping of a file.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
	size_t pg = 4096, n = 64 * pg;
	unsigned char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	int zero = 1;
	for (size_t i = 0; i < n; i++)
		zero &= p[i] == 0;
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7);
	unsigned long sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += p[i];
	printf("anonymous: zeroed %d, sum %lu\n", zero, sum);
	if (mprotect(p, n, PROT_READ) != 0)
		perror("mprotect read");
	if (mprotect(p, n, PROT_READ | PROT_WRITE) != 0)
		perror("mprotect rw");
	p[5] = 1;
	if (munmap(p + 16 * pg, 16 * pg) != 0)
		perror("munmap part");
	printf("after munmap: p[5]=%d p[%zu]=%d\n", p[5], 40 * pg, p[40 * pg]);
	if (munmap(p, n) != 0)
		perror("munmap");

	int fd = open("/data/words.txt", O_RDONLY);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	char *f = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (f == MAP_FAILED) {
		perror("mmap file");
		return 1;
	}
	close(fd);
	f[0] = 'X';
	printf("file mapping: %ld bytes, first line: %.*s\n", (long)size, (int)(strchr(f, '\n') - f), f);
	munmap(f, size);
	return 0;
}
