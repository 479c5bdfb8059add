package vmm

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/machine"
)

// The host-side API: Go code in the monitor holds handles and invokes
// operations on them exactly as a guest does, through the same decoder and
// the same checks, so a layer written in Go (package nester and the
// services) sees the same objects, rights and errors as a guest nester.
// The only difference is where buffers live: a guest passes addresses in
// its space, host code passes Go byte slices.

// NewHostSpace returns a space for host code: a handle table, quotas,
// children, ports, but no memory and no guest threads. Host code acts in
// it through a Caller.
func (m *Monitor) NewHostSpace(name string, q Quota) *Space {
	if q.Threads <= 0 || q.Threads > MaxThreadsQuota {
		q.Threads = DefaultQuota.Threads
	}
	id := m.nextSpace.Add(1)
	log := m.log.Named(fmt.Sprintf("space%d", id)).With("program", name)
	return &Space{
		mon: m, id: id, name: name, log: log, quota: q,
		handles: newHandleTable(q.Handles), threads: map[*Thread]struct{}{},
		done: make(chan struct{}),
	}
}

// Host is the seat a piece of host code (a Go layer, a personality, a
// loader) holds capabilities in: a host space it acts in through Callers,
// on its handles and with their rights only. It offers nothing a guest
// could not do with a handle to its own space: no mapping, no handle
// inserted past the rights of one it holds, no look at the space's
// insides. Killing it ends what was created through it.
type Host struct {
	s *Space
}

// NewHost returns the seat of host code named name, with quota q: a host
// space (see NewHostSpace) held through the host API.
func (m *Monitor) NewHost(name string, q Quota) *Host {
	return &Host{s: m.NewHostSpace(name, q)}
}

// NewCaller returns a Caller acting in the seat.
func (h *Host) NewCaller() *Caller { return h.s.NewCaller() }

// Kill ends the seat and everything created through it (child spaces, and
// the waits of its Callers); Done closes once it has ended. It is how a
// layer lets go of all it held when it closes.
func (h *Host) Kill(reason string) { h.s.Kill(reason) }

// Done is closed once the seat has ended.
func (h *Host) Done() <-chan struct{} { return h.s.Done() }

// Logger returns the seat's logger.
func (h *Host) Logger() hclog.Logger { return h.s.log }

// Name returns the name the seat was made with.
func (h *Host) Name() string { return h.s.name }

// Object returns the seat as an object, for an environment that offers it
// as its space capability (nester.Root's): it is the seat's holder who
// decides with what rights, as one holding a handle to its own space with
// every right may insert copies of it.
func (h *Host) Object() Object { return h.s }

// hostSpace reports whether s is a host space (no memory, no machine).
func (s *Space) hostSpace() bool { return s.machine == nil }

// Logger returns the space's logger.
func (s *Space) Logger() hclog.Logger { return s.log }

// Caller is host code invoking operations in the name of a space: on the
// space's handles, with the space's rights. A Caller blocks in operations
// that block (a port_call waits for the reply), like a guest thread; Kill
// ends its wait. It is not safe for concurrent use: use one per goroutine.
// SpaceKill through a Caller acting for itself returns once the space is
// ending, without waiting for it to end: host code may be running on one
// of the threads it kills (a layer's handler runs on its caller's).
type Caller struct {
	t *Thread
}

// NewCaller returns a Caller acting in s.
func (s *Space) NewCaller() *Caller {
	return &Caller{t: &Thread{space: s, id: -1, wake: make(chan struct{}, 1), state: abi.ThreadRunning}}
}

// Host returns the seat the caller acts in, for host code that was handed
// a Caller and makes more of them.
func (c *Caller) Host() *Host { return &Host{s: c.t.space} }

// Self puts a handle to the caller's own space in its table, with rights,
// and returns its number: what a guest gets from its creator at start
// (StartInfo.Space), host code takes here, to create ports and children
// in its own space.
func (c *Caller) Self(rights abi.Rights) (uint64, error) {
	h, e := c.t.space.addHandle(handleEntry{obj: c.t.space, rights: rights}, nil)
	if e != abi.OK {
		return 0, fmt.Errorf("handle to one's own space: %w", e)
	}
	return h, nil
}

// Kill ends the caller's current and future waits: a blocked operation
// returns ErrPeerGone.
func (c *Caller) Kill() { c.t.kill() }

// Invoke performs op on handle h, as a guest's call to the ABI entry does.
// slots are the operation's argument slots; buffer arguments (abi.ArgIn,
// abi.ArgOut) take their bytes from bufs, in argument order, instead of
// guest addresses, and their slots are filled in from them. It returns R0
// and R1, and the error R0 carries when negative.
func (c *Caller) Invoke(h uint64, op abi.Op, slots [abi.MaxArgSlots]uint64, bufs ...[]byte) (r0, r1 uint64, err error) {
	t := c.t
	n, info, e := t.check(h, op)
	if e != abi.OK {
		return e.Result(), 0, e
	}
	inv := Invocation{thread: nil, Op: op, Info: info, Badge: n.badge, Rights: n.rights, Slots: slots, from: t}
	slot, k := 0, 0
	for _, a := range info.Args {
		if a.Kind == abi.ArgIn || a.Kind == abi.ArgOut {
			var b []byte
			if k < len(bufs) {
				b = bufs[k]
			}
			k++
			if uint64(len(b)) > abi.MaxBuffer {
				return abi.ErrTooBig.Result(), 0, abi.ErrTooBig
			}
			inv.Slots[slot], inv.Slots[slot+1] = 0, uint64(len(b))
			ub := userBuffer{n: uint64(len(b))}
			if len(b) > 0 {
				ub.pieces = [][]byte{b}
			}
			inv.bufs = append(inv.bufs, ub)
		}
		slot += a.Kind.Slots()
	}
	r := t.execute(n, &inv)
	if r.act == machine.CallRestart || (r.act == machine.CallStop && r.r0 == 0 && t.shouldQuit()) {
		return abi.ErrPeerGone.Result(), 0, abi.ErrPeerGone
	}
	if v := int64(r.r0); v < 0 {
		return r.r0, r.r1, abi.ResultError(r.r0)
	}
	return r.r0, r.r1, nil
}

// Insert puts a handle naming obj with rights and badge in the caller's
// space and returns its number: how host code first gets hold of objects
// it made itself (a host port, a launched space).
func (c *Caller) Insert(obj Object, rights abi.Rights, badge uint64) (uint64, error) {
	h, e := c.t.space.addHandle(handleEntry{obj: obj, rights: rights, badge: badge}, nil)
	if e != abi.OK {
		return 0, fmt.Errorf("insert handle: %w", e)
	}
	return h, nil
}

// Lookup returns the object handle h names in the caller's space, with
// the handle's rights and badge.
func (c *Caller) Lookup(h uint64) (Object, abi.Rights, uint64, error) {
	n, ok := c.t.space.lookupHandle(h)
	if !ok {
		return nil, 0, 0, fmt.Errorf("handle %d: %w", h, abi.ErrBadHandle)
	}
	return n.obj, n.rights, n.badge, nil
}

// HandleArg returns what the handle in argument slot i names in the
// invoker's table (its object, rights and badge); ok is false when the
// slot holds NoHandle or no handle. A host server may act on it (Forward
// does, lending it to the operation it forwards).
func (inv *Invocation) HandleArg(i int) (obj Object, rights abi.Rights, badge uint64, ok bool) {
	n := inv.handleArgNode(i)
	if n == nil {
		return nil, 0, 0, false
	}
	return n.obj, n.rights, n.badge, true
}

// handleArgNode returns the invoker's handle in slot i, or nil.
func (inv *Invocation) handleArgNode(i int) *capNode {
	if inv.from == nil || i < 0 || i >= abi.MaxArgSlots {
		return nil
	}
	n, found := inv.from.space.lookupHandle(inv.Slots[i])
	if !found {
		return nil
	}
	return n
}

// Forward performs inv again, on handle target of c's space, with the
// same arguments: its buffers (written back for output ones) and its
// handle arguments, lent to c's table for the call. The operation acts
// for the thread that invoked inv, so "itself" keeps its meaning (a
// forwarded thread_exit of one's own thread ends that thread). It returns
// the result, and does not complete inv: the caller decides (Complete).
// A result that is a handle is a number in c's table (ForwardedHandle).
func (inv *Invocation) Forward(c *Caller, target uint64) (r0, r1 uint64, err error) {
	return inv.ForwardWith(c, target, nil)
}

// Lend decides what a handle argument becomes when an operation is
// forwarded: given what it names in the invoker's table, it returns what to
// lend the forwarded operation (a layer unwraps its own stand-ins here).
// transfer says whether the operation passes the handle on as a capability
// (abi.OpInfo.Transfer) rather than acting on its object.
type Lend func(obj Object, rights abi.Rights, badge uint64, transfer bool) (Object, abi.Rights, uint64)

// ForwardWith is Forward with handle arguments passed through lend.
func (inv *Invocation) ForwardWith(c *Caller, target uint64, lend Lend) (r0, r1 uint64, err error) {
	return inv.ForwardWithOptions(c, target, ForwardOptions{Lend: lend})
}

// ForwardOptions adjust a forwarded operation.
type ForwardOptions struct {
	// Lend decides what each handle argument becomes (see Lend).
	Lend Lend
	// Received decides what each handle a received message carries
	// becomes in the invoker's table (its transfer argument is true): a
	// layer under border control hands out its stand-ins.
	Received Lend
}

// ForwardWithOptions is Forward with options.
func (inv *Invocation) ForwardWithOptions(c *Caller, target uint64, o ForwardOptions) (r0, r1 uint64, err error) {
	lend := o.Lend
	t := c.t
	n, info, e := t.check(target, inv.Op)
	if e != abi.OK {
		return e.Result(), 0, e
	}
	// The forwarded call carries no more rights than the invoker's handle
	// had: a server deciding by rights (files_open for writing) must see
	// a read-only copy of a stand-in as read-only.
	fwd := invocations.Get().(*Invocation)
	bufs := fwd.bufs[:0]
	// It carries the invoker's badge where c's handle has none: a server
	// behind a stand-in tells its clients apart as it would without it.
	badge := n.badge
	if badge == 0 {
		badge = inv.Badge
	}
	// A wait that a wake may end (futex_wait_clock's clock_wait) still
	// may when a layer passes it on to a guest server.
	*fwd = Invocation{thread: inv.thread, Op: inv.Op, Info: info, Badge: badge, Rights: n.rights & inv.Rights, Slots: inv.Slots, from: t, bufs: bufs, early: inv.early}
	// Handles lent to c's table for the call, and (for space_insert_at
	// with NV_INSERT_MOVE) the invoker's own handle moved through it, so
	// that it keeps its place in the derivation tree: it goes back if the
	// move fails.
	var (
		lent   [abi.MaxArgSlots]uint64
		nlent  int
		moved  *capNode
		from   *Space
		oldNum uint64
		acting bool
	)
	// One deferred call for all the undoing: a forwarded call is a hot
	// path, and several defers, one of them conditional, cost more than
	// the rest of the function.
	defer func() {
		if acting {
			t.actingFor, t.received = nil, nil
		}
		if moved != nil {
			from.moveBack(moved, t.space, oldNum)
		}
		for _, h := range lent[:nlent] {
			t.space.removeHandle(h)
		}
		clear(fwd.bufs)
		*fwd = Invocation{bufs: fwd.bufs[:0]}
		invocations.Put(fwd)
	}()
	moves := inv.Op == abi.OpSpaceInsertAt && inv.Slots[3]&abi.InsertMove != 0
	slot, k := 0, 0
	for _, a := range info.Args {
		switch a.Kind {
		case abi.ArgIn, abi.ArgOut:
			if k < len(inv.bufs) {
				fwd.bufs = append(fwd.bufs, inv.bufs[k])
			}
			k++
		case abi.ArgHandle:
			if src := inv.handleArgNode(slot); src != nil {
				obj, rights, badge := src.obj, src.rights, src.badge
				if lend != nil {
					obj, rights, badge = lend(obj, rights, badge, a.Name == info.Transfer)
				}
				if moves && a.Name == info.Transfer && obj == src.obj {
					sp, num := src.space, src.num
					h, e := t.space.moveIn(src)
					if e != abi.OK {
						return e.Result(), 0, e
					}
					moved, from, oldNum = src, sp, num
					fwd.Slots[slot] = h
					break
				}
				// Derived from the invoker's handle, even as what it
				// stands for: copies the operation makes of it (into a
				// table, in a message) stay within the invoker's revoke.
				h, e := t.space.addHandle(handleEntry{obj: obj, rights: rights, badge: badge}, src)
				if e != abi.OK {
					return e.Result(), 0, e
				}
				lent[nlent] = h
				nlent++
				fwd.Slots[slot] = h
			} else if inv.Slots[slot] != abi.NoHandle {
				fwd.Slots[slot] = ^uint64(0) // names nothing in c's table either
			}
		}
		slot += a.Kind.Slots()
	}
	if inv.from != nil {
		t.actingFor, t.received, acting = inv.from.who(), o.Received, true
	}
	res := t.execute(n, fwd)
	inv.forwardedHandle = res.handle && int64(res.r0) >= 0
	if res.act != machine.CallContinue && inv.from != nil {
		inv.res.act = res.act // the invoking thread stops, ends, or re-issues
	}
	if v := int64(res.r0); v < 0 {
		return res.r0, res.r1, abi.ResultError(res.r0)
	}
	return res.r0, res.r1, nil
}

// ForwardedHandle reports whether the R0 the last Forward of inv returned
// is a handle the operation put in the forwarding Caller's table: a new
// object's (abi.OpInfo.R0Handle), or one the server of a port answered
// with (port_call's reply may carry one, which no OpInfo announces). A
// layer hands the invoker its own handle to the object; the number in its
// table names nothing in the invoker's.
func (inv *Invocation) ForwardedHandle() bool { return inv.forwardedHandle }

// invocations recycles the Invocations of forwarded calls: a server may not
// keep one after Serve returns, and allocating one per level of
// interposition was a large part of what a level cost.
var invocations = sync.Pool{New: func() any { return new(Invocation) }}

// Complete ends inv with a forwarded result: r0 and r1, or err and r1
// (what NV_ETOOBIG says is needed, say).
func (inv *Invocation) Complete(r0, r1 uint64, err error) {
	if err != nil {
		inv.res = result{r0: abi.ErrorOf(err, abi.ErrIO).Result(), r1: r1, act: inv.res.act}
		return
	}
	inv.Return(r0, r1)
}

//go:generate go run ../internal/gohost -o hostapi_ops.go

// GetState performs a state operation (space_get_state, server_get_state,
// ...) on h through op, with a buffer of size bytes at first and again
// with the size it asks for while it answers NV_ETOOBIG (the state can
// grow in between), and returns the record it wrote. An answer that asks
// for no more room than it had, or for more than any buffer may hold, is
// an error: the server may be a guest's.
func GetState(h uint64, size int, op func(h uint64, buf []byte) (uint64, uint64, error)) ([]byte, error) {
	buf := make([]byte, size)
	for {
		n, need, err := op(h, buf)
		if errors.Is(err, abi.ErrTooBig) {
			if need <= uint64(len(buf)) || need > abi.MaxBuffer {
				return nil, fmt.Errorf("state record: a buffer of %d bytes is too small, and the answer asks for %d: %w", len(buf), need, err)
			}
			buf = make([]byte, need)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
