package nester_test

import (
	"errors"
	"testing"

	"nestvm/nester"
	"nestvm/vmm"
)

// ptrLayer is a layer type whose constructor can fail with a nil pointer.
type ptrLayer struct{}

func (*ptrLayer) Name() string                                          { return "ptr" }
func (*ptrLayer) Close() error                                          { return nil }
func (*ptrLayer) Wrap(_ *vmm.Monitor, e nester.Env) (nester.Env, error) { return e, nil }

// TestMakerFailedIsNil: a Factory made by Maker from a constructor that
// failed gives a nil Layer (a Layer holding a nil *ptrLayer would compare
// non-nil, and a caller closing it would call through nil), and passes a
// layer made on.
func TestMakerFailedIsNil(t *testing.T) {
	bad := errors.New("bad args")
	f := nester.Maker(func(args string, _ nester.Host) (*ptrLayer, error) {
		if args != "" {
			return nil, bad
		}
		return &ptrLayer{}, nil
	})
	if l, err := f("x", nester.Host{}); l != nil || !errors.Is(err, bad) {
		t.Errorf("failed constructor: %#v, %v; want nil, %v", l, err, bad)
	}
	if l, err := f("", nester.Host{}); err != nil || l == nil || l.Name() != "ptr" {
		t.Errorf("constructor that worked: %#v, %v", l, err)
	}
}
