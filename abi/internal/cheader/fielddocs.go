package cheader

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"nestvm/abi"
)

// FieldDocs returns the doc of every field of every record type package
// abi declares, read from its source (the doc comment above a field, or
// the comment after it), keyed by type then field name. The generator and
// the tests run from the source tree, which is where the docs are.
func FieldDocs() map[string]map[string]string {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		panic("cheader: cannot find the source of package abi")
	}
	dir := filepath.Join(filepath.Dir(self), "..", "..")
	entries, err := os.ReadDir(dir)
	if err != nil {
		panic("cheader: read the source of package abi: " + err.Error())
	}
	docs := map[string]map[string]string{}
	fset := token.NewFileSet()
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			panic("cheader: parse package abi: " + err.Error())
		}
		ast.Inspect(f, func(node ast.Node) bool {
			ts, isType := node.(*ast.TypeSpec)
			if !isType {
				return true
			}
			st, isStruct := ts.Type.(*ast.StructType)
			if !isStruct {
				return false
			}
			fields := map[string]string{}
			for _, fl := range st.Fields.List {
				var parts []string
				for _, g := range []*ast.CommentGroup{fl.Doc, fl.Comment} {
					if t := strings.TrimSpace(g.Text()); t != "" {
						parts = append(parts, strings.Join(strings.Fields(t), " "))
					}
				}
				for _, name := range fl.Names {
					fields[name.Name] = strings.Join(parts, " ")
				}
			}
			docs[ts.Name.Name] = fields
			return false
		})
	}
	return docs
}

var (
	fieldRef  = regexp.MustCompile(`\b([A-Z][A-Za-z0-9]*)\.([A-Z][A-Za-z0-9]*)\b`)
	prefixRef = regexp.MustCompile(`\b([A-Z][A-Za-z0-9]*)\*`)
	goName    = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)
)

// cDoc rewrites the Go names in a doc comment as C names: constants
// (and families of them, such as FileType*), records and their fields.
func cDoc(s string) string {
	records := map[string]string{}
	for _, r := range Records {
		records[r.Type.Name()] = r.Name
	}
	consts := map[string]string{}
	for _, c := range abi.Constants {
		consts[c.Name] = c.CName
	}
	s = fieldRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := fieldRef.FindStringSubmatch(m)
		if r, ok := records[sub[1]]; ok {
			return r + "." + CName(sub[2])
		}
		return m
	})
	s = prefixRef.ReplaceAllStringFunc(s, func(m string) string {
		prefix := m[:len(m)-1]
		var names []string
		for _, c := range abi.Constants {
			if strings.HasPrefix(c.Name, prefix) {
				names = append(names, c.CName)
			}
		}
		if len(names) == 0 {
			return m
		}
		sort.Strings(names)
		common := names[0]
		for _, n := range names[1:] {
			for !strings.HasPrefix(n, common) {
				common = common[:len(common)-1]
			}
		}
		return common + "*"
	})
	return goName.ReplaceAllStringFunc(s, func(m string) string {
		if c, ok := consts[m]; ok {
			return c
		}
		if r, ok := records[m]; ok {
			return r
		}
		return m
	})
}
