// A SIGSEGV handler sees the faulting address, and siglongjmp out of it
// resumes the program; a second fault is handled the same way.
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static sigjmp_buf env;
static void *volatile addr;

static void handler(int sig, siginfo_t *si, void *uc) {
	(void)uc;
	addr = si->si_addr;
	siglongjmp(env, sig);
}

int main(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, 0);

	char *ro = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ro == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		int sig = sigsetjmp(env, 1);
		if (sig == 0) {
			ro[100 + i] = 1;
			printf("write to a read-only page did not fault\n");
			return 1;
		}
		printf("fault %d: signal %d at offset %ld\n", i, sig, (long)((char *)addr - ro));
	}
	int sig = sigsetjmp(env, 1);
	if (sig == 0) {
		int *volatile np = (int *)16;
		*np = 1;
		return 1;
	}
	printf("null write: signal %d at %p\n", sig, addr);
	return 0;
}
