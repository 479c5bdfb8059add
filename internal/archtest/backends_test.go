package archtest

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// backendImports are the project packages a backend, or package machine
// under them, may import: the backends sit below the object kernel
// (DESIGN.md §4), so the kernel can change without them and a backend
// cannot reach a kernel object.
var backendImports = map[string]map[string]bool{
	"machine": {"nestvm/abi": true},
	"kvm":     {"nestvm/abi": true, "nestvm/machine": true},
	"emu":     {"nestvm/abi": true, "nestvm/machine": true},
}

// TestBackendsBelowTheKernel fails when kvm, emu or machine imports a
// project package other than machine and abi. Tests may also use
// internal/testutil, and may drive a whole monitor (vmm) over the backend
// to check it under real guests: a test uses the package from above, as
// the kernel does, and nothing of the kernel reaches the package itself.
func TestBackendsBelowTheKernel(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	fset := token.NewFileSet()
	for dir, allowed := range backendImports {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("%s: no Go files (wrong root?)", dir)
		}
		for _, path := range files {
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if !strings.HasPrefix(p, "nestvm/") || allowed[p] {
					continue
				}
				if (p == "nestvm/internal/testutil" || p == "nestvm/vmm") && strings.HasSuffix(path, "_test.go") {
					continue
				}
				t.Errorf("%s imports %s: %s may import only %v", fset.Position(imp.Pos()), p, dir, keys(allowed))
			}
		}
	}
}

func keys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
