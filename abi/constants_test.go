package abi_test

import (
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"strings"
	"testing"

	"nestvm/abi"
)

// notInHeader are the package's constants the C header leaves
// out on purpose, with the reason.
var notInHeader = map[string]string{
	"AuxNull":   "Linux's AT_NULL: C programs take it from <elf.h>",
	"AuxPageSz": "Linux's AT_PAGESZ: C programs take it from <elf.h>",
	"AuxEntry":  "Linux's AT_ENTRY: C programs take it from <elf.h>",
}

// TestConstantsAreListed type-checks package abi from its source and
// checks abi.Constants against what it declares: every exported constant
// of a basic type is listed under its own name with its own value (or is in
// notInHeader), and nothing listed is missing. Constants of the ABI's own
// types (errors, rights, object types, operations) have tables of their
// own.
func TestConstantsAreListed(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			f, err := parser.ParseFile(fset, n, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	pkg, err := conf.Check("nestvm/abi", fset, files, nil)
	if err != nil {
		t.Fatalf("type-check package abi: %v", err)
	}
	listed := map[string]abi.Constant{}
	for _, c := range abi.Constants {
		if _, dup := listed[c.Name]; dup {
			t.Errorf("%s is listed twice", c.Name)
		}
		listed[c.Name] = c
		if !strings.HasPrefix(c.CName, "NV_") && c.CName != "NESTVM_ABI_VERSION" {
			t.Errorf("%s: C name %s lacks the NV_ prefix", c.Name, c.CName)
		}
		if c.Doc == "" {
			t.Errorf("%s has no doc", c.Name)
		}
	}
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		c, isConst := scope.Lookup(name).(*types.Const)
		if !isConst || !c.Exported() {
			continue
		}
		if _, basic := c.Type().(*types.Basic); !basic {
			continue
		}
		l, ok := listed[name]
		if _, skip := notInHeader[name]; skip {
			if ok {
				t.Errorf("%s is both listed and in notInHeader", name)
			}
			continue
		}
		if !ok {
			t.Errorf("constant %s is not in abi.Constants: list it (or add it to notInHeader with the reason)", name)
			continue
		}
		if v, exact := constant.Uint64Val(c.Val()); !exact || v != l.Value {
			t.Errorf("abi.Constants lists %s as %#x, the package declares %s", name, l.Value, c.Val())
		}
		delete(listed, name)
	}
	for name := range listed {
		t.Errorf("abi.Constants lists %s, which package abi does not declare as a constant of a basic type", name)
	}
}
