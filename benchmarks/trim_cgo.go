//go:build cgo && linux

package benchmarks

/*
#include <malloc.h>

static void nestvm_bench_trim(void) { malloc_trim(0); }
*/
import "C"

// trimMalloc gives the host the free memory of malloc's heaps: the
// emulator's engines live there, and those closed since emu last trimmed
// (at a thread's end, say) would otherwise stay resident.
func trimMalloc() { C.nestvm_bench_trim() }
