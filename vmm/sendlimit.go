package vmm

import "nestvm/abi"

// Limits on the one-way messages a space has waiting in the monitor. A
// call holds its caller until it is answered, so a space has at most one
// call out per thread; a send returns once queued, so without a bound a
// space sending where nobody receives would make the monitor hold its
// messages, and their bytes, without end. Past either limit port_send
// fails with ErrWouldBlock until receivers catch up.
const (
	maxQueuedSends = 1024
	maxQueuedBytes = abi.MaxBuffer // one send of the largest buffer fits
)

// count counts msg, a one-way message of msg.sender's, against the
// sender's limits, or fails with ErrWouldBlock. Callers hold the IPC lock.
func (msg *message) count() abi.Error {
	s := msg.sender
	if s == nil {
		return abi.OK
	}
	n := uint64(len(msg.data))
	if s.queuedSends >= maxQueuedSends || n > maxQueuedBytes-s.queuedBytes {
		return abi.ErrWouldBlock
	}
	s.queuedSends++
	s.queuedBytes += n
	return abi.OK
}

// uncount gives back what count took, once msg has left its queue
// (received, or dropped with its port). Callers hold the IPC lock.
func (msg *message) uncount() {
	if s := msg.sender; s != nil {
		s.queuedSends--
		s.queuedBytes -= uint64(len(msg.data))
		msg.sender = nil
	}
}
