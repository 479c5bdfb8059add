package trace

import (
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// tapBacklog bounds the batches of lines waiting for one attached writer:
// a writer that cannot keep up loses lines (and is told how many), it
// never slows the program down.
const tapBacklog = 256

// NewTap makes a trace layer that records nothing until a writer is
// attached (Attach): while none is, each call is forwarded untouched, at
// the cost of the interposition alone. Its records are text lines tagged
// label; it writes no summary, and a writer that fails gets nothing more,
// never the program ended. Unlike a trace layer, a tap wraps only the
// environment's capabilities (console, stderr, stdin, clock, files, the
// space capability), not the handles that come out of calls on them: it
// records the calls on those (a Linux program's personality's included),
// and what the program makes with them stays its own, saved whole by a
// checkpoint layer below the tap and served at no extra cost. It leaves
// a personality's fault server in place too: the records are ABI
// operations, not system calls.
func NewTap(label string, log hclog.Logger) *Layer {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	f := &fanout{sinks: map[*tapSink]bool{}}
	return &Layer{opts: Options{Format: Text, Label: label}, label: label, log: log, out: f, tap: true, sinks: f}
}

// Attach sends the tap's records to w, from the next call on, until
// detach is called (or the layer closes: then detach's channel-free
// is a no-op). Records reach w from a goroutine of the tap's; ended is
// closed once no more will: detached, or the layer closed (its records
// all written). After a write to w fails, w gets nothing more.
func (l *Layer) Attach(w io.Writer) (detach func(), ended <-chan struct{}) {
	s := &tapSink{w: w, label: l.label, batches: make(chan []byte, tapBacklog), done: make(chan struct{})}
	go s.run()
	if !l.sinks.add(s) {
		close(s.batches)
		return func() {}, s.done
	}
	l.attached.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			if l.sinks.remove(s) {
				l.attached.Add(-1)
				close(s.batches)
			}
		})
	}, s.done
}

// fanout is a tap's output: it hands each batch of lines to every
// attached writer's queue, and never fails.
type fanout struct {
	mu     sync.Mutex
	sinks  map[*tapSink]bool
	closed bool
}

func (f *fanout) add(s *tapSink) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.sinks[s] = true
	return true
}

// remove reports whether s was attached (and is no longer).
func (f *fanout) remove(s *tapSink) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sinks[s] {
		return false
	}
	delete(f.sinks, s)
	return true
}

// Write implements io.Writer for the layer's writer goroutine.
func (f *fanout) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.sinks {
		s.offer(b)
	}
	return len(b), nil
}

// close ends every attached writer's stream, once what was queued for it
// is written.
func (f *fanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.sinks {
		close(s.batches)
		delete(f.sinks, s)
	}
}

// tapSink is one attached writer and the lines on their way to it.
type tapSink struct {
	w       io.Writer
	label   string
	batches chan []byte
	dropped int // lines lost since the last batch that fitted; the fanout's
	done    chan struct{}
}

// offer queues a copy of b for the writer, or counts its lines lost when
// the writer is behind; f.mu is held.
func (s *tapSink) offer(b []byte) {
	var lost []byte
	if s.dropped > 0 {
		lost = fmt.Appendf(nil, "[%s] %d trace lines dropped: the reader was behind\n", s.label, s.dropped)
	}
	select {
	case s.batches <- append(lost, b...):
		s.dropped = 0
	default:
		for _, c := range b {
			if c == '\n' {
				s.dropped++
			}
		}
	}
}

// run writes the queued batches until the queue is closed; after a
// failed write it only drains.
func (s *tapSink) run() {
	defer close(s.done)
	failed := false
	for b := range s.batches {
		if failed {
			continue
		}
		if _, err := s.w.Write(b); err != nil {
			failed = true
		}
	}
}

// Attached returns how many writers are attached.
func (l *Layer) Attached() int { return int(l.attached.Load()) }
