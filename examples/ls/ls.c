/* ls: lists a directory of the files root (the root itself by default),
 * one name a line, sorted, directories with a trailing '/'. */
#include "nestvm.h"

int main(int argc, char **argv)
{
	if (argc > 2) {
		nv_fprintf(nv_stderr(), "usage: ls [DIR]\n");
		return 2;
	}
	const char *dir = argc == 2 ? argv[1] : "";
	nv_handle_t files = nv_files();
	if (files == NV_NO_HANDLE) {
		nv_fprintf(nv_stderr(), "ls: no files root\n");
		return 1;
	}
	/* files_list says how long the whole list is; the directory may grow
	 * between calls, so ask until the buffer holds all of it. */
	uint64_t cap = 4096;
	char *buf;
	int64_t n;
	for (;;) {
		buf = nv_alloc(cap);
		if (buf == NULL) {
			nv_fprintf(nv_stderr(), "ls: %s: the list needs %llu bytes, more than the heap has\n",
				   dir, (unsigned long long)cap);
			return 1;
		}
		n = nv_files_list(files, NV_ADDR(dir), strlen(dir), NV_ADDR(buf), cap);
		if (n < 0) {
			nv_fprintf(nv_stderr(), "ls: %s: %s\n", dir[0] ? dir : ".", nv_strerror(n));
			return 1;
		}
		if ((uint64_t)n <= cap)
			break;
		cap = (uint64_t)n + 4096;
	}
	for (int64_t i = 0; i < n;) {
		size_t len = strlen(buf + i);
		buf[i + (int64_t)len] = '\n';
		i += (int64_t)len + 1;
	}
	nv_write(buf, (size_t)n);
	return 0;
}
