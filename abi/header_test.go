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

// TestHeaderAgreesWithGo compiles a program against the header that prints
// every number the Go side defines, and compares them one by one.
func TestHeaderAgreesWithGo(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("needs gcc to compile the header: %v", err)
	}
	want := map[string]uint64{}
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include \"nestvm_abi.h\"\nint main(void) {\n")
	emit := func(name, expr string, v uint64) {
		want[name] = v
		fmt.Fprintf(&src, "\tprintf(\"%s %%llu\\n\", (unsigned long long)(%s));\n", name, expr)
	}
	for _, c := range cheader.Constants {
		emit(c.Name, c.Name, c.Value)
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
	src.WriteString("\treturn 0;\n}\n")

	dir := t.TempDir()
	cfile := filepath.Join(dir, "check.c")
	if err := os.WriteFile(cfile, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "check")
	abs, _ := filepath.Abs(filepath.Dir(headerPath))
	if out, err := exec.Command(gcc, "-std=c11", "-Wall", "-Werror", "-I", abs, "-o", bin, cfile).CombinedOutput(); err != nil {
		t.Fatalf("compile against the header: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndex(line, " ")
		name, val := line[:i], line[i+1:]
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		if want[name] != v {
			t.Errorf("%s: C says %d, Go says %d", name, v, want[name])
		}
		seen++
	}
	if seen != len(want) {
		t.Fatalf("C printed %d values, Go expects %d", seen, len(want))
	}
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
