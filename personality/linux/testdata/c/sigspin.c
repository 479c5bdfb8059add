// Command sigspin sends signals to code that makes no system call: a
// forked child that spins on a flag only its handler sets gets SIGUSR1,
// another SIGTERM, each from its parent's kill; then a thread of the
// process spinning the same way gets SIGUSR2 from pthread_kill. Each
// must run its handler at once, as on Linux, not at its next system call
// (it makes none). A child still spinning after 5 seconds is killed and
// reported as such.
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void handler(int sig) { got = sig; }

static void on(int sig) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigaction(sig, &sa, 0);
}

static void timeout(int sig) { (void)sig; }

static void spin_child(int sig) {
	int p[2];
	if (pipe(p) != 0) {
		perror("pipe");
		exit(1);
	}
	pid_t pid = fork();
	if (pid == 0) {
		on(sig);
		close(p[0]);
		write(p[1], "r", 1); // ready: the handler is in place
		while (!got)
			;
		_exit(got);
	}
	char c;
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		printf("child for %d: not ready\n", sig);
		exit(1);
	}
	close(p[0]);
	kill(pid, sig);
	alarm(5);
	int status;
	pid_t w = waitpid(pid, &status, 0);
	alarm(0);
	if (w != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		printf("child for %s: still spinning 5 seconds after kill\n", strsignal(sig));
		return;
	}
	if (WIFEXITED(status))
		printf("child for %s: handler ran, exited %d\n", strsignal(sig), WEXITSTATUS(status));
	else
		printf("child for %s: died of %d\n", strsignal(sig), WTERMSIG(status));
}

static volatile sig_atomic_t ready;

static void *spin_thread(void *arg) {
	(void)arg;
	ready = 1;
	while (!got)
		;
	return 0;
}

int main(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = timeout;
	sigaction(SIGALRM, &sa, 0); // interrupts waitpid, ends nothing
	spin_child(SIGUSR1);
	spin_child(SIGTERM);
	got = 0;
	on(SIGUSR2);
	pthread_t t;
	pthread_create(&t, 0, spin_thread, 0);
	while (!ready)
		;
	pthread_kill(t, SIGUSR2);
	pthread_join(t, 0);
	printf("thread: handler ran for %s\n", strsignal(got));
	return 0;
}
