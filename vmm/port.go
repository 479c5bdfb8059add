package vmm

import (
	"time"

	"nestvm/abi"
	"nestvm/machine"
)

// Server answers the operations invoked on a port. A host server is Go code
// in the monitor; its Serve runs inline on the calling thread's goroutine,
// so an interposed call costs one trap plus function calls.
type Server interface {
	// Serve performs inv and sets its result with Return or Fail. inv and
	// the buffers it holds are valid only until Serve returns.
	Serve(inv *Invocation)
}

// A StandIn is a Server that stands in for an object of another type (a
// layer's wrapper): handle_info on a handle to its port reports that type,
// so the program below cannot tell.
type StandIn interface {
	Server
	StandsFor() abi.ObjectType
}

// A Proxy is a StandIn that stands for one object and passes what it
// serves on to it (a layer's wrapper of a capability). handle_identify on
// a handle to its port reports that object's identity, as handle_info
// reports its type: a program that compares its handles (a restorer
// matching a space's threads to the handles naming them) finds under a
// layer what it would find without one, however many stand-ins for one
// object the layer handed it.
type Proxy interface {
	StandIn
	Original() Object
}

// TypeOf is the type of obj as a program holding a handle to it sees it
// (handle_info, space_get_state): a stand-in's is the type it stands for,
// so a layer stays invisible.
func TypeOf(obj Object) abi.ObjectType {
	if p, isPort := obj.(*Port); isPort {
		if si, ok := p.server.(StandIn); ok {
			return si.StandsFor()
		}
	}
	return obj.ObjectType()
}

// ServerFunc adapts a function to Server.
type ServerFunc func(inv *Invocation)

// Serve implements Server.
func (f ServerFunc) Serve(inv *Invocation) { f(inv) }

// Port is an IPC endpoint. Under the uniform interposition rule, every
// operation invoked on a handle naming a port (except handle operations) is
// delivered to the port's server as an Invocation, and the server's answer
// is the operation's result. That is how the console and clock are
// provided, and how any server can stand in for any object.
//
// A port is served either by a host Server, inline on the caller's
// goroutine, or by guest threads that receive from it (port_receive) and
// answer (port_reply); then calls queue on it.
type Port struct {
	objectID
	name   string
	server Server // nil for a guest-served port

	mon   *Monitor
	owner *Space // a guest-served port closes when its owner ends
	// Guarded by the monitor's IPC lock.
	queue   []*message
	set     *PortSet
	waiters map[*Thread]struct{}
	closed  bool
}

// NewHostPort returns a port served by s, inline in the monitor.
func NewHostPort(name string, s Server) *Port { return &Port{name: name, server: s} }

// ObjectType implements Object.
func (p *Port) ObjectType() abi.ObjectType { return abi.ObjPort }

// Server returns the host server of the port, nil for a guest-served one.
func (p *Port) Server() Server { return p.server }

// ServerOf returns the Go server behind obj when obj is a port a host
// server serves, nil otherwise. It is how a layer tells its own stand-ins
// (ports it serves) among the handles a call passes, without naming a
// kernel object type: it grants nothing the layer did not make.
func ServerOf(obj Object) Server {
	if p, ok := obj.(*Port); ok && p != nil {
		return p.server
	}
	return nil
}

// Name returns the port's name, for diagnostics.
func (p *Port) Name() string { return p.name }

// Invocation is one operation delivered to a server.
type Invocation struct {
	// thread is the calling thread; nil when host code invoked the
	// operation through the Go API (Invoker names it for servers).
	thread *Thread
	// Op is the operation and Info its description.
	Op   abi.Op
	Info *abi.OpInfo
	// Badge is the badge of the handle the caller invoked, and Rights its
	// rights (a server may refuse what they do not cover, as files_open
	// does for writes).
	Badge  uint64
	Rights abi.Rights
	// Slots are the raw argument slots.
	Slots [abi.MaxArgSlots]uint64

	bufs []GuestBuffer
	// res is the server's answer; its act is what the invoking thread
	// does after the call, when the server says (a forwarded
	// thread_exit of its own thread, a Restart).
	res result
	// from is who invoked it (a guest thread, or a host Caller's), for
	// handle arguments and Forward.
	from *Thread
	// forwardedHandle is set when the R0 a Forward of it returned is a
	// handle in the forwarding Caller's table.
	forwardedHandle bool
	// early, when set, ends a wait for a guest server's reply once it
	// reports true, the call withdrawn (a futex_wake of the thread's
	// futex_wait_clock, whose clock_wait a guest serves).
	early func() bool
}

// Invoker says which guest thread invoked an operation, by values a
// layer may record and compare: it names the thread without being it,
// and grants nothing.
type Invoker struct {
	// Space is the name of the thread's space.
	Space string
	// Thread is the thread's number in its space, as its faults name it.
	Thread int
	// Identity is the thread's identity, as handle_identify and
	// space_get_state report it: unique for the monitor's life and never
	// reused, so two calls came from one thread exactly when their
	// identities are equal. It is 0 when host code invoked the operation.
	Identity uint64
}

// Invoker names the guest thread that invoked the operation; its Identity
// is 0 (and the rest empty) when host code invoked it through the Go API.
func (inv *Invocation) Invoker() Invoker {
	t := inv.thread
	if t == nil {
		return Invoker{}
	}
	return Invoker{Space: t.space.name, Thread: t.id, Identity: t.identity()}
}

// GuestBuffer is a checked view of a guest buffer argument, valid during
// the call.
type GuestBuffer = userBuffer

// Buffer returns the i-th buffer argument (ArgIn or ArgOut, counted in
// argument order among buffers only).
func (inv *Invocation) Buffer(i int) GuestBuffer {
	if i < 0 || i >= len(inv.bufs) {
		return GuestBuffer{}
	}
	return inv.bufs[i]
}

// Return completes the operation with results r0 and r1.
func (inv *Invocation) Return(r0, r1 uint64) { inv.res = result{r0: r0, r1: r1, act: inv.res.act} }

// Fail completes the operation with error e.
func (inv *Invocation) Fail(e abi.Error) { inv.res = result{r0: e.Result(), act: inv.res.act} }

// ReturnRecord completes an operation that answers with a record in its
// first buffer (server_get_state and the like): R0 is the bytes written;
// a buffer smaller than rec gets nothing, NV_ETOOBIG, and R1 the size
// needed, so that the caller can ask again with room enough.
func (inv *Invocation) ReturnRecord(rec []byte) {
	buf := inv.Buffer(0)
	if buf.Len() < uint64(len(rec)) {
		inv.Complete(0, uint64(len(rec)), abi.ErrTooBig)
		return
	}
	buf.Write(rec)
	inv.Return(uint64(len(rec)), 0)
}

// Hold keeps the invoking thread in the operation until done is closed,
// and reports whether it was. A guest thread asked meanwhile to stop (a
// parent stopping its subtree with thread_stop) or to end is let go at
// once, and Hold returns false: the server then completes the operation,
// and the thread stops or ends as it returns, or calls Restart, and the
// thread re-issues the operation when resumed. A server holds a thread
// this way, not by blocking, so that whoever stops the subtree is not
// left waiting for the call to end. A host caller is held until done.
// While held the thread does not wait, for space_running: the server will
// let it go, as a thread stopped may be resumed (a checkpoint holds a
// writer so until it stops it for a save, and a layer owning time must
// not move time on meanwhile). A wait is HoldWake.
func (inv *Invocation) Hold(done <-chan struct{}) bool {
	t := inv.thread
	if t == nil && inv.from != nil {
		// Host code acting for a thread whose fault it serves (ActFor):
		// the thread is held, and a stop of it lets it go.
		t = inv.from.actingFor
	}
	ready := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	if t != nil {
		t.serverHeld.Add(1)
		defer t.serverHeld.Add(-1)
	}
	return holdOn(t, done, ready)
}

// holdOn keeps t (nil: a host caller acting for no thread, which waits
// for done alone) asleep in its call until ready says so after a wake;
// done being closed wakes it. It reports whether the sleep ended ready,
// not to let t stop or end.
func holdOn(t *Thread, done <-chan struct{}, ready func() bool) bool {
	if t == nil {
		<-done
		return true
	}
	over := make(chan struct{})
	defer close(over)
	go func() {
		select {
		case <-done:
			t.kick()
		case <-over:
		}
	}()
	return t.sleep(ready, true, time.Time{}, nil) == wakeReady
}

// HoldWake is Hold, except that a wake of the thread ends the hold too,
// as it ends a clock_wait: a personality kicks the thread whose call it
// serves when what the call waits for changes, and the thread then looks
// again. It reports true when done was closed or the thread was woken,
// false when it was let go to stop or end. A host caller acting for no
// thread is let go when its Caller is killed, so that host code can give
// up a wait (a timer set again) instead of leaving it held for good.
func (inv *Invocation) HoldWake(done <-chan struct{}) bool {
	t := inv.thread
	if t == nil && inv.from != nil {
		t = inv.from.actingFor
		if t == nil {
			t = inv.from
		}
	}
	// The first look is before the sleep; any later one follows a wake.
	looks := 0
	return holdOn(t, done, func() bool { looks++; return looks > 1 })
}

// Restart leaves the operation undone: the invoking thread re-issues it,
// with the same arguments, when it next runs. It is for a server that
// Hold let go before the server performed the operation.
func (inv *Invocation) Restart() { inv.res.act = machine.CallRestart }

// ReturnHandle completes the operation by giving the caller a handle
// naming obj with rights: R0 is its number in the caller's table (or
// ErrQuota when the table is full), R1 is r1.
func (inv *Invocation) ReturnHandle(obj Object, rights abi.Rights, r1 uint64) {
	inv.res = result{r1: r1, act: inv.res.act, give: &handleEntry{obj: obj, rights: rights}}
}
