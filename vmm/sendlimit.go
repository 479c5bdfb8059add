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

// The bytes of a queued message, a call's as a send's, are monitor memory
// a program makes the monitor hold: they are charged to the memory quota
// of the sending space and of every ancestor, as its pages are, until the
// message leaves its queue. Per-space limits alone do not bound a subtree:
// many spaces, each within its limits, could make the monitor hold any
// amount. Past the quota the send or call fails with ErrQuota. Host
// spaces (layers, the restorer) act for the monitor, and their messages
// are not charged; through a layer, a message is the invoking program's.

// charge charges n bytes, about to be copied into msg, to its sender's
// memory quota (ErrQuota when over): before the copy, so that a refused
// message never takes the memory. Callers do not hold the IPC lock.
func (msg *message) charge(n uint64) abi.Error {
	s := msg.sender
	if s == nil || n == 0 || s.hostSpace() {
		return abi.OK
	}
	if err := s.charge(n); err != nil {
		return abi.ErrQuota
	}
	msg.charged = n
	return abi.OK
}

// uncharge gives back what charge took.
func (msg *message) uncharge() {
	if msg.charged > 0 {
		msg.sender.uncharge(msg.charged)
		msg.charged = 0
	}
}

// count counts msg, a one-way message, against its sender's limits, or
// fails with ErrWouldBlock. Callers hold the IPC lock.
func (msg *message) count() abi.Error {
	s := msg.sender
	if s == nil || msg.caller != nil {
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

// uncount gives back what charge and count took, once msg has left its
// queue (received, withdrawn, or dropped with its port). Callers hold the
// IPC lock.
func (msg *message) uncount() {
	s := msg.sender
	if s == nil {
		return
	}
	if msg.caller == nil {
		s.queuedSends--
		s.queuedBytes -= uint64(len(msg.data))
	}
	msg.uncharge()
	msg.sender = nil
}
