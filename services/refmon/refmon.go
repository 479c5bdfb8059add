// Package refmon is a reference monitor: a layer that checks every
// operation of the subtree below it against a policy file, denies what
// the policy does not allow (the program sees NV_EDENIED), and writes an
// audit record of each denial: who (the thread and its space), what (the
// capability, operation and arguments) and why (the rule).
//
// It wraps every capability of its child's environment with border
// control (interpose.Wrapper with Deep set): every handle that comes out
// of a call (a created space, region, thread or port, an opened file) is
// wrapped in turn and named after the call that made it, and a wrapped
// handle passed on (space_insert, port_send) or derived (handle_derive)
// stays the same stand-in. So children, grandchildren and whatever they
// are handed stay under the policy: nothing below the layer reaches an
// object except through it.
//
// The policy language is documented in docs/layers.md ("A reference monitor")
// and in Usage below.
package refmon

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/interpose"
	"nestvm/nester"
	"nestvm/vmm"
)

// Usage is what `nestvm layers` says about refmon's arguments.
const Usage = `POLICY[,audit=FILE]
POLICY      an HCL policy file (docs/layers.md, "A reference monitor"):
              default = "allow" | "deny"        # for calls no rule applies to
              rule "NAME" {                     # applies when every selector set matches
                op   = ["space_create", ...]    # ABI operations ("*": any)
                cap  = ["space.*", ...]         # capability names; * is any run of characters
                type = ["space", ...]           # object types
                action = "allow" | "deny"       # allow (the default) when the conditions hold:
                path_under = ["data"]           #   files_* with a path: each path lies there
                path_not_under = ["etc/shadow"] #   files_* with a path: no path lies there
                flags = ["read", "dir"]         #   files_open: only these open flags (read,
                                                #   write, create, truncate, dir, exclusive)
                max_bytes = N                   #   each call sends at most N bytes
                total_bytes = N                 #   every call this rule allowed, together
                max_pages = N                   #   region_create: N pages in all, whole subtree
              }
            a call is denied when any rule that applies denies it; the path conditions
            judge files_open, files_list, files_stat, files_unlink, files_mkdir,
            files_rmdir, files_rename (both paths), files_symlink (the link, and where
            a relative target leads), files_readlink, files_chmod, files_truncate and
            files_utimes
audit=FILE  append the audit log (one line per denial) to FILE; default stderr`

// Options configure a Layer beyond its policy.
type Options struct {
	// Audit receives one line per denial; os.Stderr when nil.
	Audit io.Writer
	// Log is where the layer logs its summary; none when nil.
	Log hclog.Logger
}

// Layer is the reference monitor.
type Layer struct {
	pol   *Policy
	log   hclog.Logger
	audit io.Writer
	file  *os.File // the audit file, when refmon opened one
	host  *vmm.Host
	w     *interpose.Wrapper
	// env are the capabilities of the parent's environment the layer
	// wrapped, by name: files operations on them are performed by the
	// layer itself (performWith).
	env map[string]interpose.Cap

	mu      sync.Mutex // the rules' counters, the audit log, err
	err     error      // the first failure of the layer itself
	checked uint64
	denied  uint64
}

// New returns a reference monitor enforcing pol.
func New(pol *Policy, opt Options) *Layer {
	l := &Layer{pol: pol, log: opt.Log, audit: opt.Audit}
	if l.audit == nil {
		l.audit = os.Stderr
	}
	if l.log == nil {
		l.log = hclog.NewNullLogger()
	}
	return l
}

// Name implements nester.Layer.
func (l *Layer) Name() string { return "refmon" }

// Wrap implements nester.Layer: every capability of the parent's
// environment is handed down wrapped, deep.
func (l *Layer) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	q := vmm.DefaultQuota
	q.Memory, q.Handles = 0, 1<<16
	l.host = mon.NewHost("refmon", q)
	l.w = &interpose.Wrapper{Host: l.host, Handler: l, Deep: true, Layer: "refmon"}
	l.env = maps.Clone(parent.Caps)
	return parent.WrapAll(l.w)
}

// Close implements nester.Layer: it logs what the layer did and reports
// its own failures (an audit log it could not write).
func (l *Layer) Close() error {
	if l.host != nil {
		l.host.Kill("layer closed")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.Info("reference monitor done", "policy", l.pol.File, "checked", l.checked, "denied", l.denied)
	if l.file != nil {
		if err := l.file.Close(); err != nil && l.err == nil {
			l.err = fmt.Errorf("audit log: %w", err)
		}
		l.file = nil
	}
	return l.err
}

// Handle implements interpose.Handler: the policy decides, a denial is
// audited, and what is allowed is forwarded.
func (l *Layer) Handle(c *interpose.Call) {
	var path []byte
	if pathOps[c.Op()] {
		// The rules judge a copy, and the operation gets that copy: the
		// program cannot change the path once it is checked.
		path = append([]byte{}, c.Inv.Buffer(0).Bytes()...)
	}
	rule, why, e := l.decide(c, path)
	if e != abi.OK {
		c.Deny(e)
		l.record(c, path, e, rule, why)
		return
	}
	if cp, ok := l.env[c.Name]; ok && path != nil {
		l.performWith(c, cp, path)
		return
	}
	c.Forward()
}

// performWith performs a files operation on cp, the capability c's
// stand-in stands for, with path (the copy the policy judged), and ends c
// with its result, as Forward would. The server sees the rights of the
// handle the program invoked: a read-only copy it derived opens read-only
// (a forwarded call would carry the layer's own rights).
func (l *Layer) performWith(c *interpose.Call, cp interpose.Cap, path []byte) {
	caller := l.host.NewCaller()
	h, err := caller.Insert(cp.Obj, cp.Rights&c.Inv.Rights, cp.Badge)
	if err != nil {
		c.Deny(abi.ErrNoMemory)
		return
	}
	defer caller.HandleClose(h)
	fail := func(err error) {
		e := abi.ErrorOf(err, abi.ErrIO)
		c.Deny(e)
	}
	switch c.Op() {
	case abi.OpFilesOpen:
		r0, r1, err := caller.FilesOpen(h, path, c.Inv.Slots[argSlot(c.Inv.Info, "flags")])
		if err != nil {
			fail(err)
			return
		}
		c.ReturnResult(caller, r0, r1)
	default:
		// The judged copy as the path; output buffers (files_list's,
		// files_stat's, files_readlink's) through copies, of which what
		// the server leaves unwritten keeps the program's bytes.
		bufs := [][]byte{path}
		var outs []vmm.GuestBuffer
		for i, a := range abiBuffers(c.Inv.Info) {
			if i == 0 {
				continue
			}
			b := c.Inv.Buffer(i)
			buf := make([]byte, b.Len())
			b.Read(buf)
			bufs = append(bufs, buf)
			if a == abi.ArgOut {
				outs = append(outs, b)
			} else {
				outs = append(outs, vmm.GuestBuffer{})
			}
		}
		r0, r1, err := caller.Invoke(h, c.Op(), c.Inv.Slots, bufs...)
		if err != nil {
			fail(err)
			return
		}
		for i, b := range outs {
			if b.Len() > 0 {
				b.Write(bufs[i+1])
			}
		}
		c.Return(r0, r1)
	}
}

// abiBuffers returns the kinds of the buffer arguments of an operation,
// in order.
func abiBuffers(info *abi.OpInfo) []abi.ArgKind {
	var kinds []abi.ArgKind
	for _, a := range info.Args {
		if a.Kind == abi.ArgIn || a.Kind == abi.ArgOut {
			kinds = append(kinds, a.Kind)
		}
	}
	return kinds
}

// decide applies the policy to c, whose path (files operations) is path:
// abi.OK, or the error the call gets (ErrDenied; ErrInvalidArg for a path
// no rule can judge), the rule that refuses it and why.
func (l *Layer) decide(c *interpose.Call, path []byte) (rule, why string, e abi.Error) {
	inv, op := c.Inv, c.Op()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checked++
	if l.err != nil {
		return "(refmon failed)", "the layer cannot write its audit log, so it allows nothing: " + l.err.Error(), abi.ErrDenied
	}
	applied := false
	var charge []*Rule
	var bytes, pages uint64
	for _, r := range l.pol.Rules {
		if !r.applies(op, c.Name, c.Type) {
			continue
		}
		applied = true
		if r.Action == Deny {
			return r.Name, fmt.Sprintf("rule %q (line %d) denies %s on %s", r.Name, r.Line, inv.Info.Name, c.Name), abi.ErrDenied
		}
		if why, e := r.check(inv, path, &bytes, &pages); e != abi.OK {
			return r.Name, fmt.Sprintf("rule %q (line %d): %s", r.Name, r.Line, why), e
		}
		charge = append(charge, r)
	}
	if !applied && l.pol.Default == Deny {
		return "default", fmt.Sprintf("no rule applies to %s on %s, and the default is deny", inv.Info.Name, c.Name), abi.ErrDenied
	}
	for _, r := range charge {
		if r.HasTotal {
			r.usedBytes += bytes
		}
		if r.HasPages {
			r.usedPages += pages
		}
	}
	return "", "", abi.OK
}

// check reports whether inv, whose path (files operations) is path,
// meets r's conditions (abi.OK), or the error it gets and why. bytes and
// pages get what the call sends and creates.
func (r *Rule) check(inv *vmm.Invocation, path []byte, bytes, pages *uint64) (string, abi.Error) {
	if r.PathUnder != nil || r.PathOutside != nil {
		for _, raw := range judgedPaths(inv.Op, path) {
			p, ok := cleanPath(raw)
			switch {
			case !ok && (strings.HasPrefix(raw, "/") || strings.ContainsRune(raw, 0)):
				// As the files root answers it: malformed, not refused.
				return fmt.Sprintf("path %q is absolute or holds a NUL byte", raw), abi.ErrInvalidArg
			case !ok:
				return fmt.Sprintf("path %q leaves the files root", raw), abi.ErrDenied
			}
			in := r.PathUnder == nil
			for _, dir := range r.PathUnder {
				in = in || under(p, dir)
			}
			if !in {
				return fmt.Sprintf("path %q is not under %s", raw, strings.Join(r.PathUnder, ", ")), abi.ErrDenied
			}
			for _, dir := range r.PathOutside {
				if under(p, dir) {
					return fmt.Sprintf("path %q is under %s", raw, dir), abi.ErrDenied
				}
			}
		}
	}
	if r.HasFlags {
		f := inv.Slots[argSlot(inv.Info, "flags")]
		if unknown := f &^ knownFlags; unknown != 0 {
			// As the files root answers it: malformed, not refused.
			return fmt.Sprintf("unknown open flags %#x", unknown), abi.ErrInvalidArg
		}
		if extra := f &^ r.Flags; extra != 0 {
			return fmt.Sprintf("open flag %s is not allowed (only %s)", flagString(extra), flagString(r.Flags)), abi.ErrDenied
		}
	}
	*bytes = inputBytes(inv)
	if r.HasMax && *bytes > r.MaxBytes {
		return fmt.Sprintf("%d bytes in one call, more than max_bytes = %d", *bytes, r.MaxBytes), abi.ErrDenied
	}
	if r.HasTotal && (*bytes > r.TotalBytes || r.usedBytes > r.TotalBytes-*bytes) {
		return fmt.Sprintf("%d bytes more would make %d, more than total_bytes = %d", *bytes, r.usedBytes+*bytes, r.TotalBytes), abi.ErrDenied
	}
	if r.HasPages {
		size := inv.Slots[argSlot(inv.Info, "size")]
		*pages = size/abi.PageSize + min(size%abi.PageSize, 1)
		if *pages > r.MaxPages || r.usedPages > r.MaxPages-*pages {
			return fmt.Sprintf("%d pages more would make %d, more than max_pages = %d", *pages, r.usedPages+*pages, r.MaxPages), abi.ErrDenied
		}
	}
	return "", abi.OK
}

// argSlot returns the first argument slot of the argument named name.
func argSlot(info *abi.OpInfo, name string) int {
	slot := 0
	for _, a := range info.Args {
		if a.Name == name {
			return slot
		}
		slot += a.Kind.Slots()
	}
	return 0
}

// inputBytes is the length of every input buffer of inv, as the caller
// gave it.
func inputBytes(inv *vmm.Invocation) uint64 {
	var n uint64
	slot := 0
	for _, a := range inv.Info.Args {
		if a.Kind == abi.ArgIn {
			n += inv.Slots[slot+1]
		}
		slot += a.Kind.Slots()
	}
	return n
}

func flagString(f uint64) string {
	var names []string
	for _, n := range flagOrder {
		if f&flagNames[n] != 0 {
			names = append(names, n)
			f &^= flagNames[n]
		}
	}
	if f != 0 {
		names = append(names, fmt.Sprintf("%#x", f))
	}
	if names == nil {
		return "none"
	}
	return strings.Join(names, "|")
}

// record writes the audit line of a denial that got error e.
func (l *Layer) record(c *interpose.Call, path []byte, e abi.Error, rule, why string) {
	var b strings.Builder
	b.WriteString("refmon: deny")
	field := func(k, v string) {
		b.WriteString(" " + k + "=")
		if v != "" && !strings.ContainsAny(v, " \"=\\\t\n") && strconv.CanBackquote(v) {
			b.WriteString(v)
		} else {
			b.WriteString(strconv.Quote(v))
		}
	}
	field("time", time.Now().UTC().Format(time.RFC3339Nano))
	field("who", who(c.Inv))
	field("cap", c.Name)
	field("type", c.Type.String())
	field("op", c.Inv.Info.Name)
	field("args", describeArgs(c.Inv, path))
	field("error", abi.ErrorSymbols[e])
	field("rule", rule)
	field("why", why)
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	l.denied++
	if l.err != nil {
		return
	}
	if _, err := io.WriteString(l.audit, b.String()); err != nil {
		l.err = fmt.Errorf("audit log: %w", err)
		l.log.Error("cannot write the audit log: denying everything from now on", "error", err)
	}
}

// who names the thread that invoked an operation.
func who(inv *vmm.Invocation) string {
	from := inv.Invoker()
	if from.Identity == 0 {
		return "host"
	}
	return fmt.Sprintf("thread %d of space %s", from.Thread, from.Space)
}

// describeArgs renders an operation's arguments: values, handle numbers,
// buffer lengths, and path, the path of a files operation.
func describeArgs(inv *vmm.Invocation, path []byte) string {
	var parts []string
	slot, k := 0, 0
	for _, a := range inv.Info.Args {
		s := inv.Slots[slot]
		switch a.Kind {
		case abi.ArgValue:
			if a.Name == "flags" && flagOps[inv.Op] {
				parts = append(parts, a.Name+"="+flagString(s))
			} else {
				parts = append(parts, fmt.Sprintf("%s=%d", a.Name, s))
			}
		case abi.ArgHandle:
			parts = append(parts, fmt.Sprintf("%s=handle %d", a.Name, s))
		case abi.ArgIn:
			if k == 0 && pathOps[inv.Op] {
				p := path
				if len(p) > 256 {
					p = p[:256]
				}
				parts = append(parts, fmt.Sprintf("%s=%q", a.Name, p))
			} else {
				parts = append(parts, fmt.Sprintf("%s=%d bytes", a.Name, inv.Slots[slot+1]))
			}
			k++
		case abi.ArgOut:
			parts = append(parts, fmt.Sprintf("%s=%d bytes out", a.Name, inv.Slots[slot+1]))
			k++
		}
		slot += a.Kind.Slots()
	}
	return strings.Join(parts, " ")
}

// ParseArgs splits the --layer arguments: the policy file (first, or
// policy=FILE) and audit=FILE.
func ParseArgs(args string) (policy, audit string, err error) {
	for i, part := range strings.Split(args, ",") {
		part = strings.TrimSpace(part)
		k, v, kv := strings.Cut(part, "=")
		switch {
		case !kv && i == 0 && part != "":
			policy = part
		case kv && k == "policy":
			policy = v
		case kv && k == "audit":
			audit = v
		case part == "":
			continue
		default:
			return "", "", fmt.Errorf("refmon: unknown argument %q (refmon=POLICY[,audit=FILE])", part)
		}
	}
	if policy == "" {
		return "", "", errors.New("refmon needs a policy file: --layer refmon=POLICY.hcl (nestvm layers says more)")
	}
	return policy, audit, nil
}

// open makes the layer --layer names: the policy is read and checked and
// the audit file opened now, before anything runs.
func open(args string, h nester.Host) (nester.Layer, error) {
	policy, audit, err := ParseArgs(args)
	if err != nil {
		return nil, err
	}
	pol, err := LoadPolicy(policy)
	if err != nil {
		return nil, fmt.Errorf("refmon: %w", err)
	}
	log := h.Log
	opt := Options{Log: log, Audit: h.Stderr}
	var f *os.File
	if audit != "" {
		if f, err = os.OpenFile(audit, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			return nil, fmt.Errorf("refmon: audit log: %w", err)
		}
		opt.Audit = f
	}
	l := New(pol, opt)
	l.file = f
	log.Debug("policy loaded", "file", policy, "rules", len(pol.Rules), "default", pol.Default)
	return l, nil
}

func init() {
	nester.Register(nester.Kind{
		Name:    "refmon",
		Summary: "a reference monitor: allows or denies every operation of the subtree by a policy file, and audits denials",
		Usage:   Usage,
		New:     open,
	})
}
