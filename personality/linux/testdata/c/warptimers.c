// warptimers arms timers of an hour and more and waits for them: with
// alarm and pause, with setitimer's periods and sigsuspend, with a
// timer_create timer and a nanosleep it interrupts. It prints the
// monotonic time each wait took, in whole seconds, so that its output is
// the same on native Linux (where it takes hours) and under a virtual
// clock (where it takes no time at all).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms, ticks;

static void on_alarm(int sig) {
	(void)sig;
	alarms++;
}

static void on_tick(int sig, siginfo_t *si, void *uc) {
	(void)sig, (void)uc;
	ticks += si->si_value.sival_int;
}

static long now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

int main(void) {
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGALRM, on_alarm);

	long t0 = now();
	alarm(3600);
	pause();
	printf("alarm(3600): %d alarm after %lds\n", (int)alarms, now() - t0);

	struct itimerval it = {.it_interval = {1800, 0}, .it_value = {3600, 0}};
	t0 = now();
	setitimer(ITIMER_REAL, &it, NULL);
	sigset_t none;
	sigemptyset(&none);
	while (alarms < 4)
		sigsuspend(&none);
	struct itimerval left;
	getitimer(ITIMER_REAL, &left);
	printf("setitimer(1h, every 30m): 3 alarms after %lds, next in %lds\n", now() - t0, (long)left.it_value.tv_sec + (left.it_value.tv_usec > 0));
	memset(&it, 0, sizeof it);
	setitimer(ITIMER_REAL, &it, NULL);

	struct sigaction sa = {.sa_sigaction = on_tick, .sa_flags = SA_SIGINFO};
	sigaction(SIGUSR1, &sa, NULL);
	struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1, .sigev_value.sival_int = 7};
	timer_t id;
	timer_create(CLOCK_MONOTONIC, &ev, &id);
	struct itimerspec ts = {.it_value = {7200, 0}};
	timer_settime(id, 0, &ts, NULL);
	t0 = now();
	struct timespec sleep = {10800, 0}, rem;
	int r = nanosleep(&sleep, &rem);
	printf("timer_create(2h) during nanosleep(3h): %s, %d ticks, after %lds, %lds left\n",
	       r < 0 && errno == EINTR ? "EINTR" : "not interrupted", (int)ticks, now() - t0, (long)rem.tv_sec);
	timer_delete(id);
	return 0;
}
