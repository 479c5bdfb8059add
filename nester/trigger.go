package nester

import "sync"

// Trigger is a request from outside the program that the layers above it
// act on: the program that stacks them turns its own events (signals to
// the monitor, for nestvm) into triggers, so that no layer takes a
// process-wide resource such as a signal handler for itself.
type Trigger int

// The triggers.
const (
	// TriggerSave asks a layer that saves the program (checkpoint) for a
	// save, the program going on after it (SIGUSR1 to nestvm).
	TriggerSave Trigger = iota + 1
	// TriggerSaveStop asks for a save that ends the run, the program no
	// further than where it was saved (SIGUSR2 to nestvm).
	TriggerSaveStop
)

// String names the trigger.
func (t Trigger) String() string {
	switch t {
	case TriggerSave:
		return "save"
	case TriggerSaveStop:
		return "save and stop"
	}
	return "trigger(?)"
}

// Triggers hands triggers to the layers that subscribe to them, each its
// own copy. The zero value has no subscribers; a nil *Triggers is one
// that never delivers.
type Triggers struct {
	mu   sync.Mutex
	subs map[chan Trigger]struct{}
}

// triggerQueue is how many triggers wait for a subscriber that has not
// taken them yet; one sent while it is full is the same request as those
// waiting.
const triggerQueue = 2

// Subscribe returns where the triggers sent from now on arrive, and the
// function that ends the subscription (the channel is then never sent on
// again, and is not closed). On a nil t it returns a channel that never
// receives.
func (t *Triggers) Subscribe() (<-chan Trigger, func()) {
	ch := make(chan Trigger, triggerQueue)
	if t == nil {
		return ch, func() {}
	}
	t.mu.Lock()
	if t.subs == nil {
		t.subs = map[chan Trigger]struct{}{}
	}
	t.subs[ch] = struct{}{}
	t.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			t.mu.Lock()
			delete(t.subs, ch)
			t.mu.Unlock()
		})
	}
}

// Send hands tr to every subscriber without waiting for any, and returns
// how many there are: 0 says no layer listens for it (as on a nil t).
func (t *Triggers) Send(tr Trigger) int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for ch := range t.subs {
		select {
		case ch <- tr:
		default: // as many wait as it takes: this one is the same request
		}
	}
	return len(t.subs)
}
