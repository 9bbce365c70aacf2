// Package testproc runs the real wirelog binary in tests: it builds it once,
// starts subcommands on random loopback ports, learns their address from the
// startup log line, and stops them by PID. Only tests import it.
package testproc

import (
	"bufio"
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // ReadStore opens a stopped node's store

	"github.com/wirelog/wirelog/internal/store"
)

// Build builds cmd/wirelog (with the given build tags) for a TestMain and
// returns it in a new temporary directory; remove the directory when the
// tests are done.
//
// Linking the binary (DuckDB's cgo, ~140 MB) takes seconds, and one `make
// test` asks for it six times from five packages, so it is linked once:
// `go install` into binDir relinks only when the go command's own build ID
// says the installed binary is stale (a changed source, embedded file, tag,
// flag or toolchain), and each caller gets a hard link to it (a copy across
// file systems), which a later relink never touches: the go command writes
// a new file in its place.
func Build(tags ...string) (bin, dir string, err error) {
	cache, err := binDir(tags)
	if err != nil {
		return "", "", err
	}
	// One install-and-link at a time per tag set: a test package running
	// alongside (go test without -p 1, another checkout) must not link a
	// binary half replaced, nor one of other sources.
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", "", fmt.Errorf("build wirelog: %w", err)
	}
	defer lock.Close() // releases the flock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", "", fmt.Errorf("build wirelog: lock %s: %w", cache, err)
	}
	args := []string{"install"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	build := exec.Command("go", append(args, "github.com/wirelog/wirelog/cmd/wirelog")...)
	build.Env = append(os.Environ(), "GOBIN="+cache)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", "", fmt.Errorf("build wirelog: go install into %s: %w", cache, err)
	}
	dir, err = os.MkdirTemp("", "wirelog-bin-")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "wirelog")
	if err := linkOrCopy(filepath.Join(cache, "wirelog"), bin); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("build wirelog: %w", err)
	}
	return bin, dir, nil
}

// binDir is $WIRELOG_CACHE/testbin/<tags, or "default"> (WIRELOG_CACHE
// defaults to ~/.cache/wirelog). Checkouts side by side share it: the lock
// in Build keeps each install-and-link whole, and a checkout whose sources
// differ from the last one's relinks, as every call did before.
func binDir(tags []string) (string, error) {
	base := os.Getenv("WIRELOG_CACHE")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("build wirelog: no home folder for the binary cache, set WIRELOG_CACHE: %w", err)
		}
		base = filepath.Join(home, ".cache", "wirelog")
	}
	name := "default"
	if len(tags) > 0 {
		name = strings.Join(tags, ",")
	}
	d := filepath.Join(base, "testbin", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("build wirelog: %w", err)
	}
	return d, nil
}

// linkOrCopy makes dst the file src: a hard link, or a copy when they are
// on different file systems.
func linkOrCopy(src, dst string) error {
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Proc is a running wirelog subcommand.
type Proc struct {
	Name string
	URL  string // http://host:port (https:// with --tls-cert) from the "wirelog … running http=…" log line

	t    testing.TB
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
	err  error
}

var addrRE = regexp.MustCompile(`http=(https?://[0-9.:]+)`)

// Start runs bin with args, waits until it logs its HTTP address and
// answers /readyz with 200, and kills it when the test ends.
func Start(t testing.TB, bin, name string, args ...string) *Proc {
	t.Helper()
	return StartWith(t, bin, name, http.DefaultClient, args...)
}

// StartWith is Start with the client that probes /readyz (one with a
// client certificate, for a wirelog started with --tls-client-ca).
func StartWith(t testing.TB, bin, name string, client *http.Client, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, t: t, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(p.Kill9)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			if m := addrRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	select {
	case a := <-addr:
		p.URL = a
	case <-p.done:
		t.Fatalf("%s exited before serving: %v\n%s", name, p.err, p.Logs())
	case <-time.After(90 * time.Second):
		t.Fatalf("%s did not start within 90s\n%s", name, p.Logs())
	}
	Eventually(t, 60*time.Second, func() error {
		resp, err := client.Get(p.URL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s /readyz %d", name, resp.StatusCode)
		}
		return nil
	})
	return p
}

// Logs is everything the process wrote to stderr so far.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Kill9 kills the process without warning, as a crash or an OOM kill would,
// and waits for it; it does nothing once the process has exited.
func (p *Proc) Kill9() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// Term sends SIGTERM, as an orchestrator does, and returns the exit error
// (nil for exit 0); after timeout it kills the process and says so.
func (p *Proc) Term(timeout time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill9()
		return fmt.Errorf("%s did not exit within %v of SIGTERM", p.Name, timeout)
	}
}

// Eventually retries f every 100ms until it returns nil, failing the test
// with f's last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v: %v", timeout, err)
}

// Store is what a stopped node's DuckDB store holds.
type Store struct {
	Rows        int64
	RollupCount int64          // events counted by the rollups
	IDs         map[string]int // event_id attribute → rows carrying it ("" for none)
}

// ReadStore opens the store under dataDir read-only (the node must be
// stopped) and counts its events by event_id.
func ReadStore(t testing.TB, dataDir string) Store {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // the views below live in this connection's temp catalog
	union := storeSelects(t, db, dataDir, "")
	for i, table := range []string{"events", "rollups"} {
		if _, err := db.Exec("CREATE TEMP VIEW " + table + " AS " + strings.Join(union[i], " UNION ALL ")); err != nil {
			t.Fatalf("read %s in %s: %v", table, dataDir, err)
		}
	}
	var s Store
	if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&s.Rows); err != nil {
		t.Fatalf("count events in %s: %v", dataDir, err)
	}
	if err := db.QueryRow(`SELECT coalesce(sum(count), 0) FROM rollups`).Scan(&s.RollupCount); err != nil {
		t.Fatalf("sum rollups in %s: %v", dataDir, err)
	}
	r, err := db.Query(`SELECT coalesce(json_extract_string(attrs, '$.event_id'), '') FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s.IDs = make(map[string]int, s.Rows)
	for r.Next() {
		var id string
		if err := r.Scan(&id); err != nil {
			t.Fatal(err)
		}
		s.IDs[id]++
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// storeSelects attaches the two twin files of the stopped store under
// dataDir read-only to db (named prefix+"f0", prefix+"f1") and returns the
// SELECTs that read its events' attrs (as VARCHAR) and its rollups, one per
// twin and per twin's registered segment files, to be joined by UNION ALL.
func storeSelects(t testing.TB, db *sql.DB, dataDir, prefix string) [2][]string {
	t.Helper()
	// The store keeps its tables in two files (store.Files); read both.
	files := store.Files(filepath.Join(dataDir, "wirelog.duckdb"))
	var union [2][]string
	for i, f := range files {
		if _, err := os.Stat(f); err != nil {
			continue // a store from before the twins
		}
		name := fmt.Sprintf("%sf%d", prefix, i)
		if _, err := db.Exec(fmt.Sprintf("ATTACH '%s' AS %s (READ_ONLY)", f, name)); err != nil {
			t.Fatalf("open %s: %v", f, err)
		}
		union[0] = append(union[0], "SELECT attrs::VARCHAR AS attrs FROM "+name+".events")
		union[1] = append(union[1], "SELECT * FROM "+name+".rollups")
		// --store-format parquet: the events of the segment files this
		// twin registered (an unregistered file is not part of the store).
		var hasSegments bool
		if err := db.QueryRow(`SELECT count(*) > 0 FROM duckdb_tables() WHERE database_name = ? AND table_name = 'segments'`, name).Scan(&hasSegments); err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		if !hasSegments {
			continue
		}
		rows, err := db.Query(`SELECT file FROM ` + name + `.segments`)
		if err != nil {
			t.Fatalf("list segments in %s: %v", f, err)
		}
		var paths []string
		for rows.Next() {
			var file string
			if err := rows.Scan(&file); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, "'"+filepath.Join(files[0]+".segments", file)+"'")
		}
		rows.Close()
		if len(paths) > 0 {
			union[0] = append(union[0], "SELECT attrs FROM read_parquet(["+strings.Join(paths, ",")+"])")
		}
	}
	return union
}

// ReadLines returns the whitespace-separated words of a file (an ack log).
func ReadLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}
