package linux

//go:generate go run ./internal/gendoc -o ../../docs/linux-syscalls.md

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// supportNames are the support levels as the documentation names them.
var supportNames = map[Support]string{Full: "full", Partial: "partial", Stub: "stub"}

// SyscallDoc renders the system call table as a Markdown page: every call
// the personality serves, by number, with its support level and notes.
// Calls that are not in it get ENOSYS, logged once.
func SyscallDoc() []byte {
	var b bytes.Buffer
	b.WriteString("# System calls of the Linux personality\n\n")
	b.WriteString("Generated from `personality/linux`'s table (`go generate ./personality/linux`); do not edit.\n")
	b.WriteString("A call not listed here returns ENOSYS, and the monitor logs its name once.\n\n")
	b.WriteString("Support: **full** is as Linux does it, for what nestvm expresses; **partial** covers the common uses and says what is left; **stub** answers without effect.\n\n")
	b.WriteString("| nr | name | support | notes |\n|---:|---|---|---|\n")
	rows := Table()
	sort.Slice(rows, func(i, j int) bool { return rows[i].Nr < rows[j].Nr })
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | `%s` | %s | %s |\n", r.Nr, r.Name, supportNames[r.Support], strings.ReplaceAll(r.Note, "|", "\\|"))
	}
	return b.Bytes()
}
