package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Checkpointer saves the program now (the checkpoint layer's SaveNow).
type Checkpointer interface {
	SaveNow(ctx context.Context, stop bool) (string, error)
	File() string
}

// Config is what a Server serves.
type Config struct {
	// Path is the socket's path; its directory must exist.
	Path    string
	Program string
	Args    []string
	Backend string
	Layers  []string
	// Layer is the stack's control layer: the tree and the trace come
	// through it.
	Layer *Layer
	// Checkpoint is the stack's checkpoint layer, nil when there is none.
	Checkpoint Checkpointer
	// Kill ends the program, saying why, or says why it cannot.
	Kill func(reason string) error
	Log  hclog.Logger
}

// requestTimeout bounds how long a connection may take to send its
// request, and a reply's write.
const requestTimeout = 10 * time.Second

// Server serves a control socket.
type Server struct {
	cfg     Config
	ln      *net.UnixListener
	started time.Time
	uid     int
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	// conns are the open connections; true for those still to send
	// their request, which Close cuts short. Those being answered finish
	// first: a kill's reply must reach its client though the program,
	// and so the monitor, ends with it.
	conns map[net.Conn]bool
}

// defaultMu makes choosing a default path and binding it one step for
// the monitors of one process.
var defaultMu sync.Mutex

// Listen opens the socket at cfg.Path (mode 0600), or at DefaultPath when
// it is empty, and serves it until Close. A socket already there that
// nobody serves is replaced; one a monitor serves, or any other file, is
// an error.
func Listen(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	if cfg.Layer == nil || cfg.Kill == nil {
		return nil, errors.New("control: a Config needs its Layer and Kill")
	}
	if cfg.Path == "" {
		defaultMu.Lock()
		defer defaultMu.Unlock()
		var err error
		if cfg.Path, err = DefaultPath(); err != nil {
			return nil, err
		}
	}
	if st, err := os.Lstat(cfg.Path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: a file that is not a socket is there", cfg.Path)
		}
		if live(cfg.Path) {
			return nil, fmt.Errorf("control socket %s: another monitor serves it", cfg.Path)
		}
		os.Remove(cfg.Path)
	}
	ln, err := listenAt(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, ln: ln, started: time.Now(), uid: os.Geteuid(), ctx: ctx, cancel: cancel, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.cfg.Path }

// listenAt listens on a socket that appears at path ready: listening,
// with mode 0600. It is bound under a temporary name beside path and
// renamed into place, so that nobody sees it half made: a socket that
// refuses connections is one nobody serves (List removes those), and
// one of another mode would let others connect.
func listenAt(path string) (*net.UnixListener, error) {
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), os.Getpid()))
	os.Remove(tmp) // left by a process of the same pid that died binding
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// Close leaves the file to the Server, which knows its final name.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	// The peer check is what guards the socket; the mode keeps others
	// from even connecting.
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return ln, nil
}

// Close stops serving and removes the socket. Requests being answered
// get their replies (a trace stream ends), connections yet to send one
// are closed.
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	if rerr := os.Remove(s.cfg.Path); err == nil && !errors.Is(rerr, os.ErrNotExist) {
		err = rerr
	}
	s.mu.Lock()
	for c, waiting := range s.conns {
		if waiting {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// answering marks conn's request as read: Close lets its answer finish.
// It reports false when Close came first.
func (s *Server) answering(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.conns[conn] = false
	return true
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.cfg.Log.Warn("control socket: accept failed; no more requests are served", "error", err)
			}
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conns[conn] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, conn)
				s.mu.Unlock()
				conn.Close()
			}()
			s.serve(conn)
		}()
	}
}

// peer returns the uid and pid of conn's other end.
func peer(conn *net.UnixConn) (uid, pid int, err error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, 0, err
	}
	if serr != nil {
		return 0, 0, serr
	}
	return int(cred.Uid), int(cred.Pid), nil
}

// serve answers one connection's request.
func (s *Server) serve(conn *net.UnixConn) {
	uid, pid, err := peer(conn)
	if err != nil {
		s.cfg.Log.Warn("control socket: connection refused: its peer is unknown", "error", err)
		return
	}
	if uid != s.uid && uid != 0 {
		s.cfg.Log.Warn("control socket: connection refused: not the owner", "uid", uid, "pid", pid, "owner", s.uid)
		s.reply(conn, Reply{Error: fmt.Sprintf("refused: uid %d is not the monitor's owner", uid)})
		return
	}
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	line, err := readLine(bufio.NewReaderSize(conn, 4096))
	if err != nil {
		if !errors.Is(err, io.EOF) || len(line) > 0 {
			s.reply(conn, Reply{Error: err.Error()})
		}
		return
	}
	conn.SetReadDeadline(time.Time{})
	if !s.answering(conn) {
		return
	}
	req, err := DecodeRequest(line)
	if err != nil {
		s.cfg.Log.Debug("control socket: bad request", "error", err)
		s.reply(conn, Reply{Error: err.Error()})
		return
	}
	s.cfg.Log.Debug("control socket: request", "op", req.Op, "uid", uid, "pid", pid)
	switch req.Op {
	case OpState:
		st, err := s.State()
		if err != nil {
			s.reply(conn, Reply{Error: err.Error()})
			return
		}
		s.reply(conn, Reply{OK: true, State: st})
	case OpCheckpoint:
		if s.cfg.Checkpoint == nil {
			s.reply(conn, Reply{Error: "no checkpoint layer in the stack: run the program with --layer checkpoint=FILE"})
			return
		}
		file, err := s.cfg.Checkpoint.SaveNow(s.ctx, req.Stop)
		if err != nil {
			s.reply(conn, Reply{Error: err.Error()})
			return
		}
		s.reply(conn, Reply{OK: true, File: file})
	case OpKill:
		reason := "killed through the control socket"
		if req.Reason != "" {
			reason += ": " + req.Reason
		}
		if err := s.cfg.Kill(reason); err != nil {
			s.reply(conn, Reply{Error: err.Error()})
			return
		}
		s.cfg.Log.Info("control socket: program killed", "reason", req.Reason, "uid", uid, "pid", pid)
		s.reply(conn, Reply{OK: true})
	case OpTrace:
		s.trace(conn)
	}
}

// readLine reads one line of at most MaxRequest bytes, without its
// newline.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) >= MaxRequest {
			return nil, fmt.Errorf("%w: longer than %d bytes", ErrRequest, MaxRequest)
		}
		if err == nil {
			return line[:len(line)-1], nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return line, nil // a last line without its newline
			}
			return line, err
		}
	}
}

// reply writes r as one line.
func (s *Server) reply(conn net.Conn, r Reply) error {
	r.V = Version
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(requestTimeout))
	_, err = conn.Write(append(b, '\n'))
	conn.SetWriteDeadline(time.Time{})
	return err
}

// trace streams the tap's records to conn until the client hangs up, the
// program ends or the server closes.
func (s *Server) trace(conn net.Conn) {
	tap := s.cfg.Layer.Tap()
	if tap == nil {
		s.reply(conn, Reply{Error: "this monitor has no trace tap: start it with --control-trace (or trace to a file with --layer trace)"})
		return
	}
	if err := s.reply(conn, Reply{OK: true}); err != nil {
		return
	}
	detach, ended := tap.Attach(conn)
	defer detach()
	hungUp := make(chan struct{})
	go func() {
		// The client sends nothing more: a read ends when it hangs up.
		io.Copy(io.Discard, conn)
		close(hungUp)
	}()
	select {
	case <-ended:
	case <-hungUp:
	case <-s.ctx.Done():
	}
}

// State returns the monitor's state and its program's tree.
func (s *Server) State() (*State, error) {
	spaces, err := s.cfg.Layer.Tree()
	if err != nil {
		return nil, err
	}
	if len(spaces) > 0 && s.cfg.Program != "" {
		spaces[0].Name = s.cfg.Program
	}
	st := &State{PID: os.Getpid(), Socket: s.cfg.Path, Program: s.cfg.Program, Args: s.cfg.Args, Backend: s.cfg.Backend,
		Started: s.started, Layers: s.cfg.Layers, Spaces: spaces}
	if st.Layers == nil {
		st.Layers = []string{}
	}
	if st.Spaces == nil {
		st.Spaces = []Space{}
	}
	if s.cfg.Checkpoint != nil {
		st.Checkpoint = s.cfg.Checkpoint.File()
	}
	return st, nil
}
