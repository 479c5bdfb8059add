// Command fileio reads the tree it is given and writes, renames and
// removes files in its /tmp, through the os package.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func check(err error) {
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}

func main() {
	f, err := os.Open("/data/words.txt")
	check(err)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
	}
	f.Close()
	fmt.Println("words.txt lines:", n)

	// WalkDir sorts each directory's entries.
	check(filepath.WalkDir("/data", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		size := info.Size()
		if d.IsDir() {
			size = 0
		}
		fmt.Println(p, d.IsDir(), size)
		return nil
	}))

	check(os.WriteFile("/tmp/a.txt", []byte(strings.Repeat("go file io\n", 300)), 0o644))
	b, err := os.ReadFile("/tmp/a.txt")
	check(err)
	fmt.Println("read back:", len(b))
	check(os.Rename("/tmp/a.txt", "/tmp/b.txt"))
	_, err = os.Stat("/tmp/a.txt")
	fmt.Println("old name gone:", errors.Is(err, fs.ErrNotExist))
	check(os.MkdirAll("/tmp/x/y", 0o755))
	check(os.WriteFile("/tmp/x/y/kept.txt", []byte("kept\n"), 0o644))
	check(os.Remove("/tmp/b.txt"))
	_, err = os.ReadFile("/nonexistent")
	fmt.Println("missing:", err)
}
