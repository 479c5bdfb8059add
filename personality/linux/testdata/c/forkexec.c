// fork and execve of a program (this one, at /bin/prog in the tree, with
// an argument that makes it the child), the environment passed on, the exit status waited for.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "child") == 0) {
		printf("child: argc %d, CORPUS=%s\n", argc, getenv("CORPUS"));
		return 9;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char *args[] = {"prog", "child", "x", 0};
		char *env[] = {"CORPUS=from-parent", 0};
		execve("/bin/prog", args, env);
		perror("execve");
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("parent: child exited %d\n", WEXITSTATUS(st));
	return 0;
}
