// Command timers arms the timers a C program has (alarm, setitimer,
// timer_create) and waits for their signals with pause, sigsuspend and a
// busy loop, printing what the signals carried and what the calls returned: nothing
// that depends on how late a signal came.
#include <errno.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms, usr1, code, value, timerid;

static void onalrm(int sig) { (void)sig; alarms++; }

static void onusr1(int sig, siginfo_t *si, void *uc) {
	(void)sig, (void)uc;
	usr1++;
	code = si->si_code;
	value = si->si_value.sival_int;
	timerid = si->si_timerid;
}

// waitfor waits, with the signals blocked outside sigsuspend, until the
// counter reaches n.
static void waitfor(volatile sig_atomic_t *counter, int n) {
	sigset_t none;
	sigemptyset(&none);
	while (*counter < n)
		sigsuspend(&none);
}

int main(void) {
	struct sigaction sa = {.sa_handler = onalrm};
	sigaction(SIGALRM, &sa, NULL);
	struct sigaction si = {.sa_sigaction = onusr1, .sa_flags = SA_SIGINFO};
	sigaction(SIGUSR1, &si, NULL);

	// alarm and pause.
	printf("alarm(1) left %u\n", alarm(1));
	printf("alarm(1) again left %u\n", alarm(1));
	errno = 0;
	int r = pause();
	printf("pause: %d (%s), SIGALRM handled %d\n", r, strerror(errno), alarms);
	alarm(5);
	printf("alarm(0) left %u\n", alarm(0));

	// From here on the signals are blocked but inside sigsuspend.
	sigset_t both;
	sigemptyset(&both);
	sigaddset(&both, SIGALRM);
	sigaddset(&both, SIGUSR1);
	sigprocmask(SIG_BLOCK, &both, NULL);

	// setitimer: five periods of 10 ms.
	struct itimerval it = {.it_interval = {0, 10000}, .it_value = {0, 10000}}, old;
	printf("setitimer: %d\n", setitimer(ITIMER_REAL, &it, NULL));
	getitimer(ITIMER_REAL, &old);
	printf("getitimer: interval %ld.%06ld, armed %d\n", (long)old.it_interval.tv_sec, (long)old.it_interval.tv_usec,
	       old.it_value.tv_sec > 0 || old.it_value.tv_usec > 0);
	alarms = 0;
	waitfor(&alarms, 5);
	struct itimerval off = {0};
	setitimer(ITIMER_REAL, &off, &old);
	printf("five SIGALRMs; the old setting's interval %ld.%06ld\n", (long)old.it_interval.tv_sec, (long)old.it_interval.tv_usec);
	getitimer(ITIMER_REAL, &old);
	printf("getitimer after disarming: %ld %ld %ld %ld\n", (long)old.it_interval.tv_sec, (long)old.it_interval.tv_usec,
	       (long)old.it_value.tv_sec, (long)old.it_value.tv_usec);

	// timer_create: a one-shot SIGUSR1 carrying a value.
	timer_t t;
	struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1, .sigev_value.sival_int = 42};
	printf("timer_create: %d\n", timer_create(CLOCK_MONOTONIC, &ev, &t));
	struct itimerspec once = {.it_value = {0, 20000000}}, cur;
	printf("timer_settime: %d\n", timer_settime(t, 0, &once, NULL));
	waitfor(&usr1, 1);
	printf("SIGUSR1: code SI_TIMER %d, value %d, timer id matches %d\n", code == SI_TIMER, value, timerid == (int)(intptr_t)t);
	timer_gettime(t, &cur);
	printf("timer_gettime after: %ld %ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);

	// An absolute time on the wall clock, then a period of 5 ms.
	timer_t w;
	struct sigevent ev2 = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1, .sigev_value.sival_int = 7};
	timer_create(CLOCK_REALTIME, &ev2, &w);
	struct itimerspec abs = {0};
	clock_gettime(CLOCK_REALTIME, &abs.it_value);
	abs.it_value.tv_nsec += 20000000;
	if (abs.it_value.tv_nsec >= 1000000000) {
		abs.it_value.tv_sec++;
		abs.it_value.tv_nsec -= 1000000000;
	}
	printf("absolute timer_settime: %d\n", timer_settime(w, TIMER_ABSTIME, &abs, NULL));
	waitfor(&usr1, 2);
	printf("SIGUSR1 again: value %d\n", value);
	struct itimerspec every = {.it_interval = {0, 5000000}, .it_value = {0, 5000000}};
	timer_settime(w, 0, &every, NULL);
	waitfor(&usr1, 5);
	timer_gettime(w, &cur);
	printf("periodic: interval %ld ns, armed %d\n", cur.it_interval.tv_nsec, cur.it_value.tv_sec > 0 || cur.it_value.tv_nsec > 0);
	printf("timer_delete: %d %d\n", timer_delete(w), timer_delete(t));
	printf("timer_delete again fails: %d\n", timer_delete(t) != 0);
	// No signal after deletion: a 30 ms sleep sees none arrive.
	sigprocmask(SIG_UNBLOCK, &both, NULL);
	int before = usr1;
	struct timespec sleep30 = {0, 30000000};
	nanosleep(&sleep30, NULL);
	printf("signals after delete: %d\n", usr1 - before);

	// A handler runs even while the program makes no system call.
	alarms = 0;
	struct itimerval spin = {.it_value = {0, 20000}};
	setitimer(ITIMER_REAL, &spin, NULL);
	while (!alarms)
		;
	printf("a busy loop saw SIGALRM's handler run\n");

	// A timer with no sigevent sends SIGALRM, whose default ends the
	// process.
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGALRM, SIG_DFL);
		timer_t d;
		timer_create(CLOCK_MONOTONIC, NULL, &d);
		struct itimerspec soon = {.it_value = {0, 10000000}};
		timer_settime(d, 0, &soon, NULL);
		for (;;)
			pause();
	}
	int st;
	waitpid(pid, &st, 0);
	printf("child: signaled %d, by signal %d\n", WIFSIGNALED(st), WTERMSIG(st));
	return 0;
}
