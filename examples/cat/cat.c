/* cat: prints files from the files root to the console, in order. A file
 * that cannot be read gets a line on the diagnostics console and makes the
 * status 1, and the others are still printed. */
#include "nestvm.h"

#define CHUNK (64u << 10)

static char *buf;

static int cat(nv_handle_t files, const char *name)
{
	int64_t h = nv_files_open(files, NV_ADDR(name), strlen(name), NV_OPEN_READ);
	if (h < 0) {
		nv_fprintf(nv_stderr(), "cat: %s: %s\n", name, nv_strerror(h));
		return 1;
	}
	int status = 0;
	/* file_read takes an offset: the open file keeps no position. */
	for (uint64_t off = 0;;) {
		int64_t n = nv_file_read((nv_handle_t)h, off, NV_ADDR(buf), CHUNK);
		if (n < 0) {
			nv_fprintf(nv_stderr(), "cat: %s: %s\n", name, nv_strerror(n));
			status = 1;
			break;
		}
		if (n == 0)
			break;
		if (nv_write(buf, (size_t)n) < 0) {
			status = 1;
			break;
		}
		off += (uint64_t)n;
	}
	nv_handle_close((nv_handle_t)h);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		nv_fprintf(nv_stderr(), "usage: cat FILE...\n");
		return 2;
	}
	nv_handle_t files = nv_files();
	if (files == NV_NO_HANDLE) {
		nv_fprintf(nv_stderr(), "cat: no files root\n");
		return 1;
	}
	buf = nv_alloc(CHUNK);
	if (buf == NULL)
		nv_panic("cat: no heap for a %u-byte buffer", CHUNK);
	int status = 0;
	for (int i = 1; i < argc; i++)
		status |= cat(files, argv[i]);
	return status;
}
