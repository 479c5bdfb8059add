// pthreads with a mutex and condition variables: a bounded queue between
// producers and consumers, every item consumed exactly once.
#include <pthread.h>
#include <stdio.h>

#define N 2000
#define CAP 8

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notfull = PTHREAD_COND_INITIALIZER, notempty = PTHREAD_COND_INITIALIZER;
static int q[CAP], head, len, produced, consumed;
static long sum;

static void *producer(void *arg) {
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&mu);
		while (len == CAP && produced < N)
			pthread_cond_wait(&notfull, &mu);
		if (produced == N) {
			pthread_mutex_unlock(&mu);
			return 0;
		}
		q[(head + len++) % CAP] = ++produced;
		pthread_cond_signal(&notempty);
		pthread_mutex_unlock(&mu);
	}
}

static void *consumer(void *arg) {
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&mu);
		while (len == 0 && consumed < N)
			pthread_cond_wait(&notempty, &mu);
		if (consumed == N) {
			pthread_cond_broadcast(&notempty);
			pthread_mutex_unlock(&mu);
			return 0;
		}
		sum += q[head];
		head = (head + 1) % CAP;
		len--;
		consumed++;
		if (consumed == N)
			pthread_cond_broadcast(&notempty);
		pthread_cond_broadcast(&notfull);
		pthread_mutex_unlock(&mu);
	}
}

int main(void) {
	pthread_t p[3], c[3];
	for (int i = 0; i < 3; i++) {
		pthread_create(&p[i], 0, producer, 0);
		pthread_create(&c[i], 0, consumer, 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(p[i], 0);
		pthread_join(c[i], 0);
	}
	printf("produced %d consumed %d sum %ld (want %ld)\n", produced, consumed, sum, (long)N * (N + 1) / 2);
	return sum != (long)N * (N + 1) / 2;
}
