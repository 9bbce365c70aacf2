package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wirelog/wirelog/internal/freeport"
)

// The tests run against a real Apache Kafka broker that scripts/kafka.sh
// starts on free loopback ports, in its own state folder, the first time a
// test needs it (unit tests and fuzz workers never start one). TestMain stops
// it by its pid file; should the test process die first, the script's
// KAFKA_OWNER_PID watcher stops it.
var (
	brokerAddr string    // 127.0.0.1:port of the test broker
	saslAddr   string    // its SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256/512)
	tlsAddr    string    // its TLS listener, with a certificate from tlsCA
	tlsCA      string    // PEM file of the CA that signed the broker's certificate
	tlsClient  [2]string // a client certificate and key (PEM files) from the same CA
	brokerEnv  []string
	brokerDir  string
	brokerOnce sync.Once
	brokerErr  string // why the broker is not there: skip (java missing) or fail
	brokerSkip bool
)

func TestMain(m *testing.M) {
	code := m.Run()
	if brokerDir != "" {
		if out, err := kafkaScript("stop"); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the test broker: %v\n%s\n", err, out)
		}
		os.RemoveAll(brokerDir)
	}
	os.Exit(code)
}

func startBroker() {
	if _, err := exec.LookPath("java"); err != nil {
		brokerErr, brokerSkip = "java is not installed: run scripts/deps/30-kafka.sh as root (installs openjdk-17-jre-headless, maven, kcat)", true
		return
	}
	dir, err := os.MkdirTemp("", "wirelog-kafka-test-")
	if err != nil {
		brokerErr = err.Error()
		return
	}
	brokerDir = dir
	var ports [4]int
	for i := range ports {
		if ports[i], err = freeport.Get(); err != nil {
			brokerErr = err.Error()
			return
		}
	}
	port, cport, sport, tport := ports[0], ports[1], ports[2], ports[3]
	brokerAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	saslAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(sport))
	tlsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(tport))
	keystore, err := writeTestPKI(dir)
	if err != nil {
		brokerErr = "test certificates: " + err.Error()
		return
	}
	brokerEnv = append(os.Environ(),
		"KAFKA_DIR="+dir,
		"KAFKA_OWNER_PID="+strconv.Itoa(os.Getpid()),
		"KAFKA_PORT="+strconv.Itoa(port),
		"KAFKA_CONTROLLER_PORT="+strconv.Itoa(cport),
		"KAFKA_SASL_PORT="+strconv.Itoa(sport),
		"KAFKA_SASL_USER=wirelog",
		"KAFKA_SASL_PASSWORD=wirelog-secret",
		"KAFKA_TLS_PORT="+strconv.Itoa(tport),
		"KAFKA_TLS_KEYSTORE="+keystore,
		"KAFKA_TLS_CLIENT_CA="+tlsCA, // mutual TLS on the SSL listener
	)
	if out, err := kafkaScript("start"); err != nil {
		brokerErr = fmt.Sprintf("starting the test broker with scripts/kafka.sh failed: %v\n%s", err, out)
	}
}

// scriptPath is scripts/kafka.sh at the repository root.
func scriptPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "kafka.sh")
}

func kafkaScript(arg string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", scriptPath(), arg)
	cmd.Env = brokerEnv
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func needBroker(t testing.TB) {
	t.Helper()
	brokerOnce.Do(startBroker)
	if brokerSkip {
		t.Skip(brokerErr)
	}
	if brokerErr != "" {
		t.Fatal(brokerErr)
	}
}

var topicSeq atomic.Int64

// testConfig returns a config on the test broker with a topic of its own.
func testConfig(t testing.TB, partitions int) Config {
	t.Helper()
	needBroker(t)
	name := strings.Map(func(r rune) rune {
		if validTopicRune(r) {
			return r
		}
		return '_'
	}, t.Name())
	cfg := DefaultConfig()
	cfg.Brokers = []string{brokerAddr}
	cfg.Topic = fmt.Sprintf("t.%s.%d.%d", name, time.Now().UnixNano()%1e6, topicSeq.Add(1))
	cfg.DLQTopic = cfg.Topic + ".dlq"
	cfg.Group = cfg.Topic + ".group"
	cfg.Partitions = partitions
	cfg.Linger = time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	return cfg
}

// admin returns a plain franz-go admin client on the test broker.
func admin(t testing.TB) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// endOffsets returns the end offset of every partition of topic.
func endOffsets(t testing.TB, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lo, err := admin(t).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// writeTestPKI writes a CA, a broker keystore (PKCS#8 key and certificate
// chain for 127.0.0.1, as Kafka's PEM keystore wants) and a client
// certificate into dir; it returns the keystore path.
func writeTestPKI(dir string) (string, error) {
	newKey := func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
	caKey, err := newKey()
	if err != nil {
		return "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wirelog test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, err error) {
		key, err := newKey()
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		pk, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), nil
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	srvCert, srvKey, err := issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return "", err
	}
	cliCert, cliKey, err := issue(3, "wirelog", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return "", err
	}
	tlsCA = filepath.Join(dir, "ca.pem")
	tlsClient = [2]string{filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")}
	keystore := filepath.Join(dir, "broker-keystore.pem")
	for path, data := range map[string][]byte{
		tlsCA:        caPEM,
		tlsClient[0]: cliCert,
		tlsClient[1]: cliKey,
		keystore:     append(append(srvKey, srvCert...), caPEM...),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return "", err
		}
	}
	return keystore, nil
}
