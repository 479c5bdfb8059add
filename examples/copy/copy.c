/* copy: copies its standard input to the console until the input ends.
 * Without a standard input it says so on the diagnostics console and
 * exits 1; a read or write that fails ends it with status 1 too. */
#include "nestvm.h"

#define CHUNK (64u << 10)

int main(void)
{
	nv_handle_t in = nv_stdin();
	if (in == NV_NO_HANDLE) {
		nv_fprintf(nv_stderr(), "copy: no standard input\n");
		return 1;
	}
	char *buf = nv_alloc(CHUNK);
	if (buf == NULL)
		nv_panic("copy: no heap for a %u-byte buffer", CHUNK);
	for (;;) {
		int64_t n = nv_console_read(in, NV_ADDR(buf), CHUNK);
		if (n < 0) {
			nv_fprintf(nv_stderr(), "copy: read: %s\n", nv_strerror(n));
			return 1;
		}
		if (n == 0)
			return 0;
		/* The console may take less than it was given. */
		for (int64_t off = 0; off < n;) {
			int64_t w = nv_write(buf + off, (size_t)(n - off));
			if (w <= 0) {
				nv_fprintf(nv_stderr(), "copy: write: %s\n", w < 0 ? nv_strerror(w) : "nothing written");
				return 1;
			}
			off += w;
		}
	}
}
