// Command timers reads the clock in a loop (through the vDSO where there is
// one), sleeps, waits on timers and a ticker, and checks that the clock
// never went back, that the wall clock agrees with gettimeofday and that
// no wait ended early by the monotonic clock; it prints only what does not
// depend on how late they ended.
package main

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

func main() {
	back := 0
	prev := time.Now()
	for range 100000 {
		now := time.Now()
		if now.Before(prev) {
			back++
		}
		prev = now
	}
	fmt.Println("monotonic went back:", back, "times")
	var tv syscall.Timeval
	if err := syscall.Gettimeofday(&tv); err != nil {
		fmt.Println("gettimeofday:", err)
	}
	wall := time.Since(time.Unix(tv.Sec, tv.Usec*1000).Round(0))
	fmt.Println("wall clock agrees with gettimeofday:", wall > -time.Second && wall < time.Second)

	t0 := time.Now()
	time.Sleep(30 * time.Millisecond)
	fmt.Println("sleep 30ms long enough:", time.Since(t0) >= 30*time.Millisecond)

	t1 := time.Now()
	<-time.After(20 * time.Millisecond)
	fmt.Println("after 20ms long enough:", time.Since(t1) >= 20*time.Millisecond)

	// The ticks count from the ticker's making, so the clock is read
	// before it: read after, the fifth tick can come less than 50ms on.
	t2 := time.Now()
	tk := time.NewTicker(10 * time.Millisecond)
	for i := 0; i < 5; i++ {
		<-tk.C
	}
	tk.Stop()
	fmt.Println("5 ticks of 10ms long enough:", time.Since(t2) >= 50*time.Millisecond)

	// A timer stopped before it fires never fires.
	fired := make(chan bool, 1)
	st := time.AfterFunc(time.Hour, func() { fired <- true })
	fmt.Println("stopped before firing:", st.Stop())

	// Three timers all fire; the order is not printed, since timers that
	// expire in one check run their functions concurrently.
	var fires sync.WaitGroup
	fires.Add(3)
	for _, d := range []int{30, 10, 20} {
		time.AfterFunc(time.Duration(d)*time.Millisecond, fires.Done)
	}
	fires.Wait()
	fmt.Println("three timers fired")
	select {
	case <-fired:
		fmt.Println("stopped timer fired")
	default:
	}
}
