package trace

import (
	"strconv"
	"time"
	"unicode/utf8"

	"nestvm/abi"
)

// appendJSON appends r as one JSON object, with the field names and order
// of Record's tags: what encoding/json writes, without its reflection
// (which cost half of a recorded call).
func (r *Record) appendJSON(b []byte) []byte {
	b = append(b, `{"kind":`...)
	b = appendJSONString(b, r.Kind)
	b = append(b, `,"layer":`...)
	b = appendJSONString(b, r.Layer)
	b = append(b, `,"time":`...)
	b = strconv.AppendFloat(b, r.Time, 'f', -1, 64)
	b = append(b, `,"space":`...)
	b = appendJSONString(b, r.Space)
	b = append(b, `,"thread":`...)
	if r.Thread == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*r.Thread), 10)
	}
	b = append(b, `,"cap":`...)
	b = appendJSONString(b, r.Cap)
	b = append(b, `,"cap_id":`...)
	b = strconv.AppendUint(b, r.CapID, 10)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, r.Type)
	b = append(b, `,"op":`...)
	b = appendJSONString(b, r.Op)
	b = append(b, `,"args":[`...)
	for i := range r.Args {
		a := &r.Args[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, a.Name)
		b = append(b, `,"kind":`...)
		b = appendJSONString(b, a.Kind)
		if a.Value != nil {
			b = append(b, `,"value":`...)
			b = strconv.AppendUint(b, *a.Value, 10)
		}
		if a.Type != "" {
			b = append(b, `,"type":`...)
			b = appendJSONString(b, a.Type)
		}
		if a.Len != nil {
			b = append(b, `,"len":`...)
			b = strconv.AppendUint(b, *a.Len, 10)
		}
		if a.Data != nil {
			b = append(b, `,"data":`...)
			b = appendJSONString(b, *a.Data)
		}
		if a.Truncated {
			b = append(b, `,"truncated":true`...)
		}
		b = append(b, '}')
	}
	b = append(b, `],"ok":`...)
	b = strconv.AppendBool(b, r.OK)
	b = append(b, `,"r0":`...)
	b = strconv.AppendUint(b, r.R0, 10)
	b = append(b, `,"r1":`...)
	b = strconv.AppendUint(b, r.R1, 10)
	if r.Handle {
		b = append(b, `,"handle":true`...)
	}
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, r.Error)
	}
	b = append(b, `,"dur_ns":`...)
	b = strconv.AppendInt(b, r.DurNS, 10)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, invalid UTF-8 replaced by
// U+FFFD as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	// Names, labels and most data need no escaping: copy those at once.
	plain := 0
	for plain < len(s) && safeJSON(s[plain]) {
		plain++
	}
	b = append(b, s[:plain]...)
	for i := plain; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// safeJSON reports whether c stands for itself in a JSON string as
// appendJSONString writes it.
func safeJSON(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'
}

// jsonCache holds the parts of JSON records that repeat from call to
// call, escaped once. Formatting each record through a Record cost the
// writer more than the call it records; this is the writer's alone.
type jsonCache struct {
	head []byte // {"kind":"call","layer":"L","time":
	// The last calling thread's identity, and its part of a record.
	thread     uint64
	threadPart []byte
	// capParts holds, per capability and operation, the part of a record
	// from "cap" to the opening of "args".
	capParts map[capOp][]byte
	// The last one used: a loop calls one operation on one capability.
	lastKey  capOp
	lastPart []byte
}

type capOp struct {
	id uint64
	op abi.Op
}

// maxCapParts bounds capParts: a program that opens a million files
// gets a million capabilities.
const maxCapParts = 4096

// argHeads holds, per operation and argument, the start of the
// argument's object: {"name":"N","kind":"K".
var argHeads = func() (t [abi.OpCount][abi.MaxArgSlots]string) {
	kinds := map[abi.ArgKind]string{abi.ArgValue: "value", abi.ArgHandle: "handle", abi.ArgIn: "in", abi.ArgOut: "out"}
	for op := range abi.Ops {
		for i, a := range abi.Ops[op].Args {
			b := appendJSONString([]byte(`{"name":`), a.Name)
			b = appendJSONString(append(b, `,"kind":`...), kinds[a.Kind])
			t[op][i] = string(b)
		}
	}
	return t
}()

// appendThreadPart appends what a record says of the calling thread.
func appendThreadPart(b []byte, space string, id int, host bool) []byte {
	b = append(b, `,"space":`...)
	if host {
		return append(b, `"host","thread":null`...)
	}
	b = appendJSONString(b, space)
	b = append(b, `,"thread":`...)
	return strconv.AppendInt(b, int64(id), 10)
}

// appendCapPart appends what a record says of the capability and the
// operation, up to the opening of its arguments.
func appendCapPart(b []byte, ev *event) []byte {
	b = appendJSONString(append(b, `,"cap":`...), ev.cap)
	b = strconv.AppendUint(append(b, `,"cap_id":`...), ev.capID, 10)
	b = appendJSONString(append(b, `,"type":`...), ev.capType.String())
	b = appendJSONString(append(b, `,"op":`...), ev.info().Name)
	return append(b, `,"args":[`...)
}

// appendEvent appends ev as the JSON object its Record's appendJSON
// writes (TestAppendEvent holds them to it), for the layer labelled
// label.
func (jc *jsonCache) appendEvent(b []byte, label string, ev *event) []byte {
	if jc.head == nil {
		jc.head = appendJSONString([]byte(`{"kind":"call","layer":`), label)
		jc.head = append(jc.head, `,"time":`...)
	}
	b = append(b, jc.head...)
	b = appendSeconds(b, ev.at)
	if from := &ev.caller; from.Identity == 0 {
		b = appendThreadPart(b, "", 0, true)
	} else {
		if from.Identity != jc.thread {
			jc.thread, jc.threadPart = from.Identity, appendThreadPart(jc.threadPart[:0], from.Space, from.Thread, false)
		}
		b = append(b, jc.threadPart...)
	}
	key := capOp{ev.capID, ev.op}
	if key == jc.lastKey && jc.lastPart != nil {
		b = append(b, jc.lastPart...)
	} else if part, ok := jc.capParts[key]; ok {
		b = append(b, part...)
		jc.lastKey, jc.lastPart = key, part
	} else {
		n := len(b)
		b = appendCapPart(b, ev)
		if jc.capParts == nil {
			jc.capParts = map[capOp][]byte{}
		}
		if len(jc.capParts) < maxCapParts {
			jc.capParts[key] = append([]byte(nil), b[n:]...)
		}
	}
	buf := 0
	for i, a := range ev.info().Args {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, argHeads[ev.op][i]...)
		switch a.Kind {
		case abi.ArgValue:
			b = strconv.AppendUint(append(b, `,"value":`...), ev.vals[i], 10)
		case abi.ArgHandle:
			b = strconv.AppendUint(append(b, `,"value":`...), ev.vals[i], 10)
			if ev.hasType&(1<<i) != 0 {
				if s := ev.htype[i].String(); s != "" {
					b = appendJSONString(append(b, `,"type":`...), s)
				}
			}
		case abi.ArgIn, abi.ArgOut:
			b = strconv.AppendUint(append(b, `,"len":`...), ev.vals[i], 10)
			if p := &ev.bufs[buf]; p.set {
				b = appendJSONString(append(b, `,"data":`...), string(p.data[:p.n]))
				if p.trunc {
					b = append(b, `,"truncated":true`...)
				}
			}
			buf++
		}
		b = append(b, '}')
	}
	var r0 uint64
	switch {
	case ev.failed:
		b = append(b, `],"ok":false,"r0":`...)
		r0 = ev.err.Result()
	default:
		b = append(b, `],"ok":true,"r0":`...)
		if !ev.info().R0Handle {
			r0 = ev.r0
		}
	}
	b = strconv.AppendUint(b, r0, 10)
	b = strconv.AppendUint(append(b, `,"r1":`...), ev.r1, 10)
	if !ev.failed && ev.info().R0Handle {
		b = append(b, `,"handle":true`...)
	}
	if ev.failed {
		sym := "NV_E?"
		if int(ev.err) < len(abi.ErrorSymbols) {
			sym = abi.ErrorSymbols[ev.err]
		}
		if sym != "" {
			b = appendJSONString(append(b, `,"error":`...), sym)
		}
	}
	b = strconv.AppendInt(append(b, `,"dur_ns":`...), ev.dur.Nanoseconds(), 10)
	return append(b, '}')
}

// appendSeconds appends d.Seconds() as strconv.AppendFloat(b, d.Seconds(),
// 'f', -1, 64) does, without its shortest-digits search (the writer's
// largest cost) where the answer is known: float64(d)/1e9 is the double
// nearest the decimal d/1e9, and a decimal of at most 15 digits is the
// shortest that reads back as its nearest double. So where Seconds
// rounds to that double too, the digits of d are the answer.
func appendSeconds(b []byte, d time.Duration) []byte {
	f := d.Seconds()
	if d < 0 || d >= 1e15 || f != float64(d)/1e9 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	b = strconv.AppendInt(b, int64(d/time.Second), 10)
	ns := int64(d % time.Second)
	if ns == 0 {
		return b
	}
	var frac [10]byte
	frac[0] = '.'
	for i := 9; i > 0; i-- {
		frac[i] = '0' + byte(ns%10)
		ns /= 10
	}
	n := len(frac)
	for frac[n-1] == '0' {
		n--
	}
	return append(b, frac[:n]...)
}
