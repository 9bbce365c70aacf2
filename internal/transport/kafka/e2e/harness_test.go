// Package e2e tests wirelog's Kafka deployment end to end: the real wirelog
// binary (`wirelog ingest`, `wirelog process`) against real Apache Kafka
// brokers started by scripts/kafka.sh, with processes killed and brokers
// stopped under load.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/freeport"
	"github.com/wirelog/wirelog/internal/testproc"
)

var wirelogBin string

func TestMain(m *testing.M) {
	bin, dir, err := testproc.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wirelogBin = bin
	code := m.Run()
	stopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

// kafka is a broker or a three-node cluster run by scripts/kafka.sh in a
// folder of the test's own, stopped by its pid files when the test ends;
// or the package's shared broker (sharedKafka).
type kafka struct {
	t       testing.TB
	dir     string
	env     []string
	cluster bool
	ports   []int
	shared  bool // the package's broker: not this test's to stop, restart or kill
}

func (k *kafka) brokers() string {
	var s []string
	for _, p := range k.ports {
		s = append(s, "127.0.0.1:"+strconv.Itoa(p))
	}
	return strings.Join(s, ",")
}

// startKafka starts a broker (or a three-node cluster) of the test's own,
// for tests that stop, restart or kill it; the others use sharedKafka.
func startKafka(t testing.TB, cluster bool) *kafka {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java is not installed: run scripts/deps/30-kafka.sh as root")
	}
	k := &kafka{t: t, dir: t.TempDir(), cluster: cluster}
	k.configure(t)
	k.start()
	t.Cleanup(k.stop)
	return k
}

// configure picks the ports and sets the environment of scripts/kafka.sh.
func (k *kafka) configure(t testing.TB) {
	k.env = append(os.Environ(), "KAFKA_DIR="+k.dir, "KAFKA_OWNER_PID="+strconv.Itoa(os.Getpid()))
	if k.cluster {
		var cports []string
		var ports []string
		for i := 0; i < 3; i++ {
			k.ports = append(k.ports, freeport.Port(t))
			ports = append(ports, strconv.Itoa(k.ports[i]))
			cports = append(cports, strconv.Itoa(freeport.Port(t)))
		}
		k.env = append(k.env, "KAFKA_CLUSTER_PORTS="+strings.Join(ports, ","), "KAFKA_CLUSTER_CONTROLLER_PORTS="+strings.Join(cports, ","))
	} else {
		k.ports = []int{freeport.Port(t)}
		k.env = append(k.env, "KAFKA_PORT="+strconv.Itoa(k.ports[0]), "KAFKA_CONTROLLER_PORT="+strconv.Itoa(freeport.Port(t)))
	}
}

// The shared broker: one single node for every test that neither stops,
// restarts nor kills its broker, started by the first test that asks and
// stopped by TestMain (its KAFKA_OWNER_PID watcher stops it should the
// test process die first). A broker's start and stop cost a few seconds
// each; the tests on it keep apart by names of their own (topicNames).
var shared struct {
	once sync.Once
	k    *kafka
	err  error
}

// sharedKafka returns the package's shared single-node broker, bound to t
// for its helpers; stop, start and killNode fail the test on it. Tests on
// it pass flags() (or their own topic and group flags from topicNames) so
// that they see only their own records and consumer group.
func sharedKafka(t testing.TB) *kafka {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java is not installed: run scripts/deps/30-kafka.sh as root")
	}
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "wirelog-kafka-e2e-")
		if err != nil {
			shared.err = err
			return
		}
		k := &kafka{dir: dir, shared: true}
		k.configure(t)
		if out, err := k.run("start"); err != nil {
			shared.err = fmt.Errorf("scripts/kafka.sh start (the shared broker): %v\n%s", err, out)
			return
		}
		shared.k = k
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	if shared.k == nil {
		t.Fatal("the shared Kafka broker did not start: see the first test that asked for it")
	}
	k := *shared.k
	k.t = t
	return &k
}

// stopShared stops the shared broker, if a test started it, and removes its folder.
func stopShared() {
	if shared.k == nil {
		return
	}
	if out, err := shared.k.run("stop"); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the shared Kafka broker: %v\n%s\n", err, out)
	}
	os.RemoveAll(shared.k.dir)
}

// ownNames are a topic, a dead-letter topic and a consumer group of one test's
// own, so tests on the shared broker never read each other's records or
// join each other's group (a killed processor's member would hold up the
// next test's rebalance until its session timed out).
type ownNames struct {
	topic, dlq, group string
}

var nameSeq atomic.Int64

func topicNames(t testing.TB) ownNames {
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, t.Name())
	base = fmt.Sprintf("e2e.%s.%d", base, nameSeq.Add(1))
	return ownNames{topic: base + ".logs", dlq: base + ".dlq", group: base + ".group"}
}

// flags are the --kafka-topic and --kafka-dlq-topic flags of n.
func (n ownNames) flags() []string {
	return []string{"--kafka-topic", n.topic, "--kafka-dlq-topic", n.dlq}
}

func (k *kafka) run(arg string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot(), "scripts", "kafka.sh"), arg)
	cmd.Env = k.env
	return cmd.CombinedOutput()
}

func (k *kafka) script(arg string) {
	k.t.Helper()
	if k.shared {
		k.t.Fatalf("scripts/kafka.sh %s on the shared broker: a test that stops, restarts or kills its broker starts its own (startKafka)", arg)
	}
	if out, err := k.run(arg); err != nil {
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
	if k.shared {
		k.t.Fatal("killNode on the shared broker: a test that kills nodes starts its own cluster (startKafka)")
	}
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
	*testproc.Proc
	t testing.TB
}

func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	return &proc{Proc: testproc.Start(t, wirelogBin, name, args...), t: t}
}

// term stops p with SIGTERM, as an orchestrator does, and expects exit 0.
func (p *proc) term() {
	p.t.Helper()
	if err := p.Term(60 * time.Second); err != nil {
		p.t.Errorf("%s after SIGTERM: %v\n%s", p.Name, err, p.Logs())
	}
}

func (p *proc) get(path string, out any) int {
	resp, err := http.Get(p.URL + path)
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
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/api/v1/logs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		p.t.Fatalf("post to %s: %v", p.Name, err)
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

var eventually = testproc.Eventually
