package vmm

// rdtsc reads the host's time-stamp counter, which guest code reads too:
// both backends run guests with the host's counter (Unicorn passes rdtsc
// through; KVM adds the vCPU's offset, which the kvm backend keeps at 0
// where the host lets it).
func rdtsc() uint64

// invariantTSC reports whether the counter ticks at a constant rate in
// every power state (CPUID 0x80000007, EDX bit 8): only then may a time
// record be extrapolated with it.
func invariantTSC() bool
