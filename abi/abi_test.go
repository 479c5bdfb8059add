package abi_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
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

// TestErrorOf checks that a result code survives wrapping and that an
// error carrying none gets the default the caller names.
func TestErrorOf(t *testing.T) {
	wrapped := fmt.Errorf("open config: %w", abi.ErrNotFound)
	for _, c := range []struct {
		err  error
		def  abi.Error
		want abi.Error
	}{
		{abi.ErrQuota, abi.ErrIO, abi.ErrQuota},
		{wrapped, abi.ErrIO, abi.ErrNotFound},
		{errors.Join(io.EOF, wrapped), abi.ErrInvalidArg, abi.ErrNotFound},
		{io.EOF, abi.ErrIO, abi.ErrIO},
		{io.EOF, abi.ErrInvalidArg, abi.ErrInvalidArg},
	} {
		if got := abi.ErrorOf(c.err, c.def); got != c.want {
			t.Errorf("ErrorOf(%v, %v) = %v, want %v", c.err, c.def, got, c.want)
		}
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
		// An error the operation's own doc names is one it declares.
		for c := abi.OK + 1; c < abi.ErrCount; c++ {
			sym := abi.ErrorSymbols[c]
			for _, text := range append([]string{info.Doc, info.R0, info.R1}, argDocs(info)...) {
				if containsWord(text, sym) && !seen[c] {
					t.Errorf("%s's doc names %s, which it does not declare", info.Name, sym)
				}
			}
		}
		if !info.Declares(abi.ErrBadHandle) || info.Declares(abi.OK) {
			t.Errorf("%s: Declares disagrees with AllErrors", info.Name)
		}
	}
}

func argDocs(info abi.OpInfo) []string {
	var out []string
	for _, a := range info.Args {
		out = append(out, a.Doc)
	}
	return out
}

// containsWord reports whether w occurs in s as a whole word.
func containsWord(s, w string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		end := i + j + len(w)
		if end == len(s) || !(s[end] == '_' || s[end] >= 'A' && s[end] <= 'Z' || s[end] >= '0' && s[end] <= '9') {
			return true
		}
		i = end
	}
}
