package vmm

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"nestvm/machine"
)

// hostLimits remembers which host limits the monitor has logged as
// reached, so each is said once however many guests run into it.
type hostLimits struct {
	mu     sync.Mutex
	logged map[string]bool
}

// hostLimit logs, once per limit, that err is the host refusing the
// monitor a resource by one of its limits (open files, memory maps,
// memory). The guest that asked gets NV_ENOMEM or NV_EQUOTA and the
// monitor goes on; the log line says which limit to raise. Other errors
// are left alone.
func (m *Monitor) hostLimit(err error) {
	var limit string
	var spent machine.BudgetSpent
	var as machine.AddressSpaceSpent
	switch {
	case errors.As(err, &as):
		limit = fmt.Sprintf("the monitor's virtual address space (each space reserves %d GiB of it for each GiB of its user range that its memory reaches; a host with 4-level paging gives a process 128 TiB)", machine.WindowChunk>>30)
	case errors.As(err, &spent):
		limit = spent.Source()
	case errors.Is(err, unix.EMFILE):
		var rl unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
			limit = fmt.Sprintf("open files per process (RLIMIT_NOFILE: %d, hard %d)", rl.Cur, rl.Max)
		} else {
			limit = "open files per process (RLIMIT_NOFILE)"
		}
	case errors.Is(err, unix.ENFILE):
		limit = "open files of the whole host (fs.file-max)"
	case errors.Is(err, unix.ENOMEM):
		limit = fmt.Sprintf("memory, or memory maps per process (vm.max_map_count: %d)", machine.ReadMaxMapCount())
	default:
		return
	}
	m.limits.mu.Lock()
	seen := m.limits.logged[limit]
	if m.limits.logged == nil {
		m.limits.logged = map[string]bool{}
	}
	m.limits.logged[limit] = true
	m.limits.mu.Unlock()
	if !seen {
		m.log.Warn("a host limit is reached: guests asking for more get NV_ENOMEM until it is raised or use falls", "limit", limit, "error", err)
	}
}
