package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/interpose"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// Usage is the argument syntax, as `nestvm layers` shows it.
const Usage = `checkpoint=FILE       save the program below to FILE on SIGUSR1 to the monitor
                      (SIGUSR2: save, then end the run as stop does)
options, after = and between commas (checkpoint=FILE,after-writes=3,stop):
  file=FILE           where to save (written whole, then renamed over FILE)
  after-writes=K      save right after the program's K-th console write
  every=DURATION      save every DURATION (e.g. 500ms, 2s), keeping the newest
  stop                end the run once a checkpoint is saved, the program no
                      further than its trigger (nestvm run exits 0)
A checkpoint a trigger asked for that could not be written ends the run
with status 125 and says why; under stop the program goes no further.
SIGUSR1 to the monitor always saves and SIGUSR2 always saves and stops,
whatever the options say, and so does nestvm attach PID --checkpoint
(--stop: then the run ends). nestvm restore FILE resumes a saved
program; nestvm inspect FILE shows what a file holds.`

// Options are a checkpoint layer's parsed arguments.
type Options struct {
	File        string
	AfterWrites uint64        // 0: no
	Every       time.Duration // 0: no
	Stop        bool
}

// ParseOptions parses the arguments after "checkpoint=".
func ParseOptions(args string) (Options, error) {
	var o Options
	for _, part := range strings.Split(args, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, hasVal := strings.Cut(part, "=")
		switch {
		case !hasVal && key == "stop":
			o.Stop = true
		case !hasVal && o.File == "":
			o.File = key
		case key == "file" && o.File == "":
			o.File = val
		case key == "after-writes":
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil || n == 0 {
				return o, fmt.Errorf("checkpoint: after-writes=%s: want a count of at least 1", val)
			}
			o.AfterWrites = n
		case key == "every":
			d, err := time.ParseDuration(val)
			if err != nil || d < time.Millisecond {
				return o, fmt.Errorf("checkpoint: every=%s: want a duration of at least 1ms (500ms, 2s, 1m)", val)
			}
			o.Every = d
		default:
			return o, fmt.Errorf("checkpoint: unknown or repeated option %q (see nestvm layers)", part)
		}
	}
	if o.File == "" {
		return o, errors.New("checkpoint: no file given (checkpoint=FILE,...)")
	}
	return o, nil
}

// Layer saves the subtree below it when a trigger fires.
type Layer struct {
	opts Options
	log  hclog.Logger

	host  *vmm.Host
	clock uint64            // the parent environment's clock, in host's table (0: none)
	ext   map[uint64]string // the environment's objects, by identity: saved by name

	mu    sync.Mutex
	child uint64 // the program's space, in host's table (0 until loaded)

	writes, bytes atomic.Uint64
	// held, while the save after-writes asks for is pending, is where
	// the program's console writers wait for it; it is closed when that
	// save is done (written or not), and nil before and after.
	heldMu  sync.Mutex
	held    chan struct{}
	failure error // the first requested checkpoint that was not written

	trigger chan string
	now     chan saveRequest // SaveNow's requests
	quit    chan struct{}
	wg      sync.WaitGroup
	stopped atomic.Bool
	saves   atomic.Uint64
	asked   <-chan nester.Trigger // the triggers of the Host the layer was made with
	backend string
	cpu     *machine.CPUFeatures // what the backend offers the program (nil: it does not say)
	inc     *Incremental         // what the last save read, for the next

	// Last is the newest checkpoint's measurements.
	lastMu sync.Mutex
	last   Stats

	unsubscribe func() // ends asked's subscription
}

// Stats measure one save.
type Stats struct {
	Number  uint64        // which save of the layer's it is, from 1
	Bytes   int           // file size
	Pages   int           // pages saved
	Stop    time.Duration // stopping every thread
	Save    time.Duration // reading the state and writing the file
	Paused  time.Duration // the program stopped: stopping, reading (and writing, with stop)
	Console uint64        // console bytes before it
	// Read and Reused count the pages this save read from the program's
	// regions and those it took unchanged from the save before.
	Read, Reused int
}

// New makes a checkpoint layer from its --layer arguments, with what the
// program that stacks it gives it: its logger, and the triggers that ask
// for saves (TriggerSave, TriggerSaveStop; the layer installs no signal
// handler of its own, as a library must not take a process's signals).
// A trigger sent before the program runs is taken once it does. New
// checks that the file's directory exists, so a bad path is refused
// before anything runs.
func New(args string, h nester.Host) (*Layer, error) {
	o, err := ParseOptions(args)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(filepath.Dir(o.File)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("checkpoint: cannot write %s: its directory does not exist", o.File)
	}
	log := h.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	l := &Layer{opts: o, log: log, trigger: make(chan string, 1),
		now: make(chan saveRequest), quit: make(chan struct{})}
	l.asked, l.unsubscribe = h.Triggers.Subscribe()
	return l, nil
}

// Name implements nester.Layer.
func (l *Layer) Name() string { return "checkpoint" }

// Stopped reports whether the layer ended the run after saving (stop).
func (l *Layer) Stopped() bool { return l.stopped.Load() }

// Err returns why a checkpoint a trigger asked for was not written (the
// first such), nil when every one was. With stop, such a failure ends the
// program too: what was asked for, a saved program and no more of it,
// cannot be had.
func (l *Layer) Err() error {
	l.heldMu.Lock()
	defer l.heldMu.Unlock()
	return l.failure
}

// ContinueFrom makes the layer's console byte count go on from ck's, for
// a program restored from ck under it: its own checkpoints then say where
// they are in the output of the original run.
func (l *Layer) ContinueFrom(ck *Checkpoint) { l.bytes.Store(ck.ConsoleBytes) }

// closed reports whether Close was called.
func (l *Layer) closed() bool {
	select {
	case <-l.quit:
		return true
	default:
		return false
	}
}

// File is where the layer saves.
func (l *Layer) File() string { return l.opts.File }

// Saves counts the checkpoints written.
func (l *Layer) Saves() uint64 { return l.saves.Load() }

// Last returns the newest save's measurements.
func (l *Layer) Last() Stats {
	l.lastMu.Lock()
	defer l.lastMu.Unlock()
	return l.last
}

// Wrap implements nester.Layer. The child's space capability is a stand-in
// that forwards every operation and keeps the space space_create returns
// (the program's: the subtree to save); its console is wrapped to count
// writes; stderr, clock and files pass through untouched, and are noted
// as the environment's, to be saved by name.
func (l *Layer) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	l.host = mon.NewHost("checkpoint", vmm.Quota{Handles: 1 << 17, Children: 1})
	l.backend = mon.Backend().Name()
	if f, ok := machine.CPUFeaturesOf(mon.Backend()); ok {
		l.cpu = &f
	}
	c := l.host.NewCaller()
	child, err := parent.StandIn(c, nester.CapSpace, "checkpoint:space", func(target uint64) vmm.Server {
		return &interpose.Relay{Host: l.host, Target: target, Hook: (*childKeeper)(l)}
	})
	if err != nil {
		return parent, err
	}
	if clock, ok := parent.Caps[nester.CapClock]; ok {
		if l.clock, err = c.Insert(clock.Obj, clock.Rights, clock.Badge); err != nil {
			return parent, err
		}
	}
	l.ext = map[uint64]string{}
	for _, name := range parent.Names() {
		if name != nester.CapSpace {
			l.ext[vmm.Identity(parent.Caps[name].Obj)] = name
		}
	}
	if con, ok := parent.Caps[nester.CapConsole]; ok {
		w := &interpose.Wrapper{Host: l.host, Handler: interpose.HandlerFunc(l.countWrite), Layer: "checkpoint"}
		wc, err := w.Wrap(con, nester.CapConsole)
		if err != nil {
			return parent, err
		}
		l.ext[vmm.Identity(wc.Obj)] = nester.CapConsole
		child = child.With(nester.CapConsole, wc)
	}
	l.wg.Add(1)
	go l.run(c)
	return child, nil
}

// childKeeper is the Layer as the hook of what operations on its space
// capability return: it keeps the handle to the first space created
// through it, the subtree a save takes.
type childKeeper Layer

// OnResult implements interpose.ResultHook.
func (k *childKeeper) OnResult(r interpose.Result) (interpose.Cap, bool, error) {
	l, keep := (*Layer)(k), false
	if r.Inv.Op == abi.OpSpaceCreate {
		l.mu.Lock()
		if l.child == 0 {
			l.child, keep = r.H, true
		}
		l.mu.Unlock()
	}
	return r.Cap, keep, nil
}

// countWrite forwards a console operation, counting the writes and the
// bytes written; the K-th write triggers a save, taken right after it: the
// writer is held in its call until the saver stops it, and so is any other
// thread that writes meanwhile, before its write (it re-issues the write
// when resumed). So the file holds the program just after its K-th
// write, whatever it does next, and with stop nothing of it runs after.
func (l *Layer) countWrite(call *interpose.Call) {
	if call.Op() == abi.OpConsoleWrite {
		if held := l.pending(); held != nil && !call.Inv.Hold(held) {
			// Stopped for the save: the write is the program's next step,
			// in the checkpoint and in this run.
			call.Return(0, 0)
			call.Inv.Restart()
			return
		}
	}
	r0, _, err := call.Forward()
	if call.Op() != abi.OpConsoleWrite || err != nil {
		return
	}
	l.bytes.Add(r0)
	if n := l.writes.Add(1); l.opts.AfterWrites != 0 && n == l.opts.AfterWrites {
		held := make(chan struct{})
		l.heldMu.Lock()
		if !l.closed() {
			l.held = held
		} else {
			close(held)
		}
		l.heldMu.Unlock()
		l.fire(afterWrites)
		call.Inv.Hold(held)
	}
}

// runnerTries bounds the saves one trigger takes while the subtree's
// runner keeps changing under them (ErrRunnerChanged).
const runnerTries = 8

// afterWrites is the trigger countWrite fires.
const afterWrites = "after-writes"

// pending returns the channel a console writer waits on while the save
// after-writes asked for is pending, nil when none is.
func (l *Layer) pending() chan struct{} {
	l.heldMu.Lock()
	defer l.heldMu.Unlock()
	return l.held
}

// release lets the held writers go, and records err, when not nil, as a
// requested checkpoint that was not written.
func (l *Layer) release(err error) {
	l.heldMu.Lock()
	defer l.heldMu.Unlock()
	if err != nil && l.failure == nil {
		l.failure = err
	}
	if l.held != nil {
		close(l.held)
		l.held = nil
	}
}

func (l *Layer) fire(why string) {
	select {
	case l.trigger <- why:
	default: // one is pending already
	}
}

// run performs the saves the triggers ask for, one at a time.
func (l *Layer) run(c *vmm.Caller) {
	defer l.wg.Done()
	var tick <-chan time.Time
	if l.opts.Every > 0 {
		t := time.NewTicker(l.opts.Every)
		defer t.Stop()
		tick = t.C
	}
	for {
		var why string
		select {
		case <-l.quit:
			return
		case req := <-l.now:
			req.done <- l.saveNow(c, req.stop)
			continue
		case why = <-l.trigger:
		case tr := <-l.asked:
			switch tr {
			case nester.TriggerSave:
				why = askedSave
			case nester.TriggerSaveStop:
				why = askedSaveStop
			default:
				continue // not one for this layer
			}
		case <-tick:
			why = "every " + l.opts.Every.String()
		}
		if l.stopped.Load() {
			l.release(nil)
			continue
		}
		stop := l.opts.Stop || why == askedSaveStop
		err := l.checkpoint(c, why, stop, runnerTries > 1)
		// A runner (a personality) that changed while the save read the
		// subtree left nothing consistent to write; another try, with
		// every thread stopped afresh, is likely to find it still.
		for try := 1; errors.Is(err, ErrRunnerChanged) && try < runnerTries; try++ {
			l.log.Debug("checkpoint taken again: the runner changed while it was read", "why", why, "try", try+1)
			err = l.checkpoint(c, why, stop, try+1 < runnerTries)
		}
		if errors.Is(err, errNotStarted) {
			l.log.Debug("checkpoint deferred: the program has not started", "why", why)
			go func() { // ask again shortly, as the trigger cannot be lost
				time.Sleep(time.Millisecond)
				l.fire(why)
			}()
			continue
		}
		if why == afterWrites {
			why = fmt.Sprintf("after %d writes", l.opts.AfterWrites)
		}
		ended := errors.Is(err, ErrEnded) || errors.Is(err, abi.ErrPeerGone)
		switch {
		case err == nil:
			l.release(nil)
		case ended && strings.HasPrefix(why, "every "):
			// A periodic save that comes after the end was asked for
			// by nobody.
			l.log.Debug("checkpoint not saved: the program has ended", "why", why, "error", err)
			l.release(nil)
		default:
			err = fmt.Errorf("checkpoint %s (%s) not saved: %w", l.opts.File, why, err)
			l.log.Debug("checkpoint not saved", "why", why, "error", err)
			l.release(err)
			// A failed save ends the program only under the layer's own
			// stop option; a save-and-stop trigger alone leaves it running.
			if l.opts.Stop {
				l.endAfterFailure(c)
			}
		}
	}
}

// endAfterFailure ends the program after a save under stop failed (its
// threads are still stopped): the user asked for it to run no further
// than the checkpoint.
func (l *Layer) endAfterFailure(c *vmm.Caller) {
	l.mu.Lock()
	child := l.child
	l.mu.Unlock()
	if child != 0 {
		c.SpaceKill(child, nester.StatusMonitor)
	}
}

// readClock reads the subtree's clock, as it stands while the subtree is
// stopped; zero when there is none, or it cannot be read.
func (l *Layer) readClock(c *vmm.Caller) Clock {
	if l.clock == 0 {
		return Clock{}
	}
	mono, _, err := c.ClockRead(l.clock, abi.ClockMonotonic)
	if err != nil {
		return Clock{}
	}
	real, _, err := c.ClockRead(l.clock, abi.ClockRealtime)
	if err != nil {
		return Clock{}
	}
	return Clock{Monotonic: mono, Realtime: real}
}

// The reasons the triggers give a save: askedSaveStop's also ends the run.
const (
	askedSave     = "asked to save"
	askedSaveStop = "asked to save and stop"
)

// checkpoint stops the subtree, saves it, and resumes it (or, with stop,
// ends it). again says a save that fails with ErrRunnerChanged is tried
// again.
func (l *Layer) checkpoint(c *vmm.Caller, why string, stop, again bool) error {
	l.mu.Lock()
	child := l.child
	l.mu.Unlock()
	if child == 0 {
		return errNotStarted // its space is not even made
	}
	t0 := time.Now()
	running, err := StopAll(c, child)
	if err != nil {
		err = fmt.Errorf("stopping the program: %w", err)
	}
	t1 := time.Now()
	if err == nil && len(running) == 0 {
		// Nothing ran yet: the loader is still building the program's
		// space (its first thread is not started), or every thread is
		// stopped by someone else. A save now would catch half a
		// program; the trigger waits for the next one.
		return errNotStarted
	}
	var ck *Checkpoint
	if err == nil {
		if l.inc == nil {
			l.inc = NewIncremental()
		}
		if ck, err = SaveIncremental(c, child, l.ext, running, l.inc); err != nil {
			err = fmt.Errorf("reading the program: %w", err)
		}

	}
	if err != nil {
		l.inc = nil // the dirty logs may be half taken: read everything next time
		if again && errors.Is(err, ErrRunnerChanged) {
			// The next try stops the threads afresh, which it could
			// not find running if they stayed stopped, with stop too.
			StartAll(c, running)
			return err
		}
		// A failed save ends the program only under the layer's own stop
		// option; one asked for alone leaves it running.
		l.resume(c, running, l.opts.Stop)
		return err
	}
	ck.Backend, ck.CPU, ck.Saved, ck.ConsoleBytes = l.backend, l.cpu, t0.UnixNano(), l.bytes.Load()
	ck.Clock = l.readClock(c)
	// What was read is a copy: unless the run ends with this save, the
	// program goes on while the file is written.
	var startErr error
	resumed := false
	if !stop {
		startErr, resumed = StartAll(c, running), true
	}
	paused := time.Since(t0)
	size, err := writeFile(l.opts.File, ck)
	if err != nil {
		if !resumed {
			l.resume(c, running, l.opts.Stop)
		}
		return err
	}
	st := Stats{Number: l.saves.Load() + 1, Bytes: int(size), Pages: ck.PageCount(), Stop: t1.Sub(t0), Save: time.Since(t1), Paused: paused,
		Console: ck.ConsoleBytes, Read: l.inc.Read, Reused: l.inc.Reused}
	l.lastMu.Lock()
	l.last = st
	l.lastMu.Unlock()
	l.saves.Add(1)
	l.log.Info("checkpoint saved", "file", l.opts.File, "why", why, "bytes", st.Bytes, "pages", st.Pages,
		"spaces", len(ck.Spaces), "threads", len(ck.Threads), "pages_read", st.Read, "pages_reused", st.Reused, "stop", st.Stop, "save", st.Save, "paused", st.Paused)
	if stop {
		l.stopped.Store(true)
		for _, th := range running {
			c.HandleClose(th)
		}
		c.SpaceKill(child, 0)
		return nil
	}
	return startErr
}

// resume restarts the threads a save that failed stopped; with stop it
// leaves them stopped, for run to end the program where it stands, and
// closes their handles.
func (l *Layer) resume(c *vmm.Caller, running []uint64, stop bool) {
	if !stop {
		StartAll(c, running)
		return
	}
	for _, th := range running {
		c.HandleClose(th)
	}
}

// saveRequest is a save SaveNow asks the layer's saver for.
type saveRequest struct {
	stop bool
	done chan error
}

// SaveNow saves the program below the layer now, as SIGUSR1 does, and
// returns the file it wrote once it is written. With stop the program
// ends after the save, no further than where it was stopped, as the stop
// option makes every save do; without it the program goes on (whatever
// the layer's own stop option says: the caller asked for this save
// alone). A program whose first thread has not started yet is waited
// for, until ctx ends.
func (l *Layer) SaveNow(ctx context.Context, stop bool) (string, error) {
	for {
		req := saveRequest{stop: stop, done: make(chan error, 1)}
		select {
		case l.now <- req:
		case <-l.quit:
			return "", fmt.Errorf("checkpoint %s not saved: %w", l.opts.File, ErrEnded)
		case <-ctx.Done():
			return "", fmt.Errorf("checkpoint %s not saved: %w", l.opts.File, ctx.Err())
		}
		err := <-req.done
		if !errors.Is(err, errNotStarted) {
			if err != nil {
				return "", fmt.Errorf("checkpoint %s not saved: %w", l.opts.File, err)
			}
			return l.opts.File, nil
		}
		// The loader is still building the program: ask again shortly,
		// as the run loop's own triggers do.
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return "", fmt.Errorf("checkpoint %s not saved: %w", l.opts.File, err)
		}
	}
}

// saveNow performs one SaveNow request on the saver's goroutine.
func (l *Layer) saveNow(c *vmm.Caller, stop bool) error {
	if l.stopped.Load() {
		return errors.New("the run already ended after a checkpoint")
	}
	err := l.checkpoint(c, "requested", stop, runnerTries > 1)
	for try := 1; errors.Is(err, ErrRunnerChanged) && try < runnerTries; try++ {
		err = l.checkpoint(c, "requested", stop, try+1 < runnerTries)
	}
	if err != nil && l.opts.Stop && !errors.Is(err, errNotStarted) {
		l.endAfterFailure(c)
	}
	return err
}

// errNotStarted is checkpoint's answer while no thread of the program runs.
var errNotStarted = errors.New("the program has not started")

// writeFile writes ck's file to a temporary file beside path and renames
// it over path, so a reader never sees half a checkpoint, and returns its
// size. The file and then its directory are synced, so that after a crash
// path holds the old checkpoint or the new one, whole. The temporary
// file's name carries the monitor's process id: RemoveStale removes it
// once that process is gone.
func writeFile(path string, ck *Checkpoint) (int64, error) {
	RemoveStale(path) // best effort: a file left behind is no failed save
	f, err := os.CreateTemp(filepath.Dir(path), fmt.Sprintf("%s%d-*", tempPrefix(path), os.Getpid()))
	if err != nil {
		return 0, err
	}
	size, err := WriteFile(f, ck)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return 0, err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return 0, fmt.Errorf("sync the directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return 0, fmt.Errorf("sync the directory: %w", err)
	}
	return size, nil
}

// tempPrefix is how the temporary files of saves to path begin; the
// saving process's id and a random part follow.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// RemoveStale removes the temporary files that saves to path left behind
// when their process was killed in the middle (SIGKILL, a crash): those
// whose process is gone. A save of a process that runs is left alone.
func RemoveStale(path string) error {
	dir, prefix := filepath.Dir(path), tempPrefix(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("look for stale temporary files: %w", err)
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // its process runs (or is not ours to ask about)
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove a stale temporary file: %w", err)
		}
	}
	return nil
}

// Close implements nester.Layer.
func (l *Layer) Close() error {
	l.heldMu.Lock()
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	l.heldMu.Unlock()
	if l.unsubscribe != nil {
		l.unsubscribe()
	}
	l.wg.Wait()
	l.release(nil)
	if l.host != nil {
		l.host.Kill("checkpoint layer closed")
	}
	return nil
}

// PageCount is the number of pages the checkpoint holds.
func (ck *Checkpoint) PageCount() int {
	n := 0
	for _, r := range ck.Regions {
		n += len(r.Pages)
	}
	return n
}

func init() {
	nester.Register(nester.Kind{
		Name:    "checkpoint",
		Summary: "saves the program below it (every space, thread, region, port, handle) to a file; nestvm restore resumes it",
		Usage:   Usage,
		New:     nester.Maker(New),
	})
}
