package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// emuBinding is the one Go file of package emu that talks to Unicorn and
// hooks.c: the rest of the package is pure Go over its API, so the cgo
// pointer rules and the hot path's C calls can be checked in one place.
const emuBinding = "unicorn.go"

// cgoImports are the imports only the binding may have: C itself, unsafe
// (C memory viewed from Go) and runtime/cgo (the handles the hooks use to
// reach a vCPU).
var cgoImports = map[string]bool{"C": true, "unsafe": true, "runtime/cgo": true}

// TestEmuCgoConfined fails when a non-test Go file of emu other than the
// binding imports C, unsafe or runtime/cgo, or when the binding is gone
// (which would make the rule vacuous).
func TestEmuCgoConfined(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(here), "..", "..", "emu")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, emuBinding)); err != nil {
		t.Errorf("the emu binding: %v", err)
	}
	fset := token.NewFileSet()
	bindingImportsC := false
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		binding := filepath.Base(path) == emuBinding
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !cgoImports[p] {
				continue
			}
			if binding {
				bindingImportsC = bindingImportsC || p == "C"
				continue
			}
			t.Errorf("%s imports %q: only emu/%s may use cgo or unsafe", fset.Position(imp.Pos()), p, emuBinding)
		}
	}
	if !bindingImportsC {
		t.Errorf("emu/%s does not import C: is the binding somewhere else now?", emuBinding)
	}
}
