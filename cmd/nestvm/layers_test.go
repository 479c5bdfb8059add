package main

import (
	"path/filepath"
	"testing"

	"nestvm/nester"
)

// TestCheckpointLayerIsASaver: the command finds the checkpoint layer by
// what it does (it takes the checkpoint signals, saves for the control
// socket, reports its saves, and counts output across a restore), so a
// change to that layer's methods must fail here, not leave SIGUSR1 with
// nobody to hand it to.
func TestCheckpointLayerIsASaver(t *testing.T) {
	l, err := nester.New("checkpoint="+filepath.Join(t.TempDir(), "c.nvck"), nester.Host{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := saversIn([]nester.Layer{l}); len(got) != 1 {
		t.Errorf("the checkpoint layer is not a saver")
	}
	if _, ok := l.(outputCounter); !ok {
		t.Errorf("the checkpoint layer does not count output across a restore")
	}
	null, err := nester.New("null", nester.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if got := saversIn([]nester.Layer{null}); len(got) != 0 {
		t.Errorf("the null layer counts as a saver")
	}
}
