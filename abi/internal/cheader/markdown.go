package cheader

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"nestvm/abi"
)

// Markdown returns the ABI reference page (docs/abi.md): every operation
// with its interface, rights, arguments and results, the error codes, the
// rights and the records, from the same data as the header.
func Markdown() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# The nestvm ABI\n\n")
	p("Generated from package `nestvm/abi` by `go generate ./abi`; do not edit.\n")
	p("The C declarations are in `examples/sdk/nestvm_abi.h`; Go code in the\n")
	p("monitor uses the same operations through `vmm.Caller`.\n\n")
	p("Every operation is invoked on a handle: a small number naming an object in\n")
	p("the caller's own handle table. A guest calls `NV_ABI_ENTRY` (%#x) with the\n", uint64(abi.ABIEntry))
	p("System V convention: `entry(handle, op, a0, a1, a2, a3, a4, a5)`, a0-a3 in\n")
	p("registers, a4 and a5 on the stack. R0 comes back in rax (a value >= 0, or a\n")
	p("negated error code), R1 in rdx. A buffer argument takes two slots, address\n")
	p("then length (or capacity).\n\n")
	p("Calls are checked in a fixed order, so a call wrong in several ways always\n")
	p("gets the same error: the handle (`NV_EBADHANDLE`), the operation\n")
	p("(`NV_EINVALOP`), whether the object implements the operation's interface\n")
	p("(`NV_EWRONGTYPE`), the rights (`NV_ERIGHTS`), then the arguments.\n\n")
	p("**The uniform interposition rule.** Any operation invoked on a handle that\n")
	p("names a port (except `port_receive` and `port_reply`, which are how a\n")
	p("server serves) goes to the port's server as an `nv_msg` of kind\n")
	p("`NV_MSG_CALL`: the operation, the argument slots, the bytes of its first\n")
	p("input buffer, the handles among its arguments (which need grant). The\n")
	p("server's `port_reply` is the operation's result: r0, r1, bytes for the\n")
	p("caller's first output buffer, and optionally a handle (R0 is then its\n")
	p("number in the caller's table). The rights the operation needs are checked\n")
	p("on the port handle, so a stand-in port carries the rights of what it\n")
	p("stands in for.\n\n")
	p("**Errors.** Each operation lists the errors it can return when its handle\n")
	p("names a kernel object or a port the monitor serves (the console, the clock,\n")
	p("the files root): first those of the checks every call passes, in their\n")
	p("order, then its own. An operation delivered to a port a guest serves\n")
	p("returns whatever that server replies, and a layer standing in for an\n")
	p("object may refuse an operation it interposes on (a reference monitor\n")
	p("answers `NV_EDENIED`). The kernel's fuzz targets fail on any error an\n")
	p("operation does not list.\n\n")

	p("## Operations\n\n")
	p("| # | operation | interface | rights | arguments | R0 | R1 |\n|---|---|---|---|---|---|---|\n")
	for op := abi.Op(1); op < abi.OpCount; op++ {
		info := abi.Ops[op]
		var args []string
		for _, a := range info.Args {
			kind := map[abi.ArgKind]string{abi.ArgValue: "", abi.ArgHandle: " (handle)", abi.ArgIn: " (in buffer)", abi.ArgOut: " (out buffer)"}[a.Kind]
			args = append(args, "`"+a.Name+"`"+kind)
		}
		rights := info.Rights.String()
		if info.Rights == 0 {
			rights = "-"
		}
		p("| %d | [`%s`](#%s) | %s | %s | %s | %s | %s |\n", op, info.Name, info.Name, info.Iface, orDash(rights),
			orDash(strings.Join(args, ", ")), orDash(info.R0), orDash(info.R1))
	}
	for op := abi.Op(1); op < abi.OpCount; op++ {
		info := abi.Ops[op]
		p("\n### %s\n\n%s\n", info.Name, info.Doc)
		if len(info.Args) > 0 {
			p("\n")
			for _, a := range info.Args {
				p("- `%s`: %s\n", a.Name, a.Doc)
			}
		}
		if info.NoReturn {
			p("\nDoes not return on success.\n")
		}
		var names []string
		for _, e := range info.AllErrors() {
			names = append(names, "`"+abi.ErrorSymbols[e.Code]+"`")
		}
		p("\nErrors: %s.\n\n", strings.Join(names, ", "))
		for _, e := range info.AllErrors() {
			p("- `%s`: %s\n", abi.ErrorSymbols[e.Code], errorDoc(e))
		}
	}

	p("\n## Error codes\n\nOperations return them negated in R0.\n\n| code | name | meaning |\n|---|---|---|\n")
	for e := abi.OK; e < abi.ErrCount; e++ {
		p("| %d | `%s` | %s |\n", e, abi.ErrorSymbols[e], e.Error())
	}
	p("\n## Rights\n\nA derived handle can only lose rights.\n\n| bit | name |\n|---|---|\n")
	for i, name := range abi.RightSymbols {
		p("| %#x | `%s` |\n", 1<<i, name)
	}
	p("\n## Object types\n\n| # | name |\n|---|---|\n")
	for o := abi.ObjNone; o < abi.ObjectCount; o++ {
		p("| %d | `%s` |\n", o, abi.ObjectSymbols[o])
	}
	p("\n## Constants\n\n| name | value | meaning |\n|---|---|---|\n")
	for _, c := range abi.Constants {
		p("| `%s` | %#x | %s |\n", c.CName, c.Value, c.Doc)
	}
	p("\n## Records\n\nLittle-endian, fixed-width fields, naturally aligned; records only grow at the end.\n")
	docs := FieldDocs()
	for _, r := range Records {
		p("\n### %s\n\n%s.\n\n| offset | field | type | meaning |\n|---|---|---|---|\n", r.Name, r.Dir)
		for i := 0; i < r.Type.NumField(); i++ {
			f := r.Type.Field(i)
			typ, suffix := cType(f.Type)
			if f.Type.Kind() == reflect.Struct {
				typ = "struct " + recordName(f.Type)
			}
			p("| %d | `%s` | `%s%s` | %s |\n", f.Offset, CName(f.Name), typ, suffix, orDash(fieldDoc(f.Name, docs[r.Type.Name()])))
		}
	}
	return b.Bytes()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(s, "|", "\\|")
}
