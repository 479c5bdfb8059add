package main

import (
	"path/filepath"
	"testing"

	"nestvm/nester"
	"nestvm/services/checkpoint"
)

// TestCheckpointLayerIsASaver: the command finds the checkpoint layer by
// what it does (it saves for the control socket, reports its saves, and
// counts output across a restore), and restore finds timewarp as the
// layer that owns time, so a change to those layers' methods must fail
// here, not leave a control socket's save or a restored clock with nobody
// to take it.
func TestCheckpointLayerIsASaver(t *testing.T) {
	l, err := nester.New("checkpoint="+filepath.Join(t.TempDir(), "c.nvck"), nester.Host{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := saversIn([]nester.Layer{l}); len(got) != 1 {
		t.Errorf("the checkpoint layer is not a saver")
	}
	if _, ok := l.(checkpoint.OutputCounter); !ok {
		t.Errorf("the checkpoint layer does not count output across a restore")
	}
	tw, err := nester.New("timewarp", nester.Host{})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	if _, ok := tw.(checkpoint.ClockResumer); !ok {
		t.Errorf("the timewarp layer does not resume its clock across a restore")
	}
	null, err := nester.New("null", nester.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if got := saversIn([]nester.Layer{null}); len(got) != 0 {
		t.Errorf("the null layer counts as a saver")
	}
}
