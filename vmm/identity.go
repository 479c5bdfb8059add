package vmm

import (
	"encoding/binary"
	"sync/atomic"

	"nestvm/abi"
)

// lastObjectID is the last identity handed out. It is process-wide, so an
// identity is unique across every monitor in the process, which is more
// than handle_identify promises (unique for one monitor's life).
var lastObjectID atomic.Uint64

// objectID is a kernel object's identity, as handle_identify reports it.
// It is taken on first ask, so objects nobody identifies cost no counter
// traffic; once taken it never changes and is never given to another.
type objectID struct{ v atomic.Uint64 }

func (o *objectID) identity() uint64 {
	if v := o.v.Load(); v != 0 {
		return v
	}
	if o.v.CompareAndSwap(0, lastObjectID.Add(1)) {
		return o.v.Load()
	}
	return o.v.Load() // another caller took one first: theirs stands
}

// Identity returns obj's identity, the one handle_identify reports for a
// handle naming it: a Proxy's port has the identity of the object it
// stands for (through proxies of proxies). Host code holding an object
// outside any table (an environment's capabilities) uses it to match what
// handle_identify says.
func Identity(obj Object) uint64 {
	for range 64 { // proxies stack no deeper than layers do
		p, ok := obj.(*Port)
		if !ok {
			break
		}
		px, ok := p.server.(Proxy)
		if !ok {
			break
		}
		obj = px.Original()
	}
	return obj.identity()
}

// identify writes what handle_identify reports about n.
func (t *Thread) identify(n *capNode, buf userBuffer) result {
	rec := abi.HandleIdentity{
		Object: Identity(n.obj),
		Type:   uint64(TypeOf(n.obj)),
		Rights: uint64(n.rights),
		Badge:  n.badge,
	}
	if p, ok := n.obj.(*Port); ok && p.server != nil {
		rec.Flags |= abi.IdentServed
	}
	w := &stateWriter{t: t}
	w.put(&rec)
	return w.finish(buf, uint64(len(w.out)))
}

// Identify performs handle_identify on h and decodes its record.
func (c *Caller) Identify(h uint64) (abi.HandleIdentity, error) {
	var rec abi.HandleIdentity
	buf := make([]byte, binary.Size(rec))
	if _, _, err := c.HandleIdentify(h, buf); err != nil {
		return rec, err
	}
	_, err := binary.Decode(buf, binary.LittleEndian, &rec)
	return rec, err
}
