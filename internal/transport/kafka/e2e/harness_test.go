// Package e2e tests wirelog's Kafka deployment end to end: the real wirelog
// binary (`wirelog ingest`, `wirelog process`) against real Apache Kafka
// brokers started by scripts/kafka.sh, with processes killed and brokers
// stopped under load.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // reads the processors' stores after they stop
)

var wirelogBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wirelog-kafka-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wirelogBin = filepath.Join(dir, "wirelog")
	build := exec.Command("go", "build", "-o", wirelogBin, "github.com/wirelog/wirelog/cmd/wirelog")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build wirelog:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// kafka is a broker or a three-node cluster run by scripts/kafka.sh in a
// folder of the test's own, stopped by its pid files when the test ends.
type kafka struct {
	t       *testing.T
	dir     string
	env     []string
	cluster bool
	ports   []int
}

func (k *kafka) brokers() string {
	var s []string
	for _, p := range k.ports {
		s = append(s, "127.0.0.1:"+strconv.Itoa(p))
	}
	return strings.Join(s, ",")
}

func startKafka(t *testing.T, cluster bool) *kafka {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java is not installed: run scripts/deps/30-kafka.sh as root")
	}
	k := &kafka{t: t, dir: t.TempDir(), cluster: cluster}
	k.env = append(os.Environ(), "KAFKA_DIR="+k.dir, "KAFKA_OWNER_PID="+strconv.Itoa(os.Getpid()))
	if cluster {
		var cports []string
		var ports []string
		for i := 0; i < 3; i++ {
			k.ports = append(k.ports, freePort(t))
			ports = append(ports, strconv.Itoa(k.ports[i]))
			cports = append(cports, strconv.Itoa(freePort(t)))
		}
		k.env = append(k.env, "KAFKA_CLUSTER_PORTS="+strings.Join(ports, ","), "KAFKA_CLUSTER_CONTROLLER_PORTS="+strings.Join(cports, ","))
	} else {
		k.ports = []int{freePort(t)}
		k.env = append(k.env, "KAFKA_PORT="+strconv.Itoa(k.ports[0]), "KAFKA_CONTROLLER_PORT="+strconv.Itoa(freePort(t)))
	}
	k.start()
	t.Cleanup(k.stop)
	return k
}

func (k *kafka) script(arg string) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot(), "scripts", "kafka.sh"), arg)
	cmd.Env = k.env
	if out, err := cmd.CombinedOutput(); err != nil {
		k.t.Fatalf("scripts/kafka.sh %s: %v\n%s", arg, err, out)
	}
}

// start starts the broker, or the cluster nodes that are down.
func (k *kafka) start() {
	if k.cluster {
		k.script("cluster-start")
	} else {
		k.script("start")
	}
}

func (k *kafka) stop() {
	if k.cluster {
		k.script("cluster-stop")
	} else {
		k.script("stop")
	}
}

// killNode kills cluster node id (1..3) with SIGKILL, as a crashed machine.
func (k *kafka) killNode(id int32) {
	k.t.Helper()
	b, err := os.ReadFile(filepath.Join(k.dir, fmt.Sprintf("node%d", id), "pid"))
	if err != nil {
		k.t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		k.t.Fatalf("kill node %d (pid %d): %v", id, pid, err)
	}
}

// proc is a running wirelog subcommand.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
	err  error
}

var addrRE = regexp.MustCompile(`http=http://([0-9.:]+)`)

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(wirelogBin, args...), done: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(p.kill9)
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
		p.url = "http://" + a
	case <-p.done:
		t.Fatalf("%s exited before serving: %v\n%s", name, p.err, p.Logs())
	case <-time.After(90 * time.Second):
		t.Fatalf("%s did not start within 90s\n%s", name, p.Logs())
	}
	eventually(t, 60*time.Second, func() error {
		if code := p.get("/readyz", nil); code != 200 {
			return fmt.Errorf("%s /readyz %d", name, code)
		}
		return nil
	})
	return p
}

func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *proc) kill9() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// term stops p with SIGTERM, as an orchestrator does.
func (p *proc) term() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("%s exited with %v after SIGTERM\n%s", p.name, p.err, p.Logs())
		}
	case <-time.After(60 * time.Second):
		p.kill9()
		p.t.Fatalf("%s did not exit within 60s of SIGTERM\n%s", p.name, p.Logs())
	}
}

func (p *proc) get(path string, out any) int {
	resp, err := http.Get(p.url + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

// post sends one NDJSON body with extra headers; it returns the status and
// the Retry-After header.
func (p *proc) post(body string, hdr map[string]string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.url+"/api/v1/logs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		p.t.Fatalf("post to %s: %v", p.name, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// stored is the processor's /api/v1/stats event total, -1 when unanswered.
func (p *proc) stored() int64 {
	var s map[string]any
	if p.get("/api/v1/stats", &s) != 200 {
		return -1
	}
	v, _ := s["events"].(float64)
	return int64(v)
}

func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("not within %v: %v", timeout, err)
}

// storeContents reads a stopped processor's store: event ids (with how often
// each is there) and the rollups' event count.
type storeContents struct {
	rows        int64
	rollupCount int64
	ids         map[string]int
}

func readStore(t *testing.T, dataDir string) storeContents {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(dataDir, "wirelog.duckdb")+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var c storeContents
	if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&c.rows); err != nil {
		t.Fatalf("count events in %s: %v", dataDir, err)
	}
	if err := db.QueryRow(`SELECT coalesce(sum(count), 0) FROM rollups`).Scan(&c.rollupCount); err != nil {
		t.Fatalf("sum rollups in %s: %v", dataDir, err)
	}
	r, err := db.Query(`SELECT coalesce(json_extract_string(attrs, '$.event_id'), '') FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c.ids = make(map[string]int, c.rows)
	for r.Next() {
		var id string
		if err := r.Scan(&id); err != nil {
			t.Fatal(err)
		}
		c.ids[id]++
	}
	return c
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}
