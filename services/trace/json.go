package trace

import (
	"strconv"
	"unicode/utf8"
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
