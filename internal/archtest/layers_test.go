package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// kernelTypes are the object kernel's object types. A layer or a
// personality holds capabilities (handles, through a vmm.Caller), never
// these: what a Go layer can do, a guest nester could do with the same
// handles (DESIGN.md §6).
var kernelTypes = map[string]bool{"Space": true, "Thread": true, "Port": true, "Region": true, "PortSet": true}

// bypasses are the calls that hand host code a kernel object without
// naming its type: a handle looked up into its object (Caller.Lookup).
// A host space of one's own is no bypass: the host API hands it out only
// as a vmm.Host, and the kernel's mutators that skip rights are
// unexported.
var bypasses = map[string]bool{"Lookup": true}

// layerDirs are the folders of code that acts through the host API
// (vmm.Host, vmm.Caller): the layers, the personalities, what layers are
// made of (interpose, nester, control), and the bench runner (which
// measures what layers cost, so it runs programs as they do).
var layerDirs = []string{"services", "personality", "interpose", "nester", "control", "benchmarks"}

// known are the places that still reach past the capability API, by file
// and what they name, with how often; the list only shrinks: a use not
// listed fails the test, and so does an entry that no longer occurs, so
// that it is taken off. A handle a forwarded operation returns reaches a
// layer through interpose.ResultHook, as a handle in its own table:
// interpose's ReturnResult looks it up into the object once, for the Cap
// the hook decides about (what the invoker gets), so that no layer does.
var known = map[string]int{
	"interpose/result.go Lookup": 1,
}

// TestLayersHoldCapabilities fails when a package under layerDirs names a
// kernel object type or makes one of the bypasses calls in a place not
// listed in known.
func TestLayersHoldCapabilities(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	found := map[string]int{}
	where := map[string][]string{}
	fset := token.NewFileSet()
	for _, dir := range layerDirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			vmmName := ""
			for _, imp := range f.Imports {
				if imp.Path.Value == `"nestvm/vmm"` {
					vmmName = "vmm"
					if imp.Name != nil {
						vmmName = imp.Name.Name
					}
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					if call, ok := n.(*ast.CallExpr); ok {
						if s, ok := call.Fun.(*ast.SelectorExpr); ok && bypasses[s.Sel.Name] && vmmName != "" {
							key := rel + " " + s.Sel.Name
							found[key]++
							where[key] = append(where[key], fset.Position(call.Pos()).String())
						}
					}
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && vmmName != "" && x.Name == vmmName && kernelTypes[sel.Sel.Name] {
					key := fmt.Sprintf("%s vmm.%s", rel, sel.Sel.Name)
					found[key]++
					where[key] = append(where[key], fset.Position(sel.Pos()).String())
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(found) == 0 {
		t.Fatal("found no use at all: the walk reads no file (wrong root?)")
	}
	keys := make([]string, 0, len(found)+len(known))
	for k := range found {
		keys = append(keys, k)
	}
	for k := range known {
		if _, ok := found[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch got, want := found[k], known[k]; {
		case got > want:
			t.Errorf("%s: %d uses, %d known: a layer holds capabilities only (DESIGN.md §6); add what it needs to the ABI instead:\n\t%s", k, got, want, strings.Join(where[k], "\n\t"))
		case got < want:
			t.Errorf("%s: %d uses, %d known: fewer than listed, so take the entry in known down", k, got, want)
		}
	}
}
