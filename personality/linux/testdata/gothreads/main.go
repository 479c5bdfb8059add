// gothreads exercises what a Go program needs from the Linux personality:
// threads (clone), futexes, the poller (epoll, eventfd) through timers, the
// garbage collector, pipes and os/exec (vfork, execve, wait4) of itself.
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		fmt.Println("child", strings.Join(os.Args[2:], " "))
		os.Exit(7)
	}
	var wg sync.WaitGroup
	sums := make(chan [32]byte, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b := make([]byte, 256<<10)
			for j := range b {
				b[j] = byte(i * j)
			}
			time.Sleep(time.Duration(i) * time.Millisecond)
			sums <- sha256.Sum256(b)
		}(i)
	}
	wg.Wait()
	close(sums)
	var x byte
	for s := range sums {
		x ^= s[0]
	}
	var keep [][]byte
	for i := 0; i < 64; i++ {
		keep = append(keep, make([]byte, 1<<20))
		if len(keep) > 8 {
			keep = keep[1:]
		}
	}
	runtime.GC()
	t := time.NewTimer(20 * time.Millisecond)
	<-t.C
	cmd := exec.Command(os.Args[0], "child", "a", "b")
	out, err := cmd.Output()
	fmt.Printf("sum %d, kept %d, child said %q, %v\n", x, len(keep), out, err)
}
