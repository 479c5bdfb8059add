package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
)

// Client talks to one monitor's control socket; each request is a
// connection of its own.
type Client struct {
	path string
}

// Dial returns a client of the monitor serving the socket at path, once
// it has answered a connection: a path nobody serves is an error now,
// not at the first request.
func Dial(path string) (*Client, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	conn.Close()
	return &Client{path: path}, nil
}

// Path returns the socket's path.
func (c *Client) Path() string { return c.path }

// ErrRefused wraps the error a monitor replied with.
var ErrRefused = errors.New("the monitor refused")

// do sends req and reads the reply; the connection stays open for what
// follows it (a trace), read through r, until done is called or ctx ends.
func (c *Client) do(ctx context.Context, req Request) (rep Reply, r *bufio.Reader, done func(), err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return Reply{}, nil, nil, fmt.Errorf("control socket %s: %w", c.path, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (Reply, *bufio.Reader, func(), error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Reply{}, nil, nil, err
	}
	req.V = Version
	b, err := json.Marshal(req)
	if err != nil {
		return fail(err)
	}
	// A monitor that refuses the peer answers before it reads the
	// request, and hangs up: the write may fail where the reply, which
	// says why, is there to read.
	_, werr := conn.Write(append(b, '\n'))
	r = bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		if werr != nil {
			err = werr
		}
		return fail(fmt.Errorf("control socket %s: no reply: %w", c.path, err))
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		return fail(fmt.Errorf("control socket %s: a reply that is not JSON: %w", c.path, err))
	}
	if rep.V != Version {
		return fail(fmt.Errorf("control socket %s: a reply of version %d, this client speaks version %d", c.path, rep.V, Version))
	}
	if !rep.OK {
		return fail(fmt.Errorf("%w: %s", ErrRefused, rep.Error))
	}
	return rep, r, func() { stop(); conn.Close() }, nil
}

// call sends req and returns the reply, closing the connection.
func (c *Client) call(ctx context.Context, req Request) (Reply, error) {
	rep, _, done, err := c.do(ctx, req)
	if err != nil {
		return Reply{}, err
	}
	done()
	return rep, nil
}

// State returns the monitor's state and its program's tree.
func (c *Client) State(ctx context.Context) (*State, error) {
	rep, err := c.call(ctx, Request{Op: OpState})
	if err != nil {
		return nil, err
	}
	if rep.State == nil {
		return nil, fmt.Errorf("control socket %s: a state reply without the state", c.path)
	}
	return rep.State, nil
}

// Checkpoint saves the program now through the checkpoint layer of its
// stack (an error says so where there is none) and returns the file it
// wrote; with stop the program ends once saved.
func (c *Client) Checkpoint(ctx context.Context, stop bool) (string, error) {
	rep, err := c.call(ctx, Request{Op: OpCheckpoint, Stop: stop})
	if err != nil {
		return "", err
	}
	return rep.File, nil
}

// Kill ends the program, saying why.
func (c *Client) Kill(ctx context.Context, reason string) error {
	_, err := c.call(ctx, Request{Op: OpKill, Reason: reason})
	return err
}

// Trace copies the program's trace, text lines, to w until ctx ends
// (then it returns nil) or the program does (nil too: the stream ends
// with it).
func (c *Client) Trace(ctx context.Context, w io.Writer) error {
	_, r, done, err := c.do(ctx, Request{Op: OpTrace})
	if err != nil {
		return err
	}
	defer done()
	_, err = io.Copy(w, r)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
