package abi_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"nestvm/abi"
	"nestvm/abi/internal/cheader"
)

const headerPath = "../examples/sdk/nestvm_abi.h"

func TestHeaderIsCurrent(t *testing.T) {
	got, err := os.ReadFile(headerPath)
	if err != nil {
		t.Fatalf("read the committed header: %v", err)
	}
	if !bytes.Equal(got, cheader.Generate()) {
		t.Fatalf("%s is stale: run go generate ./abi and commit the result", headerPath)
	}
}

func TestReferenceIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../docs/abi.md")
	if err != nil {
		t.Fatalf("read the committed reference: %v", err)
	}
	if !bytes.Equal(got, cheader.Markdown()) {
		t.Fatal("docs/abi.md is stale: run go generate ./abi and commit the result")
	}
}

// TestHeaderAgreesWithGo compiles a program against the header that prints
// every number the Go side defines, and compares them one by one.
func TestHeaderAgreesWithGo(t *testing.T) {
	want := map[string]uint64{}
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include \"nestvm_abi.h\"\nint main(void) {\n")
	emit := func(name, expr string, v uint64) {
		want[name] = v
		fmt.Fprintf(&src, "\tprintf(\"%s %%llu\\n\", (unsigned long long)(%s));\n", name, expr)
	}
	for _, c := range abi.Constants {
		emit(c.CName, c.CName, c.Value)
	}
	for e := abi.OK; e < abi.ErrCount; e++ {
		emit(abi.ErrorSymbols[e], abi.ErrorSymbols[e], uint64(e))
	}
	emit("NV_ERR_COUNT", "NV_ERR_COUNT", uint64(abi.ErrCount))
	for i, name := range abi.RightSymbols {
		emit(name, name, 1<<i)
	}
	emit("NV_R_ALL", "NV_R_ALL", uint64(abi.RightsAll))
	for o := abi.ObjNone; o < abi.ObjectCount; o++ {
		emit(abi.ObjectSymbols[o], abi.ObjectSymbols[o], uint64(o))
	}
	emit("NV_OBJ_COUNT", "NV_OBJ_COUNT", uint64(abi.ObjectCount))
	emit("NV_OP_NONE", "NV_OP_NONE", uint64(abi.OpNone))
	for op := abi.Op(1); op < abi.OpCount; op++ {
		name := "NV_OP_" + strings.ToUpper(abi.Ops[op].Name)
		emit(name, name, uint64(op))
	}
	emit("NV_OP_COUNT", "NV_OP_COUNT", uint64(abi.OpCount))
	for _, r := range cheader.Records {
		emit("sizeof "+r.Name, "sizeof(struct "+r.Name+")", uint64(r.Type.Size()))
		for i := 0; i < r.Type.NumField(); i++ {
			f := r.Type.Field(i)
			c := cheader.CName(f.Name)
			emit("offsetof "+r.Name+"."+c, fmt.Sprintf("__builtin_offsetof(struct %s, %s)", r.Name, c), uint64(f.Offset))
		}
	}
	emit("sizeof nv_result_t", "sizeof(nv_result_t)", 16)
	emit("sizeof nv_handle_t", "sizeof(nv_handle_t)", 8)
	emit("sizeof nv_addr_t", "sizeof(nv_addr_t)", 8)
	src.WriteString("\treturn 0;\n}\n")

	seen := 0
	for _, line := range compileAndRun(t, src.String()) {
		i := strings.LastIndex(line, " ")
		if i < 0 {
			t.Fatalf("bad line %q", line)
		}
		name, val := line[:i], line[i+1:]
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		if w, ok := want[name]; !ok {
			t.Errorf("%s: C printed a value Go does not know", name)
		} else if w != v {
			t.Errorf("%s: C says %d, Go says %d", name, v, w)
		}
		seen++
	}
	if seen != len(want) {
		t.Fatalf("C printed %d values, Go expects %d", seen, len(want))
	}
}

// TestHeaderWrappersPassSlots calls every generated wrapper on the host,
// with a recorder standing at NV_ABI_ENTRY, and checks that each argument
// arrives in its slot, unused slots are 0, and R0 and R1 come back. The
// guest convention is System V, the host's own, so the host can stand in
// for the ABI page. Six slots exercise the stack-passed a4 and a5, which no
// current operation uses.
func TestHeaderWrappersPassSlots(t *testing.T) {
	type call struct {
		name string   // what the C side prints first
		seen []uint64 // h, op, a0..a5 as the entry should see them
		r1   bool     // whether the call returns R1 (the _r form)
	}
	var calls []call
	var src strings.Builder
	src.WriteString(wrapperPrologue)
	// Distinct values per call and slot, so a swapped or dropped argument
	// shows up as a wrong number, never as a coincidental match.
	val := func(op abi.Op, slot int) uint64 { return uint64(op)<<32 | uint64(slot+1)<<8 | 0xa5 }

	calls = append(calls, call{"nv_invoke", []uint64{1, 2, 3, 4, 5, 6, 7, 8}, true})
	src.WriteString("\tshow(\"nv_invoke\", nv_invoke(1, 2, 3, 4, 5, 6, 7, 8));\n")
	for op := abi.Op(1); op < abi.OpCount; op++ {
		info := abi.Ops[op]
		seen := []uint64{val(op, -1), uint64(op)}
		args := []string{fmt.Sprintf("%#xull", val(op, -1))}
		slot := 0
		for _, a := range info.Args {
			for range a.Kind.Slots() {
				seen = append(seen, val(op, slot))
				args = append(args, fmt.Sprintf("%#xull", val(op, slot)))
				slot++
			}
		}
		for len(seen) < 2+abi.MaxArgSlots {
			seen = append(seen, 0)
		}
		list := strings.Join(args, ", ")
		name := "nv_" + info.Name
		calls = append(calls, call{name + "_r", seen, true}, call{name, seen, false})
		fmt.Fprintf(&src, "\tshow(\"%s_r\", %s_r(%s));\n", name, name, list)
		fmt.Fprintf(&src, "\tshow(\"%s\", (nv_result_t){%s(%s), 0});\n", name, name, list)
	}
	src.WriteString("\treturn 0;\n}\n")

	lines := compileAndRun(t, src.String())
	if len(lines) == 1 && strings.HasPrefix(lines[0], "SKIP ") {
		t.Skip(lines[0][5:])
	}
	if len(lines) != len(calls) {
		t.Fatalf("C printed %d lines, want %d:\n%s", len(lines), len(calls), strings.Join(lines, "\n"))
	}
	for i, c := range calls {
		f := strings.Fields(lines[i])
		if len(f) != 1+8+2 || f[0] != c.name {
			t.Fatalf("bad line %q for %s", lines[i], c.name)
		}
		var got [10]uint64
		for j := range got {
			v, err := strconv.ParseUint(f[1+j], 16, 64)
			if err != nil {
				t.Fatalf("bad line %q", lines[i])
			}
			got[j] = v
		}
		for j, w := range c.seen {
			if got[j] != w {
				t.Errorf("%s: the entry got %s = %#x, want %#x", c.name, slotName(j), got[j], w)
			}
		}
		// The recorder returns R0 = op + 0x7000 and R1 = op + 0x8000.
		if op := c.seen[1]; got[8] != op+0x7000 || (c.r1 && got[9] != op+0x8000) {
			t.Errorf("%s: returned R0 %#x R1 %#x, want %#x %#x", c.name, got[8], got[9], op+0x7000, op+0x8000)
		}
	}
}

func slotName(i int) string {
	if i < 2 {
		return [...]string{"handle", "op"}[i]
	}
	return fmt.Sprintf("a%d", i-2)
}

// wrapperPrologue puts a jump to a C recorder at NV_ABI_ENTRY. The host
// maps that address for the test program only; where it cannot (a low
// mmap_min_addr policy, something already there) the test skips.
const wrapperPrologue = `#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include "nestvm_abi.h"

static uint64_t seen[8];

static nv_result_t recorder(uint64_t h, uint64_t op, uint64_t a0, uint64_t a1,
			    uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	uint64_t v[8] = {h, op, a0, a1, a2, a3, a4, a5};
	memcpy(seen, v, sizeof seen);
	return (nv_result_t){(int64_t)(op + 0x7000), op + 0x8000};
}

static void show(const char *name, nv_result_t r)
{
	printf("%s", name);
	for (int i = 0; i < 8; i++)
		printf(" %llx", (unsigned long long)seen[i]);
	printf(" %llx %llx\n", (unsigned long long)r.r0, (unsigned long long)r.r1);
	memset(seen, 0xee, sizeof seen); /* a call that skips the entry shows */
}

int main(void)
{
	void *want = (void *)(uintptr_t)NV_ABI_ENTRY;
	unsigned char *p = mmap(want, NV_PAGE_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != want) {
		printf("SKIP the host will not map NV_ABI_ENTRY (%#llx) for a test program\n",
		       (unsigned long long)NV_ABI_ENTRY);
		return 0;
	}
	uint64_t target = (uint64_t)(uintptr_t)&recorder;
	p[0] = 0x48, p[1] = 0xb8; /* movabs $target, %rax */
	memcpy(p + 2, &target, 8);
	p[10] = 0xff, p[11] = 0xe0; /* jmp *%rax */
	if (mprotect(p, NV_PAGE_SIZE, PROT_READ | PROT_EXEC) != 0) {
		printf("SKIP mprotect of the stand-in ABI page failed\n");
		return 0;
	}
	memset(seen, 0xee, sizeof seen);
`

// compileAndRun compiles src against the header with gcc for the host, as
// strictly as guests are compiled, runs it and returns its output lines.
// It skips t when gcc is missing.
func compileAndRun(t *testing.T, src string) []string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("needs gcc to compile the header: %v", err)
	}
	dir := t.TempDir()
	cfile := filepath.Join(dir, "check.c")
	if err := os.WriteFile(cfile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "check")
	inc, err := filepath.Abs(filepath.Dir(headerPath))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gcc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I", inc, "-o", bin, cfile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compile against the header: %v\n%s\n%s", err, out, src)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run the compiled check: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func TestCNames(t *testing.T) {
	for goName, c := range map[string]string{
		"RAX": "rax", "FSBase": "fs_base", "ABIVersion": "abi_version", "HeapBase": "heap_base",
		"R8": "r8", "RFLAGS": "rflags", "Argv": "argv",
	} {
		if got := cheader.CName(goName); got != c {
			t.Errorf("CName(%s) = %s, want %s", goName, got, c)
		}
	}
}

// Every record field must be fixed-width so the layout is the same in Go
// and C on every host.
func TestRecordsAreFixedWidth(t *testing.T) {
	var check func(t *testing.T, typ reflect.Type)
	check = func(t *testing.T, typ reflect.Type) {
		switch typ.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Int32, reflect.Int64:
		case reflect.Array:
			check(t, typ.Elem())
		case reflect.Struct:
			for i := 0; i < typ.NumField(); i++ {
				check(t, typ.Field(i).Type)
			}
		default:
			t.Errorf("%s is not a fixed-width type", typ)
		}
	}
	for _, r := range cheader.Records {
		check(t, r.Type)
	}
}

// TestHeaderCompilesStrictly compiles the header alone, as C99 and as
// C11, freestanding, with every warning an error and ISO pedantry on:
// guests may use either standard, and C99 has no _Static_assert, which
// the header keeps for C11.
func TestHeaderCompilesStrictly(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skipf("needs a C compiler (cc) to compile the header: %v", err)
	}
	inc, err := filepath.Abs(filepath.Dir(headerPath))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfile := filepath.Join(dir, "use.c")
	src := "#include \"nestvm_abi.h\"\nint use(void);\nint use(void) { struct nv_stat st; st.size = 0; return (int)st.size; }\n"
	if err := os.WriteFile(cfile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, std := range []string{"c99", "c11"} {
		// Freestanding, as guests are built: a hosted libc's headers may
		// quietly define what C99 lacks (glibc makes _Static_assert a
		// macro), which would hide a header that needs it.
		cmd := exec.Command(cc, "-std="+std, "-ffreestanding", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", inc, "-c", "-o", filepath.Join(dir, std+".o"), cfile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("-std=%s: %v\n%s", std, err, out)
		}
	}
}

// TestRecordFieldsDocumented checks that every field of every record has
// a doc in the Go source, which the header and docs/abi.md carry.
func TestRecordFieldsDocumented(t *testing.T) {
	docs := cheader.FieldDocs()
	for _, r := range cheader.Records {
		if r.Dir == "" {
			t.Errorf("%s does not say which way it crosses", r.Name)
		}
		for i := 0; i < r.Type.NumField(); i++ {
			if f := r.Type.Field(i); docs[r.Type.Name()][f.Name] == "" {
				t.Errorf("%s.%s has no doc comment", r.Type.Name(), f.Name)
			}
		}
	}
}
