// warprestore arms an alarm 6 s ahead and a timer_create timer that
// ticks 1 s ahead and every 3 s after, sleeps until 2 s have passed,
// says so (a test checkpoints it at that line and restores it), then
// waits for the alarm. It prints when each tick and the alarm came, in
// whole seconds of the monotonic clock since it started: 1, 4 and 6
// natively, and under a virtual clock whatever happened between the save
// and the restore, since the timers resume with the time they had left on
// the clock they count on.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct timespec t0;
static volatile sig_atomic_t alarmed, ticks;
static volatile long tick_at[8];

static long since(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec - t0.tv_sec - (ts.tv_nsec < t0.tv_nsec);
}

static void on_alarm(int sig) {
	(void)sig;
	alarmed = 1;
}

static void on_tick(int sig) {
	(void)sig;
	if (ticks < 8)
		tick_at[ticks] = since();
	ticks++;
}

int main(void) {
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGALRM, on_alarm);
	signal(SIGUSR1, on_tick);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	alarm(6);
	struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
	timer_t id;
	if (timer_create(CLOCK_MONOTONIC, &ev, &id) != 0) {
		perror("timer_create");
		return 1;
	}
	struct itimerspec ts = {.it_value = {1, 0}, .it_interval = {3, 0}};
	timer_settime(id, 0, &ts, NULL);
	struct timespec until = {t0.tv_sec + 2, t0.tv_nsec};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
		;
	printf("armed, %d tick so far\n", (int)ticks);
	while (!alarmed)
		pause();
	printf("ticks at");
	for (int i = 0; i < ticks && i < 8; i++)
		printf(" %ld", tick_at[i]);
	printf(", alarm at %ld\n", since());
	return 0;
}
