package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"nestvm/nester"
)

// The checkpoint signals, SIGUSR1 (save) and SIGUSR2 (save and stop), are
// the command's, not the checkpoint layer's: a monitor must never die of
// one (until os/signal takes them, a signal with no taker ends a process
// that runs C threads, as the emu backend's are), and a request sent
// before the layer exists must still be taken. So run and restore catch
// them first thing, and hand them to the stack's layers as triggers
// (nester.Host's) once those are made.
var (
	checkpointSigsOnce sync.Once
	checkpointSigs     chan os.Signal
)

// catchCheckpointSignals starts catching SIGUSR1 and SIGUSR2, once per
// process, and returns where they arrive; they queue there (a few: more
// are the same request) until handed on.
func catchCheckpointSignals() <-chan os.Signal {
	checkpointSigsOnce.Do(func() {
		checkpointSigs = make(chan os.Signal, 4)
		signal.Notify(checkpointSigs, syscall.SIGUSR1, syscall.SIGUSR2)
	})
	return checkpointSigs
}

// signalTrigger is the trigger a checkpoint signal stands for.
func signalTrigger(sig os.Signal) nester.Trigger {
	if sig == syscall.SIGUSR2 {
		return nester.TriggerSaveStop
	}
	return nester.TriggerSave
}

// forwardCheckpointSignals sends the checkpoint signals on triggers, as
// the triggers they stand for, until the returned function is called;
// when no layer takes them, it logs that there is nothing to save, and
// the program goes on.
func forwardCheckpointSignals(triggers *nester.Triggers, log hclog.Logger) (stop func()) {
	sigs := catchCheckpointSignals()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case sig := <-sigs:
				if triggers.Send(signalTrigger(sig)) == 0 {
					log.Warn(sig.String() + " asks for a checkpoint, and no --layer checkpoint=FILE is in the stack: nothing to save; the program goes on")
					continue
				}
				log.Debug("checkpoint asked for", "signal", sig.String())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
