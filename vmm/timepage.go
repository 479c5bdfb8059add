package vmm

import (
	"fmt"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"nestvm/abi"
	"nestvm/machine"
)

// timeEpoch is where the monitor's monotonic clock starts: one origin for
// every clock server, so that the one time page they share agrees with
// each of them.
var timeEpoch = time.Now()

// monotonicNow is the monitor's monotonic clock in nanoseconds.
func monotonicNow() uint64 { return uint64(time.Since(timeEpoch).Nanoseconds()) }

// Time-page parameters.
const (
	// timeShift is TimePage.Shift: Mult is nanoseconds per tick in
	// 32.32 fixed point, exact enough for any counter rate.
	timeShift = 32
	// timeHold is how long a record may be extrapolated (TimePage.MaxDelta
	// as time): a reader past it calls clock_read, which rewrites the
	// record, so a host clock step or a rate error lasts no longer.
	timeHold = 10 * time.Second
	// timeFresh is how often the record is rewritten, and how old a
	// record clock_read leaves alone.
	timeFresh = time.Second
	// timeCalibrate is how far apart the first two samples of the
	// counter are taken; later rewrites measure the rate from the first
	// sample, ever more exactly.
	timeCalibrate = 20 * time.Millisecond
)

// timeKeeper keeps the monitor's time page: one read-only page every root
// clock hands out (clock_time_page). A goroutine rewrites it every
// timeFresh for as long as the monitor runs, as Linux's tick does its
// vDSO data, so that readers never find it stale however long they go
// without a call; clock_read rewrites it too when it finds it older (the
// goroutine starved on a busy host).
type timeKeeper struct {
	once   sync.Once
	region *Region // nil when the host's counter cannot serve
	err    error
	ready  atomic.Bool // region is set and its record written

	mu        sync.Mutex // orders rewrites
	tsc0      uint64     // the first sample, which the rate is measured from
	mono0     uint64
	rec       abi.TimePage // what the page holds
	refreshed atomic.Int64 // monotonicNow at the last rewrite
}

var hostTime timeKeeper

// page returns the time page's region, creating and calibrating it on
// first use.
func (k *timeKeeper) page() (*Region, error) {
	k.once.Do(func() {
		if !invariantTSC() {
			k.err = fmt.Errorf("time page: the host's time-stamp counter does not tick at a constant rate: %w", abi.ErrInvalidOp)
			return
		}
		mem, err := machine.NewMemory("time-page", pageSize)
		if err != nil {
			k.err = fmt.Errorf("time page: %v: %w", err, abi.ErrNoMemory)
			return
		}
		k.tsc0, k.mono0, _ = sampleTSC()
		time.Sleep(timeCalibrate)
		// Nobody owns the page: it lives as long as the monitor, and
		// no space's quota pays for it.
		k.region = &Region{mem: mem, dirty: newPageTrack(1), accessed: newPageTrack(1)}
		k.refresh()
		k.ready.Store(true)
		go func() {
			for range time.Tick(timeFresh) {
				k.refresh()
			}
		}()
	})
	return k.region, k.err
}

// sampleTSC reads the counter and the host's clocks together: the
// reading whose two counter reads lie closest around the clocks'.
func sampleTSC() (tsc, mono, real uint64) {
	best := uint64(math.MaxUint64)
	for range 8 {
		a := rdtsc()
		now := time.Now()
		b := rdtsc()
		if b-a < best {
			best = b - a
			tsc = a + (b-a)/2
			mono, real = uint64(now.Sub(timeEpoch).Nanoseconds()), uint64(now.UnixNano())
		}
	}
	return tsc, mono, real
}

// timeAt is the time rec reads from base at counter value tsc, as a
// reader of the page computes it.
func timeAt(rec *abi.TimePage, tsc, base uint64) uint64 {
	hi, lo := bits.Mul64(tsc-rec.TSCBase, rec.Mult)
	return base + (lo>>rec.Shift | hi<<(64-rec.Shift))
}

// refresh rewrites the record from a new sample of the counter and the
// clocks. The monotonic reading never goes back: where the old record
// reads later at the new anchor than the host's clock (its rate was a
// little fast), the new record starts from the old one's reading.
func (k *timeKeeper) refresh() {
	k.mu.Lock()
	defer k.mu.Unlock()
	tsc, mono, real := sampleTSC()
	if tsc <= k.tsc0 || mono <= k.mono0 {
		return // no time has passed that the counter could measure
	}
	rate := float64(mono-k.mono0) / float64(tsc-k.tsc0) // nanoseconds per tick
	rec := abi.TimePage{
		Flags:    abi.TimeTSC,
		TSCBase:  tsc,
		Mult:     uint64(rate * (1 << timeShift)),
		Shift:    timeShift,
		MonoBase: mono,
		RealBase: real,
		MaxDelta: uint64(float64(timeHold.Nanoseconds()) / rate),
	}
	if old := k.rec; old.Flags&abi.TimeTSC != 0 && tsc-old.TSCBase <= old.MaxDelta {
		rec.MonoBase = max(rec.MonoBase, timeAt(&old, tsc, old.MonoBase))
	}
	k.rec = rec
	writeTimePage(k.region.mem.Bytes(), &rec)
	k.refreshed.Store(int64(monotonicNow()))
}

// touch rewrites the record when it is older than timeFresh: clock_read
// calls it, so a reader that found the record stale (its keeper starved)
// and called clock_read finds it current again.
func (k *timeKeeper) touch() {
	if !k.ready.Load() {
		return
	}
	if monotonicNow()-uint64(k.refreshed.Load()) < uint64(timeFresh) {
		return
	}
	k.refresh()
}
