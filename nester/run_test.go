package nester_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/services/checkpoint"
	"nestvm/services/null"
	"nestvm/vmm"
)

// launch starts guest name with args under layers on b.
var launch = layertest.Launch

// TestAwaitKillStatus: a run Await ends reports which end it was in its
// status (124 for the time limit, 130 for a signal), whatever the words,
// with and without a layer between, on each backend.
func TestAwaitKillStatus(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		for _, layers := range [][]nester.Layer{nil, {null.Layer{}}} {
			r, _ := launch(t, b, layers, "spin")
			res, ok := r.Await(time.Millisecond, nil)
			if !ok || res.Killed == "" || res.KilledStatus != nester.StatusTimeout || !strings.HasPrefix(res.Killed, "timeout after") {
				t.Errorf("%d layers, timeout: %s (status %d), ok %v", len(layers), res, res.KilledStatus, ok)
			}

			r, _ = launch(t, b, layers, "spin")
			sigs := make(chan os.Signal, 1)
			sigs <- syscall.SIGTERM
			res, ok = r.Await(0, sigs)
			if !ok || res.Killed == "" || res.KilledStatus != nester.StatusInterrupt {
				t.Errorf("%d layers, signal: %s (status %d), ok %v", len(layers), res, res.KilledStatus, ok)
			}
			// A later kill does not change how it ended.
			r.Kill(nester.StatusTimeout, "too late")
			if again := r.Wait(); again.KilledStatus != nester.StatusInterrupt || again.Killed != res.Killed {
				t.Errorf("%d layers: a kill after the end changed the result to %s (status %d)", len(layers), again, again.KilledStatus)
			}
		}
	})
}

// closeFails is a layer that passes its environment through and fails to
// close, as a layer that cannot flush what it wrote does.
type closeFails struct{ closed chan struct{} }

var errCloseFails = errors.New("cannot flush")

func (closeFails) Name() string { return "close-fails" }
func (closeFails) Wrap(_ *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	return parent, nil
}
func (l closeFails) Close() error {
	close(l.closed)
	return errCloseFails
}

// TestRestoredRunOwnsLayers: a program restored from a checkpoint under
// layers runs as one nester.Launch started does: its run closes the layers
// when the program ends, and one that fails to close is the run's error;
// handed over after the end, they are closed at once, with the same
// result. Both backends.
func TestRestoredRunOwnsLayers(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		file := filepath.Join(t.TempDir(), "c.nvck")
		ck, err := checkpoint.New(file+",after-writes=2,stop", nester.Host{})
		if err != nil {
			t.Fatal(err)
		}
		if out, r := layertest.Run(t, b, []nester.Layer{ck}, "", "counter", "4"); out != "1\n2\n" || ck.Err() != nil || !ck.Stopped() {
			t.Fatalf("counter under checkpoint: %q, %s, %v", out, r, ck.Err())
		}
		for _, late := range []bool{false, true} {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := f.Stat()
			saved, err := checkpoint.Read(f, st.Size())
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			mon := vmm.NewMonitor(b, nil)
			out := &testutil.Buffer{}
			root, rootSpace := nester.Root(mon, nester.RootConfig{Console: out, Stderr: &testutil.Buffer{}, Memory: saved.Memory()})
			defer rootSpace.Kill("test over")
			layer := closeFails{closed: make(chan struct{})}
			layers := []nester.Layer{layer}
			env, err := nester.Wrap(mon, root, layers)
			if err != nil {
				t.Fatal(err)
			}
			r, err := checkpoint.Restore(mon, env, saved)
			if err != nil {
				t.Fatal(err)
			}
			if late {
				<-r.Done()
			}
			r.Own(layers)
			res := r.Wait()
			select {
			case <-layer.closed:
			default:
				t.Errorf("late %v: the run ended and left its layer open", late)
			}
			if !errors.Is(res.Err, errCloseFails) || !strings.HasPrefix(out.String(), "3\n4\n") {
				t.Errorf("late %v: restored counter: %q, %s; want the rest of its output and the layer's error", late, out.String(), res)
			}
		}
	})
}
