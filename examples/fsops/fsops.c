/* fsops: a test guest for the files root's stat, namespace and directory
 * operations, on a writable root laid out as fileio's (see there). It
 * makes, describes, links, renames, lists and removes entries under d/,
 * and checks that none of it reaches outside the root. Prints PASS and
 * exits 0 when every check holds, FAIL lines and 1 otherwise; the root is
 * left as it was. */
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

#define P(s) NV_ADDR(s), strlen(s)

/* stat describes path into st; it returns 0 or the negated error. */
static int64_t stat(const char *path, uint64_t flags, struct nv_stat *st)
{
	memset(st, 0, sizeof *st);
	int64_t r = nv_files_stat(files, P(path), flags, NV_ADDR(st), sizeof *st);
	if (r >= 0 && r != (int64_t)sizeof *st)
		return -NV_EIO;
	return r < 0 ? r : 0;
}

/* pair lays out the paths argument of rename and symlink: a, NUL, b. */
static size_t pair(char *buf, const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	memcpy(buf, a, na);
	buf[na] = 0;
	memcpy(buf + na + 1, b, nb);
	return na + 1 + nb;
}

static int64_t rename2(const char *from, const char *to)
{
	char buf[128];
	return nv_files_rename(files, NV_ADDR(buf), pair(buf, from, to));
}

static int64_t symlink2(const char *target, const char *path)
{
	char buf[128];
	return nv_files_symlink(files, NV_ADDR(buf), pair(buf, target, path));
}

static void stats(void)
{
	struct nv_stat st, link;
	check("stat hello.txt", stat("hello.txt", 0, &st), 0);
	check("its type", st.type, NV_FT_REGULAR);
	check("its size", st.size, 13);
	check("it has an inode", st.inode != 0, 1);
	check("stat inlink", stat("inlink", 0, &link), 0);
	check("inlink leads to hello.txt", link.inode, st.inode);
	check("stat inlink itself", stat("inlink", NV_STAT_NOFOLLOW, &link), 0);
	check("its type", link.type, NV_FT_SYMLINK);
	check("its size is its target's length", link.size, 9);
	check("stat the root", stat("", 0, &st), 0);
	check("its type", st.type, NV_FT_DIR);
	check("stat escape", stat("escape", 0, &st), -NV_EDENIED);
	check("stat escape itself", stat("escape", NV_STAT_NOFOLLOW, &st), 0);
	check("stat ..", stat("..", 0, &st), -NV_EDENIED);
	check("stat /etc", stat("/etc", 0, &st), -NV_EINVAL);
	check("stat hello.txt/x", stat("hello.txt/x", 0, &st), -NV_ENOTDIR);
	check("stat with bad flags", stat("hello.txt", 2, &st), -NV_EINVAL);
}

static void namespace(void)
{
	struct nv_stat st, hello;
	char buf[64];
	check("mkdir d", nv_files_mkdir(files, P("d"), 0755), 0);
	check("mkdir d again", nv_files_mkdir(files, P("d"), 0755), -NV_EEXISTS);
	check("stat d", stat("d", 0, &st), 0);
	check("d is a directory", st.type, NV_FT_DIR);
	check("symlink d/ln", symlink2("../hello.txt", "d/ln"), 0);
	check("readlink d/ln", nv_files_readlink(files, P("d/ln"), NV_ADDR(buf), sizeof buf), 12);
	check("its text", memcmp(buf, "../hello.txt", 12), 0);
	check("stat hello.txt", stat("hello.txt", 0, &hello), 0);
	check("stat d/ln", stat("d/ln", 0, &st), 0);
	check("d/ln leads to hello.txt", st.inode, hello.inode);
	check("rename d/ln", rename2("d/ln", "d/ln2"), 0);
	check("d/ln is gone", stat("d/ln", NV_STAT_NOFOLLOW, &st), -NV_ENOTFOUND);

	int64_t h = nv_files_open(files, P("d/t"), NV_OPEN_WRITE | NV_OPEN_CREATE | NV_OPEN_EXCL);
	check("create d/t", h < 0 ? h : 0, 0);
	check("create d/t again", nv_files_open(files, P("d/t"), NV_OPEN_WRITE | NV_OPEN_CREATE | NV_OPEN_EXCL), -NV_EEXISTS);
	if (h >= 0) {
		check("write d/t", nv_file_write((nv_handle_t)h, 0, P("abcdef")), 6);
		check("truncate d/t", nv_files_truncate(files, P("d/t"), 3), 0);
		check("fstat d/t", nv_file_stat((nv_handle_t)h, NV_ADDR(&st), sizeof st), sizeof st);
		check("its size", st.size, 3);
		nv_handle_close((nv_handle_t)h);
	}
	check("chmod d/t", nv_files_chmod(files, P("d/t"), 0600), 0);
	check("utimes d/t", nv_files_utimes(files, P("d/t"), 1000000005ull, 2000000007ull), 0);
	check("stat d/t", stat("d/t", 0, &st), 0);
	check("its mode", st.mode, 0600);
	check("its atime", st.atime_sec * 1000000000 + (int64_t)st.atime_nsec, 1000000005);
	check("its mtime", st.mtime_sec * 1000000000 + (int64_t)st.mtime_nsec, 2000000007);
	check("truncate d", nv_files_truncate(files, P("d"), 0), -NV_EISDIR);

	/* The directory through a handle: its entries with their types. */
	check("open d as a file", nv_files_open(files, P("d"), NV_OPEN_READ), -NV_EISDIR);
	h = nv_files_open(files, P("d"), NV_OPEN_READ | NV_OPEN_DIR);
	check("open d", h < 0 ? h : 0, 0);
	if (h >= 0) {
		struct nv_stat dst, fst;
		check("stat d", stat("d", 0, &dst), 0);
		check("fstat d", nv_file_stat((nv_handle_t)h, NV_ADDR(&fst), sizeof fst), sizeof fst);
		check("the same directory", fst.inode, dst.inode);
		uint64_t ents[16];
		nv_result_t r = nv_file_readdir_r((nv_handle_t)h, 0, NV_ADDR(ents), sizeof ents);
		check("readdir d", r.r0, 48);
		check("its next offset", (int64_t)r.r1, 2);
		struct nv_dirent *e = (struct nv_dirent *)ents;
		check("the first is ln2", e->name_len == 3 && memcmp(e + 1, "ln2", 4) == 0, 1);
		check("a link", e->type, NV_FT_SYMLINK);
		e = (struct nv_dirent *)((char *)ents + 24);
		check("the second is t", e->name_len == 1 && memcmp(e + 1, "t", 2) == 0, 1);
		check("a regular file", e->type, NV_FT_REGULAR);
		check("readdir past the end", nv_file_readdir((nv_handle_t)h, 2, NV_ADDR(ents), sizeof ents), 0);
		check("read a directory", nv_file_read((nv_handle_t)h, 0, NV_ADDR(ents), sizeof ents), -NV_EISDIR);
		nv_handle_close((nv_handle_t)h);
	}

	check("rmdir d", nv_files_rmdir(files, P("d")), -NV_ENOTEMPTY);
	check("unlink d", nv_files_unlink(files, P("d")), -NV_EISDIR);
	check("unlink d/ln2", nv_files_unlink(files, P("d/ln2")), 0);
	check("unlink d/t", nv_files_unlink(files, P("d/t")), 0);
	check("rmdir d/t", nv_files_rmdir(files, P("d/t")), -NV_ENOTFOUND);
	check("rmdir d", nv_files_rmdir(files, P("d")), 0);
	check("d is gone", stat("d", 0, &st), -NV_ENOTFOUND);
}

static void confined(void)
{
	struct nv_stat st;
	check("unlink ../outside.txt", nv_files_unlink(files, P("../outside.txt")), -NV_EDENIED);
	check("rename out", rename2("hello.txt", "../evil"), -NV_EDENIED);
	check("rename in", rename2("../outside.txt", "got"), -NV_EDENIED);
	check("mkdir ../evil", nv_files_mkdir(files, P("../evil"), 0755), -NV_EDENIED);
	check("chmod escape", nv_files_chmod(files, P("escape"), 0777), -NV_EDENIED);
	check("truncate escape", nv_files_truncate(files, P("escape"), 0), -NV_EDENIED);
	check("utimes abs", nv_files_utimes(files, P("abs"), NV_UTIME_NOW, NV_UTIME_NOW), -NV_EDENIED);
	check("symlink lnk out", symlink2("../outside.txt", "lnk"), 0);
	check("stat through lnk", stat("lnk", 0, &st), -NV_EDENIED);
	check("open through lnk", nv_files_open(files, P("lnk"), NV_OPEN_READ), -NV_EDENIED);
	check("unlink lnk", nv_files_unlink(files, P("lnk")), 0);
}

int main(void)
{
	files = nv_files();
	if (files == NV_NO_HANDLE)
		nv_panic("fsops: no files root");
	stats();
	namespace();
	confined();
	if (failures)
		return 1;
	nv_puts("PASS");
	return 0;
}
