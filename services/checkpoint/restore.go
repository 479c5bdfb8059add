package checkpoint

import (
	"errors"
	"fmt"
	"time"

	"nestvm/abi"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// restorer rebuilds a checkpoint through its seat's table.
type restorer struct {
	host   *vmm.Host
	caller *vmm.Caller
	top    uint64      // the top space, once created
	run    *nester.Run // the running subtree, once its threads may start
}

// Restore rebuilds ck under env (nester.Root's environment, or one a
// layer made): the top space is created through env's space capability,
// every other space through its rebuilt parent, handles that named the
// environment are reconnected to env's capabilities of the same names, and
// the threads that were running are started. It runs as a program
// nester.Launch started does: a fault ends the subtree, and the end of its
// top space ends the run, whatever exception port the checkpoint gave it.
// A checkpoint with a runner (a personality's processes) is served by
// that personality, rebuilt from its record (nester.Runner): its port is
// the exception port of the spaces it served, and the run ends as it
// says (a Linux program's with the end of its first process).
func Restore(mon *vmm.Monitor, env nester.Env, ck *Checkpoint) (*nester.Run, error) {
	if err := ck.Validate(); err != nil {
		return nil, err
	}
	host := mon.NewHost("restore", vmm.Quota{Handles: 1 << 17, Children: 1})
	r := &restorer{host: host, caller: host.NewCaller()}
	if err := r.rebuild(env, ck); err != nil {
		if r.top != 0 {
			r.caller.SpaceKill(r.top, nester.StatusMonitor)
		}
		host.Kill("restore failed")
		return nil, err
	}
	return r.run, nil
}

// ErrCPU is wrapped by the error of a restore onto a backend that lacks a
// CPU feature the checkpoint was taken with.
var ErrCPU = errors.New("the backend lacks CPU features the program was saved with")

// CheckCPU says whether b offers every CPU feature ck was saved with: a
// program's C library (or the Go runtime) picks code by them once, at
// start, and would die of SIGILL later on a CPU without one. A checkpoint
// that recorded none (an older file), or a backend that does not say,
// passes. Restore does not call it: the caller decides, since a program
// known to pick nothing by CPUID (a nestvm SDK guest, a musl program)
// resumes anywhere (nestvm restore --ignore-cpu).
func CheckCPU(ck *Checkpoint, b machine.Backend) error {
	have, ok := machine.CPUFeaturesOf(b)
	if ck.CPU == nil || !ok {
		return nil
	}
	if missing := ck.CPU.Missing(have); !missing.Empty() {
		return fmt.Errorf("%w: saved on %s offering %s, which %s lacks (a program that picks no code by CPUID, such as a musl or nestvm SDK program, resumes anyway with --ignore-cpu; where kvm can narrow what guests read, its default --cpu portable saves programs that resume on either backend, and nestvm info says whether this host can)",
			ErrCPU, ck.Backend, missing, b.Name())
	}
	return nil
}

func (r *restorer) rebuild(env nester.Env, ck *Checkpoint) error {
	c := r.caller
	var failure error
	must := func(what string) func(r0, r1 uint64, err error) uint64 {
		return func(r0, _ uint64, err error) uint64 {
			if err != nil && failure == nil {
				failure = fmt.Errorf("%s: %w", what, err)
			}
			return r0
		}
	}
	parent, err := env.Hold(c, nester.CapSpace)
	if err != nil {
		return fmt.Errorf("restoring into the environment: %w", err)
	}
	if err := checkExternalRights(env, ck); err != nil {
		return err
	}
	ext := make([]uint64, len(ck.Externals))
	for i, name := range ck.Externals {
		cp, ok := env.Caps[name]
		if !ok {
			return fmt.Errorf("the checkpoint's program holds %s, which this environment does not offer", name)
		}
		if ext[i], err = c.Insert(cp.Obj, cp.Rights, cp.Badge); err != nil {
			return err
		}
	}
	var runner nester.Resumer
	var ep uint64
	if ck.Runner != nil {
		if runner, err = r.runner(env, ck.Runner); err != nil {
			return err
		}
		if st, ok := runner.(nester.SaveTimed); ok && ck.Saved != 0 {
			st.SavedAt(time.Unix(0, ck.Saved), ck.Clock.Monotonic)
		}
		ep = runner.Port()
	} else {
		self, err := c.Self(abi.RightsAll)
		if err != nil {
			return err
		}
		ep = must("port_create")(c.PortCreate(self))
	}

	spaces := make([]uint64, len(ck.Spaces))
	for i, s := range ck.Spaces {
		in := parent
		if i > 0 {
			in = spaces[s.Parent]
		}
		spaces[i] = must(fmt.Sprintf("space_create (space %d)", i))(c.SpaceCreate(in, s.Pages, s.Threads, s.Handles, s.Children))
		if i == 0 {
			r.top = spaces[0]
		}
		if failure != nil {
			return failure
		}
	}
	ports := make([]uint64, len(ck.Ports))
	for i, p := range ck.Ports {
		ports[i] = must("port_create")(c.PortCreate(spaces[p.Owner]))
	}
	sets := make([]uint64, len(ck.PortSets))
	for i, ps := range ck.PortSets {
		sets[i] = must("port_set_create")(c.PortSetCreate(spaces[ps.Owner]))
		for _, p := range ps.Ports {
			must(fmt.Sprintf("port_set_add (port set %d, port %d)", i, p))(c.PortSetAdd(sets[i], ports[p]))
		}
	}
	regions := make([]uint64, len(ck.Regions))
	for i, rg := range ck.Regions {
		regions[i] = must(fmt.Sprintf("region_create (region %d, %d bytes)", i, rg.Size))(c.RegionCreate(spaces[rg.Owner], rg.Size))
		if failure != nil {
			return failure
		}
		if rg.Keeper.Kind == RefPort {
			k := must("handle_derive keeper")(c.HandleDerive(ports[rg.Keeper.Index], uint64(abi.RightCall|abi.RightGrant), rg.KeeperBadge))
			must("region_set_keeper")(c.RegionSetKeeper(regions[i], k))
			c.HandleClose(k)
			for _, p := range rg.Pages {
				must("region_supply")(c.RegionSupply(regions[i], p.Index*abi.PageSize, p.Data))
			}
			continue
		}
		for _, p := range rg.Pages {
			must("region_write")(c.RegionWrite(regions[i], p.Index*abi.PageSize, p.Data))
		}
	}
	threads := make([]uint64, len(ck.Threads))
	for i, t := range ck.Threads {
		threads[i] = must("thread_create")(c.ThreadCreate(spaces[t.Space], 0, 0, 0))
		must(fmt.Sprintf("thread_set_state (thread %d)", i))(c.ThreadSetState(threads[i], t.State))
	}
	if failure != nil {
		return failure
	}
	handleOf := func(ref Ref) uint64 {
		switch ref.Kind {
		case RefSpace:
			return spaces[ref.Index]
		case RefThread:
			return threads[ref.Index]
		case RefRegion:
			return regions[ref.Index]
		case RefPort:
			return ports[ref.Index]
		case RefPortSet:
			return sets[ref.Index]
		case RefExternal:
			return ext[ref.Index]
		case RefParent:
			return ep
		}
		return abi.NoHandle
	}
	for i, s := range ck.Spaces {
		if s.Exception.Kind != RefNone {
			p := handleOf(s.Exception)
			switch {
			case s.Exception.Kind == RefParent && runner != nil:
				// The runner tells its processes apart by their badges.
				p = must("handle_derive exception port")(c.HandleDerive(p, uint64(abi.RightCall|abi.RightGrant|abi.RightDerive), s.ExceptionBadge))
				defer c.HandleClose(p)
			case s.ExceptionBadge != 0 && s.Exception.Kind != RefParent:
				p = must("handle_derive exception port")(c.HandleDerive(p, uint64(abi.RightCall|abi.RightGrant|abi.RightDerive), s.ExceptionBadge))
				defer c.HandleClose(p)
			}
			must(fmt.Sprintf("space_set_exception_port (space %d)", i))(c.SpaceSetExceptionPort(spaces[i], p))
		}
		for _, m := range s.Maps {
			// The rights its limit needs, and read and control: the copy
			// of this handle space_get_state gives a later save carries
			// them, and region_get_state needs both.
			// Derive too: a personality that finds its regions in these
			// mappings shares them with a forked child.
			lim := abi.RightMap | abi.RightGrant | abi.RightControl | abi.RightRead | abi.RightDerive
			if m.Limit&abi.PermWrite != 0 {
				lim |= abi.RightWrite
			}
			if m.Limit&abi.PermExec != 0 {
				lim |= abi.RightExec
			}
			d := must("handle_derive region")(c.HandleDerive(regions[m.Region], uint64(lim), 0))
			must(fmt.Sprintf("space_map (space %d at %#x)", i, m.Addr))(c.SpaceMap(spaces[i], d, m.Addr, m.Offset, m.Size, m.Perm))
			c.HandleClose(d)
		}
		if failure != nil {
			return failure
		}
	}
	if err := r.rebuildTables(ck, spaces, handleOf); err != nil {
		return err
	}
	for i, p := range ck.Ports {
		for _, m := range p.Msgs {
			d := must("handle_derive port")(c.HandleDerive(ports[i], uint64(abi.RightCall), m.Badge))
			var pass uint64
			if m.Handle.Kind != RefNone {
				pass = must("handle_derive message handle")(c.HandleDerive(handleOf(m.Handle), m.Rights|uint64(abi.RightGrant), 0))
			}
			must("port_send")(c.PortSend(d, m.Tag, m.Data, pass))
			c.HandleClose(d)
			if pass != 0 {
				c.HandleClose(pass)
			}
		}
	}
	if failure != nil {
		return failure
	}
	if runner != nil {
		started, err := runner.Resume(c, r.top)
		if err != nil {
			return fmt.Errorf("rebuild the %s personality: %w", ck.Runner.Name, err)
		}
		r.run = nester.Adopt(r.host, started)
	} else {
		r.run = nester.Follow(r.host, r.top, ep)
	}
	for i, t := range ck.Threads {
		if t.Status == abi.ThreadRunning {
			must(fmt.Sprintf("thread_start (thread %d)", i))(c.ThreadStart(threads[i]))
		}
	}
	return failure
}

// runner makes the personality that served the checkpoint's subtree from
// its record, with every capability env offers, in the restorer's table.
func (r *restorer) runner(env nester.Env, rn *Runner) (nester.Resumer, error) {
	newRunner, ok := nester.Runner(rn.Name)
	if !ok {
		return nil, fmt.Errorf("the checkpoint's program was run by %q, which this nestvm does not have", rn.Name)
	}
	caps := map[string]uint64{}
	for _, name := range env.Names() {
		cp := env.Caps[name]
		h, err := r.caller.Insert(cp.Obj, cp.Rights, cp.Badge)
		if err != nil {
			return nil, err
		}
		caps[name] = h
	}
	res, err := newRunner(r.caller, caps, env, rn.Record)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return res, nil
}

// rebuildTables rebuilds every space's handle table with its derivation
// tree: each handle is derived, in the restorer's table, from the one it
// was derived from (or from the restorer's own handle to its object), and
// then moved to its number (space_insert_at with NV_INSERT_MOVE), which
// keeps the links, so revoke reaches the same handles as before the save.
func (r *restorer) rebuildTables(ck *Checkpoint, spaces []uint64, handleOf func(Ref) uint64) error {
	c := r.caller
	idx := ck.handleIndex()
	mine := map[*Handle]uint64{} // a handle -> its copy in the restorer's table, until moved
	// Validate ruled out loops, so this ends; parents go first.
	var derive func(h *Handle) (uint64, error)
	derive = func(h *Handle) (uint64, error) {
		if d, ok := mine[h]; ok {
			return d, nil
		}
		from := handleOf(h.Object)
		if p := h.parentIn(idx); p != nil {
			var err error
			if from, err = derive(p); err != nil {
				return 0, err
			}
		}
		// Grant to move it, derive for its children: the move then
		// leaves it exactly its own rights.
		d, _, err := c.HandleDerive(from, h.Rights|uint64(abi.RightGrant|abi.RightDerive), h.Badge)
		if err != nil {
			return 0, fmt.Errorf("handle_derive (handle %d, %s): %w", h.Number, h.Object, err)
		}
		mine[h] = d
		return d, nil
	}
	for i := range ck.Spaces {
		for k := range ck.Spaces[i].Table {
			if _, err := derive(&ck.Spaces[i].Table[k]); err != nil {
				return fmt.Errorf("space %d: %w", i, err)
			}
		}
	}
	for i := range ck.Spaces {
		for k := range ck.Spaces[i].Table {
			h := &ck.Spaces[i].Table[k]
			if _, _, err := c.SpaceInsertAt(spaces[i], mine[h], h.Rights, h.Number, abi.InsertMove); err != nil {
				return fmt.Errorf("space_insert_at (space %d handle %d): %w", i, h.Number, err)
			}
		}
	}
	return nil
}

// RightsError is Restore's refusal of a checkpoint whose program holds a
// capability of the environment with rights this environment's does not
// offer (files it could write, restored with read-only files).
type RightsError struct {
	Name        string     // the capability, as the environment names it
	Held, Offer abi.Rights // what the program holds, what env offers
}

func (e *RightsError) Error() string {
	return fmt.Sprintf("the checkpoint's program holds %s with rights %v, more than this environment's %s offers (%v)", e.Name, e.Held, e.Name, e.Offer)
}

// checkExternalRights refuses, before anything is built, a checkpoint
// whose handles (in tables or in queued messages) to env's capabilities
// need rights env's do not carry: rebuilding derives each from env's.
func checkExternalRights(env nester.Env, ck *Checkpoint) error {
	need := make([]abi.Rights, len(ck.Externals))
	for _, s := range ck.Spaces {
		for _, h := range s.Table {
			if h.Object.Kind == RefExternal {
				need[h.Object.Index] |= abi.Rights(h.Rights)
			}
		}
	}
	for _, p := range ck.Ports {
		for _, m := range p.Msgs {
			if m.Handle.Kind == RefExternal {
				need[m.Handle.Index] |= abi.Rights(m.Rights)
			}
		}
	}
	for i, name := range ck.Externals {
		cp, ok := env.Caps[name]
		if !ok {
			continue // said below, by name
		}
		if need[i]&^cp.Rights != 0 {
			return &RightsError{Name: name, Held: need[i], Offer: cp.Rights}
		}
	}
	return nil
}

// OutputCounter is a layer that counts its program's output (checkpoint,
// whose files record where in it they were taken).
type OutputCounter interface {
	ContinueFrom(ck *Checkpoint)
}

// ClockResumer is a layer that owns the time of the program below it
// (timewarp).
type ClockResumer interface {
	ResumeClock(monotonic, realtime uint64)
}

// ContinueLayers makes the layers that a program restored from ck runs
// under go on from where the saved run stood, once they wrap its
// environment and before Restore starts it: an OutputCounter's count
// goes on from the saved output's, so its own files say where they are in
// the output of the original run, and a ClockResumer's time from what the
// program's clock read when it was saved.
func ContinueLayers(layers []nester.Layer, ck *Checkpoint) {
	for _, l := range layers {
		if c, ok := l.(OutputCounter); ok {
			c.ContinueFrom(ck)
		}
		if c, ok := l.(ClockResumer); ok {
			c.ResumeClock(ck.Clock.Monotonic, ck.Clock.Realtime)
		}
	}
}
