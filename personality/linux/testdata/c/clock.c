// Command clock reads the time the ways C programs do (clock_gettime,
// gettimeofday, time: through the vDSO where there is one) in loops, and
// prints only what does not depend on when it ran: that monotonic time
// never went back and did advance, that the realtime readings agree, that
// the other clocks answer. With an argument "fork=PATH" it does that again
// in a forked child (the vDSO comes with the copy of its memory) and in a
// child that executes PATH (which gets a vDSO of its own); with "show" it
// prints the realtime last, for a test to compare with the host's clock.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

static void check(const char *who) {
	printf("%svdso: %s\n", who, getauxval(AT_SYSINFO_EHDR) ? "yes" : "no");

	struct timespec first, prev, now;
	clock_gettime(CLOCK_MONOTONIC, &first);
	prev = first;
	int back = 0;
	for (int i = 0; i < 100000; i++) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ns(now) < ns(prev))
			back++;
		prev = now;
	}
	printf("%smonotonic went back: %d times\n", who, back);
	// Time passes: a loop that waits for the clock to move 1 ms ends.
	do
		clock_gettime(CLOCK_MONOTONIC, &now);
	while (ns(now) - ns(prev) < 1000000);
	printf("%smonotonic advanced 1 ms\n", who);

	int disagree = 0;
	struct timespec rt;
	struct timeval tv;
	for (int i = 0; i < 100000; i++) {
		clock_gettime(CLOCK_REALTIME, &rt);
		gettimeofday(&tv, NULL);
		time_t t = time(NULL);
		// Each reading is taken after the one before: gettimeofday's
		// is at most its truncation (a microsecond) below; time()'s
		// truncates to the second, and Linux's reads the coarse clock,
		// which may lag by a tick (it does natively: a second plus a
		// tenth covers any HZ).
		long long a = ns(rt), b = tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL, c = t * 1000000000LL;
		if (b < a - 1000 || c < a - 1100000000LL || c > b + 1000000000LL || tv.tv_usec < 0 || tv.tv_usec >= 1000000 ||
		    rt.tv_nsec < 0 || rt.tv_nsec >= 1000000000)
			disagree++;
	}
	printf("%srealtime readings disagree: %d times\n", who, disagree);

	static const struct {
		clockid_t id;
		const char *name;
	} clocks[] = {
		{CLOCK_REALTIME_COARSE, "REALTIME_COARSE"}, {CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE"},
		{CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW"}, {CLOCK_BOOTTIME, "BOOTTIME"},
		{CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME_ID"},
	};
	for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
		struct timespec t = {-1, -1};
		int r = clock_gettime(clocks[i].id, &t);
		printf("%s%s: %d %s\n", who, clocks[i].name, r, t.tv_sec >= 0 && t.tv_nsec >= 0 && t.tv_nsec < 1000000000 ? "ok" : "bad");
	}
	struct timespec bad;
	printf("%sclock 1234: %d\n", who, clock_gettime(1234, &bad));
	fflush(stdout);
}

int main(int argc, char **argv) {
	check("");
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "fork=", 5) != 0)
			continue;
		pid_t pid = fork();
		if (pid == 0) {
			check("forked: ");
			_exit(0);
		}
		waitpid(pid, NULL, 0);
		pid = fork();
		if (pid == 0) {
			execl(argv[i] + 5, argv[i] + 5, (char *)NULL);
			perror("execl");
			_exit(1);
		}
		int st;
		waitpid(pid, &st, 0);
		printf("executed child: status %d\n", st);
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "show") == 0) {
			struct timespec rt;
			clock_gettime(CLOCK_REALTIME, &rt);
			printf("realtime %lld\n", ns(rt));
		}
	}
	return 0;
}
