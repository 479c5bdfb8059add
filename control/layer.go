package control

import (
	"sync"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/interpose"
	"nestvm/nester"
	"nestvm/services/trace"
	"nestvm/vmm"
)

// Layer is what a control socket needs in the stack, nearest the monitor:
// it keeps a handle to each space created through the environment's
// space capability (the tops of the program's tree, which State reads
// with space_get_state and follows down through their handle tables), and,
// when asked for, a trace tap (trace.NewTap) that streams records while a
// client is attached and only forwards while none is. The tap is not free
// when nobody listens: every call on the environment's capabilities takes
// a hop through Go (about a quarter more per clock_read on either
// backend), so a monitor has one only when its user wants to attach a
// trace.
type Layer struct {
	log hclog.Logger
	tap *trace.Layer

	mu   sync.Mutex
	host *vmm.Host // set by Wrap
	tops []uint64  // spaces created through the space capability, in host's table
}

// NewLayer makes a control layer, with a trace tap when tap is set.
func NewLayer(log hclog.Logger, tap bool) *Layer {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	l := &Layer{log: log}
	if tap {
		l.tap = trace.NewTap("control", log.Named("tap"))
	}
	return l
}

// Name implements nester.Layer.
func (l *Layer) Name() string { return "control" }

// Tap returns the layer's trace tap; nil when it has none.
func (l *Layer) Tap() *trace.Layer { return l.tap }

// Wrap implements nester.Layer: the space capability is a stand-in that
// forwards every operation and keeps the spaces space_create returns; a
// tap then wraps every capability, that stand-in included.
func (l *Layer) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	host := mon.NewHost("control", vmm.Quota{Handles: 1 << 16, Children: 1})
	// State may be asked for while the stack is being built.
	l.mu.Lock()
	l.host = host
	l.mu.Unlock()
	env, err := parent.StandIn(host.NewCaller(), nester.CapSpace, "control:space", func(target uint64) vmm.Server {
		return &interpose.Relay{Host: host, Target: target, Hook: (*topKeeper)(l)}
	})
	if err != nil {
		return parent, err
	}
	if l.tap == nil {
		return env, nil
	}
	return l.tap.Wrap(mon, env)
}

// keepAt is how many kept spaces make a new one prune the ended ones:
// a program that creates and ends many (a shell's commands) leaves no
// trail of handles.
const keepAt = 64

// topKeeper is the Layer as the hook of what operations on its space
// capability return: it keeps the handle to each space created through
// it, for listing and checkpointing the tree.
type topKeeper Layer

// OnResult implements interpose.ResultHook.
func (k *topKeeper) OnResult(r interpose.Result) (interpose.Cap, bool, error) {
	l := (*Layer)(k)
	if r.Inv.Op != abi.OpSpaceCreate {
		return r.Cap, false, nil
	}
	l.mu.Lock()
	if len(l.tops) >= keepAt {
		l.tops = interpose.PruneEnded(r.Caller, l.tops)
	}
	l.tops = append(l.tops, r.H)
	l.mu.Unlock()
	return r.Cap, true, nil
}

// Close implements nester.Layer.
func (l *Layer) Close() error {
	var err error
	if l.tap != nil {
		err = l.tap.Close()
	}
	l.mu.Lock()
	host := l.host
	l.mu.Unlock()
	if host != nil {
		host.Kill("control layer closed")
	}
	return err
}

// Space is one space of the tree State lists.
type Space struct {
	// ID numbers the spaces of one listing, from 1, in the order they
	// were found: the ABI gives a space no number of its own.
	ID int `json:"id"`
	// Name is the program's name for the top space; the ABI tells a
	// space's holder no name.
	Name string `json:"name,omitempty"`
	// PID is the badge of the space's exception port where it has one:
	// under the Linux personality, the process's pid.
	PID    uint64 `json:"pid,omitempty"`
	State  string `json:"state"`            // running, exited or killed
	Status uint64 `json:"status,omitempty"` // the exit status, once ended
	// Memory is the bytes of the regions charged to the space (its own
	// memory), Quota the most it may have.
	Memory   uint64   `json:"memory"`
	Quota    uint64   `json:"quota"`
	Handles  int      `json:"handles"`
	Threads  []Thread `json:"threads"`
	Children []Space  `json:"children,omitempty"`
}

// Thread is one thread of a listed space.
type Thread struct {
	Number int    `json:"number"` // its number in its space, as faults name it
	State  string `json:"state"`  // new, running, stopped or exited
	// Blocked is the operation a running thread is blocked in.
	Blocked string `json:"blocked,omitempty"`
	Status  uint64 `json:"status,omitempty"` // the exit status, once exited
}

var spaceStates = map[uint64]string{abi.SpaceRunning: "running", abi.SpaceExited: "exited", abi.SpaceKilled: "killed"}
var threadStates = map[uint64]string{abi.ThreadNew: "new", abi.ThreadRunning: "running", abi.ThreadStopped: "stopped", abi.ThreadExited: "exited"}

// Tree reads the program's tree: each space kept (those that ended are
// let go) and the spaces below it, found through the space handles their
// tables hold, each listed once.
func (l *Layer) Tree() ([]Space, error) {
	l.mu.Lock()
	if l.host == nil {
		l.mu.Unlock()
		return nil, nil
	}
	c := l.host.NewCaller()
	l.tops = interpose.PruneEnded(c, l.tops)
	tops := append([]uint64(nil), l.tops...)
	l.mu.Unlock()
	w := walker{c: c, seen: map[uint64]bool{}}
	var out []Space
	for _, h := range tops {
		if s, ok := w.space(h, 0); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// maxDepth bounds the walk: a tree deeper than that is listed no further.
const maxDepth = 64

// walker reads spaces with one caller, listing each object once.
type walker struct {
	c    *vmm.Caller
	seen map[uint64]bool // by object identity
	next int
}

// space reads the space h names and those below it; ok is false for one
// already listed or gone. It leaves h open, and closes the handles the
// space's state gave it.
func (w *walker) space(h uint64, depth int) (Space, bool) {
	c := w.c
	// Below a layer that wraps handles (the tap itself), a space's table
	// holds stand-ins for the spaces it has, its own included: a
	// stand-in's identity is that of what it stands for.
	id, err := c.Identify(h)
	if err != nil || w.seen[id.Object] {
		return Space{}, false
	}
	w.seen[id.Object] = true
	rec, err := c.ReadSpace(h)
	if err != nil {
		return Space{}, false
	}
	st := rec.Space
	w.next++
	s := Space{ID: w.next, State: spaceStates[st.Status], Quota: st.Pages * abi.PageSize, Handles: len(rec.Handles), Threads: []Thread{}}
	if st.Status != abi.SpaceRunning {
		_, s.Status, _ = c.SpaceStatus(h)
	}
	if st.ExceptionPort != abi.NoHandle {
		if ep, err := c.Identify(st.ExceptionPort); err == nil {
			s.PID = ep.Badge
		}
		c.HandleClose(st.ExceptionPort)
	}
	charged := map[uint64]bool{} // by object identity
	count := func(h uint64, owned bool) {
		if h == abi.NoHandle {
			return
		}
		defer c.HandleClose(h)
		if !owned {
			return
		}
		id, err := c.Identify(h)
		if err != nil || charged[id.Object] {
			return
		}
		charged[id.Object] = true
		if size, _, err := c.RegionSize(h); err == nil {
			s.Memory += size
		}
	}
	for _, m := range rec.Maps {
		count(m.Region, m.Flags&abi.StateOwned != 0)
	}
	var below []uint64
	for _, e := range rec.Handles {
		switch e.Type {
		case uint64(abi.ObjRegion):
			count(e.Handle, e.Flags&abi.StateOwned != 0)
		case uint64(abi.ObjSpace):
			below = append(below, e.Handle)
		default:
			c.HandleClose(e.Handle)
		}
	}
	for _, t := range rec.Threads {
		th := Thread{Number: int(t.Number), State: "gone"}
		if code, r1, err := c.ThreadStatus(t.Handle); err == nil {
			th.State = threadStates[code]
			switch code {
			case abi.ThreadRunning:
				if r1 != 0 && r1 < uint64(abi.OpCount) {
					th.Blocked = abi.Op(r1).String()
				}
			case abi.ThreadExited:
				th.Status = r1
			}
		}
		c.HandleClose(t.Handle)
		s.Threads = append(s.Threads, th)
	}
	for _, h := range below {
		if depth < maxDepth {
			if child, ok := w.space(h, depth+1); ok {
				s.Children = append(s.Children, child)
			}
		}
		c.HandleClose(h)
	}
	return s, true
}
