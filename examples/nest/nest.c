/* nest: a guest nester. "nest [--verbose] [--heap=MIB] PROGRAM ARGS..."
 * runs PROGRAM in a child space it builds itself, with the same ABI the
 * monitor gives a program, and stands between the child and the world
 * only where it has to:
 *
 * - memory: nest keeps every region the child has (image, stack, heap) and
 *   builds each page when the child first touches it, as a user-level
 *   pager;
 * - faults: the child's space has nest's port as its exception port, so a
 *   crash is reported by nest, which then kills the child with the status
 *   the monitor would give (128 + the Unix signal);
 * - everything else passes straight through: the child gets nest's own
 *   console, stderr, clock and files handles, so its I/O never goes
 *   through nest.
 *
 * nest is a program like any other, so it nests: "nest nest hello" runs
 * hello two nesters deep and prints exactly what hello prints. The child's
 * exit status becomes nest's.
 *
 * Exit statuses: the child's; 2 for a usage error; 125 when an operation
 * fails; 126 when PROGRAM is not a program nest can run; 127 when it does
 * not exist. */
#include "nestvm.h"

#define PAGE NV_PAGE_SIZE
#define MIB (1ull << 20)
#define LARGE_PAGE (2ull << 20)
#define STACK_SIZE MIB
#define DEFAULT_HEAP_MIB 64ull

enum {
	EXIT_USAGE = 2,
	EXIT_FAILED = 125,	 /* an operation failed */
	EXIT_NOT_RUNNABLE = 126, /* PROGRAM is not a program nest can run */
	EXIT_NOT_FOUND = 127,	 /* PROGRAM does not exist */
};

/* Badges of the keeper ports, one per region: a page request's badge says
 * which region it is for. The exception port itself has none (0). */
enum { BADGE_IMAGE = 1, BADGE_STACK, BADGE_HEAP };

static const char *prog; /* PROGRAM, as the user named it */
static int verbose;
static nv_handle_t err_h; /* where diagnostics go */

/* Prints "nest: " and a formatted line on stderr. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	memcpy(line, "nest: ", 6);
	nv_vsnprintf(line + 6, sizeof line - 6 - 1, fmt, ap);
	va_end(ap);
	size_t len = strlen(line);
	line[len++] = '\n';
	nv_hwrite(err_h, line, len); /* one write per line, so lines never mix */
}

/* check returns r when it is a value, and otherwise reports what failed
 * and exits 125. */
static int64_t check(int64_t r, const char *what)
{
	if (r < 0) {
		say("%s: %s", what, nv_strerror(r));
		nv_exit(EXIT_FAILED);
	}
	return r;
}

/* --- the program file --------------------------------------------------- */

static uint8_t *file;	 /* PROGRAM's bytes, in nest's heap */
static uint64_t file_len;

/* load_file reads PROGRAM through the files root. */
static void load_file(void)
{
	nv_handle_t files = nv_files();
	if (files == NV_NO_HANDLE) {
		say("%s: no files root to read it from", prog);
		nv_exit(EXIT_FAILED);
	}
	int64_t f = nv_files_open(files, NV_ADDR(prog), strlen(prog), NV_OPEN_READ);
	if (f == -NV_ENOTFOUND) {
		say("%s: not found", prog);
		nv_exit(EXIT_NOT_FOUND);
	}
	if (f == -NV_EDENIED || f == -NV_EINVAL || f == -NV_EIO || f == -NV_ETOOBIG) {
		say("%s: cannot open: %s%s", prog, nv_strerror(f),
		    prog[0] == '/' ? " (paths are relative to the files root)" : "");
		nv_exit(EXIT_NOT_RUNNABLE);
	}
	check(f, "files_open");
	int64_t size = nv_file_size((nv_handle_t)f);
	if (size == -NV_EINVAL || size == -NV_EIO) {
		say("%s: cannot read: %s", prog, nv_strerror(size));
		nv_exit(EXIT_NOT_RUNNABLE);
	}
	file_len = (uint64_t)check(size, "file_size");
	file = nv_alloc(file_len ? file_len : 1);
	if (file == NULL) {
		say("%s: %llu bytes do not fit in nest's heap of %zu bytes", prog,
		    (unsigned long long)file_len, nv_heap_remaining());
		nv_exit(EXIT_FAILED);
	}
	/* Touch the buffer first: nest may itself run under a pager (a nest
	 * above it), and its pages are then best present before an
	 * operation writes to them. */
	memset(file, 0, file_len);
	uint64_t done = 0;
	while (done < file_len) {
		uint64_t chunk = file_len - done;
		if (chunk > NV_MAX_BUFFER)
			chunk = NV_MAX_BUFFER;
		int64_t n = nv_file_read((nv_handle_t)f, done, NV_ADDR(file + done), chunk);
		if (n == -NV_EIO || n == -NV_EINVAL) {
			say("%s: cannot read: %s", prog, nv_strerror(n));
			nv_exit(EXIT_NOT_RUNNABLE);
		}
		check(n, "file_read");
		if (n == 0)
			break; /* the file shrank: what there is gets validated */
		done += (uint64_t)n;
	}
	file_len = done;
	check(nv_handle_close((nv_handle_t)f), "handle_close");
}

/* --- ELF validation, as the monitor's loader (vmm/elf.go) does it -------- */

/* ELF constants from the System V gABI and its x86-64 supplement. */
enum {
	EHDR_SIZE = 64,
	PHDR_SIZE = 56,
	ELFCLASS32 = 1,
	ELFCLASS64 = 2,
	ELFDATA2LSB = 1,
	ELFDATA2MSB = 2,
	EV_CURRENT = 1,
	ET_REL = 1,
	ET_EXEC = 2,
	ET_DYN = 3,
	ET_CORE = 4,
	EM_X86_64 = 62,
	PT_LOAD = 1,
	PT_DYNAMIC = 2,
	PT_INTERP = 3,
	PT_TLS = 7,
	PF_X = 1,
	PF_W = 2,
	PF_R = 4,
	MAX_PHDRS = 64, /* as the monitor: real static programs have about ten */
};

struct segment {
	uint64_t addr, memsz; /* in the child */
	uint64_t off, filesz; /* in the file */
	uint64_t perm;	      /* NV_PERM_*; write and exec imply read */
	int index;	      /* in the program header table */
};

static struct segment segs[MAX_PHDRS];
static int nsegs;
static uint64_t entry;
static uint64_t image_lo, image_hi; /* the page-rounded span of all segments */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static uint64_t page_down(uint64_t a) { return a & ~(PAGE - 1); }
static uint64_t page_up(uint64_t a) { return (a + PAGE - 1) & ~(PAGE - 1); }

/* Refuses PROGRAM: prints why and exits 126. */
__attribute__((noreturn, format(printf, 1, 2))) static void bad_elf(const char *fmt, ...)
{
	char why[384];
	va_list ap;
	va_start(ap, fmt);
	nv_vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	say("%s: not a program nest can run: %s", prog, why);
	nv_exit(EXIT_NOT_RUNNABLE);
}

/* interp_name copies the interpreter path a PT_INTERP header points at
 * into buf, for a message: cut at its NUL and to fit, and replaced by a
 * description when it lies outside the file or holds unprintable bytes. */
static void interp_name(char *buf, size_t n, uint64_t off, uint64_t len)
{
	if (off > file_len || len > file_len - off) {
		nv_snprintf(buf, n, "path at file offset 0x%llx, outside the file", (unsigned long long)off);
		return;
	}
	size_t i = 0;
	for (; i < len && i + 1 < n && file[off + i] != 0; i++) {
		if (file[off + i] <= ' ' || file[off + i] >= 0x7f) {
			nv_snprintf(buf, n, "path with unprintable bytes");
			return;
		}
		buf[i] = (char)file[off + i];
	}
	buf[i] = 0;
	if (i == 0)
		nv_snprintf(buf, n, "\"\"");
}

/* parse_elf checks that the file is a static ELF64 x86-64 executable whose
 * segments lie in the user range, and fills segs, entry and the image span. */
static void parse_elf(void)
{
	const uint8_t *d = file;
	uint64_t size = file_len;
	if (size < 4 || d[0] != 0x7f || d[1] != 'E' || d[2] != 'L' || d[3] != 'F')
		bad_elf("not an ELF file");
	if (size < 5)
		bad_elf("truncated ELF header: the file has %llu bytes, the header needs %d", (unsigned long long)size, EHDR_SIZE);
	if (d[4] == ELFCLASS32)
		bad_elf("32-bit ELF: nest runs 64-bit x86-64 programs");
	if (d[4] != ELFCLASS64)
		bad_elf("unknown ELF class 0x%x: nest runs 64-bit x86-64 programs", d[4]);
	if (size < EHDR_SIZE)
		bad_elf("truncated ELF header: the file has %llu bytes, the header needs %d", (unsigned long long)size, EHDR_SIZE);
	if (d[5] == ELFDATA2MSB)
		bad_elf("big-endian ELF: nest runs little-endian x86-64 programs");
	if (d[5] != ELFDATA2LSB)
		bad_elf("unknown ELF byte order 0x%x: nest runs little-endian x86-64 programs", d[5]);
	if (d[6] != EV_CURRENT || rd32(d + 20) != EV_CURRENT)
		bad_elf("ELF version 0x%x, want 0x1", d[6] != EV_CURRENT ? d[6] : rd32(d + 20));
	if (rd16(d + 18) != EM_X86_64)
		bad_elf("machine 0x%x, not x86-64", rd16(d + 18));
	uint16_t type = rd16(d + 16);
	switch (type) {
	case ET_EXEC:
	case ET_DYN: /* refused below, once it is clear whether it is dynamic */
		break;
	case ET_REL:
		bad_elf("relocatable object (ET_REL), not an executable: link it first");
	case ET_CORE:
		bad_elf("core dump (ET_CORE), not an executable");
	default:
		bad_elf("ELF type 0x%x is not an executable", type);
	}
	entry = rd64(d + 24);
	uint64_t phoff = rd64(d + 32);
	uint16_t phentsize = rd16(d + 54);
	uint64_t phnum = rd16(d + 56);
	if (phnum == 0)
		bad_elf("no program headers: nothing to load");
	if (phentsize != PHDR_SIZE)
		bad_elf("program header size 0x%x, want 0x%x", phentsize, PHDR_SIZE);
	if (phnum > MAX_PHDRS)
		bad_elf("%llu program headers, more than the %d nest accepts", (unsigned long long)phnum, MAX_PHDRS);
	/* Written as a subtraction so that no sum of file fields can wrap. */
	if (phoff > size || size - phoff < phnum * PHDR_SIZE)
		bad_elf("program header table (0x%llx bytes at offset 0x%llx) runs past the end of the file (0x%llx bytes)",
			(unsigned long long)(phnum * PHDR_SIZE), (unsigned long long)phoff, (unsigned long long)size);

	/* First what kind of program it is, so that a dynamically linked or
	 * position-independent one is refused as such rather than for one of
	 * its segments. */
	int has_dynamic = 0;
	for (uint64_t i = 0; i < phnum; i++) {
		const uint8_t *ph = d + phoff + i * PHDR_SIZE;
		if (rd32(ph) == PT_INTERP) {
			char interp[64];
			interp_name(interp, sizeof interp, rd64(ph + 8), rd64(ph + 32));
			bad_elf("dynamically linked (interpreter %s): nest runs static programs only; link with -static", interp);
		}
		if (rd32(ph) == PT_DYNAMIC)
			has_dynamic = 1;
	}
	if (type == ET_DYN)
		bad_elf("position-independent executable: link with -static -no-pie (nest loads a program at the address it was linked for)");
	if (has_dynamic)
		bad_elf("dynamically linked (dynamic section without an interpreter): nest runs static programs only; link with -static");

	for (uint64_t i = 0; i < phnum; i++) {
		const uint8_t *ph = d + phoff + i * PHDR_SIZE;
		uint32_t pt = rd32(ph), flags = rd32(ph + 4);
		uint64_t off = rd64(ph + 8), vaddr = rd64(ph + 16);
		uint64_t filesz = rd64(ph + 32), memsz = rd64(ph + 40);
		unsigned long long ui = i, va = vaddr, end = vaddr + memsz;
		if (pt == PT_TLS && memsz > 0)
			bad_elf("segment %llu is thread-local storage (PT_TLS), which nest does not support", ui);
		if (pt != PT_LOAD || memsz == 0)
			continue;
		if (filesz > memsz)
			bad_elf("segment %llu has 0x%llx bytes in the file but only 0x%llx in memory", ui,
				(unsigned long long)filesz, (unsigned long long)memsz);
		if (off > size || filesz > size - off)
			bad_elf("segment %llu (0x%llx bytes at file offset 0x%llx) runs past the end of the file (0x%llx bytes)", ui,
				(unsigned long long)filesz, (unsigned long long)off, (unsigned long long)size);
		if (vaddr + memsz < vaddr)
			bad_elf("segment %llu at 0x%llx wraps around the end of the address space", ui, va);
		if ((flags & (PF_R | PF_W | PF_X)) == 0)
			bad_elf("segment %llu at 0x%llx-0x%llx has no permissions", ui, va, end);
		if (vaddr < NV_USER_BASE)
			bad_elf("segment %llu at 0x%llx-0x%llx lies below the user range; link programs at 0x%llx or above", ui, va, end,
				(unsigned long long)NV_USER_BASE);
		if (vaddr + memsz > NV_USER_TOP)
			bad_elf("segment %llu at 0x%llx-0x%llx ends above the top of the user range 0x%llx", ui, va, end,
				(unsigned long long)NV_USER_TOP);
		uint64_t perm = 0;
		if (flags & PF_R)
			perm |= NV_PERM_READ;
		if (flags & PF_W)
			perm |= NV_PERM_WRITE | NV_PERM_READ;
		if (flags & PF_X)
			perm |= NV_PERM_EXEC | NV_PERM_READ;
		/* Insertion sort by address: there are at most MAX_PHDRS. */
		int j = nsegs++;
		for (; j > 0 && segs[j - 1].addr > vaddr; j--)
			segs[j] = segs[j - 1];
		segs[j] = (struct segment){vaddr, memsz, off, filesz, perm, (int)i};
	}
	if (nsegs == 0)
		bad_elf("no loadable segments (no PT_LOAD with a nonzero size)");

	/* Sorted and checked pairwise, no segment reaches past its successor:
	 * a page is shared only by neighbours, and gets the union of their
	 * permissions (see map_image). */
	int entry_ok = 0;
	for (int i = 0; i < nsegs; i++) {
		const struct segment *s = &segs[i];
		if (i > 0 && segs[i - 1].addr + segs[i - 1].memsz > s->addr)
			bad_elf("segment %d at 0x%llx and segment %d at 0x%llx overlap", segs[i - 1].index,
				(unsigned long long)segs[i - 1].addr, s->index, (unsigned long long)s->addr);
		if ((s->perm & NV_PERM_EXEC) && entry >= s->addr && entry - s->addr < s->memsz)
			entry_ok = 1;
	}
	if (!entry_ok)
		bad_elf("entry point 0x%llx is outside every executable segment", (unsigned long long)entry);
	image_lo = page_down(segs[0].addr);
	for (int i = 0; i < nsegs; i++) {
		uint64_t end = page_up(segs[i].addr + segs[i].memsz);
		if (end > image_hi)
			image_hi = end;
	}
}

/* --- the child's memory ------------------------------------------------- */

/* One region nest keeps for the child. */
struct kept {
	const char *name;
	uint64_t badge;
	nv_handle_t region; /* in nest's table */
	uint64_t base, size; /* where it is mapped in the child */
};

static struct kept image = {"image", BADGE_IMAGE, 0, 0, 0};
static struct kept stack = {"stack", BADGE_STACK, 0, 0, 0};
static struct kept heap = {"heap", BADGE_HEAP, 0, 0, 0};

static nv_handle_t self, child, ep;

/* The top pages of the child's stack, prepared by build_stack. */
static uint8_t *stack_top;
static uint64_t stack_top_base; /* the child address of stack_top[0] */

static uint8_t page[PAGE] __attribute__((aligned(PAGE)));

/* new_kept creates region k on the child's space handle (so the pages
 * count against the child's quota), makes nest its keeper through a port
 * badged for it, and returns the region. It is mapped by the caller. */
static void new_kept(struct kept *k, uint64_t base, uint64_t size)
{
	char what[64];
	k->base = base;
	k->size = size;
	nv_snprintf(what, sizeof what, "region_create (%s, %llu bytes)", k->name, (unsigned long long)size);
	k->region = (nv_handle_t)check(nv_region_create(child, size), what);
	nv_snprintf(what, sizeof what, "handle_derive (%s keeper)", k->name);
	nv_handle_t keeper = (nv_handle_t)check(nv_handle_derive(ep, NV_R_CALL | NV_R_GRANT, k->badge), what);
	nv_snprintf(what, sizeof what, "region_set_keeper (%s)", k->name);
	check(nv_region_set_keeper(k->region, keeper), what);
}

static void map_kept(const struct kept *k, uint64_t addr, uint64_t size, uint64_t perm)
{
	char what[80];
	nv_snprintf(what, sizeof what, "space_map (%s at 0x%llx, %llu bytes)", k->name, (unsigned long long)addr,
		    (unsigned long long)size);
	check(nv_space_map(child, k->region, addr, addr - k->base, size, perm), what);
}

/* map_image maps the image region in runs of pages, each with the union
 * of the permissions of the segments that touch it, as the monitor's
 * loader does (ld packs segments, so neighbours may share a page). Pages
 * between segments that no segment touches stay unmapped. */
static void map_image(void)
{
	uint64_t points[2 * MAX_PHDRS];
	int n = 0;
	for (int i = 0; i < nsegs; i++) {
		uint64_t p[2] = {page_down(segs[i].addr), page_up(segs[i].addr + segs[i].memsz)};
		for (int k = 0; k < 2; k++) {
			int j = n++;
			for (; j > 0 && points[j - 1] > p[k]; j--)
				points[j] = points[j - 1];
			points[j] = p[k];
		}
	}
	/* Runs of pages with one permission, merged where neighbours agree. */
	uint64_t run_lo = 0, run_hi = 0, run_perm = 0;
	for (int i = 0; i + 1 < n; i++) {
		uint64_t a = points[i], b = points[i + 1];
		if (a == b)
			continue;
		uint64_t perm = 0;
		for (int s = 0; s < nsegs; s++)
			if (page_down(segs[s].addr) < b && a < page_up(segs[s].addr + segs[s].memsz))
				perm |= segs[s].perm;
		if (perm == run_perm && a == run_hi) {
			run_hi = b;
			continue;
		}
		if (run_perm)
			map_kept(&image, run_lo, run_hi - run_lo, run_perm);
		run_lo = a, run_hi = b, run_perm = perm;
	}
	if (run_perm)
		map_kept(&image, run_lo, run_hi - run_lo, run_perm);
}

/* build_image_page fills page with the image bytes of the page at child
 * address addr: what the file holds for the segments that reach into it,
 * zero elsewhere (bss, gaps). */
static void build_image_page(uint64_t addr)
{
	memset(page, 0, PAGE);
	for (int i = 0; i < nsegs; i++) {
		const struct segment *s = &segs[i];
		uint64_t lo = s->addr > addr ? s->addr : addr;
		uint64_t hi = s->addr + s->filesz < addr + PAGE ? s->addr + s->filesz : addr + PAGE;
		if (lo < hi)
			memcpy(page + (lo - addr), file + s->off + (lo - s->addr), hi - lo);
	}
}

/* --- the child's start-up ----------------------------------------------- */

/* The Linux auxiliary-vector types the monitor provides (abi/records.go). */
enum { AT_NULL = 0, AT_PAGESZ = 6, AT_ENTRY = 9 };

/* stack_layout computes where build_stack puts things for args, without
 * writing anything: the initial RSP and the start information's address.
 * It is the monitor's buildStack (vmm/program.go), address for address. */
struct layout {
	uint64_t rsp, info;
};

static struct layout stack_layout(int argc, char **argv)
{
	uint64_t sp = NV_USER_TOP;
	for (int i = argc - 1; i >= 0; i--)
		sp -= strlen(argv[i]) + 1;
	sp &= ~15ull;
	sp -= (sizeof(struct nv_start_info) + 15) & ~15ull;
	struct layout l = {0, sp};
	uint64_t words = 1 + (uint64_t)argc + 1 + 1 + 2 * 4; /* argc, argv, NULL, envp NULL, auxv */
	sp -= 8 * words;
	sp &= ~15ull; /* the ABI wants RSP 16-byte aligned at entry */
	l.rsp = sp;
	return l;
}

/* build_stack writes the child's initial stack into stack_top, for the top
 * pages of the stack region: the argument strings, the start information
 * (whose handle numbers are the child's), and below them argc, argv, an
 * empty environment and the auxiliary vector. */
static void build_stack(int argc, char **argv, struct layout l, struct nv_start_info *info)
{
	stack_top_base = page_down(l.rsp);
	if (stack_top_base < stack.base + PAGE) {
		say("%s: the arguments do not fit in the %llu-byte stack", prog, (unsigned long long)stack.size);
		nv_exit(EXIT_FAILED);
	}
	uint64_t len = NV_USER_TOP - stack_top_base;
	stack_top = nv_alloc(len);
	if (stack_top == NULL) {
		say("%s: no heap left for the child's %llu-byte initial stack", prog, (unsigned long long)len);
		nv_exit(EXIT_FAILED);
	}
	memset(stack_top, 0, len);
#define AT(addr) (stack_top + ((addr) - stack_top_base))
	uint64_t sp = NV_USER_TOP;
	uint64_t *argv_addrs = nv_alloc(sizeof(uint64_t) * ((size_t)argc + 1));
	if (argv_addrs == NULL) {
		say("%s: no heap left for the child's arguments", prog);
		nv_exit(EXIT_FAILED);
	}
	for (int i = argc - 1; i >= 0; i--) {
		size_t n = strlen(argv[i]) + 1;
		sp -= n;
		memcpy(AT(sp), argv[i], n);
		argv_addrs[i] = sp;
	}
	uint64_t words[2 + 2 * 4], *w = words; /* NULL, envp NULL, auxv */
	memcpy(AT(l.rsp), &(uint64_t){(uint64_t)argc}, 8);
	memcpy(AT(l.rsp + 8), argv_addrs, 8 * (size_t)argc);
	*w++ = 0; /* the end of argv */
	*w++ = 0; /* an empty environment */
	*w++ = AT_PAGESZ, *w++ = PAGE;
	*w++ = AT_ENTRY, *w++ = entry;
	*w++ = NV_AT_STARTINFO, *w++ = l.info;
	*w++ = AT_NULL, *w++ = 0;
	memcpy(AT(l.rsp + 8 + 8 * (uint64_t)argc), words, sizeof words);
	info->argc = (uint64_t)argc;
	info->argv = l.rsp + 8;
	memcpy(AT(l.info), info, sizeof *info);
#undef AT
}

/* own_stderr is nest's own stderr handle as the start information names
 * it: unlike nv_stderr(), NV_NO_HANDLE when there is none, so the child
 * falls back to its console just as nest does. */
static nv_handle_t own_stderr(void)
{
	const struct nv_start_info *si = nv_start_info();
	if (si->size < offsetof(struct nv_start_info, stderr) + sizeof si->stderr)
		return NV_NO_HANDLE;
	return si->stderr;
}

/* pass gives the child a copy of nest's handle h with the rights nest has,
 * and returns its number there (NV_NO_HANDLE when nest has none). */
static uint64_t pass(nv_handle_t h, const char *name)
{
	char what[64];
	if (h == NV_NO_HANDLE)
		return NV_NO_HANDLE;
	nv_snprintf(what, sizeof what, "handle_info (%s)", name);
	nv_result_t info = nv_handle_info_r(h);
	check(info.r0, what);
	nv_snprintf(what, sizeof what, "space_insert (%s)", name);
	return (uint64_t)check(nv_space_insert(child, h, info.r1), what);
}

/* --- serving ------------------------------------------------------------ */

static uint64_t page_requests, faults;

static const char *const vector_names[] = {
	[0] = "divide error",
	[1] = "debug trap",
	[3] = "breakpoint",
	[4] = "overflow",
	[5] = "bound range exceeded",
	[6] = "invalid opcode",
	[7] = "device not available",
	[8] = "double fault",
	[10] = "invalid TSS",
	[11] = "segment not present",
	[12] = "stack fault",
	[13] = "general protection fault",
	[14] = "page fault",
	[16] = "x87 floating-point error",
	[17] = "alignment check",
	[18] = "machine check",
	[19] = "SIMD floating-point error",
};

/* Page-fault error-code bits, as the CPU pushes them. */
enum { PF_PRESENT = 1 << 0, PF_WRITE = 1 << 1, PF_FETCH = 1 << 4 };

/* describe_fault writes the monitor's one-line description of a fault
 * (vmm.Fault.String), e.g. "page fault: read of 0x0 (not present) at rip
 * 0x401a2c". */
static void describe_fault(char *buf, size_t n, const struct nv_msg *m)
{
	uint64_t vec = m->words[NV_FW_VECTOR], err = m->words[NV_FW_ERROR];
	unsigned long long addr = m->words[NV_FW_ADDR], rip = m->words[NV_FW_RIP];
	if (vec == 14) {
		const char *access = err & PF_FETCH ? "execute" : err & PF_WRITE ? "write" : "read";
		const char *why = err & PF_PRESENT ? "protection" : "not present";
		nv_snprintf(buf, n, "page fault: %s of 0x%llx (%s) at rip 0x%llx", access, addr, why, rip);
	} else if (vec < sizeof vector_names / sizeof vector_names[0] && vector_names[vec])
		nv_snprintf(buf, n, "%s at rip 0x%llx", vector_names[vec], rip);
	else if (vec < 32)
		nv_snprintf(buf, n, "exception %llu at rip 0x%llx", (unsigned long long)vec, rip);
	else
		nv_snprintf(buf, n, "software interrupt 0x%llx at rip 0x%llx", (unsigned long long)(vec & 0xff), rip);
}

/* fault_status is 128 plus the Unix signal Linux delivers for the
 * exception, as nestvm run reports a fault (README, exit statuses). */
static uint64_t fault_status(uint64_t vec)
{
	switch (vec) {
	case 0:  /* #DE */
	case 16: /* #MF */
	case 19: /* #XM */
		return 128 + 8; /* SIGFPE */
	case 6:			/* #UD */
		return 128 + 4; /* SIGILL */
	case 1:			/* #DB */
	case 3:			/* #BP */
		return 128 + 5; /* SIGTRAP */
	case 11:		/* #NP */
	case 12:		/* #SS */
	case 17:		/* #AC */
		return 128 + 7; /* SIGBUS */
	case 18:		/* #MC */
		return 128 + 6; /* SIGABRT */
	}
	return 128 + 11; /* SIGSEGV: #PF, #GP and the rest */
}

static void reply(uint64_t call_id, uint64_t r0, uint64_t r1)
{
	check(nv_port_reply(ep, call_id, r0, r1, 0, 0, NV_NO_HANDLE), "port_reply");
}

/* refuse_page reports a page request nest cannot serve (which only a
 * kernel bug sends) and ends the child with status 125. */
static void refuse_page(const struct nv_msg *m, const char *why)
{
	say("%s: thread %llu: %s (badge %llu, offset 0x%llx)", prog, (unsigned long long)m->words[NV_FW_THREAD], why,
	    (unsigned long long)m->badge, (unsigned long long)m->words[NV_FW_OFFSET]);
	reply(m->call_id, NV_FAULT_KILL, EXIT_FAILED);
}

/* serve_page builds the requested page, supplies it and resumes the
 * thread that touched it. */
static void serve_page(const struct nv_msg *m)
{
	struct kept *k;
	switch (m->badge) {
	case BADGE_IMAGE:
		k = &image;
		break;
	case BADGE_STACK:
		k = &stack;
		break;
	case BADGE_HEAP:
		k = &heap;
		break;
	default:
		refuse_page(m, "page request for a region nest does not keep");
		return;
	}
	uint64_t off = m->words[NV_FW_OFFSET];
	if (off % PAGE != 0 || off >= k->size) {
		refuse_page(m, "page request outside the region");
		return;
	}
	page_requests++;
	uint64_t addr = k->base + off;
	if (k == &image)
		build_image_page(addr);
	else if (k == &stack && addr >= stack_top_base)
		memcpy(page, stack_top + (addr - stack_top_base), PAGE);
	else
		memset(page, 0, PAGE);
	char what[64];
	nv_snprintf(what, sizeof what, "region_supply (%s, offset 0x%llx)", k->name, (unsigned long long)off);
	check(nv_region_supply(k->region, off, NV_ADDR(page), PAGE), what);
	reply(m->call_id, NV_FAULT_RESUME, 0);
}

/* serve_fault reports a crash of the child and kills it with the status
 * the monitor would give. Its end arrives later as NV_MSG_EXIT. */
static void serve_fault(const struct nv_msg *m)
{
	char line[160];
	faults++;
	describe_fault(line, sizeof line, m);
	say("%s: thread %llu: %s", prog, (unsigned long long)m->words[NV_FW_THREAD], line);
	reply(m->call_id, NV_FAULT_KILL, fault_status(m->words[NV_FW_VECTOR]));
}

__attribute__((noreturn)) static void finish(int status)
{
	if (verbose)
		say("served %llu faults, %llu page requests", (unsigned long long)faults, (unsigned long long)page_requests);
	nv_exit(status);
}

/* The tag of the message watch sends nest's own port. */
#define TAG_CHILD_ENDED 0x656e64

/* watch polls the child's status and, once it has ended, tells serve with
 * a one-way message: a child that cleared or replaced its exception port
 * ends with no NV_MSG_EXIT for nest, which would otherwise wait forever.
 * It polls every 50 ms, one call each, from a thread of its own. */
static void watch(uint64_t unused)
{
	(void)unused;
	static volatile uint32_t never;
	for (;;) {
		nv_result_t st = nv_space_status_r(child);
		if (st.r0 == NV_SPACE_EXITED || st.r0 == NV_SPACE_KILLED || (int64_t)st.r0 < 0) {
			nv_port_send(ep, TAG_CHILD_ENDED, 0, 0, NV_NO_HANDLE);
			for (;;) /* nest ends with serve's finish */
				nv_futex_wait(self, NV_ADDR(&never), 0, 0);
		}
		nv_futex_wait(self, NV_ADDR(&never), 0, 50 * 1000 * 1000);
	}
}

/* start_watch starts watch on a small stack of its own. */
static void start_watch(void)
{
	const size_t size = 16 << 10;
	char *stack = nv_alloc(size);
	if (stack == NULL) {
		say("no memory for the watcher's stack: a child that clears its exception port will not be noticed ending");
		return;
	}
	int64_t t = nv_thread_create(self, NV_ADDR(watch), ((NV_ADDR(stack) + size) & ~15ull) - 8, 0);
	if (t < 0 || nv_thread_start((nv_handle_t)t) < 0)
		say("watcher thread: %s: a child that clears its exception port will not be noticed ending", nv_strerror(t < 0 ? t : -NV_EINVAL));
}

__attribute__((noreturn)) static void serve(void)
{
	static struct nv_msg m;
	static uint8_t data[sizeof(struct nv_thread_state)] __attribute__((aligned(16)));
	for (;;) {
		/* Present, written pages for the monitor to fill (see load_file). */
		memset(&m, 0, sizeof m);
		memset(data, 0, sizeof data);
		int64_t r = nv_port_receive(ep, NV_ADDR(&m), sizeof m, NV_ADDR(data), sizeof data);
		if (r < 0) {
			/* Nothing more will come; if the child has ended, end as
			 * it did. */
			nv_result_t st = nv_space_status_r(child);
			if (st.r0 == NV_SPACE_EXITED || st.r0 == NV_SPACE_KILLED) {
				say("port_receive: %s (the child had ended)", nv_strerror(r));
				finish((int)(st.r1 & 0xff));
			}
			check(r, "port_receive");
		}
		switch (m.kind) {
		case NV_MSG_PAGE:
			serve_page(&m);
			break;
		case NV_MSG_FAULT:
			serve_fault(&m);
			break;
		case NV_MSG_EXIT: /* one-way: words[0] how, words[1] the status */
			finish((int)(m.words[1] & 0xff));
		case NV_MSG_SEND:
			if (m.op == TAG_CHILD_ENDED) {
				nv_result_t st = nv_space_status_r(child);
				finish((int)(st.r1 & 0xff));
			}
			break;
		default:
			if (m.call_id != 0)
				reply(m.call_id, (uint64_t)-NV_EINVALOP, 0);
		}
		/* Handles that came with the message (a fault's thread) are
		 * not kept: nest needs none of them. */
		for (uint64_t i = 0; i < m.n_handles && i < NV_MSG_HANDLES; i++)
			nv_handle_close(m.handles[i]);
	}
}

/* --- main --------------------------------------------------------------- */

static void usage(const char *why)
{
	say("%s", why);
	say("usage: nest [--verbose] [--heap=MIB] PROGRAM [ARGS...]");
	nv_exit(EXIT_USAGE);
}

int main(int argc, char **argv)
{
	err_h = nv_stderr();
	self = nv_self_space();
	uint64_t heap_mib = DEFAULT_HEAP_MIB;
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "--verbose") == 0) {
			verbose = 1;
		} else if (strncmp(argv[i], "--heap=", 7) == 0) {
			int ok;
			heap_mib = nv_atou64(argv[i] + 7, &ok);
			if (!ok || heap_mib > (NV_USER_TOP >> 20))
				usage("--heap wants a size in MiB");
		} else {
			char why[96];
			nv_snprintf(why, sizeof why, "unknown option %.40s", argv[i]);
			usage(why);
		}
	}
	if (i >= argc)
		usage("no program given");
	prog = argv[i];
	int cargc = argc - i;
	char **cargv = argv + i; /* PROGRAM is the child's argv[0] */

	load_file();
	parse_elf();

	child = (nv_handle_t)check(nv_space_create(self, 0, 0, 0, 0), "space_create");
	ep = (nv_handle_t)check(nv_port_create(self), "port_create");
	check(nv_space_set_exception_port(child, ep), "space_set_exception_port");

	/* Memory: the image, then the stack at the top of the user range,
	 * then the heap past a guard page after the image, 2 MiB aligned,
	 * where the monitor puts it. */
	new_kept(&image, image_lo, image_hi - image_lo);
	map_image();
	new_kept(&stack, NV_USER_TOP - STACK_SIZE, STACK_SIZE);
	map_kept(&stack, stack.base, stack.size, NV_PERM_READ | NV_PERM_WRITE);
	uint64_t heap_base = (image_hi + PAGE + LARGE_PAGE - 1) & ~(LARGE_PAGE - 1);
	uint64_t heap_size = heap_mib * MIB;
	if (heap_base >= stack.base - PAGE)
		heap_size = 0;
	else if (heap_size > stack.base - PAGE - heap_base)
		heap_size = page_down(stack.base - PAGE - heap_base);
	if (heap_size > 0) {
		new_kept(&heap, heap_base, heap_size);
		map_kept(&heap, heap.base, heap.size, NV_PERM_READ | NV_PERM_WRITE);
	}

	/* The child's handles. Its console, stderr, clock and files are
	 * nest's own, so its I/O never passes through nest. */
	struct layout l = stack_layout(cargc, cargv);
	struct nv_start_info info = {
		.magic = NV_START_MAGIC,
		.size = sizeof info,
		.abi_version = NESTVM_ABI_VERSION,
		.heap_base = heap_size ? heap_base : 0,
		.heap_size = heap_size,
		.stack_base = stack.base,
		.stack_size = stack.size,
	};
	info.space = (uint64_t)check(nv_space_insert(child, child, NV_R_ALL), "space_insert (space)");
	nv_handle_t thread = (nv_handle_t)check(nv_thread_create(child, entry, l.rsp, l.info), "thread_create");
	info.thread = (uint64_t)check(nv_space_insert(child, thread, NV_R_ALL), "space_insert (thread)");
	info.console = pass(nv_console(), "console");
	info.stderr = pass(own_stderr(), "stderr");
	info.clock = pass(nv_clock(), "clock");
	info.files = pass(nv_files(), "files");
	build_stack(cargc, cargv, l, &info);

	if (verbose)
		say("%s: %d segments, entry 0x%llx, image 0x%llx-0x%llx, heap %llu MiB at 0x%llx", prog, nsegs,
		    (unsigned long long)entry, (unsigned long long)image_lo, (unsigned long long)image_hi,
		    (unsigned long long)(heap_size / MIB), (unsigned long long)heap_base);
	check(nv_thread_start(thread), "thread_start");
	start_watch();
	serve();
}
