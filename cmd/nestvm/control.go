package main

import (
	"errors"
	"sync"

	"github.com/hashicorp/go-hclog"

	"nestvm/control"
	"nestvm/nester"
)

// controlUsage documents --control, for nestvm run and nestvm restore.
const controlUsage = "the control socket nestvm ps and nestvm attach use: `PATH`, or none; by default <pid>.sock in $NESTVM_RUNTIME_DIR, else /run/nestvm for root, else $XDG_RUNTIME_DIR/nestvm, else a directory of the user's under the temporary directory"

// controlTraceUsage documents --control-trace.
const controlTraceUsage = "let nestvm attach --trace stream the program's operations on its environment's capabilities; this costs a hop through Go on each of them (about a quarter more per clock_read), so it is off unless asked for"

// controlSocket is a run's control socket: its layer (first in the
// stack) and its server, once listening.
type controlSocket struct {
	layer *control.Layer
	srv   *control.Server

	mu   sync.Mutex
	kill func(reason string) // the running program's, once it runs
}

// openControl opens the control socket --control asks for, before the
// program is started; nil with no error for --control none. A default
// socket that cannot be opened is logged and done without: the program
// runs all the same. One that --control names must open.
func openControl(spec string, tap bool, cfg control.Config, layers []nester.Layer, log hclog.Logger) (*controlSocket, error) {
	if spec == "none" {
		return nil, nil
	}
	cs := &controlSocket{layer: control.NewLayer(log.Named("control"), tap)}
	cfg.Path, cfg.Layer, cfg.Log = spec, cs.layer, log.Named("control")
	cfg.Kill = cs.killProgram
	if savers := saversIn(layers); len(savers) > 0 {
		cfg.Checkpoint = savers[0]
	}
	srv, err := control.Listen(cfg)
	if err != nil {
		if spec != "" {
			return nil, err
		}
		log.Warn("no control socket: nestvm ps and attach will not see this monitor", "error", err)
		return nil, nil
	}
	cs.srv = srv
	log.Debug("control socket", "path", srv.Path())
	return cs, nil
}

// errNotRunning is a kill request's answer before the program runs.
var errNotRunning = errors.New("the program is not running yet")

// killProgram ends the running program, saying why.
func (cs *controlSocket) killProgram(reason string) error {
	cs.mu.Lock()
	kill := cs.kill
	cs.mu.Unlock()
	if kill == nil {
		return errNotRunning
	}
	kill(reason)
	return nil
}

// running makes kill requests end r.
func (cs *controlSocket) running(r *nester.Run) {
	if cs == nil {
		return
	}
	cs.mu.Lock()
	cs.kill = func(reason string) { r.Kill(nester.StatusInterrupt, reason) }
	cs.mu.Unlock()
}

// stack returns layers with the control layer first, when there is one.
func (cs *controlSocket) stack(layers []nester.Layer) []nester.Layer {
	if cs == nil {
		return layers
	}
	return append([]nester.Layer{cs.layer}, layers...)
}

// close stops serving and removes the socket.
func (cs *controlSocket) close() {
	if cs != nil {
		cs.srv.Close()
	}
}
