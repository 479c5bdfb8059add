package control

import (
	"encoding/binary"
	"io"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/machine"
)

// TestLayerLetsEndedSpacesGo: the layer keeps a handle to each space
// made through its environment's space capability, lets go of those that
// ended as more are made (a shell making command after command does not
// fill its table), and its tree lists the one still running.
func TestLayerLetsEndedSpacesGo(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l := NewLayer(nil, false)
		c, sp := layertest.Below(t, b, l, io.Discard)
		self, err := c.Self(abi.RightsAll)
		if err != nil {
			t.Fatal(err)
		}
		must := func(what string) func(r0, r1 uint64, err error) uint64 {
			return func(r0, _ uint64, err error) uint64 {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				return r0
			}
		}
		ep := must("port_create")(c.PortCreate(self))
		msg := make([]byte, binary.Size(abi.Msg{}))
		const made = 2 * keepAt
		for range made {
			child := must("space_create")(c.SpaceCreate(sp, 16, 0, 0, 0))
			must("space_set_exception_port")(c.SpaceSetExceptionPort(child, ep))
			must("space_kill")(c.SpaceKill(child, 0))
			must("port_receive")(c.PortReceive(ep, msg, nil)) // its exit notice
			must("handle_close")(c.HandleClose(child))
		}
		must("space_create")(c.SpaceCreate(sp, 16, 0, 0, 0))
		l.mu.Lock()
		kept := len(l.tops)
		l.mu.Unlock()
		if kept > keepAt {
			t.Errorf("after %d spaces made and ended the layer keeps %d handles, want those of ended ones let go", made, kept)
		}
		tree, err := l.Tree()
		if err != nil || len(tree) != 1 || tree[0].State != "running" {
			t.Errorf("tree: %+v, %v; want the one running space", tree, err)
		}
	})
}
