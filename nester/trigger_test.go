package nester_test

import (
	"testing"

	"nestvm/nester"
)

// TestTriggersEachSubscriber: every subscriber gets its own copy of a
// trigger; a full queue drops the extra as the same request; one that
// unsubscribed gets nothing more; a nil Triggers delivers nothing.
func TestTriggersEachSubscriber(t *testing.T) {
	var tr nester.Triggers
	a, stopA := tr.Subscribe()
	b, stopB := tr.Subscribe()
	defer stopB()
	if n := tr.Send(nester.TriggerSave); n != 2 {
		t.Fatalf("Send reached %d subscribers, want 2", n)
	}
	for i := 0; i < 5; i++ {
		tr.Send(nester.TriggerSaveStop) // more than a queue holds: never blocks
	}
	for name, ch := range map[string]<-chan nester.Trigger{"a": a, "b": b} {
		if got := <-ch; got != nester.TriggerSave {
			t.Errorf("%s: first trigger %v, want %v", name, got, nester.TriggerSave)
		}
		if got := <-ch; got != nester.TriggerSaveStop {
			t.Errorf("%s: second trigger %v, want %v", name, got, nester.TriggerSaveStop)
		}
		if len(ch) != 0 {
			t.Errorf("%s: %d triggers beyond its queue kept", name, len(ch))
		}
	}
	stopA()
	stopA() // a second call is harmless
	if n := tr.Send(nester.TriggerSave); n != 1 {
		t.Fatalf("after one unsubscribed, Send reached %d, want 1", n)
	}
	if len(a) != 0 {
		t.Error("an ended subscription still got a trigger")
	}
	var none *nester.Triggers
	ch, stop := none.Subscribe()
	defer stop()
	if n := none.Send(nester.TriggerSave); n != 0 || len(ch) != 0 {
		t.Error("a nil Triggers' subscription has a trigger")
	}
}
