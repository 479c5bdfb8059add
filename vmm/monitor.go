package vmm

import (
	"nestvm/machine"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// Monitor is one instance of the object kernel running on one backend. It
// is the root of every space it creates.
type Monitor struct {
	backend   machine.Backend
	log       hclog.Logger
	nextSpace atomic.Uint64
	caps      capTree
	ipc       ipcState
	futex     futexTable
	shells    machine.ShellPool
	limits    hostLimits
}

// NewMonitor returns a monitor that runs guests on b and logs to log (nil
// means no logging).
func NewMonitor(b machine.Backend, log hclog.Logger) *Monitor {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	m := &Monitor{backend: b, log: log}
	m.shells.Log = log.Named("shells")
	return m
}

// ReleaseIdle closes the machines the monitor keeps from ended spaces for
// new ones (see shellPool), giving back their descriptors and memory now
// rather than after their idle timeout. Spaces ending later keep theirs
// again.
func (m *Monitor) ReleaseIdle() { m.shells.Drain() }

// Backend returns the backend the monitor runs guests on.
func (m *Monitor) Backend() machine.Backend { return m.backend }
