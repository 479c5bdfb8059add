// Package nester is the nested process model for layers: environments
// (the named capabilities a program starts with), layers that turn a
// parent's environment into a child's, stacks of them, and launching a
// program at the bottom of a stack.
//
// A program under layers is loaded through its environment's space
// capability with ordinary operations (space_create, region_create,
// space_map, space_insert, thread_create), as a guest nester would load it:
// a layer that interposes on the space sees the loading too, and one that
// does not costs nothing.
package nester

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/interpose"
	"nestvm/machine"
	"nestvm/vmm"
)

// Names of the capabilities of an environment.
const (
	CapSpace   = interpose.ProgramsCap // where the program's space is created (its parent)
	CapConsole = "console"             // standard output
	CapStderr  = "stderr"              // diagnostics
	CapClock   = "clock"
	CapFiles   = "files"
	CapStdin   = "stdin" // standard input: an input console (console_read)
)

// Env is what a program starts with: named capabilities, and the memory
// its space may use.
type Env struct {
	Caps   map[string]interpose.Cap
	Memory uint64
	// Log is where layers log; each layer gets a named sub-logger.
	Log hclog.Logger
}

// With returns a copy of e with capability name replaced by c.
func (e Env) With(name string, c interpose.Cap) Env {
	caps := make(map[string]interpose.Cap, len(e.Caps))
	for k, v := range e.Caps {
		caps[k] = v
	}
	caps[name] = c
	e.Caps = caps
	return e
}

// WrapAll returns a copy of e with each capability replaced by w's
// stand-in for it, named as it is: a layer that watches its whole
// environment.
func (e Env) WrapAll(w *interpose.Wrapper) (Env, error) {
	caps := make(map[string]interpose.Cap, len(e.Caps))
	for _, name := range e.Names() {
		wc, err := w.Wrap(e.Caps[name], name)
		if err != nil {
			return Env{}, err
		}
		caps[name] = wc
	}
	e.Caps = caps
	return e, nil
}

// Hold puts e's capability name into c's table, as a handle with the
// capability's rights and badge: what a layer does to act on its
// environment through the ABI itself (a restore rebuilds a program in its
// environment's space so; StandIn forwards to what it holds). An
// environment without it is an error that names it.
func (e Env) Hold(c *vmm.Caller, name string) (uint64, error) {
	cp, ok := e.Caps[name]
	if !ok {
		return 0, fmt.Errorf("the environment has no %s", name)
	}
	h, err := c.Insert(cp.Obj, cp.Rights, cp.Badge)
	if err != nil {
		return 0, fmt.Errorf("holding the environment's %s: %w", name, err)
	}
	return h, nil
}

// StandIn holds e's capability name in c's table, as Hold does, and
// returns a copy of e in which name is a stand-in of the layer's own: a
// host port called label, with the rights and badge of the capability it
// stands for, served by what serve makes for the held handle (an
// interpose.Relay forwarding to it, with a hook on what it returns).
// Checkpoint, control and pager stand in for the environment's space so,
// to keep the spaces created through it. The stand-in reads as the type
// of what it stands for (handle_info), unless the server says otherwise
// (a vmm.StandIn).
func (e Env) StandIn(c *vmm.Caller, name, label string, serve func(target uint64) vmm.Server) (Env, error) {
	target, err := e.Hold(c, name)
	if err != nil {
		return e, err
	}
	cp := e.Caps[name]
	srv := serve(target)
	if _, typed := srv.(vmm.StandIn); !typed {
		srv = typedStandIn{srv, vmm.TypeOf(cp.Obj)}
	}
	return e.With(name, interpose.Cap{Obj: vmm.NewHostPort(label, srv), Rights: cp.Rights, Badge: cp.Badge}), nil
}

// typedStandIn is a stand-in's server that reads as the type of what it
// stands for.
type typedStandIn struct {
	vmm.Server
	typ abi.ObjectType
}

// StandsFor implements vmm.StandIn.
func (s typedStandIn) StandsFor() abi.ObjectType { return s.typ }

// Names returns the names of e's capabilities, sorted.
func (e Env) Names() []string {
	var names []string
	for n := range e.Caps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Layer sits between a parent environment and a child environment.
type Layer interface {
	// Name names the layer (as --layer does).
	Name() string
	// Wrap is given the parent's environment and returns the one it
	// offers its child. A seat of its own (mon.NewHost) holds what the
	// layer wraps.
	Wrap(mon *vmm.Monitor, parent Env) (Env, error)
	// Close ends the layer after the program below it has ended (a
	// summary, a flushed file); it is called from the innermost layer out.
	Close() error
}

// RootConfig is what the monitor gives the program at the top of a stack.
type RootConfig struct {
	Console, Stderr io.Writer
	Stdin           io.Reader  // nil: none
	Files           vmm.Server // nil: none
	FilesWritable   bool
	Memory          uint64
	// Threads, Handles and Children are the program's other quotas
	// (0: vmm.DefaultQuota's). The program's space takes them from the
	// root space it is created in; Children does not count that space
	// itself.
	Threads, Handles, Children int
	Log                        hclog.Logger
}

// Root returns the root environment: a host seat standing for the monitor
// (the program's space is created as its child), the console, stderr,
// stdin, clock and files. Killing the seat ends everything below it.
func Root(mon *vmm.Monitor, cfg RootConfig) (Env, *vmm.Host) {
	if cfg.Memory == 0 {
		cfg.Memory = vmm.DefaultQuota.Memory
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	q := vmm.DefaultQuota
	q.Memory = cfg.Memory
	if cfg.Threads != 0 {
		q.Threads = cfg.Threads
	}
	if cfg.Handles != 0 {
		q.Handles = cfg.Handles
	}
	if cfg.Children != 0 {
		q.Children = cfg.Children
	}
	// The program's space is one of the root's descendants: the root has
	// room for it and the Children below it.
	q.Children++
	root := mon.NewHost("root", q)
	caps := map[string]interpose.Cap{
		CapSpace:   {Obj: root.Object(), Rights: abi.RightsAll},
		CapConsole: {Obj: vmm.NewHostPort("console", vmm.ConsoleServer(cfg.Console)), Rights: abi.RightWrite | abi.RightGrant | abi.RightDerive},
		CapClock:   {Obj: vmm.NewHostPort("clock", vmm.ClockServer()), Rights: abi.RightRead | abi.RightGrant | abi.RightDerive},
	}
	if cfg.Stderr != nil {
		caps[CapStderr] = interpose.Cap{Obj: vmm.NewHostPort("stderr", vmm.ConsoleServer(cfg.Stderr)), Rights: abi.RightWrite | abi.RightGrant | abi.RightDerive}
	}
	if cfg.Stdin != nil {
		caps[CapStdin] = interpose.Cap{Obj: vmm.NewHostPort("stdin", vmm.StdinServer(cfg.Stdin)), Rights: abi.RightRead | abi.RightGrant | abi.RightDerive}
	}
	if cfg.Files != nil {
		r := abi.RightRead | abi.RightGrant | abi.RightDerive
		if cfg.FilesWritable {
			r |= abi.RightWrite
		}
		caps[CapFiles] = interpose.Cap{Obj: vmm.NewHostPort("files", cfg.Files), Rights: r}
	}
	return Env{Caps: caps, Memory: cfg.Memory, Log: cfg.Log}, root
}

// Program is a program to launch at the bottom of a stack.
type Program struct {
	Name      string
	Image     *vmm.Image
	Args      []string
	StackSize uint64 // vmm.DefaultStack when 0
	// Personality, when set, loads and serves the program instead of
	// nester's own loader (which runs programs written for nestvm's ABI).
	Personality Personality
}

// Personality loads a program written for another ABI (Linux's) and
// serves it: it is the program's loader and the server of its faults.
type Personality interface {
	// Start builds the program's spaces through the capabilities of env,
	// which caps names as handles in c's table, and starts it.
	Start(c *vmm.Caller, caps map[string]uint64, env Env, prog Program) (Started, error)
}

// Started is a program a Personality started. The personality, not a
// space, says when it ends: a Linux program outlives the space it
// started in when it execs, and may have many.
type Started interface {
	// Wait returns how the program ended, once it has.
	Wait() vmm.Result
	// Kill ends the whole program, saying why; Wait then reports it
	// killed, with status.
	Kill(status int, reason string)
}

// Run is a program running at the bottom of a stack, or restored from a
// checkpoint: it ends when the program's space ends, however that comes
// about.
type Run struct {
	layers []Layer
	caller *vmm.Caller
	host   *vmm.Host
	child  uint64
	// started is the program a personality started (instead of child);
	// guarded by mu.
	started Started
	done    chan struct{}
	once    sync.Once
	result  vmm.Result
	// mu guards started, reason, status, finished, layers, and result
	// once the run has ended.
	mu sync.Mutex
	// finished is set when the run has ended and taken its layers.
	finished bool
	// reason and status are what Kill was given, once it was called: the
	// result of a run it ended carries them, whoever reports the end.
	reason string
	status int
}

// Launch wraps root through layers, from the first (nearest the monitor)
// to the last, and starts prog in a space created through the innermost
// environment's space capability.
func Launch(mon *vmm.Monitor, root Env, layers []Layer, prog Program) (*Run, error) {
	env, err := Wrap(mon, root, layers)
	if err != nil {
		return nil, err
	}
	host := mon.NewHost("nester", vmm.Quota{Memory: 0, Handles: 1 << 16, Children: 1})
	r := &Run{layers: layers, caller: host.NewCaller(), host: host, done: make(chan struct{})}
	if err := r.load(env, prog); err != nil {
		host.Kill("launch failed")
		// A layer that failed while the program was loaded (a trace that
		// cannot write) is why loading failed: say so.
		if cerr := closeAll(layers); cerr != nil {
			return nil, fmt.Errorf("launch %s: %w; %w", prog.Name, err, cerr)
		}
		return nil, fmt.Errorf("launch %s: %w", prog.Name, err)
	}
	return r, nil
}

// Wrap wraps root through layers, from the first (nearest the monitor) to
// the last, and returns the innermost environment. When a layer fails,
// every layer is closed: the caller made them all, and none will run.
func Wrap(mon *vmm.Monitor, root Env, layers []Layer) (Env, error) {
	env := root
	for i, l := range layers {
		var err error
		if env, err = l.Wrap(mon, env); err != nil {
			closeAll(layers)
			return Env{}, fmt.Errorf("layer %d (%s): %w", i+1, l.Name(), err)
		}
	}
	return env, nil
}

// closeAll closes layers, the innermost first, and joins their errors.
func closeAll(layers []Layer) error {
	var errs []error
	for i := len(layers) - 1; i >= 0; i-- {
		if err := layers[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("layer %s: %w", layers[i].Name(), err))
		}
	}
	return errors.Join(errs...)
}

// load builds the program's space through env and starts it.
func (r *Run) load(env Env, prog Program) error {
	c := r.caller
	in := map[string]uint64{}
	for _, name := range env.Names() {
		cp := env.Caps[name]
		h, err := c.Insert(cp.Obj, cp.Rights, cp.Badge)
		if err != nil {
			return err
		}
		in[name] = h
	}
	if prog.Personality != nil {
		started, err := prog.Personality.Start(c, in, env, prog)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.started = started
		r.mu.Unlock()
		go func() { r.finish(started.Wait()) }()
		return nil
	}
	sp, ok := in[CapSpace]
	if !ok {
		return errors.New("the environment has no space")
	}
	step := func(what string) func(r0, r1 uint64, err error) (uint64, error) {
		return func(r0, _ uint64, err error) (uint64, error) {
			if err != nil {
				return 0, fmt.Errorf("%s: %w", what, err)
			}
			return r0, nil
		}
	}
	self, err := c.Self(abi.RightsAll)
	if err != nil {
		return err
	}
	ep, err := step("port_create")(c.PortCreate(self))
	if err != nil {
		return err
	}
	child, err := step("space_create")(c.SpaceCreate(sp, env.Memory/abi.PageSize, 0, 0, 0))
	if err != nil {
		return err
	}
	r.child = child
	if _, err := step("space_set_exception_port")(c.SpaceSetExceptionPort(child, ep)); err != nil {
		return err
	}

	// The image: one region, mapped in runs of one permission.
	img := prog.Image
	runs, lo, hi := img.Runs()
	image, err := step("region_create")(c.RegionCreate(child, hi-lo))
	if err != nil {
		return err
	}
	buf := make([]byte, hi-lo)
	for _, s := range img.Segments {
		copy(buf[s.Addr-lo:], s.Data)
	}
	if _, err := step("region_write")(c.RegionWrite(image, 0, buf)); err != nil {
		return err
	}
	for _, run := range runs {
		if _, err := step("space_map")(c.SpaceMap(child, image, run.Addr, run.Addr-lo, run.Size, permBits(run.Perm))); err != nil {
			return fmt.Errorf("segment at %#x: %w", run.Addr, err)
		}
	}

	// The stack, and a heap with half of what is left, as the monitor's
	// own loader gives.
	stackSize := prog.StackSize
	if stackSize == 0 {
		stackSize = vmm.DefaultStack
	}
	stackBase := uint64(abi.UserTop) - stackSize
	stack, err := step("region_create")(c.RegionCreate(child, stackSize))
	if err != nil {
		return err
	}
	if _, err := step("space_map")(c.SpaceMap(child, stack, stackBase, 0, stackSize, abi.PermRead|abi.PermWrite)); err != nil {
		return err
	}
	heapBase := vmm.HeapBase(hi)
	used := hi - lo + stackSize
	var heapSize uint64
	if env.Memory > used {
		heapSize = (env.Memory - used) / 2 &^ (abi.PageSize - 1)
	}
	heapSize = min(heapSize, stackBase-abi.PageSize-heapBase)
	if heapSize > 0 {
		heap, err := step("region_create heap")(c.RegionCreate(child, heapSize))
		if err != nil {
			return err
		}
		if _, err := step("space_map heap")(c.SpaceMap(child, heap, heapBase, 0, heapSize, abi.PermRead|abi.PermWrite)); err != nil {
			return err
		}
	} else {
		heapBase = 0
	}

	// The program's handles: its space, its thread, the services.
	info := abi.StartInfo{Magic: abi.StartMagic, Size: uint64(binary.Size(abi.StartInfo{})), ABIVersion: abi.Version,
		HeapBase: heapBase, HeapSize: heapSize, StackBase: stackBase, StackSize: stackSize}
	if info.Space, err = step("space_insert space")(c.SpaceInsert(child, child, uint64(abi.RightsAll))); err != nil {
		return err
	}
	th, err := step("thread_create")(c.ThreadCreate(child, img.Entry, 0, 0))
	if err != nil {
		return err
	}
	if info.Thread, err = step("space_insert thread")(c.SpaceInsert(child, th, uint64(abi.RightsAll))); err != nil {
		return err
	}
	for name, field := range map[string]*uint64{CapConsole: &info.Console, CapClock: &info.Clock, CapFiles: &info.Files, CapStderr: &info.Stderr, CapStdin: &info.Stdin} {
		h, ok := in[name]
		if !ok {
			continue
		}
		if *field, err = step("space_insert " + name)(c.SpaceInsert(child, h, uint64(env.Caps[name].Rights))); err != nil {
			return err
		}
	}
	page := make([]byte, min(stackSize, 256<<10))
	pageBase := stackBase + stackSize - uint64(len(page))
	rsp, infoAddr, err := vmm.BuildStack(page, pageBase, prog.Args, &info, img.Entry)
	if err != nil {
		return err
	}
	if _, err := step("region_write stack")(c.RegionWrite(stack, pageBase-stackBase, page)); err != nil {
		return err
	}
	regs := abi.ThreadState{Regs: abi.ThreadRegs{RIP: img.Entry, RSP: rsp, RDI: infoAddr}, FPU: [abi.FXSaveSize]byte(machine.ResetFPU())}
	state, _ := binary.Append(nil, binary.LittleEndian, &regs)
	if _, err := step("thread_set_state")(c.ThreadSetState(th, state)); err != nil {
		return err
	}
	r.follow(ep)
	if _, err := step("thread_start")(c.ThreadStart(th)); err != nil {
		return err
	}
	return nil
}

// Follow returns the Run of a program its caller built by hand (a
// restored checkpoint): child is the program's space and ep the exception
// port its caller gave it, both handles in host's table. The Run serves
// ep and watches the space, so it ends when the space does even where the
// program's own exception port is not ep (none, or a port of its own), and
// it kills host when it ends. The caller starts the program's threads
// after Follow returns.
func Follow(host *vmm.Host, child, ep uint64) *Run {
	r := &Run{caller: host.NewCaller(), host: host, child: child, done: make(chan struct{})}
	r.follow(ep)
	return r
}

// Adopt returns the Run of a program a personality serves that its
// caller rebuilt (a restored checkpoint, see Resumer): it ends when s
// says the program has, and then kills host.
func Adopt(host *vmm.Host, s Started) *Run {
	r := &Run{caller: host.NewCaller(), host: host, started: s, done: make(chan struct{})}
	go func() { r.finish(s.Wait()) }()
	return r
}

// follow serves ep and watches the program's space until the run ends.
func (r *Run) follow(ep uint64) {
	go r.serve(ep)
	go r.watch(r.child, ep)
}

// serve answers the program's exception port until the run ends.
func (r *Run) serve(ep uint64) { r.finish(ServeExceptions(r.host.NewCaller(), ep, r.killReason)) }

// ServeExceptions answers the exception port ep (a handle in c's table) of
// a program its caller runs, as the monitor would answer for a program it
// ran directly: a fault ends the program, and is the result; the exit
// notice ends the service, with the program's status. A kill by its parent
// is reported with reason's answer. It returns how the program ended.
func ServeExceptions(c *vmm.Caller, ep uint64, reason func() string) vmm.Result {
	msg := make([]byte, binary.Size(abi.Msg{}))
	var fault *vmm.FaultReport
	for {
		if _, _, err := c.PortReceive(ep, msg, nil); err != nil {
			return vmm.Result{Err: fmt.Errorf("exception port: %w", err)}
		}
		var m abi.Msg
		binary.Read(bytes.NewReader(msg), binary.LittleEndian, &m)
		for i := uint64(0); i < m.NHandles && i < abi.MsgHandles; i++ {
			c.HandleClose(m.Handles[i])
		}
		switch m.Kind {
		case abi.MsgFault:
			f := machine.Fault{Vector: machine.Vector(m.Words[abi.FaultWordVector]), ErrorCode: uint32(m.Words[abi.FaultWordError]),
				Addr: m.Words[abi.FaultWordAddr], RIP: m.Words[abi.FaultWordRIP]}
			fault = &vmm.FaultReport{Thread: int(m.Words[abi.FaultWordThread]), Fault: f}
			c.PortReply(ep, m.CallID, abi.FaultKill, uint64(f.ExitStatus()), nil, 0)
		case abi.MsgExit:
			res := vmm.Result{Exited: m.Words[0] == abi.SpaceExited, Status: int(m.Words[1])}
			switch {
			case fault != nil:
				res = vmm.Result{Fault: fault}
			case !res.Exited:
				res.Killed, res.KilledStatus = reason(), int(m.Words[1])
			}
			return res
		default:
			if m.CallID != 0 {
				c.PortReply(ep, m.CallID, abi.ErrInvalidOp.Result(), 0, nil, 0)
			}
		}
	}
}

// watch ends the run when the program's space ends and its exit notice
// does not come to ep: a program may name an exception port of its own,
// or none. Where the notice does come to ep, serve reports the end with
// all the notice says (a fault), however long the notice takes to be
// read.
func (r *Run) watch(child, ep uint64) {
	c := r.host.NewCaller()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
		st, status, err := c.SpaceStatus(child)
		if err == nil && st == abi.SpaceRunning {
			continue
		}
		if err == nil && exceptionPortIs(c, child, ep) {
			return
		}
		res := vmm.Result{Exited: st == abi.SpaceExited, Status: int(status)}
		if err != nil {
			res = vmm.Result{Err: fmt.Errorf("the program's space: %w", err)}
		} else if !res.Exited {
			res.Killed, res.KilledStatus = r.killReason(), int(status)
		}
		r.finish(res)
		return
	}
}

// exceptionPortIs reports whether the exception port of space, a handle
// in c's table, is the port ep names there. Once the space has begun to
// end its port is fixed, and its exit notice goes there. When that cannot
// be told, it reports false.
func exceptionPortIs(c *vmm.Caller, space, ep uint64) bool {
	rec, err := c.ReadSpace(space)
	if err != nil {
		return false
	}
	st := rec.Space
	// The record names everything in the space by copies in c's table.
	copies := []uint64{st.ExceptionPort}
	for _, m := range rec.Maps {
		copies = append(copies, m.Region)
	}
	for _, h := range rec.Handles {
		copies = append(copies, h.Handle)
	}
	for _, t := range rec.Threads {
		copies = append(copies, t.Handle)
	}
	defer func() {
		for _, h := range copies {
			if h != abi.NoHandle {
				c.HandleClose(h)
			}
		}
	}()
	if st.ExceptionPort == abi.NoHandle {
		return false
	}
	a, okA := identity(c, st.ExceptionPort)
	b, okB := identity(c, ep)
	return okA && okB && a == b
}

// identity returns the identity of the object handle h names in c's
// table.
func identity(c *vmm.Caller, h uint64) (uint64, bool) {
	buf := make([]byte, binary.Size(abi.HandleIdentity{}))
	if _, _, err := c.HandleIdentify(h, buf); err != nil {
		return 0, false
	}
	var id abi.HandleIdentity
	if _, err := binary.Decode(buf, binary.LittleEndian, &id); err != nil {
		return 0, false
	}
	return id.Object, true
}

// killReason is what Kill said, "killed" when the space ended some other
// way.
func (r *Run) killReason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reason == "" {
		return "killed"
	}
	return r.reason
}

// finish records res as how the run ended (the first result wins), closes
// the layers and ends the host space. A kill that Kill asked for is
// reported with Kill's reason and status, whichever way the news came (the
// exit notice, the watcher, a personality), so that a caller tells its own
// kills apart by status, never by the words of a message; any other kill
// is reported as "killed".
func (r *Run) finish(res vmm.Result) {
	r.once.Do(func() {
		if res.Killed != "" {
			res.Killed = r.killReason()
		}
		r.mu.Lock()
		if res.Killed != "" && r.reason != "" {
			res.KilledStatus = r.status
		}
		r.finished = true
		layers := r.layers
		r.mu.Unlock()
		if err := closeAll(layers); err != nil {
			// A layer that failed is why the run ended, and why what is
			// below it could no longer be read (the watcher's space_status
			// through a layer that refuses every call once it has failed,
			// which may come before the exit notice): it comes first.
			if res.Err == nil {
				res.Err = err
			} else {
				res.Err = fmt.Errorf("%w; %w", err, res.Err)
			}
		}
		r.mu.Lock()
		r.result = res
		r.mu.Unlock()
		r.host.Kill("run over")
		close(r.done)
	})
}

// Own hands layers, those a program built by hand (Follow, Adopt) runs
// under, to the run: it closes them, the innermost first, when the program
// ends, and a layer that fails to close is the run's error, as for a run
// Launch started. Called after the program ended, it closes them at once.
func (r *Run) Own(layers []Layer) {
	r.mu.Lock()
	if !r.finished {
		r.layers = append(r.layers, layers...)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	err := closeAll(layers)
	<-r.done
	r.mu.Lock()
	if err != nil && r.result.Err == nil {
		r.result.Err = err
	}
	r.mu.Unlock()
}

// Kill ends the program with status, saying why; the first Kill is the
// one the result reports.
func (r *Run) Kill(status int, reason string) {
	if reason == "" {
		reason = "killed"
	}
	r.mu.Lock()
	if r.reason == "" {
		r.reason, r.status = reason, status
	}
	started := r.started
	r.mu.Unlock()
	if started != nil {
		started.Kill(status, reason)
		return
	}
	if _, _, err := r.caller.SpaceKill(r.child, uint64(status)); err != nil {
		r.finish(vmm.Result{Killed: reason, KilledStatus: status})
	}
}

// Await waits for the program to end, killing it with StatusTimeout once
// timeout has passed (0: no limit) and with StatusInterrupt at the first
// signal from interrupt, and returns how it ended. ok is false when a
// second signal came before the end: the caller should stop waiting.
func (r *Run) Await(timeout time.Duration, interrupt <-chan os.Signal) (res vmm.Result, ok bool) {
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	interrupted := false
	for {
		select {
		case <-r.done:
			return r.Wait(), true
		case <-timer:
			timer = nil
			r.Kill(StatusTimeout, fmt.Sprintf("timeout after %s", timeout))
		case sig := <-interrupt:
			if interrupted {
				return vmm.Result{}, false
			}
			interrupted = true
			r.Kill(StatusInterrupt, fmt.Sprintf("interrupted by %s", sig))
		}
	}
}

// Done is closed when the program has ended and every layer is closed.
func (r *Run) Done() <-chan struct{} { return r.done }

// Wait returns how the program ended.
func (r *Run) Wait() vmm.Result {
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.result
}

// permBits turns a vmm permission into the ABI's bits.
func permBits(p machine.Perm) uint64 {
	var b uint64
	if p&machine.PermRead != 0 {
		b |= abi.PermRead
	}
	if p&machine.PermWrite != 0 {
		b |= abi.PermWrite
	}
	if p&machine.PermExec != 0 {
		b |= abi.PermExec
	}
	return b
}

// ParseSpec splits a --layer value, "name" or "name=arg,key=value,...",
// into the name and its arguments.
func ParseSpec(spec string) (name, args string) {
	name, args, _ = strings.Cut(spec, "=")
	return strings.TrimSpace(name), args
}
