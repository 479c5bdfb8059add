package nester

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/vmm"
)

// Factory makes a layer from the arguments after "name=" in --layer (empty
// when none were given), with what the program stacking it gives it. It
// refuses bad arguments with an error that says what is wrong, before
// anything runs.
type Factory func(args string, h Host) (Layer, error)

// Maker turns a constructor of a concrete layer type into a Factory: a
// constructor that fails gives a nil Layer, not a Layer holding a nil
// pointer, which would compare non-nil.
func Maker[L Layer](make func(args string, h Host) (L, error)) Factory {
	return func(args string, h Host) (Layer, error) {
		l, err := make(args, h)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
}

// Host is what the program that stacks a layer gives the layers it makes
// with New: a layer writes and logs there, never to the process's own
// streams, so that a program with several monitors (tests, nestvm-oci)
// keeps their output apart.
type Host struct {
	// Log is the layer's logger, named after it; New gives a null
	// logger when it is nil.
	Log hclog.Logger
	// Stderr receives what a layer reports to its user (trace's records,
	// pager's summary, refmon's audit lines when no file is named); New
	// gives io.Discard when it is nil.
	Stderr io.Writer
	// Triggers are the requests from outside the program that a layer
	// may act on (a save, for checkpoint); nil: none are sent.
	Triggers *Triggers
}

// Kind describes a kind of layer for `nestvm layers` and --layer.
type Kind struct {
	Name    string
	Summary string // one line
	Usage   string // the arguments it takes, one per line
	New     Factory
}

var (
	kindsMu sync.Mutex
	kinds   = map[string]Kind{}
)

// Register makes a kind of layer available to --layer. Layers register
// from their package's init.
func Register(k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic("nester: layer " + k.Name + " registered twice")
	}
	kinds[k.Name] = k
}

// Kinds returns every registered kind of layer, by name.
func Kinds() []Kind {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	out := make([]Kind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// New makes the layer a --layer value names, giving it h.
func New(spec string, h Host) (Layer, error) {
	name, args := ParseSpec(spec)
	kindsMu.Lock()
	k, ok := kinds[name]
	kindsMu.Unlock()
	if !ok {
		var names []string
		for _, k := range Kinds() {
			names = append(names, k.Name)
		}
		return nil, fmt.Errorf("--layer %s: no layer named %q (there are: %s; see nestvm layers)", spec, name, strings.Join(names, ", "))
	}
	if h.Log == nil {
		h.Log = hclog.NewNullLogger()
	}
	if h.Stderr == nil {
		h.Stderr = io.Discard
	}
	h.Log = h.Log.Named(name)
	l, err := k.New(args, h)
	if err != nil {
		return nil, fmt.Errorf("--layer %s: %w", spec, err)
	}
	return l, nil
}

// A Resumer is a personality being rebuilt from the record it gave
// server_get_state, for a checkpoint of the programs it ran (see
// services/checkpoint): the checkpoint's spaces are rebuilt with its port
// as their exception port, and then it takes them over.
type Resumer interface {
	// Port is the personality's port, a handle in the restorer's table:
	// the restored spaces whose exception port was the saved
	// personality's get it, with the badges they had.
	Port() uint64
	// Resume rebuilds the personality's state over the restored subtree
	// whose top space is top (a handle in c's table), before any of its
	// threads starts, and returns the program it now serves.
	Resume(c *vmm.Caller, top uint64) (Started, error)
}

// A SaveTimed Resumer is told, before Resume, when the checkpoint it
// resumes was taken, so that what counts time in it (a personality's
// timers and sleeps, saved as deadlines) resumes with what it had left
// then: t on the host, and monotonic, what the subtree's clock read (0:
// unknown), for deadlines the personality kept on that clock (under a
// layer that owns time, such as timewarp, the two do not move together).
type SaveTimed interface {
	SavedAt(t time.Time, monotonic uint64)
}

// RunnerFunc makes a Resumer from a saved record, in c's seat,
// with the capabilities of env that caps names as handles in c's table.
// A record it cannot read is an error, never a panic.
type RunnerFunc func(c *vmm.Caller, caps map[string]uint64, env Env, record []byte) (Resumer, error)

var (
	runnersMu sync.Mutex
	runners   = map[string]RunnerFunc{}
)

// RegisterRunner makes a personality restorable from checkpoints whose
// runner record is saved under name. Personalities register from their
// package's init.
func RegisterRunner(name string, f RunnerFunc) {
	runnersMu.Lock()
	defer runnersMu.Unlock()
	if _, dup := runners[name]; dup {
		panic("nester: runner " + name + " registered twice")
	}
	runners[name] = f
}

// Runner returns the RunnerFunc registered under name.
func Runner(name string) (RunnerFunc, bool) {
	runnersMu.Lock()
	defer runnersMu.Unlock()
	f, ok := runners[name]
	return f, ok
}
