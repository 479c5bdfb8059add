// Command exec runs busybox through os/exec: its output captured, its
// standard input fed, its exit status seen.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

func main() {
	out, err := exec.Command("busybox", "echo", "hello", "from", "busybox").Output()
	fmt.Printf("echo: %q %v\n", out, err)

	cmd := exec.Command("busybox", "tr", "a-z", "A-Z")
	cmd.Stdin = strings.NewReader("shout this\n")
	out, err = cmd.Output()
	fmt.Printf("tr: %q %v\n", out, err)

	err = exec.Command("busybox", "false").Run()
	var ee *exec.ExitError
	fmt.Println("false:", errors.As(err, &ee), ee.ExitCode())

	_, err = exec.LookPath("nonexistent-program")
	fmt.Println("lookpath:", err != nil)
	if err := exec.Command("busybox", "sh", "-c", "echo $((6*7)) >&2; exit 3").Run(); err != nil {
		fmt.Fprintln(os.Stderr, "sh:", err)
	}
}
