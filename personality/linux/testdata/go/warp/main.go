// Command warp sleeps an hour, waits on a timer and a ticker, and prints
// the wall clock and the time gone by, to the second, after each: under
// the timewarp layer it ends at once and prints the same in every run.
package main

import (
	"fmt"
	"time"
)

func main() {
	start := time.Now()
	show := func(what string) {
		fmt.Printf("%s: %s, %v gone\n", what, time.Now().UTC().Format(time.DateTime), time.Since(start).Truncate(time.Second))
	}
	show("start")
	time.Sleep(time.Hour)
	show("slept 1h")
	<-time.After(90 * time.Minute)
	show("timer of 90m")
	tk := time.NewTicker(time.Minute)
	for range 3 {
		<-tk.C
	}
	tk.Stop()
	show("3 ticks of 1m")
	done := make(chan struct{})
	time.AfterFunc(30*time.Second, func() { close(done) })
	<-done
	show("AfterFunc of 30s")
}
