package machine

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The host resources the monitor takes on guests' behalf come from one
// pool per process, shared with the Go runtime: the number of mappings
// (vm.max_map_count, 65530 by default) and of open files (RLIMIT_NOFILE).
// A guest can spend them without touching its memory quota: a one-page
// region mapped at every other page of its range costs two host mappings a
// time, a one-page region a descriptor and a mapping. Once the process has
// none left the Go runtime dies the next time it needs memory ("fatal
// error: out of memory"), taking every space with it. So what guests'
// memory takes is budgeted to half of each pool, and past the budget the
// operation fails with ErrNoMemory while the runtime keeps the rest.
var (
	HostMaps = newHostBudget(ReadMaxMapCount()/2, "mappings", "half of vm.max_map_count")
	HostFDs  = newHostBudget(readFileLimit()/2, "descriptors", "half of RLIMIT_NOFILE")
)

// hostBudget counts what is taken of one host resource.
type hostBudget struct {
	Used  atomic.Int64 // taken now
	Limit int64        // most that may be taken
	what  string       // the resource, plural
	from  string       // the host limit the budget comes from
}

func newHostBudget(limit int64, what, from string) *hostBudget {
	return &hostBudget{Limit: limit, what: what, from: from}
}

// BudgetSpent is the error of an operation a spent budget refused.
type BudgetSpent struct{ b *hostBudget }

// Error says which budget is spent.
func (e BudgetSpent) Error() string {
	return fmt.Sprintf("the monitor's budget of %d %s is spent", e.b.Limit, e.b.what)
}

// Source says which budget e is and where its limit comes from.
func (e BudgetSpent) Source() string {
	return fmt.Sprintf("the monitor's budget of %d %s (%s)", e.b.Limit, e.b.what, e.b.from)
}

// spent returns the error for an operation b refused.
func (b *hostBudget) spent() error { return BudgetSpent{b} }

// take takes n, or reports false and takes nothing when that would pass
// the limit.
func (b *hostBudget) take(n int64) bool {
	if b.Used.Add(n) > b.Limit {
		b.Used.Add(-n)
		return false
	}
	return true
}

// give gives back n taken before.
func (b *hostBudget) give(n int64) { b.Used.Add(-n) }

// ReadMaxMapCount is the process's limit on mappings.
func ReadMaxMapCount() int64 {
	if b, err := os.ReadFile("/proc/sys/vm/max_map_count"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 65530 // Linux's default
}

// readFileLimit is the process's limit on open files (the Go runtime
// raises the soft limit to the hard one at start).
func readFileLimit() int64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Cur > 0 && rl.Cur < 1<<31 {
		return int64(rl.Cur)
	}
	return 1024
}
