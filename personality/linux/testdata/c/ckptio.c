// For checkpoint tests: reads a file one byte at a time through one
// descriptor and writes each line to stdout as it ends, each followed by
// a message a forked child left in a pipe. A checkpoint taken between two
// lines must bring back the descriptor's offset, the bytes still in the
// pipe, and the ended child for waitpid.
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
	const char *path = argc > 1 ? argv[1] : "/data/lines.txt";
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	int p[2];
	if (pipe(p) != 0) {
		perror("pipe");
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		close(p[0]);
		for (int i = 0; i < 9; i++) {
			char m[16];
			int n = snprintf(m, sizeof m, "pipe %d\n", i);
			if (write(p[1], m, n) != n)
				_exit(2);
		}
		_exit(3);
	}
	close(p[1]);
	char line[256], c;
	int n = 0;
	while (read(fd, &c, 1) == 1) {
		line[n++] = c;
		if (c != '\n' && n < (int)sizeof line)
			continue;
		write(1, line, n);
		n = 0;
		char m[7];
		ssize_t k = read(p[0], m, sizeof m);
		if (k > 0)
			write(1, m, k);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid) {
		perror("waitpid");
		return 1;
	}
	char end[32];
	int k = snprintf(end, sizeof end, "child exited %d\n", WEXITSTATUS(st));
	write(1, end, k);
	return 0;
}
