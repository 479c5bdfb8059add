// Package cheader writes the C header guests compile against, from the Go
// definition of the ABI in package abi. The header is generated, never
// edited: abi is the one definition, and a test fails when the committed
// header differs from what Generate returns.
package cheader

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"nestvm/abi"
)

// Records are the record types the header declares, in order, with their C
// names and which way they cross the guest boundary: OUT records the
// monitor writes for the guest, IN records it reads from the guest. A new
// record is added here.
var Records = []struct {
	Name string
	Type reflect.Type
	Dir  string
}{
	{"nv_start_info", reflect.TypeOf(abi.StartInfo{}), "OUT: the monitor writes it at start"},
	{"nv_thread_regs", reflect.TypeOf(abi.ThreadRegs{}), "IN/OUT: as part of nv_thread_state"},
	{"nv_thread_state", reflect.TypeOf(abi.ThreadState{}), "IN/OUT: thread_get_state and a fault message write it; thread_set_state and a NV_FAULT_RESUME_STATE reply read it"},
	{"nv_msg", reflect.TypeOf(abi.Msg{}), "OUT: port_receive and port_get_state write it"},
	{"nv_space_state", reflect.TypeOf(abi.SpaceState{}), "OUT: space_get_state writes it"},
	{"nv_space_map", reflect.TypeOf(abi.SpaceMapEntry{}), "OUT: space_get_state writes it"},
	{"nv_space_handle", reflect.TypeOf(abi.SpaceHandleEntry{}), "OUT: space_get_state writes it"},
	{"nv_space_thread", reflect.TypeOf(abi.SpaceThreadEntry{}), "OUT: space_get_state writes it"},
	{"nv_handle_identity", reflect.TypeOf(abi.HandleIdentity{}), "OUT: handle_identify writes it"},
	{"nv_region_state", reflect.TypeOf(abi.RegionState{}), "OUT: region_get_state writes it"},
	{"nv_port_state", reflect.TypeOf(abi.PortState{}), "OUT: port_get_state writes it"},
	{"nv_port_set_state", reflect.TypeOf(abi.PortSetState{}), "OUT: port_set_get_state writes it"},
	{"nv_stat", reflect.TypeOf(abi.Stat{}), "OUT: files_stat and file_stat write it"},
	{"nv_dirent", reflect.TypeOf(abi.DirEntry{}), "OUT: file_readdir writes it"},
	{"nv_time_page", reflect.TypeOf(abi.TimePage{}), "OUT: the monitor keeps it current in the page clock_time_page hands out"},
	{"nv_batch_entry", reflect.TypeOf(abi.BatchEntry{}), "IN/OUT: call_batch reads the operations and writes their results"},
}

// Generate returns the header.
func Generate() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`/* nestvm_abi.h: the nestvm guest ABI.
 *
 * Generated from package nestvm/abi by "go generate ./abi"; do not edit.
 *
 * Every operation is invoked on a handle (a small integer naming an object
 * in the caller's own handle table) by calling NV_ABI_ENTRY with the System
 * V calling convention: handle and operation in rdi and rsi, arguments
 * a0..a3 in rdx, rcx, r8, r9, a4 and a5 on the stack. R0 comes back in rax:
 * a value >= 0, or a negated error code (NV_E...). Some operations also
 * return R1 in rdx. Guest addresses in records are plain integers
 * (nv_addr_t), never pointers.
 */
#ifndef NESTVM_ABI_H
#define NESTVM_ABI_H

#include <stddef.h>
#include <stdint.h>

`)
	for _, c := range abi.Constants {
		p("#define %-20s %#xull /* %s */\n", c.CName, c.Value, c.Doc)
	}

	p("\n/* Error codes: operations return them negated in R0. */\nenum nv_error {\n")
	for e := abi.OK; e < abi.ErrCount; e++ {
		p("\t%s = %d, /* %s */\n", abi.ErrorSymbols[e], e, e.Error())
	}
	p("\tNV_ERR_COUNT = %d\n};\n", abi.ErrCount)

	p("\n/* Rights: what a handle allows. Derived handles only lose rights. */\n")
	for i, name := range abi.RightSymbols {
		p("#define %-14s %#xu /* %s */\n", name, 1<<i, abi.Rights(1<<i))
	}
	p("#define %-14s %#xu\n", "NV_R_ALL", uint32(abi.RightsAll))

	p("\n/* Object types, as handle_info reports them. */\nenum nv_object_type {\n")
	for o := abi.ObjNone; o < abi.ObjectCount; o++ {
		p("\t%s = %d,\n", abi.ObjectSymbols[o], o)
	}
	p("\tNV_OBJ_COUNT = %d\n};\n", abi.ObjectCount)

	p("\n/* Operations. 0 is reserved; numbers are never reused. */\nenum nv_op {\n\tNV_OP_NONE = 0,\n")
	for op := abi.Op(1); op < abi.OpCount; op++ {
		info := abi.Ops[op]
		p("\t%s = %d, /* %s: %s */\n", opSymbol(op), op, info.Iface, firstSentence(info.Doc))
	}
	p("\tNV_OP_COUNT = %d\n};\n", abi.OpCount)

	p(`
typedef uint64_t nv_handle_t;
typedef uint64_t nv_addr_t;

/* What every operation returns: R0 in rax, R1 in rdx. */
typedef struct nv_result {
	int64_t r0;
	uint64_t r1;
} nv_result_t;

typedef nv_result_t (*nv_entry_fn)(uint64_t h, uint64_t op, uint64_t a0, uint64_t a1,
				   uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5);

/* nv_invoke performs operation op on handle h. */
static inline nv_result_t nv_invoke(nv_handle_t h, uint64_t op, uint64_t a0, uint64_t a1,
				    uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	return ((nv_entry_fn)NV_ABI_ENTRY)(h, op, a0, a1, a2, a3, a4, a5);
}
`)
	for op := abi.Op(1); op < abi.OpCount; op++ {
		writeWrapper(&b, op)
	}

	p("\n/* Records. Fields are fixed-width; records only grow at the end. Each\n")
	p(" * says which way it crosses: OUT the monitor writes, IN it reads. The\n")
	p(" * layout checks need C11's _Static_assert; a C99 compiler goes without. */\n")
	docs := FieldDocs()
	for _, r := range Records {
		writeRecord(&b, r.Name, r.Type, r.Dir, docs[r.Type.Name()])
	}
	p("\n#endif /* NESTVM_ABI_H */\n")
	return b.Bytes()
}

// errorDoc is what e means for its operation: its own words, or the
// code's meaning.
func errorDoc(e abi.OpError) string {
	if e.Doc != "" {
		return e.Doc
	}
	return e.Code.Error()
}

// opSymbol is the C name of op's number.
func opSymbol(op abi.Op) string { return "NV_OP_" + strings.ToUpper(abi.Ops[op].Name) }

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// writeWrapper writes nv_<name>() and nv_<name>_r() for op.
func writeWrapper(b *bytes.Buffer, op abi.Op) {
	info := abi.Ops[op]
	var params, slots, docs []string
	params = append(params, "nv_handle_t h")
	for _, a := range info.Args {
		switch a.Kind {
		case abi.ArgValue:
			params = append(params, "uint64_t "+a.Name)
			slots = append(slots, a.Name)
			docs = append(docs, fmt.Sprintf(" *   %s (IN): %s", a.Name, a.Doc))
		case abi.ArgHandle:
			params = append(params, "nv_handle_t "+a.Name)
			slots = append(slots, a.Name)
			docs = append(docs, fmt.Sprintf(" *   %s (IN, handle): %s", a.Name, a.Doc))
		case abi.ArgIn:
			params = append(params, "nv_addr_t "+a.Name, "uint64_t "+a.Name+"_len")
			slots = append(slots, a.Name, a.Name+"_len")
			docs = append(docs, fmt.Sprintf(" *   %s, %s_len (IN buffer): %s", a.Name, a.Name, a.Doc))
		case abi.ArgOut:
			params = append(params, "nv_addr_t "+a.Name, "uint64_t "+a.Name+"_cap")
			slots = append(slots, a.Name, a.Name+"_cap")
			docs = append(docs, fmt.Sprintf(" *   %s, %s_cap (OUT buffer): %s", a.Name, a.Name, a.Doc))
		}
	}
	for len(slots) < abi.MaxArgSlots {
		slots = append(slots, "0")
	}
	fmt.Fprintf(b, "\n/* nv_%s: %s\n", info.Name, info.Doc)
	fmt.Fprintf(b, " * Interface: %s. Rights needed: %s.\n", info.Iface, info.Rights)
	for _, d := range docs {
		fmt.Fprintln(b, d)
	}
	if info.R0 != "" {
		fmt.Fprintf(b, " * R0: %s.\n", info.R0)
	}
	if info.R1 != "" {
		fmt.Fprintf(b, " * R1: %s.\n", info.R1)
	}
	if info.NoReturn {
		fmt.Fprintln(b, " * Does not return on success; returns a negated error code otherwise.")
	}
	fmt.Fprintln(b, " * Errors (a port a guest serves returns what its server replies):")
	for _, e := range info.AllErrors() {
		fmt.Fprintf(b, " *   %s: %s\n", abi.ErrorSymbols[e.Code], errorDoc(e))
	}
	fmt.Fprintln(b, " */")
	sig := strings.Join(params, ", ")
	fmt.Fprintf(b, "static inline nv_result_t nv_%s_r(%s)\n{\n\treturn nv_invoke(h, %s, %s);\n}\n", info.Name, sig, opSymbol(op), strings.Join(slots, ", "))
	fmt.Fprintf(b, "static inline int64_t nv_%s(%s)\n{\n\treturn nv_%s_r(%s).r0;\n}\n", info.Name, sig, info.Name, strings.Join(argNames(params), ", "))
}

func argNames(params []string) []string {
	out := make([]string, len(params))
	for i, p := range params {
		out[i] = p[strings.LastIndex(p, " ")+1:]
	}
	return out
}

// CName returns the C name of a Go field: snake case.
func CName(goName string) string {
	var out []rune
	rs := []rune(goName)
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) && !unicode.IsDigit(rs[i-1]) {
			out = append(out, '_')
		}
		out = append(out, unicode.ToLower(r))
	}
	return string(out)
}

func recordName(t reflect.Type) string {
	for _, r := range Records {
		if r.Type == t {
			return r.Name
		}
	}
	panic("cheader: record type " + t.Name() + " is not in Records")
}

// cType returns the C type of t and the array suffix of a field of that type.
func cType(t reflect.Type) (string, string) {
	switch t.Kind() {
	case reflect.Uint64:
		return "uint64_t", ""
	case reflect.Uint32:
		return "uint32_t", ""
	case reflect.Uint16:
		return "uint16_t", ""
	case reflect.Uint8:
		return "uint8_t", ""
	case reflect.Int64:
		return "int64_t", ""
	case reflect.Int32:
		return "int32_t", ""
	case reflect.Array:
		et, _ := cType(t.Elem())
		return et, fmt.Sprintf("[%d]", t.Len())
	case reflect.Struct:
		return "struct " + recordName(t), ""
	}
	panic("cheader: unsupported field type " + t.String())
}

func writeRecord(b *bytes.Buffer, name string, t reflect.Type, dir string, docs map[string]string) {
	fmt.Fprintf(b, "\n/* %s (%s). */\nstruct %s {\n", name, dir, name)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		ct, suffix := cType(f.Type)
		fmt.Fprintf(b, "\t%s %s%s; /* %s */\n", ct, CName(f.Name), suffix, fieldDoc(f.Name, docs))
	}
	fmt.Fprintf(b, "};\n#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L\n")
	fmt.Fprintf(b, "_Static_assert(sizeof(struct %s) == %d, \"struct %s size\");\n", name, t.Size(), name)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fmt.Fprintf(b, "_Static_assert(offsetof(struct %s, %s) == %d, \"%s.%s offset\");\n",
			name, CName(f.Name), f.Offset, name, CName(f.Name))
	}
	fmt.Fprintf(b, "#endif\n")
}

// fieldDoc is the doc of field name, in C terms.
func fieldDoc(name string, docs map[string]string) string {
	doc := docs[name]
	if rest, ok := strings.CutPrefix(doc, name+" "); ok {
		doc = CName(name) + " " + rest // "DataLen is the length": the C name reads the same
	}
	return cDoc(doc)
}
