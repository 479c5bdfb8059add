//go:build cgo && linux && amd64

package emu

import (
	"bytes"
	"encoding/binary"
	"testing"

	"nestvm/machine"
	"nestvm/vmm"
)

// TestParkedEngineRunsNewCode runs spaces one after another in one
// monitor, each with different code at the same address and a first page
// fault, and checks that the next space's thread ran on the engine the
// last one parked, its own code (no block translated from the other's)
// and with a first fault's state (a #PF, not the double fault an engine
// that remembers an earlier exception raises).
func TestParkedEngineRunsNewCode(t *testing.T) {
	const text = 0x400000
	mon := vmm.NewMonitor(backend{}, nil)
	reused := enginePool.reusedTotal()
	const rounds = 6
	for round := range rounds {
		// A read of the ring-0 text, at an address that tells which
		// code ran.
		addr := uint32(0x101000 + 8*round)
		code := bytes.Repeat([]byte{0xcc}, 4096)
		copy(code, binary.LittleEndian.AppendUint32([]byte{0x8a, 0x1c, 0x25}, addr)) // mov bl, [addr]
		img := &vmm.Image{Entry: text, Segments: []vmm.Segment{{Addr: text, MemSize: 4096, Data: code, Perm: machine.PermRead | machine.PermExec}}}
		q := vmm.DefaultQuota
		q.Memory = 16 << 20
		s, err := mon.Launch(vmm.Program{Name: "park", Image: img, Quota: q}, vmm.Env{Console: &bytes.Buffer{}})
		if err != nil {
			t.Fatal(err)
		}
		<-s.Done()
		r := s.Wait()
		if r.Fault == nil || r.Fault.Fault.Vector != machine.VecPage || r.Fault.Fault.RIP != text || r.Fault.Fault.Addr != uint64(addr) {
			t.Fatalf("round %d: %s, want a page fault at %#x reading %#x", round, r, text, addr)
		}
	}
	// Each space's thread but the first can take the last one's engine;
	// the reaper may close one parked too long on a loaded host.
	if n := enginePool.reusedTotal() - reused; n == 0 {
		t.Errorf("no engine was reused in %d spaces", rounds)
	}
}
