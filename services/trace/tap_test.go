package trace

import (
	"errors"
	"strings"
	"testing"

	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/nester"
)

// failingWriter fails every write.
type failingWriter struct{ calls int }

func (w *failingWriter) Write([]byte) (int, error) { w.calls++; return 0, errors.New("gone") }

// TestTap: a tap with nobody attached changes nothing and writes nothing;
// an attached writer gets text lines of the calls on the environment's
// capabilities (not of the handles they gave out), no summary, and its
// stream ends when the layer closes; a writer that fails ends nothing
// but its own stream.
func TestTap(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		plain, r0 := run(t, b, nil, "", "hello", "world")

		idle := NewTap("control", nil)
		out, r := run(t, b, []nester.Layer{idle}, "", "hello", "world")
		if out != plain || r != r0 {
			t.Fatalf("under an idle tap: %q, %s; without: %q, %s", out, r, plain, r0)
		}

		tap := NewTap("control", nil)
		var w syncBuffer
		detach, ended := tap.Attach(&w)
		defer detach()
		bad := &failingWriter{}
		_, badEnded := tap.Attach(bad)
		if tap.Attached() != 2 {
			t.Fatalf("%d attached, want 2", tap.Attached())
		}
		out, r = run(t, b, []nester.Layer{tap}, "", "hello", "world")
		if out != plain || r != r0 {
			t.Fatalf("under an attached tap: %q, %s; without: %q, %s", out, r, plain, r0)
		}
		<-ended // run closed the layer: every line is written
		<-badEnded
		text := w.String()
		for _, want := range []string{
			`[control] `,
			`space(space) space_create(`,
			`console(port) console_write(data="world"/5) = 5 <`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("tap lines lack %q:\n%s", want, text)
			}
		}
		// What came out of space_create is the program's own: no line
		// names it.
		if strings.Contains(text, "space.space_create") || strings.Contains(text, "summary") {
			t.Errorf("tap lines go deep or summarize:\n%s", text)
		}
		if bad.calls != 1 {
			t.Errorf("a failed writer was written %d times, want 1", bad.calls)
		}
	})
}
