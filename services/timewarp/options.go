package timewarp

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Usage is the argument syntax, as `nestvm layers` shows it.
const Usage = `timewarp              virtual time from a fixed start; sleeps end at once
options, after = and between commas (timewarp=start=...,tick=...):
  start=RFC3339       the realtime clock's first reading (default 2000-01-01T00:00:00Z)
  tick=DUR            how far each clock read moves time on (default 1us; > 0)
  rate=R              run virtual time at R times real time instead of jumping
                      (0.5 is slow motion); R > 0
  deadlock=DUR        real time every thread may wait with no deadline before
                      the program is ended as deadlocked (default 10s; 0: never)`

// DefaultStart is where virtual realtime starts when start= is not given:
// a fixed instant, so that output that shows the time is the same in
// every run.
var DefaultStart = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Options are a timewarp layer's parsed arguments.
type Options struct {
	// Start is the realtime clock's first reading.
	Start time.Time
	// Tick is how far each clock read moves virtual time on.
	Tick time.Duration
	// Rate, when not 0, runs virtual time at Rate times real time, and
	// waits last their virtual length divided by Rate.
	Rate float64
	// Deadlock is how long every thread may wait with no deadline before
	// the program is ended; 0 never ends it.
	Deadlock time.Duration
}

// ParseOptions parses the arguments after "timewarp=". Each error names
// the argument it refuses.
func ParseOptions(args string) (Options, error) {
	o := Options{Start: DefaultStart, Tick: time.Microsecond, Deadlock: 10 * time.Second}
	if args == "" {
		return o, nil
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(args, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return o, fmt.Errorf("timewarp: argument %q: want NAME=VALUE (start, tick, rate or deadlock)", kv)
		}
		if seen[k] {
			return o, fmt.Errorf("timewarp: %s given twice", k)
		}
		seen[k] = true
		switch k {
		case "start":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return o, fmt.Errorf("timewarp: start=%q: want an RFC 3339 time such as 2030-01-01T00:00:00Z: %w", v, err)
			}
			if t.Before(time.Unix(0, 0)) || t.Year() > 2200 {
				return o, fmt.Errorf("timewarp: start=%q: want a time from 1970 to 2200", v)
			}
			o.Start = t
		case "tick":
			d, err := time.ParseDuration(v)
			if err != nil {
				return o, fmt.Errorf("timewarp: tick=%q: want a duration such as 1us: %w", v, err)
			}
			if d <= 0 || d > time.Hour {
				return o, fmt.Errorf("timewarp: tick=%q: want more than 0 and at most 1h", v)
			}
			o.Tick = d
		case "rate":
			r, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return o, fmt.Errorf("timewarp: rate=%q: want a number such as 0.5: %w", v, err)
			}
			if !(r > 0) || r > 1e6 {
				return o, fmt.Errorf("timewarp: rate=%q: want more than 0 and at most 1e6", v)
			}
			o.Rate = r
		case "deadlock":
			d, err := time.ParseDuration(v)
			if err != nil {
				return o, fmt.Errorf("timewarp: deadlock=%q: want a duration such as 10s: %w", v, err)
			}
			if d < 0 {
				return o, fmt.Errorf("timewarp: deadlock=%q: want 0 or more", v)
			}
			o.Deadlock = d
		default:
			return o, fmt.Errorf("timewarp: unknown argument %q (want start, tick, rate or deadlock)", k)
		}
	}
	return o, nil
}
