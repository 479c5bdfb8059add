package refmon

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"

	"nestvm/abi"
)

// Policy is a parsed policy file: a default decision and rules.
type Policy struct {
	// File is where the policy came from, for messages.
	File string
	// Default decides the calls no rule applies to.
	Default Action
	// Rules, in the order of the file.
	Rules []*Rule
}

// Action is what a rule, or the default, does.
type Action int

// Actions.
const (
	Allow Action = iota
	Deny
)

func (a Action) String() string {
	if a == Deny {
		return "deny"
	}
	return "allow"
}

// Rule is one rule block. It applies to a call when each of its
// selectors (Ops, Caps, Types) that is set matches; an applying rule
// with Action Deny denies the call, one with Action Allow allows it when
// every condition it sets holds.
type Rule struct {
	Name   string
	Line   int // where the rule starts in the file
	Action Action

	// Selectors; nil matches everything.
	Ops   map[abi.Op]bool
	Caps  []string // capability-name patterns; * matches any run of characters
	Types map[abi.ObjectType]bool

	// Conditions of an allow rule; unset ones always hold.
	PathUnder   []string // operations with a path (pathOps): it lies in one of these
	PathOutside []string // operations with a path: it lies in none of these
	Flags       uint64   // files_open: its flags are among these (HasFlags)
	HasFlags    bool
	MaxBytes    uint64 // each call's input bytes at most this (HasMaxBytes)
	HasMax      bool
	TotalBytes  uint64 // the input bytes of every call the rule allowed, together (HasTotal)
	HasTotal    bool
	MaxPages    uint64 // region_create: the pages of every region the rule allowed, together (HasPages)
	HasPages    bool

	// What the rule has let through, for TotalBytes and MaxPages. Guarded
	// by the layer's lock.
	usedBytes, usedPages uint64
}

// flagOrder are the names of files_open's flags in a policy, in the order
// of their bits; flagNames maps them to the bits, knownFlags has them all.
var (
	flagOrder = []string{"read", "write", "create", "truncate", "dir", "exclusive"}
	flagNames = map[string]uint64{"read": abi.OpenRead, "write": abi.OpenWrite, "create": abi.OpenCreate,
		"truncate": abi.OpenTruncate, "dir": abi.OpenDir, "exclusive": abi.OpenExclusive}
	knownFlags uint64 = abi.OpenRead | abi.OpenWrite | abi.OpenCreate | abi.OpenTruncate | abi.OpenDir | abi.OpenExclusive
)

// opsByName are the operations by their ABI name.
var opsByName = func() map[string]abi.Op {
	m := map[string]abi.Op{}
	for op := abi.Op(1); op < abi.OpCount; op++ {
		if n := abi.Ops[op].Name; n != "" {
			m[n] = op
		}
	}
	return m
}()

// typesByName are the object types by name.
var typesByName = func() map[string]abi.ObjectType {
	m := map[string]abi.ObjectType{}
	for t := abi.ObjectType(1); t < abi.ObjectCount; t++ {
		m[t.String()] = t
	}
	return m
}()

// pathOps have a path as their first buffer (files_rename and
// files_symlink two, see judgedPaths); flagOps have open flags.
var (
	pathOps = map[abi.Op]bool{
		abi.OpFilesOpen: true, abi.OpFilesList: true, abi.OpFilesStat: true,
		abi.OpFilesUnlink: true, abi.OpFilesMkdir: true, abi.OpFilesRmdir: true,
		abi.OpFilesRename: true, abi.OpFilesSymlink: true, abi.OpFilesReadlink: true,
		abi.OpFilesChmod: true, abi.OpFilesTruncate: true, abi.OpFilesUtimes: true,
	}
	flagOps = map[abi.Op]bool{abi.OpFilesOpen: true}
)

// pathOpNames lists pathOps for messages.
const pathOpNames = "files_open, files_list, files_stat, files_unlink, files_mkdir, files_rmdir, files_rename, files_symlink, files_readlink, files_chmod, files_truncate, files_utimes"

// judgedPaths returns the paths path_under and path_not_under judge in buf, the path
// argument of op: both names of files_rename; of files_symlink the link
// to create and, for a relative target, the name the target leads to
// from the link's directory, so that a link cannot make a path under an
// allowed directory lead to one outside it (an absolute target, or one
// leading out of the root, leads nowhere: the files root refuses to
// follow it).
func judgedPaths(op abi.Op, buf []byte) []string {
	raw := string(buf)
	a, b, pair := strings.Cut(raw, "\x00")
	switch {
	case op == abi.OpFilesRename && pair:
		return []string{a, b}
	case op == abi.OpFilesSymlink && pair:
		if a == "" || strings.HasPrefix(a, "/") || strings.ContainsRune(b, 0) {
			return []string{b}
		}
		to := path.Join(path.Dir(b), a)
		if to == ".." || strings.HasPrefix(to, "../") {
			return []string{b}
		}
		return []string{b, to}
	}
	return []string{raw}
}

// hasInput reports whether op takes an input buffer (max_bytes and
// total_bytes count them).
func hasInput(op abi.Op) bool {
	for _, a := range abi.Ops[op].Args {
		if a.Kind == abi.ArgIn {
			return true
		}
	}
	return false
}

var (
	fileSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "default"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "rule", LabelNames: []string{"name"}}},
	}
	ruleSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "action"}, {Name: "op"}, {Name: "cap"}, {Name: "type"},
		{Name: "path_under"}, {Name: "path_not_under"}, {Name: "flags"}, {Name: "max_bytes"}, {Name: "total_bytes"}, {Name: "max_pages"},
	}}
)

// LoadPolicy reads and parses the policy file at name.
func LoadPolicy(name string) (*Policy, error) {
	src, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return ParsePolicy(src, name)
}

// ParsePolicy parses a policy; filename names it in messages. A malformed
// policy is refused with every problem found, each as "FILE:LINE,COL:
// what; why".
func ParsePolicy(src []byte, filename string) (*Policy, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, policyError(diags)
	}
	content, diags := f.Body.Content(fileSchema)
	if diags.HasErrors() {
		return nil, policyError(diags)
	}
	p := &Policy{File: filename}
	if a, ok := content.Attributes["default"]; ok {
		var s string
		diags = append(diags, gohcl.DecodeExpression(a.Expr, nil, &s)...)
		act, d := parseAction(s, a)
		diags = append(diags, d...)
		p.Default = act
	}
	seen := map[string]*hcl.Block{}
	for _, b := range content.Blocks {
		name := b.Labels[0]
		if prev, dup := seen[name]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate rule",
				Detail:  fmt.Sprintf("A rule named %q is already defined at line %d; rule names appear in the audit log and must be unique.", name, prev.DefRange.Start.Line),
				Subject: b.LabelRanges[0].Ptr()})
			continue
		}
		seen[name] = b
		r, d := parseRule(b)
		diags = append(diags, d...)
		if r != nil {
			p.Rules = append(p.Rules, r)
		}
	}
	if diags.HasErrors() {
		return nil, policyError(diags)
	}
	return p, nil
}

// policyError turns diagnostics into one error, a line for each.
func policyError(diags hcl.Diagnostics) error {
	var lines []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		lines = append(lines, d.Error())
	}
	return fmt.Errorf("malformed policy: %s", strings.Join(lines, "\n"))
}

func bad(a *hcl.Attribute, summary, detail string, args ...any) hcl.Diagnostics {
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, args...), Subject: a.Expr.Range().Ptr()}}
}

func parseAction(s string, a *hcl.Attribute) (Action, hcl.Diagnostics) {
	switch s {
	case "allow":
		return Allow, nil
	case "deny":
		return Deny, nil
	}
	return Allow, bad(a, "Invalid action", "%q is not an action: use \"allow\" or \"deny\".", s)
}

func parseRule(b *hcl.Block) (*Rule, hcl.Diagnostics) {
	content, diags := b.Body.Content(ruleSchema)
	if diags.HasErrors() {
		return nil, diags
	}
	r := &Rule{Name: b.Labels[0], Line: b.DefRange.Start.Line}
	attrs := content.Attributes
	strs := func(name string) ([]string, *hcl.Attribute) {
		a, ok := attrs[name]
		if !ok {
			return nil, nil
		}
		var v []string
		if d := gohcl.DecodeExpression(a.Expr, nil, &v); d.HasErrors() {
			diags = append(diags, d...)
			return nil, nil
		}
		if len(v) == 0 {
			diags = append(diags, bad(a, "Empty list", "%s = [] matches nothing; leave it out to match everything.", name)...)
			return nil, nil
		}
		return v, a
	}
	num := func(name string, dst *uint64, set *bool) *hcl.Attribute {
		a, ok := attrs[name]
		if !ok {
			return nil
		}
		if d := gohcl.DecodeExpression(a.Expr, nil, dst); d.HasErrors() {
			diags = append(diags, d...)
			return nil
		}
		*set = true
		return a
	}

	if a, ok := attrs["action"]; ok {
		var s string
		if d := gohcl.DecodeExpression(a.Expr, nil, &s); d.HasErrors() {
			diags = append(diags, d...)
		} else {
			act, d := parseAction(s, a)
			diags = append(diags, d...)
			r.Action = act
		}
	}
	ops, opAttr := strs("op")
	for _, name := range ops {
		if name == "*" {
			r.Ops = nil
			break
		}
		op, ok := opsByName[name]
		if !ok {
			diags = append(diags, bad(opAttr, "Unknown operation", "%q is not an operation of the ABI (docs/abi.md lists them, e.g. \"console_write\", \"files_open\", \"space_create\").", name)...)
			continue
		}
		if r.Ops == nil {
			r.Ops = map[abi.Op]bool{}
		}
		r.Ops[op] = true
	}
	caps, _ := strs("cap")
	r.Caps = caps
	types, typeAttr := strs("type")
	for _, name := range types {
		t, ok := typesByName[name]
		if !ok {
			diags = append(diags, bad(typeAttr, "Unknown object type", "%q is not an object type: use space, thread, region, port or port_set.", name)...)
			continue
		}
		if r.Types == nil {
			r.Types = map[abi.ObjectType]bool{}
		}
		r.Types[t] = true
	}

	// Conditions, each checked against the operations it needs.
	var conds []*hcl.Attribute
	needOps := func(a *hcl.Attribute, ok func(abi.Op) bool, what string) {
		if a == nil {
			return
		}
		conds = append(conds, a)
		if opAttr == nil || r.Ops == nil {
			diags = append(diags, bad(a, "Condition without operations", "%s needs op to list only operations %s.", a.Name, what)...)
			return
		}
		for op := range r.Ops {
			if !ok(op) {
				diags = append(diags, bad(a, "Condition does not fit the operation", "%s does not apply to %s: op may list only operations %s.", a.Name, abi.Ops[op].Name, what)...)
				return
			}
		}
	}
	under, underAttr := strs("path_under")
	for _, p := range under {
		c, ok := cleanPath(p)
		if !ok {
			diags = append(diags, bad(underAttr, "Invalid path", "%q is not a relative path inside the files root.", p)...)
			continue
		}
		r.PathUnder = append(r.PathUnder, c)
	}
	needOps(underAttr, func(op abi.Op) bool { return pathOps[op] }, "with a path ("+pathOpNames+")")
	outside, outsideAttr := strs("path_not_under")
	for _, p := range outside {
		c, ok := cleanPath(p)
		if !ok || c == "." {
			diags = append(diags, bad(outsideAttr, "Invalid path", "%q is not a relative path inside the files root, other than the root itself.", p)...)
			continue
		}
		r.PathOutside = append(r.PathOutside, c)
	}
	needOps(outsideAttr, func(op abi.Op) bool { return pathOps[op] }, "with a path ("+pathOpNames+")")
	flags, flagAttr := strs("flags")
	for _, f := range flags {
		bit, ok := flagNames[f]
		if !ok {
			diags = append(diags, bad(flagAttr, "Unknown open flag", "%q is not a files_open flag: use read, write, create, truncate, dir or exclusive.", f)...)
			continue
		}
		r.Flags |= bit
	}
	r.HasFlags = flagAttr != nil
	needOps(flagAttr, func(op abi.Op) bool { return flagOps[op] }, "with open flags (files_open)")
	needOps(num("max_bytes", &r.MaxBytes, &r.HasMax), hasInput, "with data to send (console_write, file_write, region_write, port_send, ...)")
	needOps(num("total_bytes", &r.TotalBytes, &r.HasTotal), hasInput, "with data to send (console_write, file_write, region_write, port_send, ...)")
	needOps(num("max_pages", &r.MaxPages, &r.HasPages), func(op abi.Op) bool { return op == abi.OpRegionCreate }, "that create memory (region_create)")
	if r.Action == Deny {
		for _, a := range conds {
			diags = append(diags, bad(a, "Condition on a deny rule", "a deny rule denies every call it applies to; put %s on an allow rule, which allows only what meets it.", a.Name)...)
		}
	}
	return r, diags
}

// cleanPath cleans a relative, '/'-separated path; "." is the root. ok is
// false for an absolute path, one that leaves the root, or one holding a
// NUL byte.
func cleanPath(p string) (string, bool) {
	if strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return "", false
	}
	c := path.Clean("./" + p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

// under reports whether clean path p lies in directory dir (both clean).
func under(p, dir string) bool {
	return dir == "." || p == dir || strings.HasPrefix(p, dir+"/")
}

// matchName matches a capability name against a pattern in which *
// stands for any run of characters (dots included).
func matchName(pattern, name string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == name
	}
	if !strings.HasPrefix(name, pattern[:star]) {
		return false
	}
	rest, name := pattern[star+1:], name[star:]
	for i := 0; i <= len(name); i++ {
		if matchName(rest, name[i:]) {
			return true
		}
	}
	return false
}

// applies reports whether r's selectors match a call.
func (r *Rule) applies(op abi.Op, capName string, typ abi.ObjectType) bool {
	if r.Ops != nil && !r.Ops[op] {
		return false
	}
	if r.Types != nil && !r.Types[typ] {
		return false
	}
	if r.Caps == nil {
		return true
	}
	for _, p := range r.Caps {
		if matchName(p, capName) {
			return true
		}
	}
	return false
}
