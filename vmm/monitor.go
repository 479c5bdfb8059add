package vmm

import (
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// Monitor is one instance of the object kernel running on one backend. It
// is the root of every space it creates.
type Monitor struct {
	backend   Backend
	log       hclog.Logger
	nextSpace atomic.Uint64
	caps      capTree
	ipc       ipcState
	futex     futexTable
	shells    shellPool
	limits    hostLimits
}

// NewMonitor returns a monitor that runs guests on b and logs to log (nil
// means no logging).
func NewMonitor(b Backend, log hclog.Logger) *Monitor {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	m := &Monitor{backend: b, log: log}
	m.shells.log = log.Named("shells")
	return m
}

// ReleaseIdle closes the machines the monitor keeps from ended spaces for
// new ones (see shellPool), giving back their descriptors and memory now
// rather than after their idle timeout. Spaces ending later keep theirs
// again.
func (m *Monitor) ReleaseIdle() { m.shells.drain() }

// Backend returns the backend the monitor runs guests on.
func (m *Monitor) Backend() Backend { return m.backend }
