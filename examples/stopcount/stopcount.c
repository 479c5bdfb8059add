/* stopcount K [US]: a second thread adds 1 to a word in memory, and 1 to
 * a register, in a loop that never ends, while the main thread stops and
 * starts it (thread_stop, thread_start) K times, as a checkpointing parent
 * does, letting it run US microseconds (default 0) after each start. At
 * every stop the main thread reads the stopped thread's registers: the
 * word must equal the register's count, give or take the one instruction
 * the thread may stand between. A stop that lands anywhere but between two
 * instructions (instructions that ran, reported as not yet run) shows as a
 * wrong count at that stop. Prints "stopcount: K stops, every count exact"
 * and exits 0, or says at which stop the count was wrong and exits 1. */
#include "nestvm.h"

/* The count in memory: the loop below adds to it. */
volatile uint64_t sc_counter;

/* The worker's code, in assembly so that its order is fixed: the store
 * comes first, the register's count after it, so an instruction that runs
 * twice adds twice. RAX counts down from 0, so -RAX is the loops done. */
void sc_worker(uint64_t unused);
extern const char sc_add[], sc_sub[], sc_jmp[];
__asm__(".pushsection .text\n"
	".globl sc_worker\n"
	"sc_worker:\n"
	"	xorl %eax, %eax\n"
	"sc_add:\n"
	"	addq $1, sc_counter(%rip)\n"
	"sc_sub:\n"
	"	subq $1, %rax\n"
	"sc_jmp:\n"
	"	jmp sc_add\n"
	".popsection\n");

int main(int argc, char **argv)
{
	int ok = 0;
	uint64_t k = argc > 1 ? nv_atou64(argv[1], &ok) : 0;
	uint64_t us = 0;
	if (ok && argc > 2)
		us = nv_atou64(argv[2], &ok);
	if (!ok || k == 0 || argc > 3) {
		nv_fprintf(nv_stderr(), "usage: stopcount K [US] (K > 0)\n");
		return 2;
	}
	const size_t size = 16 << 10;
	char *stack = nv_alloc(size);
	int64_t t = stack ? nv_thread_create(nv_self_space(), NV_ADDR(sc_worker), ((NV_ADDR(stack) + size) & ~15ull) - 8, 0)
			  : -NV_ENOMEM;
	if (t < 0 || nv_thread_start(t) < 0) {
		nv_fprintf(nv_stderr(), "stopcount: worker thread: %s\n", nv_strerror(t));
		return 125;
	}
	uint64_t dummy = 0;
	for (uint64_t i = 1; i <= k; i++) {
		if (us > 0)
			nv_futex_wait(nv_self_space(), NV_ADDR(&dummy), 0, us * 1000);
		int64_t r = nv_thread_stop(t);
		if (r < 0) {
			nv_fprintf(nv_stderr(), "stopcount: thread_stop: %s\n", nv_strerror(r));
			return 125;
		}
		struct nv_thread_state st;
		if ((r = nv_thread_get_state(t, NV_ADDR(&st), sizeof st)) < 0) {
			nv_fprintf(nv_stderr(), "stopcount: thread_get_state: %s\n", nv_strerror(r));
			return 125;
		}
		uint64_t rip = st.regs.rip, done = -st.regs.rax, count = sc_counter;
		uint64_t want = done;
		if (rip == NV_ADDR(sc_sub))
			want++; /* between the add and the sub */
		else if (rip != NV_ADDR(sc_add) && rip != NV_ADDR(sc_jmp) && rip != NV_ADDR(sc_worker)) {
			nv_printf("stopcount: stop %llu: stopped at rip 0x%llx, outside the loop\n",
				  (unsigned long long)i, (unsigned long long)rip);
			return 1;
		}
		if (count != want) {
			nv_printf("stopcount: stop %llu: at rip 0x%llx after %llu loops the count is %llu, want %llu\n",
				  (unsigned long long)i, (unsigned long long)rip, (unsigned long long)done,
				  (unsigned long long)count, (unsigned long long)want);
			return 1;
		}
		if ((r = nv_thread_start(t)) < 0) {
			nv_fprintf(nv_stderr(), "stopcount: thread_start: %s\n", nv_strerror(r));
			return 125;
		}
	}
	nv_printf("stopcount: %llu stops, every count exact\n", (unsigned long long)k);
	return 0;
}
