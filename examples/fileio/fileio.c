/* fileio: a test guest for the files root. Run it with "ro" or "rw" on a
 * root the tests lay out:
 *
 *   hello.txt       "hello, files\n"
 *   sub/inner.txt   "inner\n"
 *   sub/up          a link to ../hello.txt (stays inside)
 *   inlink          a link to hello.txt
 *   escape          a link to ../outside.txt (leaves the root)
 *   abs             a link to an absolute path outside the root
 *
 * It checks reads, listings, every way out of the root it can think of,
 * and, in "rw", writing, creating and truncating new.txt, leaving "done\n"
 * in it; in "ro" it checks that every write is refused. Prints PASS and
 * exits 0 when every check holds, FAIL lines and 1 otherwise. */
#include "nestvm.h"

static int failures;
static nv_handle_t files;

static void check(const char *what, int64_t got, int64_t want)
{
	if (got != want) {
		nv_printf("FAIL: %s: got %lld (%s) want %lld (%s)\n", what, (long long)got,
			  got < 0 ? nv_strerror(got) : "ok", (long long)want, want < 0 ? nv_strerror(want) : "ok");
		failures++;
	}
}

static int64_t open_path(const char *path, uint64_t flags)
{
	return nv_files_open(files, NV_ADDR(path), strlen(path), flags);
}

/* check_open checks that opening path with flags fails with want. */
static void check_open(const char *path, uint64_t flags, int64_t want)
{
	char what[160];
	nv_snprintf(what, sizeof what, "open \"%s\" flags %llu", path, (unsigned long long)flags);
	int64_t h = open_path(path, flags);
	if (h >= 0)
		nv_handle_close((nv_handle_t)h);
	check(what, h < 0 ? h : 0, want);
}

/* check_bytes checks that the file at path reads as the n bytes of
 * want. */
static void check_bytes(const char *path, const char *want, size_t n)
{
	char what[160], buf[64];
	int64_t h = open_path(path, NV_OPEN_READ);
	nv_snprintf(what, sizeof what, "open \"%s\" to read", path);
	check(what, h < 0 ? h : 0, 0);
	if (h < 0)
		return;
	nv_snprintf(what, sizeof what, "size of \"%s\"", path);
	check(what, nv_file_size((nv_handle_t)h), (int64_t)n);
	int64_t got = nv_file_read((nv_handle_t)h, 0, NV_ADDR(buf), sizeof buf);
	nv_snprintf(what, sizeof what, "read \"%s\"", path);
	check(what, got, (int64_t)n);
	nv_snprintf(what, sizeof what, "contents of \"%s\"", path);
	check(what, got == (int64_t)n && memcmp(buf, want, n) == 0, 1);
	nv_handle_close((nv_handle_t)h);
}

static void check_contents(const char *path, const char *want) { check_bytes(path, want, strlen(want)); }

/* check_list checks that listing dir gives exactly want (len bytes). */
static void check_list(const char *dir, const char *want, size_t len)
{
	char what[160], buf[256];
	int64_t n = nv_files_list(files, NV_ADDR(dir), strlen(dir), NV_ADDR(buf), sizeof buf);
	nv_snprintf(what, sizeof what, "list \"%s\"", dir);
	check(what, n, (int64_t)len);
	nv_snprintf(what, sizeof what, "names in \"%s\"", dir);
	check(what, n == (int64_t)len && memcmp(buf, want, len) == 0, 1);
}

static void reads(void)
{
	check_contents("hello.txt", "hello, files\n");
	check_contents("inlink", "hello, files\n");
	check_contents("sub/up", "hello, files\n");
	check_contents("sub/../hello.txt", "hello, files\n");
	check_contents("./sub/inner.txt", "inner\n");

	char buf[32];
	int64_t h = open_path("hello.txt", NV_OPEN_READ);
	check("open hello.txt", h < 0 ? h : 0, 0);
	if (h < 0)
		return;
	check("read at offset 7", nv_file_read((nv_handle_t)h, 7, NV_ADDR(buf), sizeof buf), 6);
	check("what offset 7 read", memcmp(buf, "files\n", 6), 0);
	check("read 3 bytes", nv_file_read((nv_handle_t)h, 0, NV_ADDR(buf), 3), 3);
	check("read past the end", nv_file_read((nv_handle_t)h, 100, NV_ADDR(buf), sizeof buf), 0);
	check("read at offset 2^63", nv_file_read((nv_handle_t)h, 1ull << 63, NV_ADDR(buf), sizeof buf), -NV_EINVAL);
	check("read into nothing", nv_file_read((nv_handle_t)h, 0, NV_ADDR(buf), 0), 0);
	check("write to a file opened to read", nv_file_write((nv_handle_t)h, 0, NV_ADDR("x"), 1), -NV_ERIGHTS);
	check("files_open on an open file", nv_files_open((nv_handle_t)h, NV_ADDR("x"), 1, NV_OPEN_READ), -NV_EINVALOP);
	nv_result_t info = nv_handle_info_r((nv_handle_t)h);
	check("an open file is a port", info.r0, NV_OBJ_PORT);
	check("its rights", (int64_t)info.r1, NV_R_READ | NV_R_GRANT | NV_R_DERIVE);
	check("close it", nv_handle_close((nv_handle_t)h), 0);
	check("read after close", nv_file_read((nv_handle_t)h, 0, NV_ADDR(buf), sizeof buf), -NV_EBADHANDLE);
	check("file_read on the root", nv_file_read(files, 0, NV_ADDR(buf), sizeof buf), -NV_EINVALOP);
	check("file_size on the root", nv_file_size(files), -NV_EINVALOP);
}

static void escapes(void)
{
	check_open("../outside.txt", NV_OPEN_READ, -NV_EDENIED);
	check_open("..", NV_OPEN_READ, -NV_EDENIED);
	check_open("sub/../../outside.txt", NV_OPEN_READ, -NV_EDENIED);
	check_open("escape", NV_OPEN_READ, -NV_EDENIED);
	check_open("abs", NV_OPEN_READ, -NV_EDENIED);
	check_open("/etc/passwd", NV_OPEN_READ, -NV_EINVAL);
	check_open("", NV_OPEN_READ, -NV_EINVAL);
	check("open a path with a NUL in it", nv_files_open(files, NV_ADDR("hello.txt\0/../x"), 15, NV_OPEN_READ), -NV_EINVAL);
	check_open("missing.txt", NV_OPEN_READ, -NV_ENOTFOUND);
	check_open("hello.txt/x", NV_OPEN_READ, -NV_ENOTDIR);
	check_open("sub", NV_OPEN_READ, -NV_EISDIR);
	check_open("hello.txt", 0, -NV_EINVAL);
	check_open("hello.txt", 0x10, -NV_EINVAL);
	check_open("hello.txt", NV_OPEN_READ | NV_OPEN_CREATE, -NV_EINVAL);
	check_open("hello.txt", NV_OPEN_READ | NV_OPEN_TRUNCATE, -NV_EINVAL);
	char buf[64];
	check("list ..", nv_files_list(files, NV_ADDR(".."), 2, NV_ADDR(buf), sizeof buf), -NV_EDENIED);
	check("list /", nv_files_list(files, NV_ADDR("/"), 1, NV_ADDR(buf), sizeof buf), -NV_EINVAL);
	check("list a file", nv_files_list(files, NV_ADDR("hello.txt"), 9, NV_ADDR(buf), sizeof buf), -NV_ENOTDIR);
	check("list a missing directory", nv_files_list(files, NV_ADDR("nope"), 4, NV_ADDR(buf), sizeof buf), -NV_ENOTFOUND);
}

static const char root_list[] = "abs\0escape\0hello.txt\0inlink\0sub/";

static void lists(void)
{
	check_list("", root_list, sizeof root_list);
	check_list(".", root_list, sizeof root_list);
	check_list("sub", "inner.txt\0up", sizeof "inner.txt\0up");
	check_list("sub/", "inner.txt\0up", sizeof "inner.txt\0up");

	/* A buffer too small gets the whole entries that fit, and the length
	 * the whole list needs. */
	char buf[16];
	memset(buf, 'z', sizeof buf);
	check("list into 16 bytes", nv_files_list(files, NV_ADDR(""), 0, NV_ADDR(buf), sizeof buf), sizeof root_list);
	check("the entries that fit", memcmp(buf, "abs\0escape\0zzzzz", 16), 0);
}

static void read_only(void)
{
	nv_result_t info = nv_handle_info_r(files);
	check("a read-only root lacks write", (int64_t)(info.r1 & NV_R_WRITE), 0);
	check_open("new.txt", NV_OPEN_WRITE | NV_OPEN_CREATE, -NV_EDENIED);
	check_open("hello.txt", NV_OPEN_WRITE, -NV_EDENIED);
	check_open("hello.txt", NV_OPEN_READ | NV_OPEN_WRITE | NV_OPEN_TRUNCATE, -NV_EDENIED);
	check_open("../evil.txt", NV_OPEN_WRITE | NV_OPEN_CREATE, -NV_EDENIED);
}

static void read_write(void)
{
	nv_result_t info = nv_handle_info_r(files);
	check("a writable root has write", (int64_t)(info.r1 & NV_R_WRITE), NV_R_WRITE);
	check_open("../evil.txt", NV_OPEN_WRITE | NV_OPEN_CREATE, -NV_EDENIED);
	check_open("escape", NV_OPEN_WRITE | NV_OPEN_TRUNCATE, -NV_EDENIED);
	check_open("abs", NV_OPEN_WRITE, -NV_EDENIED);
	check_open("sub/../../evil.txt", NV_OPEN_WRITE | NV_OPEN_CREATE, -NV_EDENIED);
	check_open("sub", NV_OPEN_WRITE, -NV_EISDIR);
	check_open("new.txt", NV_OPEN_WRITE, -NV_ENOTFOUND);

	int64_t h = open_path("new.txt", NV_OPEN_WRITE | NV_OPEN_CREATE);
	check("create new.txt", h < 0 ? h : 0, 0);
	if (h < 0)
		return;
	info = nv_handle_info_r((nv_handle_t)h);
	check("a write-only file's rights", (int64_t)info.r1, NV_R_WRITE | NV_R_GRANT | NV_R_DERIVE);
	check("write abc", nv_file_write((nv_handle_t)h, 0, NV_ADDR("abc"), 3), 3);
	check("write xy at 5", nv_file_write((nv_handle_t)h, 5, NV_ADDR("xy"), 2), 2);
	check("write nothing", nv_file_write((nv_handle_t)h, 0, 0, 0), 0);
	check("write at 2^63", nv_file_write((nv_handle_t)h, 1ull << 63, NV_ADDR("x"), 1), -NV_EINVAL);
	char buf[16];
	check("read a file opened to write", nv_file_read((nv_handle_t)h, 0, NV_ADDR(buf), sizeof buf), -NV_ERIGHTS);
	nv_handle_close((nv_handle_t)h);
	check_bytes("new.txt", "abc\0\0xy", 7);

	h = open_path("new.txt", NV_OPEN_READ | NV_OPEN_WRITE | NV_OPEN_TRUNCATE);
	check("truncate new.txt", h < 0 ? h : 0, 0);
	if (h < 0)
		return;
	check("size after truncating", nv_file_size((nv_handle_t)h), 0);
	check("write done", nv_file_write((nv_handle_t)h, 0, NV_ADDR("done\n"), 5), 5);
	check("size after writing", nv_file_size((nv_handle_t)h), 5);
	nv_handle_close((nv_handle_t)h);
	check_contents("new.txt", "done\n");
}

int main(int argc, char **argv)
{
	int rw = argc == 2 && strcmp(argv[1], "rw") == 0;
	if (argc != 2 || (!rw && strcmp(argv[1], "ro") != 0)) {
		nv_puts("usage: fileio ro|rw");
		return 2;
	}
	files = nv_files();
	if (files == NV_NO_HANDLE) {
		nv_puts("FAIL: no files root");
		return 1;
	}
	reads();
	escapes();
	lists();
	if (rw)
		read_write();
	else
		read_only();
	if (failures) {
		nv_printf("%d checks failed\n", failures);
		return 1;
	}
	nv_puts("PASS");
	return 0;
}
