package oci

import (
	"fmt"
	"strings"
)

// argv is a runc command line taken apart: the global flags (kept as the
// caller wrote them, for runc), the command, its flags and its operands.
type argv struct {
	global []string
	flags  map[string]string // global flags by name (no dashes); "" for a boolean
	cmd    string
	opts   []opt
	pos    []string
}

// opt is one of the command's flags.
type opt struct {
	name   string
	val    string
	hasVal bool
}

// globalValued are runc's global flags that take a value.
var globalValued = map[string]bool{"root": true, "log": true, "log-format": true, "criu": true, "rootless": true}

// valued are, per command, the flags of runc's that take a value; any
// other flag is a boolean. Commands that pass to runc untouched need none.
var valued = map[string]map[string]bool{
	"create":     set("bundle", "b", "console-socket", "pid-file", "preserve-fds"),
	"run":        set("bundle", "b", "console-socket", "pid-file", "preserve-fds"),
	"restore":    set("bundle", "b", "console-socket", "pid-file", "image-path", "work-path", "manage-cgroups-mode", "empty-ns", "lsm-profile", "lsm-mount-context", "parent-path"),
	"checkpoint": set("image-path", "work-path", "parent-path", "page-server", "status-fd", "manage-cgroups-mode", "empty-ns"),
	"exec":       set("console-socket", "cwd", "env", "e", "user", "u", "additional-gids", "g", "process", "p", "pid-file", "process-label", "apparmor", "cap", "c", "preserve-fds", "cgroup"),
	"delete":     set(),
	"state":      set(),
}

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// parseArgs takes args (without the program name) apart. Flags may have
// one dash or two, and a value after = or as the next argument, as runc
// accepts them; they may follow the operands, except for exec, whose
// command line after the container id is the command's.
func parseArgs(args []string) (*argv, error) {
	a := &argv{flags: map[string]string{}}
	i := 0
	for ; i < len(args) && isFlag(args[i]); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		a.global = append(a.global, args[i])
		if globalValued[name] && !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag --%s needs a value", name)
			}
			i++
			val = args[i]
			a.global = append(a.global, args[i])
		}
		a.flags[name] = val
	}
	if i == len(args) {
		return a, nil
	}
	a.cmd = args[i]
	takes := valued[a.cmd]
	for i++; i < len(args); i++ {
		if args[i] == "--" {
			a.pos = append(a.pos, args[i+1:]...)
			break
		}
		if !isFlag(args[i]) {
			if a.cmd == "exec" {
				a.pos = append(a.pos, args[i:]...)
				break
			}
			a.pos = append(a.pos, args[i])
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if takes[name] && !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("%s: flag --%s needs a value", a.cmd, name)
			}
			i++
			val, hasVal = args[i], true
		}
		a.opts = append(a.opts, opt{name: name, val: val, hasVal: hasVal})
	}
	return a, nil
}

func isFlag(s string) bool { return len(s) > 1 && s[0] == '-' }

// get returns the value of the command's flag named by any of names.
func (a *argv) get(names ...string) (string, bool) {
	for _, o := range a.opts {
		for _, n := range names {
			if o.name == n {
				return o.val, true
			}
		}
	}
	return "", false
}

// has reports whether a boolean flag is given (and not =false).
func (a *argv) has(name string) bool {
	v, ok := a.get(name)
	return ok && v != "false"
}

// render writes the flags named in keep back as arguments, in the order
// given, with their values replaced where replace says.
func (a *argv) render(keep map[string]bool, replace map[string]string) []string {
	var out []string
	for _, o := range a.opts {
		if !keep[o.name] {
			continue
		}
		dash := "--"
		if len(o.name) == 1 {
			dash = "-"
		}
		if v, ok := replace[o.name]; ok {
			out = append(out, dash+o.name+"="+v)
			continue
		}
		if o.hasVal {
			out = append(out, dash+o.name+"="+o.val)
		} else {
			out = append(out, dash+o.name)
		}
	}
	return out
}
