/* nestvm.h: the runtime of nestvm guest programs.
 *
 * A guest is a freestanding static x86-64 program. It starts at _start
 * (start.S), which calls main(argc, argv) and then nv_exit() with its
 * result. It talks to the monitor only through the operations declared in
 * nestvm_abi.h, invoked on the handles its start information names.
 */
#ifndef NESTVM_H
#define NESTVM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "nestvm_abi.h"

/* The start information the monitor passed (never NULL after start). */
const struct nv_start_info *nv_start_info(void);

/* The handles every program starts with. */
nv_handle_t nv_self_space(void);
nv_handle_t nv_self_thread(void);
nv_handle_t nv_console(void);
nv_handle_t nv_clock(void);
/* The console for diagnostics: the start information's stderr, or the
 * console when the monitor passed none. */
nv_handle_t nv_stderr(void);
/* The files root, or NV_NO_HANDLE when the program was given none. */
nv_handle_t nv_files(void);
/* The standard input (an input console: console_read), or NV_NO_HANDLE
 * when the program was given none. */
nv_handle_t nv_stdin(void);

/* Ends the program with status (its low 8 bits are the exit status). */
__attribute__((noreturn)) void nv_exit(int status);

/* Prints a message and exits with status 127. */
__attribute__((noreturn, format(printf, 1, 2))) void nv_panic(const char *fmt, ...);

/* Console output. nv_write returns the bytes written or a negated error. */
int64_t nv_write(const void *buf, size_t n);
int nv_puts(const char *s); /* s and a newline */
__attribute__((format(printf, 1, 2))) int nv_printf(const char *fmt, ...);
int nv_vprintf(const char *fmt, va_list ap);

/* The same on any handle that answers console_write, such as nv_stderr(). */
int64_t nv_hwrite(nv_handle_t h, const void *buf, size_t n);
__attribute__((format(printf, 2, 3))) int nv_fprintf(nv_handle_t h, const char *fmt, ...);
int nv_vfprintf(nv_handle_t h, const char *fmt, va_list ap);

/* The words for an error code ("invalid operation"), given either the code
 * or a negated one as an operation returns it in R0. */
const char *nv_strerror(int64_t err);

/* Formatting: %d %i %u %x %X %p %s %c %% with the l, ll and z length
 * modifiers, a width, the '0' and '-' flags, and a precision for %s. */
__attribute__((format(printf, 3, 4))) int nv_snprintf(char *buf, size_t n, const char *fmt, ...);
int nv_vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);

/* Monotonic time in nanoseconds. */
uint64_t nv_now_ns(void);

/* Sleeps while the 32-bit word at addr holds expected, at most timeout_ns
 * (0: no limit) on the program's clock: futex_wait_clock, so that a layer
 * standing in for the clock owns the limit as it owns every other timed
 * wait. Returns 0 when woken by futex_wake, or a negated error:
 * -NV_EWOULDBLOCK when the word does not hold expected, -NV_ETIMEOUT when
 * the time ran out. A clock that cannot wait leaves the limit on the
 * host's time (futex_wait). */
int64_t nv_futex_wait_for(const volatile uint32_t *addr, uint32_t expected, uint64_t timeout_ns);

/* A bump allocator over the heap the monitor gave the program: 16-byte
 * aligned blocks, never freed; NULL when the heap is exhausted. */
void *nv_alloc(size_t n);
size_t nv_heap_remaining(void);

/* Parses a decimal or 0x-prefixed hexadecimal number; *ok (if not NULL)
 * says whether all of s was a number. */
uint64_t nv_atou64(const char *s, int *ok);

/* What the compiler may call even in freestanding code. */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* Addresses as the ABI wants them. */
#define NV_ADDR(p) ((nv_addr_t)(uintptr_t)(p))

/* Batches (call_batch): operations performed in one call to the monitor,
 * one exit instead of one each. nv_batch_add appends an operation and
 * returns its index; from says which of its values come from the R0 of an
 * earlier entry (NV_FROM_HANDLE, NV_FROM_ARG, or-ed together), so that an
 * entry can act on what an earlier one created. nv_batch_run clears the
 * results and done marks, performs the entries, and returns how many
 * completed (b->n when all did; else b->e[R0] failed, its error field says
 * why), or a negated error for the batch as a whole. */
struct nv_batch {
	uint64_t n;
	struct nv_batch_entry e[NV_MAX_BATCH];
};
#define NV_FROM_HANDLE(entry) ((uint64_t)((entry) + 1))
#define NV_FROM_ARG(i, entry) ((uint64_t)((entry) + 1) << (NV_BATCH_FROM_BITS * (1 + (i))))

static inline void nv_batch_reset(struct nv_batch *b) { b->n = 0; }

/* Appends an operation; past NV_MAX_BATCH entries it only counts them, and
 * nv_batch_run then fails with -NV_ETOOBIG. */
static inline uint64_t nv_batch_add(struct nv_batch *b, nv_handle_t h, uint64_t op, uint64_t from, uint64_t a0,
				    uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	uint64_t i = b->n++;
	if (i < NV_MAX_BATCH)
		b->e[i] = (struct nv_batch_entry){
			.handle = h, .op = op, .args = {a0, a1, a2, a3, a4, a5}, .from = from};
	return i;
}

/* Performs the batch; the handle it is invoked on may be any the program
 * holds, here that of the first entry. */
static inline int64_t nv_batch_run(struct nv_batch *b)
{
	if (b->n == 0)
		return 0;
	for (uint64_t i = 0; i < b->n && i < NV_MAX_BATCH; i++)
		b->e[i].r0 = b->e[i].r1 = b->e[i].error = b->e[i].done = 0;
	return nv_call_batch(b->e[0].handle, NV_ADDR(b->e), b->n);
}

#endif /* NESTVM_H */
