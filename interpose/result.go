package interpose

import (
	"sync"

	"nestvm/abi"
	"nestvm/vmm"
)

// Result is a handle a forwarded operation returned (a new object, a
// handle a server answered a port_call with), in the layer's table, while
// the layer decides what the invoker gets for it.
type Result struct {
	// Inv is the operation.
	Inv *vmm.Invocation
	// Caller is the layer's: H is in its table.
	Caller *vmm.Caller
	// H names the result in the layer's table. The hook may use it with
	// any operation (handle_identify, space_status); it is closed once
	// the hook returns, unless the hook keeps it.
	H uint64
	// R1 is the operation's second result, which the invoker gets too.
	R1 uint64
	// Cap is what H names: what the invoker gets unless the hook gives
	// something else.
	Cap Cap
}

// A ResultHook decides what the invoker of a forwarded operation gets for
// the handle the operation returned: give is r.Cap, or a stand-in for it;
// keep leaves r.H open, the layer's from then on. An error fails the
// operation, with its abi.Error or NV_EIO.
type ResultHook interface {
	OnResult(r Result) (give Cap, keep bool, err error)
}

// ResultFunc adapts a function to ResultHook.
type ResultFunc func(r Result) (give Cap, keep bool, err error)

// OnResult implements ResultHook.
func (f ResultFunc) OnResult(r Result) (Cap, bool, error) { return f(r) }

// Forward performs inv on target, a handle in caller's table, with o, and
// ends inv with the result, as a layer's stand-in does. A result that is a
// handle passes through hook first (nil gives the invoker what the layer
// got); the layer keeps no handle to it unless the hook says so.
func Forward(inv *vmm.Invocation, caller *vmm.Caller, target uint64, o vmm.ForwardOptions, hook ResultHook) (r0, r1 uint64, err error) {
	r0, r1, err = inv.ForwardWithOptions(caller, target, o)
	if err != nil || !inv.ForwardedHandle() {
		inv.Complete(r0, r1, err)
		return r0, r1, err
	}
	return r0, r1, ReturnResult(inv, caller, r0, r1, hook)
}

// ReturnResult ends inv with the handle h of caller's table, and r1, as its
// result, through hook as Forward does: for a layer that performed the
// operation itself (on a path it judged) rather than forwarding it.
func ReturnResult(inv *vmm.Invocation, caller *vmm.Caller, h, r1 uint64, hook ResultHook) error {
	obj, rights, badge, err := caller.Lookup(h)
	if err != nil {
		caller.HandleClose(h)
		inv.Fail(abi.ErrIO)
		return err
	}
	give, keep := Cap{Obj: obj, Rights: rights, Badge: badge}, false
	if hook != nil {
		give, keep, err = hook.OnResult(Result{Inv: inv, Caller: caller, H: h, R1: r1, Cap: give})
	}
	if !keep {
		caller.HandleClose(h)
	}
	if err != nil {
		e := abi.ErrorOf(err, abi.ErrIO)
		inv.Fail(e)
		return err
	}
	inv.ReturnHandle(give.Obj, give.Rights, r1)
	return nil
}

// Relay serves a stand-in a layer makes itself for one capability it
// holds: every operation goes on to Target, a handle in Host's table,
// through Forward with Hook. Its Callers are kept for the next call, as a
// Wrapper's are, so a call through it allocates none.
type Relay struct {
	// Host is the layer's seat; Target is in its table.
	Host   *vmm.Host
	Target uint64
	// Options adjust each forwarded call (vmm.ForwardOptions).
	Options vmm.ForwardOptions
	// Hook decides what a handle result becomes; nil passes it on.
	Hook ResultHook

	callers sync.Pool // of *vmm.Caller of Host
}

// Serve implements vmm.Server.
func (r *Relay) Serve(inv *vmm.Invocation) {
	c, _ := r.callers.Get().(*vmm.Caller)
	if c == nil {
		c = r.Host.NewCaller()
	}
	defer r.callers.Put(c)
	Forward(inv, c, r.Target, r.Options, r.Hook)
}
