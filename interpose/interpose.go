// Package interpose makes layers small: it wraps a capability in a port
// whose server sees every operation invoked on it and, by default,
// forwards it to the capability it wraps. Under the uniform interposition
// rule the child cannot tell the difference, except through what the
// handler chooses to change. A layer that wraps nothing costs nothing: the
// child then holds the capability itself and the monitor serves it
// directly, however deep the stack.
//
// Border control: a Wrapper with Deep set also wraps every handle that
// comes back out of a forwarded call (an opened file, a created space,
// region, thread or port), so it sees everything the subtree below it does
// with what it was given.
//
// A handle a forwarded operation returns is handled in one place, Forward
// (which Call.Forward uses too): the result arrives in the layer's table,
// a ResultHook decides what the invoker gets for it (the object itself, a
// stand-in) and whether the layer keeps its handle, and no layer looks the
// handle up into a kernel object itself. A layer that stands in for a
// capability with a host port of its own (checkpoint and control keeping
// the spaces created below them, pager its program's space and regions)
// serves it with a Relay and its hook.
package interpose

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"nestvm/abi"
	"nestvm/vmm"
)

// Cap is a capability held outside any table: an object and the rights and
// badge a handle to it carries. Environments are made of them.
type Cap struct {
	Obj    vmm.Object
	Rights abi.Rights
	Badge  uint64
}

// Valid reports whether c names an object.
func (c Cap) Valid() bool { return c.Obj != nil }

// Handler decides what happens to each operation on a wrapped capability.
type Handler interface {
	// Handle is called inline on the invoking thread's goroutine. It must
	// end the call: Forward it, Return a result or Deny it; a call left
	// open is forwarded.
	Handle(c *Call)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(c *Call)

// Handle implements Handler.
func (f HandlerFunc) Handle(c *Call) { f(c) }

// Forwarder is the Handler that forwards everything: a wrap that only
// watches (Deep border control with no handler of its own).
var Forwarder Handler = HandlerFunc(func(c *Call) { c.Forward() })

// Wrapper wraps capabilities for one layer. Its Host holds the wrapped
// capabilities (as handles) while they are in use.
type Wrapper struct {
	// Host is the layer's seat (vmm.Monitor.NewHost).
	Host *vmm.Host
	// Handler sees every operation on a capability this Wrapper wrapped.
	Handler Handler
	// Deep wraps handles that come out of forwarded calls too.
	Deep bool
	// Layer names the layer, for the Call's Layer field.
	Layer string
	// Keep, when set, sees each handle a forwarded call returns, as a
	// handle h in Host's table, and keeps it open (the layer's from then
	// on) when it returns true. The program spaces made through the
	// environment's space capability are not offered: the Wrapper keeps
	// those itself, for EndPrograms.
	Keep func(c *Call, h uint64) bool

	seq   atomic.Uint64
	calls sync.Pool // of *Call, each with a Caller of Host

	// progs are the spaces made through the ProgramsCap stand-in.
	progOnce sync.Once
	progs    *Programs
}

// wrapped is one wrapped capability: the port's server.
type wrapped struct {
	w      *Wrapper
	orig   Cap
	target uint64 // the capability, as a handle in w.Host's table
	name   string
	typ    abi.ObjectType
	id     uint64
	// fwd is what Forward passes on: made once per capability, since the
	// closures it holds were two allocations a call, a third of what
	// interposing cost beyond the monitor's own work.
	fwd vmm.ForwardOptions
}

// Wrap returns a capability to a new port that stands in for c: the same
// rights and badge, every operation on it going to the Wrapper's Handler.
// name says what it is in the environment ("console", "files"), for
// handlers that decide by name.
func (w *Wrapper) Wrap(c Cap, name string) (Cap, error) {
	caller := w.Host.NewCaller()
	h, err := caller.Insert(c.Obj, c.Rights|abi.RightGrant|abi.RightDerive, c.Badge)
	if err != nil {
		return Cap{}, fmt.Errorf("wrap %s: %w", name, err)
	}
	ws := &wrapped{w: w, orig: c, target: h, name: name, typ: vmm.TypeOf(c.Obj), id: w.seq.Add(1)}
	ws.fwd = vmm.ForwardOptions{Lend: w.unwrap, Received: w.receivedFor(name)}
	port := vmm.NewHostPort(w.Layer+":"+name, ws)
	// Once nothing names the stand-in (no handle in any table, no
	// message, no environment), nobody can invoke it again: its handle
	// in the layer's table goes too. Border control wraps every handle
	// that comes out of a call, so without this a program that keeps
	// calling and closing fills the layer's table, and then every call
	// through the layer fails. (The monitor keeps a port alive while its
	// server serves a call on it.)
	runtime.AddCleanup(port, closeTarget, target{w.Host, h})
	return Cap{Obj: port, Rights: c.Rights, Badge: c.Badge}, nil
}

// target is a stand-in's handle to what it stands for, for closeTarget.
type target struct {
	host *vmm.Host
	h    uint64
}

// closeTarget closes the handle a stand-in nothing names any more held.
// It fails quietly when the layer's seat has ended (its table is gone).
func closeTarget(t target) { t.host.NewCaller().HandleClose(t.h) }

// unwrap turns this Wrapper's stand-ins, passed as handle arguments (a
// wrapped region given to space_map), back into what they stand for, so the
// operation forwarded to the parent acts on what the parent knows. A
// stand-in passed on as a capability (space_insert, port_send) stays
// itself: what the child hands on stays under the layer's watch.
func (w *Wrapper) unwrap(obj vmm.Object, rights abi.Rights, badge uint64, transfer bool) (vmm.Object, abi.Rights, uint64) {
	if !transfer {
		if ws, ok := vmm.ServerOf(obj).(*wrapped); ok && ws.w == w {
			// The handle's badge: the stand-in's own, or one the child
			// set by deriving it (a keeper's badge, say).
			return ws.orig.Obj, rights & ws.orig.Rights, badge
		}
	}
	return obj, rights, badge
}

// Underlying returns what obj stands for when it is a stand-in of any
// Wrapper's (through stand-ins of stand-ins, down to the first object
// that is none), obj itself otherwise. It grants nothing: it tells
// whether two stand-ins stand for the same thing, as handle_identify
// tells of two handles.
func Underlying(obj vmm.Object) vmm.Object {
	for range 64 { // wrappers stack no deeper than layers do
		ws, ok := vmm.ServerOf(obj).(*wrapped)
		if !ok {
			return obj
		}
		obj = ws.orig.Obj
	}
	return obj
}

// receivedFor returns, for a Deep Wrapper, what hands the receiver of a
// message its stand-ins for the handles the message carries (a fault's
// thread, a handle sent through a port): border control covers what comes
// in by message too. name is the capability the message came through.
func (w *Wrapper) receivedFor(name string) vmm.Lend {
	if !w.Deep {
		return nil
	}
	return func(obj vmm.Object, rights abi.Rights, badge uint64, _ bool) (vmm.Object, abi.Rights, uint64) {
		if w.ours(obj) {
			return obj, rights, badge
		}
		cp, err := w.Wrap(Cap{Obj: obj, Rights: rights, Badge: badge}, name+".received")
		if err != nil {
			return nil, 0, 0 // never the raw handle: it would escape the layer
		}
		return cp.Obj, cp.Rights, cp.Badge
	}
}

// ours reports whether obj is one of w's stand-ins: under border control
// already, not to be wrapped again.
func (w *Wrapper) ours(obj vmm.Object) bool {
	ws, ok := vmm.ServerOf(obj).(*wrapped)
	return ok && ws.w == w
}

// Call is one operation invoked on a wrapped capability. It is valid only
// until the Handler's Handle returns.
type Call struct {
	// Inv is the operation as the monitor decoded it: its number, slots,
	// buffers, and the invoking thread.
	Inv *vmm.Invocation
	// Name is the wrapped capability's name; a capability that came out of
	// a call is named after the call ("files.files_open").
	Name string
	// Type is the type of the object the capability names.
	Type abi.ObjectType
	// ID numbers the wrapped capabilities of one Wrapper, from 1.
	ID uint64
	// Layer is the Wrapper's Layer.
	Layer string

	ws   *wrapped
	done bool
	// caller forwards the call: a Caller of the layer's space, kept with
	// the Call when it goes back to its Wrapper's pool. Making one per
	// call was a third of what wrapping cost, and a pool of its own
	// another pool round trip per call.
	caller *vmm.Caller
	// R0, R1 and Err are the result, once the call is done.
	R0, R1 uint64
	Err    error
	// Gave is the capability a forwarded call gave the caller, when its
	// result is a handle (space_create's new space): a layer that keeps
	// watch over what it made (timewarp counting its subtree's running
	// threads) keeps a copy.
	Gave Cap
}

// set readies c, a zero Call from the pool, for inv on ws. It and reset
// write field by field: a whole Call copied into the pooled one cost a
// bulk write barrier whenever the GC was marking, about a fifth of what
// a level of interposition costs host side.
func (c *Call) set(inv *vmm.Invocation, ws *wrapped) {
	c.Inv, c.Name, c.Type, c.ID, c.Layer, c.ws = inv, ws.name, ws.typ, ws.id, ws.w.Layer, ws
}

// reset makes c zero again but for its caller (every field: keep it in
// step with Call).
func (c *Call) reset() {
	c.Inv, c.Name, c.Type, c.ID, c.Layer, c.ws = nil, "", 0, 0, "", nil
	c.done, c.R0, c.R1, c.Err, c.Gave = false, 0, 0, nil, Cap{}
}

// StandsFor implements vmm.StandIn: handle_info on the stand-in reports
// the type of what it stands for, so a program sees no difference.
func (ws *wrapped) StandsFor() abi.ObjectType { return ws.typ }

// Original implements vmm.Proxy: handle_identify on the stand-in reports
// the identity of what it stands for, so two stand-ins for one object
// compare equal, as two handles to it would.
func (ws *wrapped) Original() vmm.Object { return ws.orig.Obj }

// Serve implements vmm.Server: it hands the call to the Handler.
func (ws *wrapped) Serve(inv *vmm.Invocation) {
	// A handler may not keep a Call after Handle returns: they are
	// recycled.
	c, _ := ws.w.calls.Get().(*Call)
	if c == nil {
		c = &Call{caller: ws.w.Host.NewCaller()}
	}
	c.set(inv, ws)
	defer func() {
		if p := recover(); p != nil {
			ws.w.panicked(c, p)
		}
		c.reset()
		ws.w.calls.Put(c)
	}()
	ws.w.Handler.Handle(c)
	if !c.done {
		c.Forward()
	}
}

// panicked ends a call whose handler panicked: the call fails, and the
// programs below the layer end with a report (EndPrograms); the monitor
// goes on.
func (w *Wrapper) panicked(c *Call, p any) {
	reason := fmt.Sprintf("layer %s panicked on %s of %s: %v", w.Layer, c.Inv.Op, c.Name, p)
	w.Host.Logger().Error("layer panicked", "layer", w.Layer, "op", c.Inv.Op.String(), "cap", c.Name, "panic", fmt.Sprint(p))
	if !c.done {
		c.done = true
		c.Inv.Fail(abi.ErrIO)
	}
	w.EndPrograms(reason)
}

// Op returns the operation.
func (c *Call) Op() abi.Op { return c.Inv.Op }

// Forward performs the operation on the wrapped capability and ends the
// call with its result. A handle the result carries is wrapped in turn
// when the Wrapper is Deep, and given to the caller as it is otherwise.
func (c *Call) Forward() (r0, r1 uint64, err error) { return c.forward(c.ws.fwd) }

// ForwardLending is Forward with each handle argument first passed
// through lend: a layer hands the operation something of its own instead
// of what the caller gave (a tracer its own fault server in place of an
// exception port).
func (c *Call) ForwardLending(lend vmm.Lend) (r0, r1 uint64, err error) {
	o := c.ws.fwd
	inner := o.Lend
	o.Lend = func(obj vmm.Object, rights abi.Rights, badge uint64, transfer bool) (vmm.Object, abi.Rights, uint64) {
		obj, rights, badge = lend(obj, rights, badge, transfer)
		if inner == nil {
			return obj, rights, badge
		}
		return inner(obj, rights, badge, transfer)
	}
	return c.forward(o)
}

func (c *Call) forward(o vmm.ForwardOptions) (r0, r1 uint64, err error) {
	r0, r1, err = Forward(c.Inv, c.caller, c.ws.target, o, (*border)(c))
	c.done, c.R0, c.R1, c.Err = true, r0, r1, err
	return r0, r1, err
}

// ReturnResult ends the call with the handle h of caller's table (the
// layer's), and r1, as its result, as Forward ends a call whose result is
// a handle: for a Handler that performed the operation itself.
func (c *Call) ReturnResult(caller *vmm.Caller, h, r1 uint64) error {
	err := ReturnResult(c.Inv, caller, h, r1, (*border)(c))
	c.done, c.R0, c.R1, c.Err = true, h, r1, err
	return err
}

// border is a Call as the ResultHook of its own results: the caller gets a
// capability to the same object, wrapped when the Wrapper is Deep (border
// control), and the Call notes it in Gave.
type border Call

// OnResult implements ResultHook.
func (b *border) OnResult(r Result) (Cap, bool, error) {
	c := (*Call)(b)
	w, cp := c.ws.w, r.Cap
	if w.Deep && !w.ours(cp.Obj) {
		var err error
		if cp, err = w.Wrap(cp, c.Name+"."+c.Inv.Info.Name); err != nil {
			return Cap{}, false, fmt.Errorf("%w: %w", abi.ErrNoMemory, err)
		}
	}
	c.Gave = cp
	if w.keepProgram(c, r.H) {
		return cp, true, nil
	}
	return cp, w.Keep != nil && w.Keep(c, r.H), nil
}

// Return ends the call with r0 and r1 without forwarding it.
func (c *Call) Return(r0, r1 uint64) {
	c.done, c.R0, c.R1 = true, r0, r1
	c.Inv.Return(r0, r1)
}

// Deny ends the call with error e without forwarding it.
func (c *Call) Deny(e abi.Error) {
	c.done, c.Err = true, e
	c.Inv.Fail(e)
}
