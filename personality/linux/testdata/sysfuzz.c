/* sysfuzz performs the system calls its arguments describe, for
 * FuzzSyscalls: each argument is seven hexadecimal words, "nr:a0:...:a5".
 * A word whose top byte is 0xbb becomes the address of that offset in a
 * scratch buffer, so pointers land both in memory the program owns and
 * wherever the fuzzer likes. It prints each call's result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char scratch[1 << 16];

static long raw(long nr, long a, long b, long c, long d, long e, long f) {
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

int main(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		unsigned long w[7] = {0};
		char *p = argv[i];
		for (int k = 0; k < 7 && *p; k++) {
			w[k] = strtoul(p, &p, 16);
			if (*p == ':')
				p++;
			if (w[k] >> 56 == 0xbb)
				w[k] = (unsigned long)&scratch[w[k] & 0xffff];
		}
		long r = raw((long)w[0], w[1], w[2], w[3], w[4], w[5], w[6]);
		printf("%lx -> %ld\n", w[0], r);
		fflush(stdout);
	}
	return 0;
}
