package benchmarks

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/vmm"
)

// Settling: how often bench reads the monitor's memory while it waits for
// it to stop falling, and for how long at most. The period is emu's engine
// pool's: an engine lent by a thread that went to wait is closed 250-500
// ms later (emu/pool.go), and the memory it held goes back to the host.
const (
	settlePeriod  = 250 * time.Millisecond
	settleSamples = 40
	// settleSteady is how many periods in a row the memory must not
	// fall for it to count as settled: two cover the pool's longest wait.
	settleSteady = 2
	// runningPoll is how often bench asks space_running whether every
	// thread waits.
	runningPoll = 5 * time.Millisecond
)

// memReading is what readMemory or settle read: the monitor's resident
// KiB and the host's used KiB (each 0 when unknown), or why they could not
// be read.
type memReading struct {
	rssKiB, hostKiB int64
	err             error
}

// readMemory reads the monitor's and the host's memory now.
func readMemory() memReading { return memReading{rssKiB: residentKiB(), hostKiB: hostUsedKiB()} }

// settle waits until every thread of the subtree of the space obj waits
// (space_running: none busy, some waiting) and then until the monitor's
// resident memory stops falling: sampled every settlePeriod, it has not
// fallen below the lowest sample so far by more than a tolerance for
// settleSteady periods in a row, or settleSamples have been taken. It
// returns the last reading. c acts in a space that may hold a handle to
// obj. It gives up, with a zero reading, when quit closes.
func settle(c *vmm.Caller, obj vmm.Object, quit <-chan struct{}, log hclog.Logger) memReading {
	h, err := c.Insert(obj, abi.RightRead, 0)
	if err != nil {
		return memReading{err: fmt.Errorf("space_running: %w", err)}
	}
	defer c.HandleClose(h)
	tick := time.NewTicker(runningPoll)
	defer tick.Stop()
	for {
		busy, waiting, err := c.SpaceRunning(h)
		if err != nil {
			return memReading{err: fmt.Errorf("space_running: %w", err)}
		}
		if busy == 0 && waiting > 0 {
			break
		}
		select {
		case <-quit:
			return memReading{}
		case <-tick.C:
		}
	}
	tick.Reset(settlePeriod)
	cur := residentKiB()
	waited, samples := cur, 1
	low := cur
	for i, steady := 1, 0; steady < settleSteady && i < settleSamples; i++ {
		select {
		case <-quit:
			return memReading{}
		case <-tick.C:
		}
		cur = residentKiB()
		samples++
		// Less than 1% of what is resident is noise (the Go
		// runtime returning memory a little at a time), not a fall.
		if cur < low-max(64, low/100) {
			steady = 0
		} else {
			steady++
		}
		low = min(low, cur)
	}
	releaseFree()
	m := readMemory()
	log.Debug("fanout memory settled", "all_wait_kib", waited, "samples", samples, "settled_kib", m.rssKiB, "host_used_kib", m.hostKiB)
	return m
}

// releaseFree gives the host what the Go heap and malloc's heaps hold
// free, so that resident memory is what is in use.
func releaseFree() {
	debug.FreeOSMemory()
	trimMalloc()
}

// residentKiB is the monitor's resident memory in KiB, 0 when unknown.
func residentKiB() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return n
		}
	}
	return 0
}

// hostUsedKiB is the host's memory in use in KiB, MemTotal less
// MemAvailable in /proc/meminfo; 0 when unknown. Unlike the monitor's
// resident memory it counts what the kernel holds for the monitor (on
// kvm, each VM's and vCPU's structures, page tables, the stacks of the
// monitor's threads), and also whatever every other process on the host
// takes or gives back.
func hostUsedKiB() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var total, avail int64 = -1, -1
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "MemTotal" && k != "MemAvailable") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0
		}
		if k == "MemTotal" {
			total = n
		} else {
			avail = n
		}
	}
	if total < 0 || avail < 0 || avail > total {
		return 0
	}
	return total - avail
}
