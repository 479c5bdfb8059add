package machine

import (
	"bytes"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// recyclable is a Machine that only records being recycled.
type recyclable struct{ recycled int }

func (*recyclable) MapMemory(uint64, []byte, Perm) error     { return nil }
func (*recyclable) UnmapMemory(uint64) error                 { return nil }
func (*recyclable) ProtectMemory(uint64, uint64, Perm) error { return nil }
func (*recyclable) CodeChanged(uint64, uint64)               {}
func (*recyclable) NewVCPU(VCPUConfig) (VCPU, error)         { return nil, nil }
func (*recyclable) Features() Features                       { return Features{Recycle: true} }
func (m *recyclable) Recycle() error                         { m.recycled++; return nil }
func (*recyclable) Close() error                             { return nil }

// TestShellResetKeepsStubsAlone checks what a reset shell's system memory
// holds: the stub pages, as built, whatever was written over them, and
// zeros everywhere else.
func TestShellResetKeepsStubsAlone(t *testing.T) {
	sys, err := NewMemory("test-system", SysSize)
	if err != nil {
		t.Fatal(err)
	}
	m := &recyclable{}
	sh := &Shell{Machine: m, Sys: sys, Win: newWindow(m)}
	defer sh.close(hclog.NewNullLogger())
	copy(sys.Bytes(), stubPages())
	for round, scribble := range []uint64{0, IDTAddr - SysBase + 8} {
		if round > 0 {
			sys.Bytes()[scribble] ^= 0xff // a stub page changed
		}
		pt := sys.Bytes()[PTPoolAddr-SysBase:]
		pt[0] = 0x27 // a page table left by the last space
		if err := sh.reset(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sys.Bytes()[:stubSize], stubPages()) {
			t.Errorf("round %d: the stub pages differ from a fresh shell's after reset", round)
		}
		if pt[0] != 0 {
			t.Errorf("round %d: the page-table pool holds %#x after reset, want 0", round, pt[0])
		}
		if m.recycled != round+1 {
			t.Errorf("round %d: machine recycled %d times, want %d", round, m.recycled, round+1)
		}
	}
}
