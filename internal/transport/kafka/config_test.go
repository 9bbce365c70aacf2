package kafka

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wirelog/wirelog/internal/transport"
)

func TestFlagsEnvAndDefaults(t *testing.T) {
	t.Setenv("WIRELOG_KAFKA_BROKERS", "k1:9092, k2:9092")
	t.Setenv("WIRELOG_KAFKA_LINGER", "20ms")
	t.Setenv("WIRELOG_KAFKA_COMPRESSION", "zstd")
	var c Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	// Flags win over the environment.
	if err := fs.Parse([]string{"--kafka-compression", "none", "--kafka-partitions", "12"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Brokers, ","); got != "k1:9092,k2:9092" {
		t.Errorf("brokers %q from WIRELOG_KAFKA_BROKERS", got)
	}
	if c.Linger != 20*time.Millisecond {
		t.Errorf("linger %s, want 20ms from the environment", c.Linger)
	}
	if c.Compression != "none" || c.Partitions != 12 {
		t.Errorf("compression %q partitions %d, want the flags' none and 12", c.Compression, c.Partitions)
	}
	if c.Topic != DefaultTopic || c.DLQTopic != DefaultDLQTopic || c.MaxBufferedBytes != DefaultMaxBufferedBytes {
		t.Errorf("defaults not applied: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}

	// Every flag's help names its environment variable.
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(f.Usage, "WIRELOG_") {
			t.Errorf("--%s help does not name its environment variable: %q", f.Name, f.Usage)
		}
	})
}

func TestValidateNamesTheFlag(t *testing.T) {
	cases := []struct {
		env, val string
		flags    []string
		want     string
	}{
		{flags: []string{}, want: "--kafka host:port"},
		{flags: []string{"--kafka", "nohost"}, want: `--kafka broker "nohost"`},
		{flags: []string{"--kafka", "h:99999"}, want: "want 1..65535"},
		{flags: []string{"--kafka", "h:1", "--kafka-compression", "brotli"}, want: "--kafka-compression"},
		{flags: []string{"--kafka", "h:1", "--kafka-partitions", "0"}, want: "--kafka-partitions"},
		{flags: []string{"--kafka", "h:1", "--kafka-replication-factor", "0"}, want: "--kafka-replication-factor"},
		{flags: []string{"--kafka", "h:1", "--kafka-dlq-topic", "wirelog.logs"}, want: "--kafka-dlq-topic must differ"},
		{flags: []string{"--kafka", "h:1", "--kafka-topic", "logs/prod"}, want: "--kafka-topic \"logs/prod\": Kafka topic names"},
		{flags: []string{"--kafka", "h:1", "--kafka-sasl-mechanism", "gssapi"}, want: "--kafka-sasl-mechanism"},
		{flags: []string{"--kafka", "h:1", "--kafka-sasl-mechanism", "plain"}, want: "--kafka-sasl-user"},
		{flags: []string{"--kafka", "h:1", "--kafka-tls-ca", "/x.pem"}, want: "need --kafka-tls"},
		{flags: []string{"--kafka", "h:1", "--kafka-max-buffered-bytes", "10"}, want: "--kafka-max-buffered-bytes"},
		{flags: []string{"--kafka", "h:1", "--kafka-session-timeout", "1s"}, want: "--kafka-session-timeout"},
		{env: "WIRELOG_KAFKA_PARTITIONS", val: "six", flags: []string{"--kafka", "h:1"}, want: `WIRELOG_KAFKA_PARTITIONS="six"`},
		{env: "WIRELOG_KAFKA_LINGER", val: "5", flags: []string{"--kafka", "h:1"}, want: "WIRELOG_KAFKA_LINGER"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(tc.env, tc.val)
			}
			var c Config
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.RegisterFlags(fs)
			if err := fs.Parse(tc.flags); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an ErrConfig naming %q", err, tc.want)
			}
		})
	}
}

func TestParseBrokers(t *testing.T) {
	got, err := ParseBrokers(" 127.0.0.1:9092,[::1]:9093,,kafka-0.kafka:9092 ")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "127.0.0.1:9092 [::1]:9093 kafka-0.kafka:9092" {
		t.Fatalf("got %q", got)
	}
	for _, bad := range []string{"", " , ", "host", "host:", ":9092", "h:0", "h:x"} {
		if _, err := ParseBrokers(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseBrokers(%q) = %v, want ErrConfig", bad, err)
		}
	}
}

// FuzzParseBrokers: any input gives brokers that are each host:port with a
// valid port, or an ErrConfig; never a panic.
func FuzzParseBrokers(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9092", "a:1,b:2", "[::1]:9092", "", ",,,", "h:65536", "h:-1", "[::1:9092", "a:1,,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		bs, err := ParseBrokers(s)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		if len(bs) == 0 {
			t.Fatal("no brokers and no error")
		}
		for _, b := range bs {
			if checkBroker(b) != nil || strings.ContainsAny(b, ", \t") && strings.TrimSpace(b) != b {
				t.Fatalf("accepted bad broker %q", b)
			}
		}
	})
}

func TestCodecs(t *testing.T) {
	for _, n := range []string{"none", "gzip", "snappy", "lz4", "zstd", "LZ4"} {
		if _, err := codec(n); err != nil {
			t.Errorf("codec %q: %v", n, err)
		}
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want failure
	}{
		{errors.New("boom"), failOther},
		{kgo.ErrMaxBuffered, failBackpressure},
		{fmt.Errorf("x: %w", kgo.ErrRecordTimeout), failUnavailable},
		{kerr.NotEnoughReplicas, failUnavailable},
		{kerr.MessageTooLarge, failOther},
		{timeoutErr{}, failUnavailable},
		{kgo.ErrClientClosed, failClosed},
		{context.Canceled, failCanceled},
	}
	for _, tc := range cases {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if err := wrap(failBackpressure, "produce", kgo.ErrMaxBuffered); !errors.Is(err, transport.ErrBackpressure) {
		t.Errorf("wrap backpressure: %v", err)
	}
	if err := wrap(failUnavailable, "produce", kgo.ErrRecordTimeout); !errors.Is(err, transport.ErrUnavailable) {
		t.Errorf("wrap unavailable: %v", err)
	}
}

// timeoutErr is a net.Error timeout, as a dial or read deadline gives.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
