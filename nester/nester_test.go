package nester_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/internal/testutil"
	"nestvm/interpose"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/services/null"
	"nestvm/vmm"
)

// syncBuffer is a writer a test reads while guests write it.
type syncBuffer = testutil.Buffer

// run runs guest name with args under layers on b, with 1 GiB for the
// stacks of nesters some tests build.
func run(t *testing.T, b machine.Backend, layers []nester.Layer, files string, name string, args ...string) (string, vmm.Result) {
	t.Helper()
	return layertest.RunWith(t, b, layers, layertest.Options{Files: files, Memory: 1 << 30}, name, args...)
}

func nulls(n int) []nester.Layer {
	var ls []nester.Layer
	for i := 0; i < n; i++ {
		ls = append(ls, null.Layer{})
	}
	return ls
}

// TestNullLayers runs programs under 0, 1 and 3 null layers: output and
// status are those of the program run directly.
func TestNullLayers(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		for _, depth := range []int{0, 1, 3} {
			out, r := run(t, b, nulls(depth), "", "hello", "world")
			if out != "Hello, world!\n" || !r.Exited || r.Status != 0 {
				t.Errorf("hello under %d null layers: %q, %s", depth, out, r)
			}
			out, r = run(t, b, nulls(depth), "", "counter", "4")
			if !strings.HasPrefix(out, "1\n2\n3\n4\ntotal ") || !r.Exited || r.Status != 0 {
				t.Errorf("counter under %d null layers: %q, %s", depth, out, r)
			}
			_, r = run(t, b, nulls(depth), "", "crash-null")
			if r.Fault == nil || r.Fault.Fault.Vector != machine.VecPage || r.Fault.Fault.Addr != 0 {
				t.Errorf("crash-null under %d null layers: %s, want a page fault at 0", depth, r)
			}
		}
	})
}

// recorder is a layer that wraps every capability, deep, and records
// "name op" for each operation.
type recorder struct {
	mu   sync.Mutex
	seen []string
	deny map[abi.Op]abi.Error
	host *vmm.Host
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Close() error { r.host.Kill("layer closed"); return nil }

func (r *recorder) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	r.host = mon.NewHost("recorder", vmm.DefaultQuota)
	w := &interpose.Wrapper{Host: r.host, Deep: true, Layer: "recorder", Handler: interpose.HandlerFunc(func(c *interpose.Call) {
		r.mu.Lock()
		r.seen = append(r.seen, c.Name+" "+c.Op().String())
		e, deny := r.deny[c.Op()]
		r.mu.Unlock()
		if deny {
			c.Deny(e)
			return
		}
		c.Forward()
	})}
	return parent.WrapAll(w)
}

func (r *recorder) has(entry string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.seen {
		if s == entry {
			return true
		}
	}
	return false
}

// TestInterposeBorderControl wraps every capability of cat's environment,
// deep: the layer sees the loading (through the space capability), the
// program's console writes, and the file cat opens, whose handle came back
// out of a call and was wrapped in turn. The output is cat's as without.
func TestInterposeBorderControl(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "note.txt"), []byte("through two layers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		rec := &recorder{}
		out, r := run(t, b, []nester.Layer{null.Layer{}, rec}, dir, "cat", "note.txt")
		if out != "through two layers\n" || !r.Exited || r.Status != 0 {
			t.Fatalf("cat under a recorder: %q, %s", out, r)
		}
		for _, want := range []string{
			"space space_create", "space.space_create region_create", "space.space_create space_map",
			"space.space_create thread_create", "space.space_create.thread_create thread_start",
			"files files_open", "files.files_open file_read", "console console_write",
		} {
			if !rec.has(want) {
				rec.mu.Lock()
				seen := append([]string(nil), rec.seen...)
				rec.mu.Unlock()
				sort.Strings(seen)
				t.Errorf("the recorder did not see %q; it saw:\n%s", want, strings.Join(seen, "\n"))
			}
		}
	})
}

// TestInterposeDeny refuses console writes in a layer: the program sees
// the error, and nothing reaches the console.
func TestInterposeDeny(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		rec := &recorder{deny: map[abi.Op]abi.Error{abi.OpConsoleWrite: abi.ErrDenied}}
		out, r := run(t, b, []nester.Layer{rec}, "", "hello", "world")
		if out != "" {
			t.Errorf("denied console writes reached the console: %q", out)
		}
		if !r.Exited {
			t.Errorf("hello with its writes denied: %s", r)
		}
		if !rec.has("console console_write") {
			t.Error("the layer never saw the write it denied")
		}
	})
}

// TestGuestNesterBelowLayers runs nest (a guest nester) below Go layers:
// hello two nesters deep prints what it prints alone, and a layer above
// sees the grandchild's console writes pass through its console stand-in
// (nest hands the console down untouched), and the child space nest
// creates (through the program's space stand-in).
func TestGuestNesterBelowLayers(t *testing.T) {
	dir := t.TempDir()
	for _, g := range []string{"nest", "hello"} {
		data, err := os.ReadFile(testutil.Guest(t, g))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, g+".elf"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		rec := &recorder{}
		out, r := run(t, b, []nester.Layer{rec, null.Layer{}}, dir, "nest", "nest.elf", "hello.elf", "deep")
		if out != "Hello, deep!\n" || !r.Exited || r.Status != 0 {
			t.Fatalf("nest nest hello under layers: %q, %s", out, r)
		}
		for _, want := range []string{"console console_write", "space.space_create space_create", "files files_open"} {
			if !rec.has(want) {
				t.Errorf("the layer above the nesters did not see %q", want)
			}
		}
	})
}

// TestBorderControlMessages runs kerneltest's fault area below a deep
// layer: the thread handle that arrives in the fault message is a stand-in
// too (the layer sees the handler's thread_status on it), and handle_info
// on stand-ins reports what they stand for, so the program passes as it
// does alone.
func TestBorderControlMessages(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		rec := &recorder{}
		out, r := run(t, b, []nester.Layer{rec}, "", "kerneltest", "fault")
		if !strings.Contains(out, "PASS fault\n") || strings.Contains(out, "FAIL") || !r.Exited || r.Status != 0 {
			t.Fatalf("kerneltest below a deep layer: %s\n%s", r, out)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, s := range rec.seen {
			if strings.HasSuffix(s, ".received thread_status") {
				return
			}
		}
		t.Errorf("the layer never saw the fault's thread handle used; it saw %d operations", len(rec.seen))
	})
}

// spaceKeeper is a layer that stands in for its environment's space with
// Env.StandIn, counting the spaces created through it.
type spaceKeeper struct {
	host           *vmm.Host
	created        atomic.Int32
	parent, child  interpose.Cap
	missingErr     error
	missingChanged bool
}

func (k *spaceKeeper) Name() string { return "space-keeper" }
func (k *spaceKeeper) Close() error { k.host.Kill("layer closed"); return nil }

func (k *spaceKeeper) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	k.host = mon.NewHost("space-keeper", vmm.DefaultQuota)
	c := k.host.NewCaller()
	serve := func(target uint64) vmm.Server {
		return &interpose.Relay{Host: k.host, Target: target, Hook: interpose.ResultFunc(func(r interpose.Result) (interpose.Cap, bool, error) {
			if r.Inv.Op == abi.OpSpaceCreate {
				k.created.Add(1)
			}
			return r.Cap, false, nil
		})}
	}
	same, err := parent.StandIn(c, "nothing", "space-keeper:nothing", serve)
	k.missingErr, k.missingChanged = err, len(same.Caps) != len(parent.Caps)
	env, err := parent.StandIn(c, nester.CapSpace, "space-keeper:space", serve)
	if err != nil {
		return parent, err
	}
	k.parent, k.child = parent.Caps[nester.CapSpace], env.Caps[nester.CapSpace]
	return env, nil
}

// TestStandIn: a layer's stand-in for its environment's space
// (Env.StandIn) carries the capability's rights and badge, forwards what
// the program's loader does through it, and gives its hook the space
// created; a capability the environment lacks is an error that names it.
func TestStandIn(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		k := &spaceKeeper{}
		out, r := run(t, b, []nester.Layer{k}, "", "hello", "world")
		if out != "Hello, world!\n" || !r.Exited || r.Status != 0 {
			t.Fatalf("hello under a space stand-in: %q, %s", out, r)
		}
		if n := k.created.Load(); n != 1 {
			t.Errorf("the hook saw %d spaces created, want the program's one", n)
		}
		if k.child.Obj == k.parent.Obj || k.child.Rights != k.parent.Rights || k.child.Badge != k.parent.Badge {
			t.Errorf("stand-in: the space itself %v, rights %v, badge %d; the space's rights %v, badge %d: want a port of the layer's with the same rights and badge",
				k.child.Obj == k.parent.Obj, k.child.Rights, k.child.Badge, k.parent.Rights, k.parent.Badge)
		}
		if typ := vmm.TypeOf(k.child.Obj); typ != abi.ObjSpace {
			t.Errorf("the stand-in reads as a %v, want a space as what it stands for", typ)
		}
		if k.missingErr == nil || !strings.Contains(k.missingErr.Error(), "nothing") || k.missingChanged {
			t.Errorf("StandIn of a capability the environment lacks: %v (environment changed: %v), want an error naming it", k.missingErr, k.missingChanged)
		}
	})
}
