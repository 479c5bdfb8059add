package abi_test

import (
	"testing"

	"nestvm/abi"
)

func TestOpsTableComplete(t *testing.T) {
	names := map[string]bool{}
	for op := abi.Op(1); op < abi.OpCount; op++ {
		info, ok := op.Info()
		if !ok || info.Name == "" || info.Doc == "" || info.Iface == abi.IfaceNone {
			t.Errorf("op %d has no complete description", op)
			continue
		}
		if names[info.Name] {
			t.Errorf("op name %s used twice", info.Name)
		}
		names[info.Name] = true
		if info.Slots() > abi.MaxArgSlots {
			t.Errorf("op %s uses %d slots, more than %d", info.Name, info.Slots(), abi.MaxArgSlots)
		}
		if op.String() != info.Name {
			t.Errorf("op %d String %q", op, op.String())
		}
	}
	for _, bad := range []abi.Op{abi.OpNone, abi.OpCount, 1 << 31} {
		if _, ok := bad.Info(); ok {
			t.Errorf("op %d has a description", bad)
		}
	}
}

func TestErrorResults(t *testing.T) {
	for e := abi.OK; e < abi.ErrCount; e++ {
		if got := abi.ResultError(e.Result()); got != e {
			t.Errorf("ResultError(%d.Result()) = %d", e, got)
		}
		if len(abi.ErrorSymbols) != int(abi.ErrCount) || abi.ErrorSymbols[e] == "" || e.Error() == "" {
			t.Errorf("error %d lacks a name", e)
		}
	}
	if abi.ResultError(42) != abi.OK {
		t.Errorf("a positive R0 is not an error")
	}
	if abi.ResultError(uint64(1<<63)) != abi.ErrInvalidArg {
		t.Errorf("an out-of-range negative R0 should read as invalid")
	}
}

func TestRightsString(t *testing.T) {
	if s := (abi.RightRead | abi.RightGrant).String(); s != "read|grant" {
		t.Errorf("got %q", s)
	}
	if s := abi.RightsAll.String(); s != "read|write|exec|map|call|receive|grant|derive|control" {
		t.Errorf("got %q", s)
	}
	if !abi.RightsAll.Has(abi.RightControl|abi.RightRead) || abi.RightRead.Has(abi.RightWrite) {
		t.Errorf("Has is wrong")
	}
}

// Every error an operation declares says what it means there, is a real
// code, and the common ones come first, in the order of the checks.
func TestOpErrorsDeclared(t *testing.T) {
	for op := abi.Op(1); op < abi.OpCount; op++ {
		info := abi.Ops[op]
		all := info.AllErrors()
		if len(all) == 0 || all[0].Code != abi.ErrBadHandle {
			t.Errorf("%s: the handle check's NV_EBADHANDLE is not its first error", info.Name)
		}
		seen := map[abi.Error]bool{}
		for _, e := range all {
			if e.Code <= abi.OK || e.Code >= abi.ErrCount {
				t.Errorf("%s declares %d, which is no error code", info.Name, e.Code)
			}
			if e.Doc == "" {
				t.Errorf("%s: %s has no doc", info.Name, abi.ErrorSymbols[e.Code])
			}
			if seen[e.Code] {
				t.Errorf("%s lists %s twice", info.Name, abi.ErrorSymbols[e.Code])
			}
			seen[e.Code] = true
		}
		if !info.Declares(abi.ErrBadHandle) || info.Declares(abi.OK) {
			t.Errorf("%s: Declares disagrees with AllErrors", info.Name)
		}
	}
}
