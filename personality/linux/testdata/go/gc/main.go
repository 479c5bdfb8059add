// Command gc allocates a few hundred MiB in a loop while keeping a small
// live set, so the collector runs many times and returns memory, and checks
// the live data survives every cycle.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	const chunk = 1 << 20
	live := make([][]byte, 16)
	for i := 0; i < 400; i++ {
		b := make([]byte, chunk)
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(i)
		}
		live[i%len(live)] = b
		if i%64 == 0 {
			runtime.GC()
		}
	}
	for k, b := range live {
		want := byte(400 - 16 + ((k - 400%16 + 16) % 16))
		for j := 0; j < len(b); j += 4096 {
			if b[j] != want {
				fmt.Printf("live[%d][%d] = %d, want %d\n", k, j, b[j], want)
				os.Exit(1)
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Println("allocated at least 400 MiB:", ms.TotalAlloc >= 400*chunk)
	fmt.Println("collected:", ms.NumGC >= 7)
	fmt.Println("heap under 200 MiB:", ms.HeapAlloc < 200*chunk)
}
