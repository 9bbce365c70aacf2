// Package loadgen posts realistic synthetic log events to a wirelog
// (POST /api/v1/logs) at a chosen rate and reports what the server
// acknowledged: events/s, MB/s, ack latency percentiles and errors by status.
//
// It is the engine of `wirelog loadgen` and is usable from tests:
//
//	rep, err := loadgen.Run(ctx, loadgen.Config{Target: url, Count: 10000, AckLog: f})
//
// The generator pre-renders a catalogue of event bodies once and stamps only
// the per-event parts (ts, event_id, trace and span ids) into each batch, so
// the generator is not what a benchmark measures.
package loadgen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Defaults. A zero field of Config takes the value here, except Rate, Count
// and Duration, whose zero means "no limit" (at least one of Count and
// Duration must bound the run).
const (
	// DefaultTarget is the base URL of a wirelog started by `make run`.
	DefaultTarget = "http://127.0.0.1:8080"
	// IngestPath is appended to the target: the HTTP ingest contract.
	IngestPath = "/api/v1/logs"
	// DefaultDuration is the CLI's run length (the library has no default:
	// a zero Duration means "until Count").
	DefaultDuration = 10 * time.Second
	// DefaultSize is the approximate JSON size of one event, in bytes; the
	// issue's headline figures are taken with ~200-byte events.
	DefaultSize = 200
	// DefaultConcurrency is the number of workers, each with one keep-alive
	// connection and at most one request in flight.
	DefaultConcurrency = 4
	// DefaultBatch is the number of events per request.
	DefaultBatch = 100
	// DefaultRequestTimeout bounds one request, including the wait for the
	// durable ack; it also bounds the drain at the end of a run.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultRetryAfter is how long a worker sleeps after a 429 or 503 that
	// carries no usable Retry-After header.
	DefaultRetryAfter = time.Second
	// maxRetryAfter caps a server's Retry-After so a bad header cannot park
	// a worker for hours; the run's own deadline still cuts it short.
	maxRetryAfter = time.Minute
	// errorBackoff is the pause after a transport error or a 5xx without
	// Retry-After, so a dead server (crash tests restart it) is not hammered
	// with connection attempts at full CPU.
	errorBackoff = 100 * time.Millisecond
	// progressInterval is how often the live progress line is written.
	progressInterval = time.Second
	// catalogueSize is the number of pre-rendered event variants; large
	// enough that the level/service/message mix looks random in a query.
	catalogueSize = 4096
	// maxBodyBytes caps Batch×Size so a typo cannot allocate gigabytes per
	// worker; wirelog's own default body limit is 16 MiB.
	maxBodyBytes = 256 << 20
	// maxConcurrency caps workers (and connections).
	maxConcurrency = 4096
)

// Sentinel errors.
var (
	// ErrNoneAcknowledged means the run ended without a single acknowledged
	// event: the target is down, refuses the body, or pushed back throughout.
	// Run returns it together with the Report, whose Errors say why.
	ErrNoneAcknowledged = errors.New("loadgen: no event was acknowledged (see the errors in the report)")
	// ErrInvalidConfig marks a Config (or command line) the caller must fix.
	ErrInvalidConfig = errors.New("loadgen: invalid configuration")
)

// configError is a configuration mistake: its message names the flag to
// fix and nothing else, and it matches ErrInvalidConfig.
type configError struct{ msg string }

func (e *configError) Error() string        { return e.msg }
func (e *configError) Is(target error) bool { return target == ErrInvalidConfig }

func configErrorf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// Format is the body encoding of a request.
type Format string

// Formats accepted by POST /api/v1/logs.
const (
	// FormatNDJSON sends one event per line (application/x-ndjson).
	FormatNDJSON Format = "ndjson"
	// FormatJSON sends a JSON array of events (application/json); a batch
	// of one is sent as a single object, the other accepted JSON form.
	FormatJSON Format = "json"
	// FormatESBulk sends the same events as Elasticsearch bulk create
	// actions to ESBulkPath, as Filebeat or Vector would.
	FormatESBulk Format = "es-bulk"
	// FormatLokiJSON sends a Loki JSON push to LokiPath: one stream per
	// request (labels job and host, host naming the worker), each event
	// rendered as JSON being one entry's line, as Promtail ships JSON logs.
	FormatLokiJSON Format = "loki-json"
	// FormatLokiProto sends the same push as snappy-compressed protobuf
	// (application/x-protobuf), as Promtail and Alloy do.
	FormatLokiProto Format = "loki-proto"
)

// Paths of the shipper-compatible formats. The bulk path maps loadgen's
// field names (ts, host) the way a user would for such data.
const (
	ESBulkPath = "/_bulk?_time_field=ts&_stream_fields=host"
	LokiPath   = "/loki/api/v1/push"
)

// path is where a format is posted.
func (f Format) path() string {
	switch f {
	case FormatESBulk:
		return ESBulkPath
	case FormatLokiJSON, FormatLokiProto:
		return LokiPath
	}
	return IngestPath
}

// Encoding is the Content-Encoding of a request body.
type Encoding string

// Encodings accepted by POST /api/v1/logs.
const (
	EncodingIdentity Encoding = ""
	EncodingGzip     Encoding = "gzip"
	EncodingZstd     Encoding = "zstd"
)

// Config describes one load run. See the Default constants for zero values.
type Config struct {
	// Target is the base URL of the wirelog; IngestPath is appended.
	Target string
	// Rate is the offered load in events per second (open loop: batches are
	// due on a fixed schedule whatever the latency); 0 sends as fast as the
	// workers can.
	Rate float64
	// Duration bounds the run in time; 0 means no time limit.
	Duration time.Duration
	// Count bounds the run in events sent; 0 means no count limit. The run
	// stops at whichever of Duration and Count comes first.
	Count int64
	// Size is the approximate JSON size of one event in bytes. Events are
	// padded up to it; an event is never smaller than its required fields
	// (about 200 bytes, 275 with trace context, which fewer events carry
	// when Size is small so that the mean stays near it).
	Size int
	// Concurrency is the number of workers (connections).
	Concurrency int
	// Batch is the number of events per request.
	Batch int
	// Format is the body format; "" means NDJSON.
	Format Format
	// Encoding compresses bodies (gzip or zstd); "" sends them as they are.
	Encoding Encoding
	// Seed makes the event catalogue and id choices reproducible.
	Seed uint64
	// RunID prefixes every event_id ("<run-id>-<seq>"); empty picks a random
	// one, so two runs against the same store never share ids.
	RunID string
	// AckLog, when set, receives the event_id of every acknowledged event,
	// one per line, written after the 202 and before the next request of
	// that worker. A write error ends the run.
	AckLog io.Writer
	// Progress, when set, receives a progress line once a second.
	Progress io.Writer
	// ProgressTTY rewrites the progress line in place (\r) instead of
	// writing one line per second.
	ProgressTTY bool
	// RequestTimeout bounds one request; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// TLS configures https:// targets (CA, client certificate); nil =
	// the system roots and no client certificate.
	TLS *tls.Config
	// Client, when set, replaces the tuned keep-alive client (tests).
	Client *http.Client
}

// withDefaults fills zero fields and checks the rest. Errors name the CLI
// flag to change, since most callers are people at a shell.
func (c Config) withDefaults() (Config, error) {
	if c.Target == "" {
		c.Target = DefaultTarget
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Format == "" {
		c.Format = FormatNDJSON
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	u, err := url.Parse(c.Target)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		return c, configErrorf("--target %q: want an http:// or https:// base URL, such as %s", c.Target, DefaultTarget)
	case u.Host == "":
		return c, configErrorf("--target %q has no host", c.Target)
	case c.Rate < 0:
		return c, configErrorf("--rate must be 0 (as fast as possible) or positive, got %v", c.Rate)
	case c.Duration < 0:
		return c, configErrorf("--duration must be 0 (no limit) or positive, got %v", c.Duration)
	case c.Count < 0:
		return c, configErrorf("--count must be 0 (no limit) or positive, got %d", c.Count)
	case c.Duration == 0 && c.Count == 0:
		return c, configErrorf("the run is unbounded: set --duration or --count")
	case c.Size < 0:
		return c, configErrorf("--size must be positive, got %d", c.Size)
	case c.Concurrency < 1 || c.Concurrency > maxConcurrency:
		return c, configErrorf("--concurrency must be between 1 and %d, got %d", maxConcurrency, c.Concurrency)
	case c.Batch < 1:
		return c, configErrorf("--batch must be at least 1, got %d", c.Batch)
	case int64(c.Batch)*int64(c.Size) > maxBodyBytes:
		return c, configErrorf("--batch %d × --size %d is over %d MiB per request; lower one of them", c.Batch, c.Size, maxBodyBytes>>20)
	case c.Format != FormatNDJSON && c.Format != FormatJSON && c.Format != FormatESBulk && c.Format != FormatLokiJSON && c.Format != FormatLokiProto:
		return c, configErrorf("--format must be ndjson, json, es-bulk, loki-json or loki-proto, got %q", c.Format)
	case c.Format == FormatLokiProto && c.Encoding != EncodingIdentity:
		return c, configErrorf("--format loki-proto is already snappy-compressed; drop --gzip/--zstd")
	case c.Encoding != EncodingIdentity && c.Encoding != EncodingGzip && c.Encoding != EncodingZstd:
		return c, configErrorf("unknown body encoding %q (use --gzip or --zstd)", c.Encoding)
	case c.RequestTimeout < 0:
		return c, configErrorf("--timeout must be positive, got %v", c.RequestTimeout)
	}
	for _, r := range c.RunID {
		// The id goes into JSON unescaped and into the ack log one per line.
		if r <= ' ' || r == '"' || r == '\\' || r > '~' {
			return c, configErrorf("--run-id %q: use letters, digits and punctuation other than quotes and backslashes", c.RunID)
		}
	}
	return c, nil
}
