// Command ckpttimer counts the signals of two interval timers (setitimer's
// SIGALRM and a timer_create SIGUSR1 carrying a sigev_value) and reads
// the monotonic clock between rounds, printing a line a round: a test
// checkpoints it after a round and restores it, and the count must go on
// (the timers travel with it) with no clock system call after the restore
// (the vDSO reads the restoring run's time page). Monotonic time is not
// compared across rounds: a restore in another monitor counts it from
// that monitor's start. Last it says whether the time page the vDSO reads
// (the page below the vDSO image, nestvm's abi.TimePage) is live: its
// clock rewrites it at least every second, and at once when a clock
// system call finds it older; a saved copy left in its place never
// changes, and the vDSO would make the system call once its record ran
// out.
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alrm, usr, wrong;

static void on_alrm(int sig) { (void)sig, alrm++; }

static void on_usr(int sig, siginfo_t *si, void *uc) {
	(void)sig, (void)uc;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != 42)
		wrong = 1;
	usr++;
}

int main(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alrm;
	sigaction(SIGALRM, &sa, 0);
	sa.sa_sigaction = on_usr;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, 0);

	struct itimerval it = {{0, 10000}, {0, 10000}};
	setitimer(ITIMER_REAL, &it, 0);
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR1;
	sev.sigev_value.sival_int = 42;
	timer_t t;
	if (timer_create(CLOCK_MONOTONIC, &sev, &t) != 0) {
		perror("timer_create");
		return 1;
	}
	struct itimerspec ts = {{0, 10000000}, {0, 10000000}};
	timer_settime(t, 0, &ts, 0);

	long long reads = 0;
	for (int i = 1; i <= 6; i++) {
		while (alrm < 3 * i || usr < 3 * i)
			pause();
		for (int j = 0; j < 100; j++) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			reads += now.tv_nsec >= 0;
		}
		printf("round %d\n", i);
		fflush(stdout);
	}
	const volatile uint64_t *page = 0;
	unsigned long vdso = getauxval(AT_SYSINFO_EHDR);
	if (vdso)
		page = (const volatile uint64_t *)(vdso - 4096);
	const char *live = "none";
	if (page) {
		uint64_t seq = page[0];
		struct timespec start, now;
		syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &start);
		live = "frozen";
		do {
			if (page[0] != seq) {
				live = "live";
				break;
			}
			syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now);
		} while (now.tv_sec - start.tv_sec < 3);
	}
	printf("time page: %s\n", live);
	struct itimerval left;
	getitimer(ITIMER_REAL, &left);
	printf("done: sigev_value %s, %lld clock reads, itimer interval %ldus\n", wrong ? "wrong" : "right", reads,
	       (long)left.it_interval.tv_usec);
	return 0;
}
