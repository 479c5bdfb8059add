package machine

import (
	"fmt"
	"strings"
)

// CPUFeatures is the instruction-set part of what a guest's CPUID offers:
// the feature words of leaves 1, 7 (subleaf 0) and 0x80000001, indexed by
// the CPU* constants. C libraries pick code by these bits once, at start
// (glibc's string functions, for one), so a program saved where a bit was
// offered may execute that instruction wherever it is restored.
type CPUFeatures [CPUWords]uint32

// The words of CPUFeatures.
const (
	CPU1ECX    = iota // leaf 1, ECX
	CPU1EDX           // leaf 1, EDX
	CPU7EBX           // leaf 7 subleaf 0, EBX
	CPU7ECX           // leaf 7 subleaf 0, ECX
	CPU7EDX           // leaf 7 subleaf 0, EDX
	CPUExt1ECX        // leaf 0x80000001, ECX
	CPUExt1EDX        // leaf 0x80000001, EDX
	CPUWords
)

// CPUIDWord says where word i of CPUFeatures is read: the leaf, the
// subleaf and the register (0 EAX, 1 EBX, 2 ECX, 3 EDX).
var CPUIDWord = [CPUWords]struct {
	Leaf, Subleaf uint32
	Reg           int
}{
	CPU1ECX:    {1, 0, 2},
	CPU1EDX:    {1, 0, 3},
	CPU7EBX:    {7, 0, 1},
	CPU7ECX:    {7, 0, 2},
	CPU7EDX:    {7, 0, 3},
	CPUExt1ECX: {0x80000001, 0, 2},
	CPUExt1EDX: {0x80000001, 0, 3},
}

// PortableCPU is the feature set both backends run: the emulator's CPU
// model (Unicorn 2.0.1's default x86-64 model, "QEMU Virtual CPU version
// 2.5+", as a guest reads its CPUID; emu's tests check these values
// against the engine). The kvm backend offers guests no more than this
// unless asked for the host's set (--cpu host), so that a program saved
// on kvm resumes on emu.
var PortableCPU = CPUFeatures{
	CPU1ECX:    0x02182200, // ssse3 cx16 sse4.1 sse4.2 aes
	CPU1EDX:    0x07088100, // cx8 cmov clflush fxsr sse sse2
	CPU7EBX:    0x00180108, // bmi1 bmi2 adx smap
	CPUExt1ECX: 0x00001031, // lahf_lm cr8_legacy abm skinit
	CPUExt1EDX: 0xa8000000, // rdtscp lm 3dnow
}

// CPUFeaturesOf returns the CPU features b offers its guests, and false
// when b does not say (Backend.CPUFeatures is empty): then checkpoints it
// takes record none, and restores onto it are not checked.
func CPUFeaturesOf(b Backend) (CPUFeatures, bool) {
	f := b.CPUFeatures()
	return f, !f.Empty()
}

// CPU model names for WithCPU and the --cpu flag.
const (
	CPUPortable = "portable" // PortableCPU: what every backend runs
	CPUHost     = "host"     // everything the host offers
)

// WithCPU returns b offering guests the named CPU model, after checking
// the name. A backend with one model (emu) runs both: its own model is
// the portable one.
func WithCPU(b Backend, model string) (Backend, error) {
	switch model {
	case CPUPortable, CPUHost:
	default:
		return nil, fmt.Errorf("unknown CPU model %q (choose %s or %s)", model, CPUPortable, CPUHost)
	}
	return b.WithCPU(model)
}

// notPicked are the bits no program picks code by, left out of Missing:
// those that name nothing ring-3 code executes (paging, APIC, machine
// checks, virtualisation, OSXSAVE and the hypervisor bit, SMEP, SMAP,
// UMIP, speculation controls, performance counters), those of the
// x86-64 baseline every backend runs whether its CPUID says so or not
// (the emulator's model leaves out fpu, tsc, mmx and more, yet runs
// them), and 3DNow!, which the emulator's model offers and no C library
// or runtime for x86-64 picks code by.
var notPicked = CPUFeatures{
	CPU1ECX: 1<<3 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11 | 1<<14 | 1<<15 | 1<<17 | 1<<18 | 1<<21 | 1<<24 | 1<<27 | 1<<31,
	// All but clflush (19), which the baseline has too, yet programs
	// test for it: the emulator offers it.
	CPU1EDX:    0xffffffff &^ (1 << 19),
	CPU7EBX:    1<<1 | 1<<2 | 1<<7 | 1<<10 | 1<<12 | 1<<13 | 1<<15 | 1<<20 | 1<<25,
	CPU7ECX:    1<<2 | 1<<4,
	CPU7EDX:    1<<26 | 1<<27 | 1<<28 | 1<<29 | 1<<30 | 1<<31,
	CPUExt1ECX: 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<9 | 1<<10 | 1<<12 | 1<<13 | 1<<17 | 1<<19 | 1<<22 | 1<<23 | 1<<24 | 1<<26 | 1<<27 | 1<<28,
	// Leaf 1's EDX again (AMD), syscall, nx, mmxext, fxsr_opt, pdpe1gb,
	// lm, 3DNow!: all but rdtscp (27).
	CPUExt1EDX: 0xffffffff &^ (1 << 27),
}

// Missing returns the features f has and g lacks that a program may have
// picked code by (see notPicked): what a program saved on a CPU offering
// f may execute and one offering g would refuse.
func (f CPUFeatures) Missing(g CPUFeatures) CPUFeatures {
	var m CPUFeatures
	for i := range f {
		m[i] = f[i] &^ g[i] &^ notPicked[i]
	}
	return m
}

// Empty reports whether f has no feature.
func (f CPUFeatures) Empty() bool { return f == CPUFeatures{} }

// Intersect returns the features both f and g have.
func (f CPUFeatures) Intersect(g CPUFeatures) CPUFeatures {
	var m CPUFeatures
	for i := range f {
		m[i] = f[i] & g[i]
	}
	return m
}

// cpuFeatureNames names the bits a user is likely to meet; others print
// by position.
var cpuFeatureNames = map[[2]int]string{
	{CPU1ECX, 0}: "sse3", {CPU1ECX, 1}: "pclmulqdq", {CPU1ECX, 9}: "ssse3", {CPU1ECX, 12}: "fma",
	{CPU1ECX, 13}: "cx16", {CPU1ECX, 19}: "sse4.1", {CPU1ECX, 20}: "sse4.2", {CPU1ECX, 22}: "movbe",
	{CPU1ECX, 23}: "popcnt", {CPU1ECX, 25}: "aes", {CPU1ECX, 26}: "xsave", {CPU1ECX, 27}: "osxsave",
	{CPU1ECX, 28}: "avx", {CPU1ECX, 29}: "f16c", {CPU1ECX, 30}: "rdrand",
	{CPU1EDX, 0}: "fpu", {CPU1EDX, 4}: "tsc", {CPU1EDX, 8}: "cx8", {CPU1EDX, 15}: "cmov",
	{CPU1EDX, 23}: "mmx", {CPU1EDX, 24}: "fxsr", {CPU1EDX, 25}: "sse", {CPU1EDX, 26}: "sse2",
	{CPU7EBX, 0}: "fsgsbase", {CPU7EBX, 3}: "bmi1", {CPU7EBX, 5}: "avx2", {CPU7EBX, 8}: "bmi2",
	{CPU7EBX, 9}: "erms", {CPU7EBX, 16}: "avx512f", {CPU7EBX, 18}: "rdseed", {CPU7EBX, 19}: "adx",
	{CPU7EBX, 23}: "clflushopt", {CPU7EBX, 24}: "clwb", {CPU7EBX, 29}: "sha", {CPU7ECX, 3}: "pku", {CPU7ECX, 7}: "shstk", {CPU7ECX, 9}: "vaes", {CPU7ECX, 10}: "vpclmulqdq", {CPU7ECX, 22}: "rdpid",
	{CPU7EDX, 4}: "fsrm", {CPUExt1ECX, 0}: "lahf_lm", {CPUExt1ECX, 5}: "abm", {CPUExt1ECX, 6}: "sse4a", {CPUExt1ECX, 7}: "misalignsse", {CPUExt1ECX, 8}: "3dnowprefetch",
	{CPUExt1EDX, 27}: "rdtscp", {CPUExt1EDX, 29}: "lm",
}

// String lists f's features by name ("avx2 erms ..."), a bit without a
// name as leaf.register:bit.
func (f CPUFeatures) String() string {
	var out []string
	for w := range f {
		for bit := 0; bit < 32; bit++ {
			if f[w]&(1<<bit) == 0 {
				continue
			}
			if n, ok := cpuFeatureNames[[2]int{w, bit}]; ok {
				out = append(out, n)
				continue
			}
			loc := CPUIDWord[w]
			out = append(out, fmt.Sprintf("%#x.%s:%d", loc.Leaf, [...]string{"eax", "ebx", "ecx", "edx"}[loc.Reg], bit))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}
