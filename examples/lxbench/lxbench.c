/* lxbench MODE N: a Linux program, not a nestvm guest (no SDK, no C
 * library: raw system calls), for nestvm bench's syscall workload. It
 * makes N system calls of MODE and prints "bench MODE N ELAPSED_NS", as
 * the bench guest does. Modes:
 *
 *   syscall  getppid: the null system call, all personality and no work
 *   clock    clock_gettime(CLOCK_MONOTONIC)
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

static __attribute__((noreturn)) void usage(void)
{
	const char msg[] = "usage: lxbench syscall|clock N\n";
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
	if (streq(mode, "syscall"))
		nr = SYS_getppid;
	else if (streq(mode, "clock"))
		nr = SYS_clock_gettime;
	else
		usage();
	struct timespec ts;
	u64 start = now();
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
