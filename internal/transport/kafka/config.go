// Package kafka is wirelog's transport on Apache Kafka, through franz-go: an
// idempotent acks=all Producer for the ingest gateway and a consumer-group
// Consumer for the processors, both behind the transport interfaces.
//
// One Kafka record carries one event: the value is the event JSON as the
// caller gave it, the key is the caller's (host/service, so one source stays
// in order on one partition), and headers travel as given, plus the W3C
// traceparent of the producing span.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.opentelemetry.io/otel/trace"

	"github.com/wirelog/wirelog/internal/tlsconf"
	"github.com/wirelog/wirelog/internal/transport"
)

// Defaults. Every knob of the transport has its default here, and only here.
const (
	// DefaultTopic carries the events, one Kafka record per event.
	DefaultTopic = "wirelog.logs"
	// DefaultDLQTopic receives records the processor cannot handle, with the
	// error and their origin in headers.
	DefaultDLQTopic = "wirelog.dlq"
	// DefaultGroup is the processors' consumer group.
	DefaultGroup = "wirelog-processors"
	// DefaultPartitions bounds how many processors can share the work; 6
	// lets up to 6 processors run while keeping batches per partition large
	// on a small cluster (more partitions = smaller batches per linger).
	DefaultPartitions = 6
	// DefaultReplicationFactor -1 takes the broker's default.replication.factor,
	// so the same flags work on a one-node dev broker and on a real cluster.
	DefaultReplicationFactor = -1
	// DefaultCompression was picked on numbers: see docs/bench/kafka.md
	// (BenchmarkProduceCompression against the real broker, 250-byte events).
	DefaultCompression = "lz4"
	// DefaultLinger lets concurrent requests share a produce batch; 5ms is
	// small next to the fsync-free acks=all round trip and the HTTP request.
	DefaultLinger = 5 * time.Millisecond
	// DefaultMaxBufferedBytes bounds producer memory; past it Produce fails
	// fast with transport.ErrBackpressure (HTTP 429) instead of growing.
	DefaultMaxBufferedBytes = 64 << 20
	// DefaultMaxBufferedRecords bounds the records in flight for the same reason.
	DefaultMaxBufferedRecords = 200_000
	// DefaultProduceTimeout bounds how long a record may wait for its ack
	// (delivery.timeout.ms) before Produce fails with transport.ErrUnavailable
	// (HTTP 503). It must cover a leader election (a few seconds in KRaft).
	DefaultProduceTimeout = 10 * time.Second
	// DefaultReadyTimeout bounds one readiness probe of the cluster.
	DefaultReadyTimeout = 2 * time.Second
	// DefaultSessionTimeout is how long a processor that died silently
	// (kill -9, a partition) keeps its partitions before the group moves them.
	DefaultSessionTimeout = 15 * time.Second
	// DefaultLagInterval is how often the consumer refreshes its lag gauges.
	DefaultLagInterval = 10 * time.Second
	// DefaultClientID names wirelog in broker logs and quotas.
	DefaultClientID = "wirelog"
	// dlqPartitions: dead letters are rare; one partition keeps them in order.
	dlqPartitions = 1
)

// Sentinel errors of this package. Match with errors.Is.
var (
	// ErrPartitionMismatch means a topic already exists with a partition count
	// other than --kafka-partitions. wirelog works with it but does not change it.
	ErrPartitionMismatch = errors.New("kafka: topic partition count differs from --kafka-partitions")
	// ErrConfig means a setting is invalid; the message names the flag.
	ErrConfig = errors.New("kafka: invalid configuration")
)

// Config is the Kafka transport's configuration. Build it with RegisterFlags
// (flags and WIRELOG_KAFKA_* environment variables) or by hand from
// DefaultConfig, then call Validate.
type Config struct {
	Brokers            []string      // --kafka: seed brokers host:port
	Topic              string        // --kafka-topic
	DLQTopic           string        // --kafka-dlq-topic
	Group              string        // consumer group (the process subcommand's --group)
	Partitions         int           // --kafka-partitions, used when creating topics
	ReplicationFactor  int           // --kafka-replication-factor, -1 = broker default
	CreateTopics       bool          // --kafka-create-topics
	Compression        string        // --kafka-compression: none, gzip, snappy, lz4, zstd
	Linger             time.Duration // --kafka-linger
	MaxBufferedBytes   int           // --kafka-max-buffered-bytes
	MaxBufferedRecords int           // --kafka-max-buffered-records
	ProduceTimeout     time.Duration // --kafka-produce-timeout
	ReadyTimeout       time.Duration // --kafka-ready-timeout
	SessionTimeout     time.Duration // --kafka-session-timeout
	InstanceID         string        // --kafka-instance-id: static group membership
	ClientID           string        // --kafka-client-id
	LagInterval        time.Duration // --kafka-lag-interval

	SASLMechanism string // --kafka-sasl-mechanism: "", plain, scram-sha-256, scram-sha-512
	SASLUser      string // --kafka-sasl-user
	SASLPassword  string // --kafka-sasl-password (prefer WIRELOG_KAFKA_SASL_PASSWORD)
	// SASLPasswordFile is read at every authentication, so a rotated
	// Kubernetes Secret is used on the next connection.
	SASLPasswordFile string // --kafka-sasl-password-file
	// SASLOAuthTokenFile holds the OAUTHBEARER token (a JWT), read at
	// every authentication (a token refresher rewrites it).
	SASLOAuthTokenFile string // --kafka-sasl-oauth-token-file

	TLS                   bool   // --kafka-tls
	TLSCAFile             string // --kafka-tls-ca
	TLSCertFile           string // --kafka-tls-cert
	TLSKeyFile            string // --kafka-tls-key
	TLSServerName         string // --kafka-tls-server-name
	TLSInsecureSkipVerify bool   // --kafka-tls-insecure-skip-verify

	// Set in code, not by flags.

	// OnAssigned, OnRevoked and OnLost, when set, are called by the consumer
	// after its own handling of a rebalance (OnRevoked after the finished
	// offsets of the revoked partitions were committed). They run inside the
	// group's rebalance and must return quickly.
	OnAssigned func(tps []transport.TopicPartition)
	OnRevoked  func(tps []transport.TopicPartition)
	OnLost     func(tps []transport.TopicPartition)
	// Release, when set, is called when partitions are revoked, before
	// their offsets are committed: a store that accepts records before they
	// are durable (segment files) makes them durable and returns each
	// partition's next durable offset, which the revoke commits (never
	// moving the group's offset back). Without it, records the store
	// accepted but had not made durable would be stored again by the
	// partition's next owner. An error means the store discarded everything
	// it had not made durable, of every partition: the consumer then
	// replays the partitions it keeps from their durable offsets.
	Release func(ctx context.Context, tps []transport.TopicPartition) (map[transport.TopicPartition]int64, error)
	// Discard, when set, is called when partitions are lost (the group
	// moved them without a revoke, after a session timeout): the store
	// drops what it accepted but has not made durable, since the new owner
	// may already be storing it, and returns how many records; the consumer
	// then replays the partitions it keeps from their durable offsets.
	Discard func() int
	// TracerProvider makes the publish/receive spans; nil takes the global
	// provider (a no-op one still propagates the caller's trace context).
	TracerProvider trace.TracerProvider
	// Logger receives franz-go's warnings and errors; nil = slog.Default().
	Logger *slog.Logger
	// extra kgo options, for tests.
	extra []kgo.Opt

	envErrs []error
}

// DefaultConfig returns a Config with every default set and no brokers.
func DefaultConfig() Config {
	return Config{
		Topic:              DefaultTopic,
		DLQTopic:           DefaultDLQTopic,
		Group:              DefaultGroup,
		Partitions:         DefaultPartitions,
		ReplicationFactor:  DefaultReplicationFactor,
		CreateTopics:       true,
		Compression:        DefaultCompression,
		Linger:             DefaultLinger,
		MaxBufferedBytes:   DefaultMaxBufferedBytes,
		MaxBufferedRecords: DefaultMaxBufferedRecords,
		ProduceTimeout:     DefaultProduceTimeout,
		ReadyTimeout:       DefaultReadyTimeout,
		SessionTimeout:     DefaultSessionTimeout,
		LagInterval:        DefaultLagInterval,
		ClientID:           DefaultClientID,
	}
}

// EnvName is the environment variable that sets a flag's default:
// --kafka-linger → WIRELOG_KAFKA_LINGER, --kafka → WIRELOG_KAFKA_BROKERS.
func EnvName(flagName string) string {
	if flagName == "kafka" {
		return "WIRELOG_KAFKA_BROKERS"
	}
	return "WIRELOG_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// RegisterFlags fills c with DefaultConfig, overridden by WIRELOG_KAFKA_*
// environment variables, and registers a --kafka-* flag for every setting
// (flags win over the environment). A bad environment value is reported by
// Validate, naming the variable.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	*c = DefaultConfig()
	env := func(name string) (string, bool) { return os.LookupEnv(EnvName(name)) }
	help := func(name, text string) string { return text + " (env " + EnvName(name) + ")" }

	str := func(p *string, name, usage string) {
		if v, ok := env(name); ok {
			*p = v
		}
		fs.StringVar(p, name, *p, help(name, usage))
	}
	integer := func(p *int, name, usage string) {
		if v, ok := env(name); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: not an integer", EnvName(name), v))
			} else {
				*p = n
			}
		}
		fs.IntVar(p, name, *p, help(name, usage))
	}
	dur := func(p *time.Duration, name, usage string) {
		if v, ok := env(name); ok {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: not a duration like 5ms or 10s", EnvName(name), v))
			} else {
				*p = d
			}
		}
		fs.DurationVar(p, name, *p, help(name, usage))
	}
	boolean := func(p *bool, name, usage string) {
		if v, ok := env(name); ok {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: not true or false", EnvName(name), v))
			} else {
				*p = b
			}
		}
		fs.BoolVar(p, name, *p, help(name, usage))
	}

	if v, ok := env("kafka"); ok {
		c.Brokers = splitBrokers(v)
	}
	fs.Func("kafka", help("kafka", "Kafka seed `brokers`, host:port[,host:port…]"), func(s string) error {
		c.Brokers = splitBrokers(s)
		return nil
	})
	str(&c.Topic, "kafka-topic", "topic carrying the events, one record per event")
	str(&c.DLQTopic, "kafka-dlq-topic", "dead-letter topic for records the processor cannot handle")
	integer(&c.Partitions, "kafka-partitions", "partitions of the events topic when wirelog creates it (at most this many processors share the work)")
	integer(&c.ReplicationFactor, "kafka-replication-factor", "replication factor of topics wirelog creates; -1 = the broker's default.replication.factor")
	boolean(&c.CreateTopics, "kafka-create-topics", "create the events and dead-letter topics if they are missing")
	str(&c.Compression, "kafka-compression", "producer batch compression: none, gzip, snappy, lz4 or zstd")
	dur(&c.Linger, "kafka-linger", "how long the producer waits to fill a batch")
	integer(&c.MaxBufferedBytes, "kafka-max-buffered-bytes", "producer memory bound; past it ingest answers 429 with Retry-After")
	integer(&c.MaxBufferedRecords, "kafka-max-buffered-records", "records awaiting their ack; past it ingest answers 429 with Retry-After")
	dur(&c.ProduceTimeout, "kafka-produce-timeout", "how long a record may wait for its ack before ingest answers 503 (covers leader elections)")
	dur(&c.ReadyTimeout, "kafka-ready-timeout", "bound of one readiness probe of the cluster (/readyz)")
	dur(&c.SessionTimeout, "kafka-session-timeout", "how long the group waits for a silent processor before moving its partitions")
	str(&c.InstanceID, "kafka-instance-id", "static group membership id: a restarted processor gets its partitions back without a rebalance (one per processor)")
	str(&c.ClientID, "kafka-client-id", "client id shown in broker logs and quotas")
	dur(&c.LagInterval, "kafka-lag-interval", "how often the processor refreshes its consumer-lag metric")
	str(&c.SASLMechanism, "kafka-sasl-mechanism", "SASL mechanism: empty (none), plain, scram-sha-256, scram-sha-512 or oauthbearer")
	str(&c.SASLUser, "kafka-sasl-user", "SASL user name")
	str(&c.SASLPassword, "kafka-sasl-password", "SASL password (prefer the environment variable or --kafka-sasl-password-file: flags show in ps)")
	str(&c.SASLPasswordFile, "kafka-sasl-password-file", "file holding the SASL password (trailing newline ignored), re-read at every authentication so a rotated Secret is used on the next connection")
	str(&c.SASLOAuthTokenFile, "kafka-sasl-oauth-token-file", "file holding the OAUTHBEARER token for --kafka-sasl-mechanism oauthbearer, re-read at every authentication (a token refresher rewrites it)")
	boolean(&c.TLS, "kafka-tls", "connect to the brokers over TLS")
	str(&c.TLSCAFile, "kafka-tls-ca", "PEM file of CA certificates to verify the brokers (default: system roots)")
	str(&c.TLSCertFile, "kafka-tls-cert", "PEM client certificate for mutual TLS")
	str(&c.TLSKeyFile, "kafka-tls-key", "PEM private key of --kafka-tls-cert")
	str(&c.TLSServerName, "kafka-tls-server-name", "server name to verify in broker certificates (default: the broker host)")
	boolean(&c.TLSInsecureSkipVerify, "kafka-tls-insecure-skip-verify", "do not verify broker certificates (testing only)")
}

// splitBrokers parses "a:1, b:2,,c:3" into [a:1 b:2 c:3].
func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// ParseBrokers parses a comma-separated broker list and checks each entry is
// host:port with a port in 1..65535.
func ParseBrokers(s string) ([]string, error) {
	bs := splitBrokers(s)
	if len(bs) == 0 {
		return nil, fmt.Errorf("%w: no Kafka brokers: set --kafka host:port[,host:port…] or %s", ErrConfig, EnvName("kafka"))
	}
	for _, b := range bs {
		if err := checkBroker(b); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return bs, nil
}

func checkBroker(b string) error {
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		return fmt.Errorf("--kafka broker %q is not host:port: %v", b, err)
	}
	if host == "" {
		return fmt.Errorf("--kafka broker %q has no host", b)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("--kafka broker %q has port %q, want 1..65535", b, port)
	}
	return nil
}

// Validate checks the configuration; each error names the flag to fix.
func (c *Config) Validate() error {
	errs := append([]error(nil), c.envErrs...)
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if len(c.Brokers) == 0 {
		bad("no Kafka brokers: set --kafka host:port[,host:port…] or %s", EnvName("kafka"))
	}
	for _, b := range c.Brokers {
		if err := checkBroker(b); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkTopicName("--kafka-topic", c.Topic); err != nil {
		errs = append(errs, err)
	}
	if err := checkTopicName("--kafka-dlq-topic", c.DLQTopic); err != nil {
		errs = append(errs, err)
	}
	if c.DLQTopic != "" && c.DLQTopic == c.Topic {
		bad("--kafka-dlq-topic must differ from --kafka-topic (%q)", c.Topic)
	}
	if c.Partitions < 1 || c.Partitions > 10000 {
		bad("--kafka-partitions %d: want 1..10000", c.Partitions)
	}
	if c.ReplicationFactor == 0 || c.ReplicationFactor < -1 || c.ReplicationFactor > 32767 {
		bad("--kafka-replication-factor %d: want -1 (broker default) or 1..", c.ReplicationFactor)
	}
	if _, err := codec(c.Compression); err != nil {
		errs = append(errs, err)
	}
	if c.Linger < 0 || c.Linger > time.Minute {
		bad("--kafka-linger %s: want 0..1m", c.Linger)
	}
	if c.MaxBufferedBytes < 1<<20 {
		bad("--kafka-max-buffered-bytes %d: want at least 1048576 (1 MiB)", c.MaxBufferedBytes)
	}
	if c.MaxBufferedRecords < 1 {
		bad("--kafka-max-buffered-records %d: want at least 1", c.MaxBufferedRecords)
	}
	if c.ProduceTimeout < 100*time.Millisecond {
		bad("--kafka-produce-timeout %s: want at least 100ms", c.ProduceTimeout)
	}
	if c.ReadyTimeout <= 0 {
		bad("--kafka-ready-timeout %s: want more than 0", c.ReadyTimeout)
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 30*time.Minute {
		bad("--kafka-session-timeout %s: want 6s..30m (the broker's group session bounds)", c.SessionTimeout)
	}
	if c.LagInterval < time.Second {
		bad("--kafka-lag-interval %s: want at least 1s", c.LagInterval)
	}
	switch strings.ToLower(c.SASLMechanism) {
	case "":
		if c.SASLUser != "" {
			bad("--kafka-sasl-user is set but --kafka-sasl-mechanism is empty: set it to plain, scram-sha-256 or scram-sha-512")
		}
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.SASLUser == "" {
			bad("--kafka-sasl-mechanism %s needs --kafka-sasl-user", c.SASLMechanism)
		}
		if c.SASLPassword != "" && c.SASLPasswordFile != "" {
			bad("--kafka-sasl-password and --kafka-sasl-password-file exclude each other")
		}
	case "oauthbearer":
		if c.SASLOAuthTokenFile == "" {
			bad("--kafka-sasl-mechanism oauthbearer needs --kafka-sasl-oauth-token-file")
		}
	default:
		bad("--kafka-sasl-mechanism %q: want plain, scram-sha-256, scram-sha-512 or oauthbearer", c.SASLMechanism)
	}
	if c.SASLOAuthTokenFile != "" && strings.ToLower(c.SASLMechanism) != "oauthbearer" {
		bad("--kafka-sasl-oauth-token-file needs --kafka-sasl-mechanism oauthbearer")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("--kafka-tls-cert and --kafka-tls-key go together")
	}
	if !c.TLS && (c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSServerName != "" || c.TLSInsecureSkipVerify) {
		bad("--kafka-tls-* settings need --kafka-tls")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}

// checkTopicName applies Kafka's rules for topic names, so a bad name is
// reported against its flag before any broker is asked.
func checkTopicName(flagName, t string) error {
	if t == "" || t == "." || t == ".." {
		return fmt.Errorf("%s %q: not a valid Kafka topic name", flagName, t)
	}
	if len(t) > 249 {
		return fmt.Errorf("%s: topic names are at most 249 characters, this one has %d", flagName, len(t))
	}
	for _, r := range t {
		if !validTopicRune(r) {
			return fmt.Errorf("%s %q: Kafka topic names use only letters, digits, '.', '_' and '-'", flagName, t)
		}
	}
	return nil
}

func validTopicRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// codec maps a --kafka-compression name to franz-go's codec.
func codec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--kafka-compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

// commonOpts are the client options producer and consumer share: brokers,
// security, logging.
func (c *Config) commonOpts(ctx context.Context) ([]kgo.Opt, error) {
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.WithLogger(slogLogger{log.With("component", "kafka")}),
		// Bound each dial so an unreachable broker is reported within
		// the produce timeout, not the OS's minutes-long TCP timeout.
		kgo.DialTimeout(min(c.ProduceTimeout, 5*time.Second)),
	}
	if c.TLS {
		if c.TLSInsecureSkipVerify {
			tc, err := c.insecureTLSConfig()
			if err != nil {
				return nil, err
			}
			opts = append(opts, kgo.DialTLSConfig(tc))
		} else {
			// Our own dialer: each connection takes the client certificate
			// and CAs current on disk (internal/tlsconf), so rotated SVIDs
			// and CAs are used without a restart.
			cl, err := tlsconf.NewClient(ctx, tlsconf.ClientOptions{
				CAFile: c.TLSCAFile, CertFile: c.TLSCertFile, KeyFile: c.TLSKeyFile,
				ServerName: c.TLSServerName, FlagPrefix: "--kafka-tls",
			}, log)
			if err != nil {
				return nil, err
			}
			opts = append(opts, kgo.Dialer(cl.DialContext(&net.Dialer{Timeout: min(c.ProduceTimeout, 5*time.Second), KeepAlive: 30 * time.Second})))
		}
	}
	if m := c.saslMechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return append(opts, c.extra...), nil
}

func (c *Config) saslMechanism() sasl.Mechanism {
	password := func() (string, error) {
		if c.SASLPasswordFile == "" {
			return c.SASLPassword, nil
		}
		b, err := os.ReadFile(c.SASLPasswordFile)
		if err != nil {
			return "", fmt.Errorf("read --kafka-sasl-password-file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	scramAuth := func(context.Context) (scram.Auth, error) {
		p, err := password()
		return scram.Auth{User: c.SASLUser, Pass: p}, err
	}
	switch strings.ToLower(c.SASLMechanism) {
	case "plain":
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			p, err := password()
			return plain.Auth{User: c.SASLUser, Pass: p}, err
		})
	case "scram-sha-256":
		return scram.Sha256(scramAuth)
	case "scram-sha-512":
		return scram.Sha512(scramAuth)
	case "oauthbearer":
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			b, err := os.ReadFile(c.SASLOAuthTokenFile)
			if err != nil {
				return oauth.Auth{}, fmt.Errorf("read --kafka-sasl-oauth-token-file: %w", err)
			}
			return oauth.Auth{Token: strings.TrimSpace(string(b))}, nil
		})
	}
	return nil
}

// insecureTLSConfig is --kafka-tls-insecure-skip-verify's configuration.
func (c *Config) insecureTLSConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName, InsecureSkipVerify: true} //nolint:gosec // operator's explicit choice, flag says testing only
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load --kafka-tls-cert %s / --kafka-tls-key %s: %w", c.TLSCertFile, c.TLSKeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
