package trace

import (
	"fmt"
	"sort"
	"strings"

	"nestvm/abi"
)

// Usage is the argument syntax, as `nestvm layers` shows it.
const Usage = `trace                 one line per operation on stderr, counts at the end
trace=FILE            JSON Lines to FILE (file=FILE too), a summary record last
options, after = and between commas (trace=FILE,ops=...,types=...):
  file=FILE           write FILE (created or truncated before the program starts)
  format=text|jsonl   text lines or JSON Lines (default: text on stderr, jsonl in a file)
  ops=OP+OP...        record only these operations (names as in docs/abi.md)
  types=T+T...        record only calls on these object types or interfaces:
                      space thread region port port_set console clock files file handle
  label=NAME          tag of this layer's records (default: trace, and trace2,
                      trace3, ... for the next ones inward)
  summary=on|off      counts per operation when the program ends (default on)
  abi=on|off          under a Linux program, also record the ABI operations its
                      system calls became (default off: the system calls alone)`

// Format is how records are written.
type Format int

// Formats.
const (
	Text Format = iota + 1
	JSONL
)

// Options are a trace layer's parsed arguments.
type Options struct {
	File    string // "" for stderr
	Format  Format
	Ops     map[abi.Op]bool // nil: every operation
	Types   map[string]bool // nil: every type
	Label   string          // "" for the default
	Summary bool
	// ABI records the ABI operations a personality performs for the
	// system calls it serves, besides the system calls.
	ABI bool
}

// typeNames are the names types= accepts: object types and interfaces.
func typeNames() map[string]bool {
	names := map[string]bool{}
	for t := abi.ObjectType(1); t < abi.ObjectCount; t++ {
		names[t.String()] = true
	}
	for i := abi.Interface(1); i < abi.InterfaceCount; i++ {
		names[i.String()] = true
	}
	return names
}

// ParseOptions parses the arguments after "trace=". It refuses anything it
// does not know, naming it.
func ParseOptions(args string) (Options, error) {
	o := Options{Summary: true}
	if strings.TrimSpace(args) == "" {
		o.Format = Text
		return o, nil
	}
	seen := map[string]bool{}
	for _, item := range strings.Split(args, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return o, fmt.Errorf("empty option in %q", args)
		}
		key, val, hasEq := strings.Cut(item, "=")
		if !hasEq {
			key, val = "file", item
		}
		if seen[key] {
			return o, fmt.Errorf("option %s given twice", key)
		}
		seen[key] = true
		switch key {
		case "file":
			if val == "" {
				return o, fmt.Errorf("file= needs a file name")
			}
			o.File = val
		case "format":
			switch val {
			case "text":
				o.Format = Text
			case "jsonl", "json":
				o.Format = JSONL
			default:
				return o, fmt.Errorf("format=%s: not text or jsonl", val)
			}
		case "ops":
			o.Ops = map[abi.Op]bool{}
			byName := map[string]abi.Op{}
			for op := abi.Op(1); op < abi.OpCount; op++ {
				byName[op.String()] = op
			}
			for _, n := range strings.Split(val, "+") {
				op, ok := byName[strings.TrimSpace(n)]
				if !ok {
					return o, fmt.Errorf("ops=: no operation named %q (see docs/abi.md)", n)
				}
				o.Ops[op] = true
			}
		case "types":
			o.Types = map[string]bool{}
			known := typeNames()
			for _, n := range strings.Split(val, "+") {
				n = strings.TrimSpace(n)
				if !known[n] {
					var all []string
					for k := range known {
						all = append(all, k)
					}
					sort.Strings(all)
					return o, fmt.Errorf("types=: no object type or interface named %q (there are: %s)", n, strings.Join(all, " "))
				}
				o.Types[n] = true
			}
		case "label":
			if val == "" || strings.ContainsAny(val, " \t\n") {
				return o, fmt.Errorf("label=%q: want a word", val)
			}
			o.Label = val
		case "summary":
			switch val {
			case "on", "yes", "true", "1":
				o.Summary = true
			case "off", "no", "false", "0":
				o.Summary = false
			default:
				return o, fmt.Errorf("summary=%s: not on or off", val)
			}
		case "abi":
			switch val {
			case "on", "yes", "true", "1":
				o.ABI = true
			case "off", "no", "false", "0":
				o.ABI = false
			default:
				return o, fmt.Errorf("abi=%s: not on or off", val)
			}
		default:
			return o, fmt.Errorf("unknown option %q (options: file, format, ops, types, label, summary, abi)", key)
		}
	}
	if o.Format == 0 {
		o.Format = Text
		if o.File != "" {
			o.Format = JSONL
		}
	}
	return o, nil
}
