#ifndef COMPUTE_LOOP_H
#define COMPUTE_LOOP_H
#include <stdint.h>
/* compute_loop runs n rounds of integer mixing and returns a checksum. The
 * same source builds the guest and a native Linux program, to compare. */
uint64_t compute_loop(uint64_t n);
#define COMPUTE_DEFAULT_N 100000000ull
#endif
