// Command goroutines fans work out to goroutines over channels, with a
// mutex-guarded map and a WaitGroup, and prints results that do not depend
// on scheduling.
package main

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
)

func main() {
	jobs := make(chan int)
	results := make(chan [2]int)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				s := 0
				for i := 1; i <= n; i++ {
					s += i * i
				}
				results <- [2]int{n, s}
			}
		}()
	}
	go func() {
		for i := 1; i <= 200; i++ {
			jobs <- i
		}
		close(jobs)
	}()
	go func() { wg.Wait(); close(results) }()
	var mu sync.Mutex
	seen := map[int]int{}
	for r := range results {
		mu.Lock()
		seen[r[0]] = r[1]
		mu.Unlock()
	}
	keys := make([]int, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	total := 0
	for _, k := range keys {
		total += seen[k]
	}
	fmt.Println("results:", len(keys), "total:", total, "last:", seen[200])

	// Many goroutines blocked at once, then released together.
	start := make(chan struct{})
	done := make(chan int, 1000)
	for i := 0; i < 1000; i++ {
		go func(i int) { <-start; runtime.Gosched(); done <- i }(i)
	}
	close(start)
	sum := 0
	for i := 0; i < 1000; i++ {
		sum += <-done
	}
	fmt.Println("released:", sum)
}
