// count N: prints 1 to N, one line each, a tenth of a second apart, for
// the runtime's checkpoint tests: a checkpoint taken between two lines
// must resume with the next one, none lost and none repeated. Built with
// musl, so that a checkpoint taken on kvm resumes on emu too.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 10;
	struct timespec ts = {0, 100 * 1000 * 1000};
	for (int i = 1; i <= n; i++) {
		printf("%d\n", i);
		fflush(stdout);
		nanosleep(&ts, NULL);
	}
	return 0;
}
