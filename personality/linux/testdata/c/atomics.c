// Atomic read-modify-write instructions from several threads at once on
// one word, and a spin lock built from them guarding a plain counter: no
// update may be lost.
#include <pthread.h>
#include <stdio.h>

#define THREADS 4
#define ROUNDS 50000

static long counter, locked;
static int lock;

static void *worker(void *arg) {
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		__atomic_fetch_add(&counter, 1, __ATOMIC_SEQ_CST);
		while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
			;
		locked++;
		__atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
	}
	return 0;
}

int main(void) {
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], 0, worker, 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], 0);
	printf("atomic %ld, locked %ld, want %d\n", counter, locked, THREADS * ROUNDS);
	return counter != THREADS * ROUNDS || locked != THREADS * ROUNDS;
}
