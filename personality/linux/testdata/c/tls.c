// __thread variables: each thread its own copy, the initial value from the
// TLS image, the main thread's copy untouched by the others.
#include <pthread.h>
#include <stdio.h>

static __thread int counter = 42;
static __thread char name[16] = "main";

static void *worker(void *arg) {
	long id = (long)arg;
	if (counter != 42) {
		printf("thread %ld: initial counter %d\n", id, counter);
		return (void *)1;
	}
	for (int i = 0; i < 1000; i++)
		counter += (int)id;
	snprintf(name, sizeof name, "worker%ld", id);
	return (void *)(long)(counter != 42 + 1000 * (int)id);
}

int main(void) {
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		if (pthread_create(&t[i], 0, worker, (void *)(i + 1)) != 0) {
			printf("pthread_create failed\n");
			return 1;
		}
	int bad = 0;
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad += r != 0;
	}
	counter++;
	printf("main: counter=%d name=%s bad=%d\n", counter, name, bad);
	return bad;
}
