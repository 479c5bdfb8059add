/* lxbench MODE N: a Linux program, not a nestvm guest (no SDK, no C
 * library: raw system calls), for nestvm bench's syscall workload. It
 * makes N system calls of MODE and prints "bench MODE N ELAPSED_NS", as
 * the bench guest does. Modes:
 *
 *   syscall  getppid: the null system call, all personality and no work
 *   clock    clock_gettime(CLOCK_MONOTONIC)
 *   vdso     clock_gettime(CLOCK_MONOTONIC) through the vDSO's
 *            __vdso_clock_gettime, as C libraries call it (the system
 *            call when the process has no vDSO)
 *
 * The timed span is the N calls alone, measured with clock_gettime. */

typedef unsigned long u64;

static long sys(long nr, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}

enum { SYS_write = 1, SYS_getppid = 110, SYS_clock_gettime = 228, SYS_exit_group = 231 };

struct timespec {
	long sec, nsec;
};

static u64 now(void)
{
	struct timespec ts;
	sys(SYS_clock_gettime, 1, (long)&ts, 0);
	return (u64)ts.sec * 1000000000ul + (u64)ts.nsec;
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static char *utoa(char *end, u64 v)
{
	*--end = 0;
	do
		*--end = '0' + v % 10;
	while (v /= 10);
	return end;
}

static void puts2(const char *s)
{
	long n = 0;
	while (s[n])
		n++;
	sys(SYS_write, 1, (long)s, n);
}

/* The ELF records vdsoSym reads (include/uapi/linux/elf.h). */
typedef struct {
	unsigned char ident[16];
	unsigned short type, machine;
	unsigned int version;
	u64 entry, phoff, shoff;
	unsigned int flags;
	unsigned short ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
} Ehdr;
typedef struct {
	unsigned int type, flags;
	u64 offset, vaddr, paddr, filesz, memsz, align;
} Phdr;
typedef struct {
	long tag;
	u64 val;
} Dyn;
typedef struct {
	unsigned int name;
	unsigned char info, other;
	unsigned short shndx;
	u64 value, size;
} Sym;

enum { AT_SYSINFO_EHDR = 33, PT_LOAD = 1, PT_DYNAMIC = 2, DT_HASH = 4, DT_STRTAB = 5, DT_SYMTAB = 6 };

static int streq(const char *a, const char *b);

/* vdsoSym finds a function of the vDSO whose ELF header is at eh by name,
 * as musl does (the symbol count from DT_HASH, names compared in turn,
 * versions not checked): 0 when there is none. */
static void *vdsoSym(u64 eh, const char *name)
{
	const Ehdr *h = (const Ehdr *)eh;
	const Phdr *ph = (const Phdr *)(eh + h->phoff);
	u64 base = 0;
	const Dyn *dyn = 0;
	for (int i = 0; i < h->phnum; i++) {
		if (ph[i].type == PT_LOAD && !base)
			base = eh + ph[i].offset - ph[i].vaddr;
		else if (ph[i].type == PT_DYNAMIC)
			dyn = (const Dyn *)(eh + ph[i].offset);
	}
	if (!base || !dyn)
		return 0;
	const unsigned int *hash = 0;
	const char *str = 0;
	const Sym *sym = 0;
	for (; dyn->tag; dyn++) {
		if (dyn->tag == DT_HASH)
			hash = (const unsigned int *)(base + dyn->val);
		else if (dyn->tag == DT_STRTAB)
			str = (const char *)(base + dyn->val);
		else if (dyn->tag == DT_SYMTAB)
			sym = (const Sym *)(base + dyn->val);
	}
	if (!hash || !str || !sym)
		return 0;
	for (unsigned int i = 1; i < hash[1]; i++)
		if (sym[i].shndx && streq(str + sym[i].name, name))
			return (void *)(base + sym[i].value);
	return 0;
}

static __attribute__((noreturn)) void usage(void)
{
	const char msg[] = "usage: lxbench syscall|clock|vdso N\n";
	sys(SYS_write, 2, (long)msg, sizeof msg - 1);
	sys(SYS_exit_group, 2, 0, 0);
	for (;;)
		;
}

void lxmain(long argc, char **argv)
{
	if (argc != 3)
		usage();
	const char *mode = argv[1];
	u64 n = 0;
	for (const char *p = argv[2]; *p; p++) {
		if (*p < '0' || *p > '9')
			usage();
		n = n * 10 + (u64)(*p - '0');
	}
	long nr;
	int (*vdso)(long, struct timespec *) = 0;
	if (streq(mode, "syscall"))
		nr = SYS_getppid;
	else if (streq(mode, "clock"))
		nr = SYS_clock_gettime;
	else if (streq(mode, "vdso")) {
		nr = SYS_clock_gettime;
		char **p = argv + argc + 1; /* the environment, then auxv */
		while (*p)
			p++;
		for (u64 *av = (u64 *)(p + 1); av[0]; av += 2)
			if (av[0] == AT_SYSINFO_EHDR)
				vdso = vdsoSym(av[1], "__vdso_clock_gettime");
	} else
		usage();
	struct timespec ts;
	u64 start = now();
	if (vdso)
		for (u64 i = 0; i < n; i++)
			vdso(1, &ts);
	else
		for (u64 i = 0; i < n; i++)
			sys(nr, 1, (long)&ts, 0);
	u64 elapsed = now() - start;
	char a[24], b[24];
	puts2("bench ");
	puts2(mode);
	puts2(" ");
	puts2(utoa(a + sizeof a, n));
	puts2(" ");
	puts2(utoa(b + sizeof b, elapsed));
	puts2("\n");
	sys(SYS_exit_group, 0, 0, 0);
}

/* Linux starts a process with RSP at argc, argv following. */
__asm__(".globl _start\n_start:\n\tmov (%rsp), %rdi\n\tlea 8(%rsp), %rsi\n\tand $-16, %rsp\n\tcall lxmain\n\thlt\n");
