/* refprobe: tries operations a reference monitor may deny, one per
 * argument, and reports each on stderr as "refprobe: ACTION: ok" or
 * "refprobe: ACTION: <error>". Actions:
 *
 *   write:N          write N bytes ('x's) to the console
 *   derive-write:N   derive a write-only copy of the console handle, write N bytes on it
 *   open:PATH:FLAGS  files_open PATH; FLAGS is letters among r w c t (read, write, create, truncate)
 *   ro-open:PATH:FLAGS  the same on a read-only copy of the files handle (handle_derive)
 *   spawn            space_create a child of its own space
 *   derive-spawn     derive a copy of its own space handle, space_create on the copy
 *   send-spawn       send its own space handle to itself through a port, space_create on what arrives
 *   region:PAGES     region_create PAGES pages charged to its own space
 *
 * The exit status is 0 when every action succeeded, 3 when one was
 * denied (NV_EDENIED), 1 when one failed otherwise, 2 for a usage error. */
#include "nestvm.h"

static int status;

static void report(const char *action, int64_t r)
{
	nv_fprintf(nv_stderr(), "refprobe: %s: %s\n", action, r < 0 ? nv_strerror(r) : "ok");
	if (r == -NV_EDENIED) {
		if (status == 0)
			status = 3;
	} else if (r < 0) {
		status = 1;
	}
}

static int64_t write_n(nv_handle_t h, uint64_t n)
{
	static char buf[4096];
	if (n > sizeof buf)
		n = sizeof buf;
	memset(buf, 'x', n);
	return nv_hwrite(h, buf, n);
}

static int64_t spawn(nv_handle_t space)
{
	int64_t c = nv_space_create(space, 0, 0, 0, 0);
	if (c >= 0)
		nv_handle_close((nv_handle_t)c);
	return c;
}

static int64_t send_spawn(void)
{
	int64_t p = nv_port_create(nv_self_space());
	if (p < 0)
		return p;
	int64_t r = nv_port_send((nv_handle_t)p, 7, 0, 0, nv_self_space());
	if (r < 0)
		return r;
	struct nv_msg m;
	char data[8];
	r = nv_port_receive((nv_handle_t)p, NV_ADDR(&m), sizeof m, NV_ADDR(data), sizeof data);
	if (r < 0)
		return r;
	if (m.n_handles != 1)
		return -NV_EINVAL;
	return spawn((nv_handle_t)m.handles[0]);
}

static uint64_t number(const char *s)
{
	int ok;
	uint64_t n = nv_atou64(s, &ok);
	if (!ok) {
		nv_fprintf(nv_stderr(), "refprobe: %s is not a number\n", s);
		nv_exit(2);
	}
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		nv_fprintf(nv_stderr(), "usage: refprobe ACTION...\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "write:", 6) == 0) {
			report(a, write_n(nv_console(), number(a + 6)));
		} else if (strncmp(a, "derive-write:", 13) == 0) {
			int64_t h = nv_handle_derive(nv_console(), NV_R_WRITE, 0);
			report(a, h < 0 ? h : write_n((nv_handle_t)h, number(a + 13)));
		} else if (strncmp(a, "open:", 5) == 0 || strncmp(a, "ro-open:", 8) == 0) {
			int ro = a[0] == 'r';
			char path[256];
			const char *p = a + (ro ? 8 : 5), *colon = p;
			while (*colon && *colon != ':')
				colon++;
			size_t n = (size_t)(colon - p);
			if (n >= sizeof path)
				n = sizeof path - 1;
			memcpy(path, p, n);
			path[n] = 0;
			uint64_t flags = 0;
			for (const char *f = *colon ? colon + 1 : colon; *f; f++)
				flags |= *f == 'r' ? NV_OPEN_READ : *f == 'w' ? NV_OPEN_WRITE : *f == 'c' ? NV_OPEN_CREATE : *f == 't' ? NV_OPEN_TRUNCATE : 0;
			int64_t files = ro ? nv_handle_derive(nv_files(), NV_R_READ, 0) : (int64_t)nv_files();
			int64_t h = files < 0 ? files : nv_files_open((nv_handle_t)files, NV_ADDR(path), strlen(path), flags);
			if (h >= 0)
				nv_handle_close((nv_handle_t)h);
			report(a, h);
		} else if (strcmp(a, "spawn") == 0) {
			report(a, spawn(nv_self_space()));
		} else if (strcmp(a, "derive-spawn") == 0) {
			int64_t h = nv_handle_derive(nv_self_space(), NV_R_ALL, 0);
			report(a, h < 0 ? h : spawn((nv_handle_t)h));
		} else if (strcmp(a, "send-spawn") == 0) {
			report(a, send_spawn());
		} else if (strncmp(a, "region:", 7) == 0) {
			report(a, nv_region_create(nv_self_space(), number(a + 7) * NV_PAGE_SIZE));
		} else {
			nv_fprintf(nv_stderr(), "refprobe: unknown action %s\n", a);
			return 2;
		}
	}
	return status;
}
