// fork, a pipe between parent and child, and waitpid with the child's
// exit status.
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
	int fd[2];
	if (pipe(fd) != 0) {
		perror("pipe");
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		close(fd[0]);
		const char *msg = "hello through a pipe\n";
		for (int i = 0; i < 3; i++)
			if (write(fd[1], msg, strlen(msg)) < 0)
				_exit(2);
		_exit(5);
	}
	close(fd[1]);
	char buf[256];
	size_t total = 0;
	ssize_t n;
	while ((n = read(fd[0], buf + total, sizeof buf - 1 - total)) > 0)
		total += n;
	buf[total] = 0;
	int st;
	if (waitpid(pid, &st, 0) != pid) {
		perror("waitpid");
		return 1;
	}
	printf("%sread %zu bytes; child exited %d with %d\n", buf, total, WIFEXITED(st), WEXITSTATUS(st));
	return 0;
}
