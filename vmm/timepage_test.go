package vmm

import (
	"encoding/binary"
	"testing"

	"nestvm/abi"
)

// TestTimePageReadsTheClock reads the time page as a guest's vDSO does
// and compares with the clocks clock_read serves, across rewrites: each
// reading lies between the host's readings around it (to within the
// counter's rate error, far under a millisecond here), and monotonic
// time read from the page never goes back.
func TestTimePageReadsTheClock(t *testing.T) {
	if !invariantTSC() {
		t.Skip("the host's time-stamp counter is not invariant: clocks offer no time page")
	}
	r, err := hostTime.page()
	if err != nil {
		t.Fatal(err)
	}
	// read reads the record as a guest does: again while the keeper's
	// goroutine is rewriting it.
	read := func() abi.TimePage {
		for {
			var b [64]byte
			if _, e := r.Read(0, b[:]); e != abi.OK {
				t.Fatal(e)
			}
			var rec abi.TimePage
			if _, err := binary.Decode(b[:], binary.LittleEndian, &rec); err != nil {
				t.Fatal(err)
			}
			var seq [8]byte
			r.Read(0, seq[:])
			if rec.Seq%2 == 0 && binary.LittleEndian.Uint64(seq[:]) == rec.Seq {
				return rec
			}
		}
	}
	const slack = 1_000_000 // ns
	var last uint64
	for i := range 200 {
		if i%50 == 0 {
			hostTime.refresh()
		}
		rec := read()
		if rec.Flags&abi.TimeTSC == 0 {
			t.Fatalf("record %+v is not usable", rec)
		}
		before := monotonicNow()
		tsc := rdtsc()
		after := monotonicNow()
		if d := tsc - rec.TSCBase; d > rec.MaxDelta {
			t.Fatalf("a fresh record is stale: %d ticks past its base, max %d", d, rec.MaxDelta)
		}
		mono := timeAt(&rec, tsc, rec.MonoBase)
		if mono+slack < before || mono > after+slack {
			t.Fatalf("monotonic from the page %d, the host's %d..%d", mono, before, after)
		}
		if mono < last {
			t.Fatalf("monotonic from the page went back: %d after %d", mono, last)
		}
		last = mono
	}
}
