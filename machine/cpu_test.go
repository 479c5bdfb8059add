package machine

import (
	"strings"
	"testing"
)

// TestCPUFeaturesMissing: Missing names what one set has and another
// lacks that a program may pick code by, leaving out the bits no program
// does (the x86-64 baseline, system bits, 3DNow!), and String names them.
// The sets are what the emulator and an AMD EPYC host offer guests.
func TestCPUFeaturesMissing(t *testing.T) {
	kvm := CPUFeatures{CPU1ECX: PortableCPU[CPU1ECX] | 1<<28 | 1<<27 | 1<<31, CPU1EDX: 0x178bfbff, CPU7EBX: PortableCPU[CPU7EBX] | 1<<5, CPUExt1ECX: 0x004003f3, CPUExt1EDX: 0x2fd3fbff}
	m := kvm.Missing(PortableCPU)
	if got := m.String(); got != "avx avx2 sse4a misalignsse 3dnowprefetch" {
		t.Errorf("kvm lacks %q on emu, want %q", got, "avx avx2 sse4a misalignsse 3dnowprefetch")
	}
	if m := PortableCPU.Missing(kvm); !m.Empty() {
		t.Errorf("emu lacks %s on kvm, want none (3dnow, skinit and cr8_legacy are not picked by)", m)
	}
	if s := (CPUFeatures{CPU7ECX: 1 << 30}).String(); !strings.Contains(s, "0x7.ecx:30") {
		t.Errorf("an unnamed bit prints as %q", s)
	}
}
