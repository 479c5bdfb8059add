// Command cpuid prints the CPUID feature words a program's C library
// picks its code by, in vmm.CPUFeatures' order (leaf 1 ECX and EDX, leaf
// 7 subleaf 0 EBX, ECX and EDX, leaf 0x80000001 ECX and EDX), one hex
// word a line, for a test to compare with what the backend says it offers.
#include <cpuid.h>
#include <stdio.h>

int main(void) {
	unsigned a, b, c, d, w[7] = {0};
	__cpuid_count(1, 0, a, b, c, d);
	w[0] = c, w[1] = d;
	if (__get_cpuid_max(0, 0) >= 7) {
		__cpuid_count(7, 0, a, b, c, d);
		w[2] = b, w[3] = c, w[4] = d;
	}
	if (__get_cpuid_max(0x80000000, 0) >= 0x80000001) {
		__cpuid_count(0x80000001, 0, a, b, c, d);
		w[5] = c, w[6] = d;
	}
	for (int i = 0; i < 7; i++)
		printf("%08x\n", w[i]);
	return 0;
}
