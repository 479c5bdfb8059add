// Package layertest runs real guest programs under stacks of layers, for
// the tests of nester and of every layer in services/.
package layertest

import (
	"io"
	"os"
	"testing"
	"time"

	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// Options adjust Run.
type Options struct {
	// Files is the files root's directory; "" for none.
	Files string
	// Memory is the program's memory quota; 256 MiB when 0.
	Memory uint64
}

// runGuard turns a program that never ends into a failure with its
// output. It bounds no result: the longest program run here (layered's
// 70,000 replies through a stack of layers on emu) takes about 25 s alone
// and several times that on a host as loaded as a CI machine running two
// suites, so the guard is far beyond both.
const runGuard = 5 * time.Minute

// Run runs guest name with args under layers on b, with files (when not
// "") as its files root, and returns its console output and result.
func Run(t *testing.T, b machine.Backend, layers []nester.Layer, files string, name string, args ...string) (string, vmm.Result) {
	t.Helper()
	return RunWith(t, b, layers, Options{Files: files}, name, args...)
}

// RunWith is Run with options. What the program writes to stderr is logged.
func RunWith(t *testing.T, b machine.Backend, layers []nester.Layer, o Options, name string, args ...string) (string, vmm.Result) {
	t.Helper()
	data, err := os.ReadFile(testutil.Guest(t, name))
	if err != nil {
		t.Fatal(err)
	}
	if o.Memory == 0 {
		o.Memory = 256 << 20
	}
	img, err := vmm.ParseELF(data, o.Memory)
	if err != nil {
		t.Fatal(err)
	}
	mon := vmm.NewMonitor(b, nil)
	var out, errs testutil.Buffer
	cfg := nester.RootConfig{Console: &out, Stderr: &errs, Memory: o.Memory}
	if o.Files != "" {
		fs, err := vmm.FilesServer(o.Files, false)
		if err != nil {
			t.Fatal(err)
		}
		defer fs.Close()
		cfg.Files = fs
	}
	root, rootSpace := nester.Root(mon, cfg)
	defer rootSpace.Kill("test over")
	r, err := nester.Launch(mon, root, layers, nester.Program{Name: name, Image: img, Args: append([]string{name}, args...)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	case <-time.After(runGuard):
		r.Kill(nester.StatusTimeout, "test timeout")
		t.Fatalf("%s did not end; output %q", name, out.String())
	}
	res := r.Wait()
	if e := errs.String(); e != "" {
		t.Logf("%s's stderr:\n%s", name, e)
	}
	return out.String(), res
}

// Launch starts guest name with args under layers on b, with 64 MiB and
// a console and stderr the test reads, and returns its run and that
// output; the test's end kills what is left of it.
func Launch(t *testing.T, b machine.Backend, layers []nester.Layer, name string, args ...string) (*nester.Run, *testutil.Buffer) {
	t.Helper()
	const memory = 64 << 20
	data, err := os.ReadFile(testutil.Guest(t, name))
	if err != nil {
		t.Fatal(err)
	}
	img, err := vmm.ParseELF(data, memory)
	if err != nil {
		t.Fatal(err)
	}
	mon := vmm.NewMonitor(b, nil)
	out := &testutil.Buffer{}
	root, seat := nester.Root(mon, nester.RootConfig{Console: out, Stderr: out, Memory: memory})
	t.Cleanup(func() { seat.Kill("test over") })
	r, err := nester.Launch(mon, root, layers, nester.Program{Name: name, Image: img, Args: append([]string{name}, args...)})
	if err != nil {
		t.Fatal(err)
	}
	return r, out
}

// Below wraps a root environment on b (console and stderr to out, room
// for 256 spaces) through layer, and returns a Caller of a seat of the
// test's own and the environment's space capability below the layer as a
// handle sp in its table: a test that acts below the layer as a loader
// would. Everything ends with the test, the layer closed.
func Below(t *testing.T, b machine.Backend, layer nester.Layer, out io.Writer) (c *vmm.Caller, sp uint64) {
	t.Helper()
	mon := vmm.NewMonitor(b, nil)
	root, seat := nester.Root(mon, nester.RootConfig{Console: out, Stderr: out, Memory: 64 << 20, Children: 256})
	t.Cleanup(func() { seat.Kill("test over") })
	env, err := layer.Wrap(mon, root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { layer.Close() })
	user := mon.NewHost("user", vmm.DefaultQuota)
	t.Cleanup(func() { user.Kill("test over") })
	c = user.NewCaller()
	if sp, err = env.Hold(c, nester.CapSpace); err != nil {
		t.Fatal(err)
	}
	return c, sp
}

// Underlying returns what obj stands for when it is a layer's stand-in
// for one object (a vmm.Proxy: a Wrapper's, through stand-ins of
// stand-ins), obj itself otherwise: what a test looks at to see the
// object a program holds through its layers.
func Underlying(obj vmm.Object) vmm.Object {
	for range 64 { // stand-ins stack no deeper than layers do
		px, ok := vmm.ServerOf(obj).(vmm.Proxy)
		if !ok {
			return obj
		}
		obj = px.Original()
	}
	return obj
}
