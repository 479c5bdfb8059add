// Package control is a monitor's control socket: a Unix socket through
// which the monitor's owner lists the program's tree of spaces, streams a
// trace of it, checkpoints it now and kills it. nestvm run and nestvm
// restore open one by default (see Dir and DefaultPath); nestvm ps and
// nestvm attach, and the OCI runtime, are its clients (Dial).
//
// The wire format is JSON Lines: a client sends one Request line and
// reads one Reply line; a trace request's reply is followed by the
// trace's text lines until the program ends or the client hangs up. A
// request line longer than MaxRequest, one that is not JSON, or one of
// another Version is answered with an error reply, and the connection is
// closed; the monitor goes on. Only the socket owner's uid (and root) are
// served: the server asks the kernel who the peer is (SO_PEERCRED).
package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the wire format's version; a request of another is refused.
const Version = 1

// MaxRequest bounds a request line, its newline included.
const MaxRequest = 64 << 10

// Operations a Request may ask for.
const (
	OpState      = "state"      // the tree: Reply.State
	OpTrace      = "trace"      // stream the trace after the reply
	OpCheckpoint = "checkpoint" // save now through the stack's checkpoint layer: Reply.File
	OpKill       = "kill"       // end the program, saying Reason
)

// Request is what a client asks, one JSON line.
type Request struct {
	V  int    `json:"v"`
	Op string `json:"op"`
	// Stop, for checkpoint, ends the program once it is saved.
	Stop bool `json:"stop,omitempty"`
	// Reason, for kill, says why; the monitor's log line gives it.
	Reason string `json:"reason,omitempty"`
}

// Reply is the monitor's answer, one JSON line.
type Reply struct {
	V     int    `json:"v"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	State *State `json:"state,omitempty"`
	File  string `json:"file,omitempty"` // the checkpoint written
}

// State is a monitor and its program's tree.
type State struct {
	PID     int       `json:"pid"`
	Socket  string    `json:"socket"`
	Program string    `json:"program"`
	Args    []string  `json:"args"`
	Backend string    `json:"backend"`
	Started time.Time `json:"started"`
	// Layers are the stack's layers as --layer named them, nearest the
	// monitor first; the control layer itself is not among them.
	Layers []string `json:"layers"`
	// Checkpoint is the file a checkpoint request writes; empty without
	// a checkpoint layer in the stack.
	Checkpoint string  `json:"checkpoint,omitempty"`
	Spaces     []Space `json:"spaces"`
}

// Count returns the spaces, threads and bytes of memory of the tree.
func (s *State) Count() (spaces, threads int, memory uint64) {
	var walk func([]Space)
	walk = func(ss []Space) {
		for i := range ss {
			spaces++
			threads += len(ss[i].Threads)
			memory += ss[i].Memory
			walk(ss[i].Children)
		}
	}
	walk(s.Spaces)
	return
}

// ErrRequest is the error of a request the server could not accept.
var ErrRequest = errors.New("bad request")

// DecodeRequest parses one request line (without its newline), checking
// its version, operation and fields.
func DecodeRequest(line []byte) (Request, error) {
	var r Request
	if len(line) >= MaxRequest {
		return r, fmt.Errorf("%w: longer than %d bytes", ErrRequest, MaxRequest)
	}
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	if d.More() {
		return Request{}, fmt.Errorf("%w: more than one JSON value on the line", ErrRequest)
	}
	if r.V != Version {
		return Request{}, fmt.Errorf("%w: version %d, this monitor speaks version %d", ErrRequest, r.V, Version)
	}
	switch r.Op {
	case OpState, OpTrace, OpCheckpoint, OpKill:
	case "":
		return Request{}, fmt.Errorf("%w: no op", ErrRequest)
	default:
		return Request{}, fmt.Errorf("%w: unknown op %q (want state, trace, checkpoint or kill)", ErrRequest, r.Op)
	}
	if r.Stop && r.Op != OpCheckpoint {
		return Request{}, fmt.Errorf("%w: stop is for checkpoint", ErrRequest)
	}
	if r.Reason != "" && r.Op != OpKill {
		return Request{}, fmt.Errorf("%w: reason is for kill", ErrRequest)
	}
	if len(r.Reason) > maxReason {
		return Request{}, fmt.Errorf("%w: reason longer than %d bytes", ErrRequest, maxReason)
	}
	return r, nil
}

// maxReason bounds a kill's reason: it goes on one log line.
const maxReason = 1024
