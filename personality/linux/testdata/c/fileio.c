// File I/O through the C library: create, write, seek, read back, pread,
// fstat, rename, unlink, and reading a file the tree holds.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
	FILE *in = fopen("/data/words.txt", "r");
	if (!in) {
		perror("fopen");
		return 1;
	}
	char line[128];
	int lines = 0;
	while (fgets(line, sizeof line, in))
		lines++;
	fclose(in);
	printf("words.txt: %d lines\n", lines);

	int fd = open("/tmp/out.txt", O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0) {
		perror("open /tmp/out.txt");
		return 1;
	}
	const char *msg = "0123456789abcdef";
	for (int i = 0; i < 100; i++)
		if (write(fd, msg, 16) != 16) {
			perror("write");
			return 1;
		}
	struct stat st;
	fstat(fd, &st);
	printf("size after writes: %ld, regular %d\n", (long)st.st_size, S_ISREG(st.st_mode));
	lseek(fd, 10, SEEK_SET);
	char buf[8] = {0};
	read(fd, buf, 6);
	printf("read at 10: %s\n", buf);
	pread(fd, buf, 4, 1600 - 4);
	buf[4] = 0;
	printf("pread at end: %s\n", buf);
	lseek(fd, 0, SEEK_END);
	write(fd, "tail\n", 5);
	close(fd);
	if (rename("/tmp/out.txt", "/tmp/renamed.txt") != 0)
		perror("rename");
	if (access("/tmp/out.txt", F_OK) == 0 || errno != ENOENT)
		printf("old name still there\n");
	if (stat("/tmp/renamed.txt", &st) == 0)
		printf("renamed size %ld\n", (long)st.st_size);
	if (unlink("/tmp/renamed.txt") != 0)
		perror("unlink");
	if (open("/nonexistent", O_RDONLY) < 0)
		printf("open /nonexistent: %s\n", strerror(errno));
	mkdir("/tmp/made", 0755);
	fd = open("/tmp/made/kept.txt", O_CREAT | O_WRONLY, 0644);
	write(fd, "kept\n", 5);
	close(fd);
	return 0;
}
