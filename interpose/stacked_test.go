package interpose_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/interpose"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// watch is a layer under border control that notes what it gave for each
// files_open and counts the reads of what it gave.
type watch struct {
	name string

	mu    sync.Mutex
	gave  []interpose.Cap
	reads int
}

func (l *watch) Name() string { return l.name }
func (l *watch) Close() error { return nil }

func (l *watch) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	w := &interpose.Wrapper{Host: mon.NewHost(l.name, vmm.DefaultQuota), Handler: l, Deep: true, Layer: l.name}
	return parent.WrapAll(w)
}

// Handle implements interpose.Handler.
func (l *watch) Handle(c *interpose.Call) {
	_, _, err := c.Forward()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case c.Op() == abi.OpFilesOpen && err == nil:
		l.gave = append(l.gave, c.Gave)
	case c.Op() == abi.OpFileRead && c.Name == nester.CapFiles+".files_open":
		l.reads++
	}
}

// TestResultWrappedByEachLayer: a handle an operation returns through two
// layers under border control (a file files_open opened) is wrapped by
// each on its way down: the program holds the lower layer's stand-in for
// the upper one's, so both see every read of it, and it still names the
// file.
func TestResultWrappedByEachLayer(t *testing.T) {
	dir := t.TempDir()
	const text = "read through two layers\n"
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		upper, lower := &watch{name: "upper"}, &watch{name: "lower"}
		out, r := layertest.Run(t, b, []nester.Layer{upper, lower}, dir, "cat", "f.txt")
		if !r.Exited || r.Status != 0 || out != text {
			t.Fatalf("cat under two layers: %s, output %q", r, out)
		}
		if len(upper.gave) != 1 || len(lower.gave) != 1 {
			t.Fatalf("files_open results: upper gave %d, lower %d; want one each", len(upper.gave), len(lower.gave))
		}
		u, l := upper.gave[0], lower.gave[0]
		if !u.Valid() || !l.Valid() || u.Obj == l.Obj {
			t.Errorf("the lower layer gave on what the upper gave (valid %v and %v): want a stand-in of its own", u.Valid(), l.Valid())
		}
		if layertest.Underlying(l.Obj) != layertest.Underlying(u.Obj) || layertest.Underlying(u.Obj) == u.Obj {
			t.Errorf("the stand-ins do not stand for one file")
		}
		if upper.reads == 0 || lower.reads != upper.reads {
			t.Errorf("reads of the file: upper saw %d, lower %d; want the same, more than none", upper.reads, lower.reads)
		}
	})
}

// keeper stands in for the files capability with a host port of its own
// that forwards through interpose.Forward, keeping a handle to each file
// opened through it.
type keeper struct {
	host   *vmm.Host
	caller *vmm.Caller
	target uint64

	mu   sync.Mutex
	kept []uint64 // in host's table
}

func (k *keeper) Name() string { return "keeper" }
func (k *keeper) Close() error { return nil }

func (k *keeper) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	k.host = mon.NewHost("keeper", vmm.DefaultQuota)
	k.caller = k.host.NewCaller()
	files := parent.Caps[nester.CapFiles]
	var err error
	if k.target, err = k.caller.Insert(files.Obj, files.Rights, files.Badge); err != nil {
		return nester.Env{}, err
	}
	stand := vmm.NewHostPort("keeper:files", vmm.ServerFunc(func(inv *vmm.Invocation) {
		interpose.Forward(inv, k.host.NewCaller(), k.target, vmm.ForwardOptions{}, k)
	}))
	return parent.With(nester.CapFiles, interpose.Cap{Obj: stand, Rights: files.Rights, Badge: files.Badge}), nil
}

// OnResult implements interpose.ResultHook.
func (k *keeper) OnResult(r interpose.Result) (interpose.Cap, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kept = append(k.kept, r.H)
	return r.Cap, true, nil
}

// TestResultHookKeepsUnderBorderControl: a layer's ResultHook keeps the
// handle a forwarded files_open returned, in its own table, while the
// layer below under border control wraps what it passes on: the kept
// handle and the program's stand-in name one file (handle_identify), and
// the program reads it.
func TestResultHookKeepsUnderBorderControl(t *testing.T) {
	dir := t.TempDir()
	const text = "kept above, wrapped below\n"
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		k, lower := &keeper{}, &watch{name: "lower"}
		out, r := layertest.Run(t, b, []nester.Layer{k, lower}, dir, "cat", "f.txt")
		if !r.Exited || r.Status != 0 || out != text {
			t.Fatalf("cat under keeper and watch: %s, output %q", r, out)
		}
		if len(k.kept) != 1 || len(lower.gave) != 1 {
			t.Fatalf("kept %d handles, the layer below gave %d; want one each", len(k.kept), len(lower.gave))
		}
		kept, err := k.caller.Identify(k.kept[0])
		if err != nil {
			t.Fatalf("the kept handle: %v", err)
		}
		h, err := k.caller.Insert(lower.gave[0].Obj, lower.gave[0].Rights, 0)
		if err != nil {
			t.Fatal(err)
		}
		given, err := k.caller.Identify(h)
		if err != nil {
			t.Fatal(err)
		}
		if kept.Object != given.Object || kept.Type != uint64(abi.ObjPort) {
			t.Errorf("kept handle names object %d (type %d), the program's stand-in %d: want one file (a port)", kept.Object, kept.Type, given.Object)
		}
		if lower.reads == 0 {
			t.Error("the layer below saw no read of the file it wrapped")
		}
	})
}
