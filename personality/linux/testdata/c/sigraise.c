// A handler installed with sigaction runs for raise and kill to self, with
// its siginfo, and a blocked signal waits until it is unblocked.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got, code;

static void handler(int sig, siginfo_t *si, void *uc) {
	(void)uc;
	got = sig;
	code = si->si_signo;
}

int main(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, 0) != 0) {
		perror("sigaction");
		return 1;
	}
	raise(SIGUSR1);
	printf("after raise: got %d signo %d\n", (int)got, (int)code);
	got = 0;
	kill(getpid(), SIGUSR1);
	printf("after kill: got %d\n", (int)got);

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, &old);
	got = 0;
	raise(SIGUSR1);
	printf("blocked: got %d\n", (int)got);
	sigprocmask(SIG_SETMASK, &old, 0);
	printf("unblocked: got %d\n", (int)got);

	signal(SIGUSR2, SIG_IGN);
	raise(SIGUSR2);
	printf("ignored SIGUSR2\n");
	return 0;
}
