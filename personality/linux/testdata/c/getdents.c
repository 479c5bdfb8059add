// getdents64 directly, and readdir: the names of a directory and their
// types, sorted (directory order differs between file systems).
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ent {
	char name[256];
	int type;
};

static int cmp(const void *a, const void *b) { return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name); }

struct linux_dirent64 {
	unsigned long d_ino;
	long d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

int main(void) {
	static struct ent ents[512];
	int n = 0;
	int fd = open("/data", O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		perror("open /data");
		return 1;
	}
	char buf[512]; // small, so several calls are needed
	for (;;) {
		long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
		if (got < 0) {
			perror("getdents64");
			return 1;
		}
		if (got == 0)
			break;
		for (long off = 0; off < got;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			if (n < 512) {
				snprintf(ents[n].name, sizeof ents[n].name, "%s", d->d_name);
				ents[n++].type = d->d_type;
			}
			off += d->d_reclen;
		}
	}
	close(fd);
	qsort(ents, n, sizeof ents[0], cmp);
	for (int i = 0; i < n; i++)
		printf("%s %s\n", ents[i].name, ents[i].type == DT_DIR ? "dir" : ents[i].type == DT_REG ? "file" : "other");

	DIR *d = opendir("/data/sub");
	if (!d) {
		perror("opendir");
		return 1;
	}
	int count = 0;
	struct dirent *e;
	while ((e = readdir(d)) != 0)
		count++;
	closedir(d);
	printf("readdir /data/sub: %d entries\n", count);
	return 0;
}
