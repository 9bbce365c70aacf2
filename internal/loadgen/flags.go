package loadgen

import (
	"context"
	"flag"
	"strings"

	"github.com/wirelog/wirelog/internal/tlsconf"
)

// Flags is the command line of `wirelog loadgen`: a Config plus the
// options that only make sense for a person at a shell.
type Flags struct {
	Config
	// JSON prints the final report as one JSON object instead of text.
	JSON bool
	// AckLogPath is the file the acknowledged event ids are appended to.
	AckLogPath string
	// Quiet suppresses the live progress line.
	Quiet bool
	// Soak samples the target's /metrics once a second during the run and
	// ends with a verdict (stalls, backlog slope, RSS trend, freshness).
	Soak bool
	// SoakCSV and SoakHTML are where the samples and their chart go.
	SoakCSV, SoakHTML string
	// Soak bounds the verdict checks; MetricsURL defaults to Target/metrics.
	SoakConfig   SoakConfig
	soakMaxRSSMB float64

	format     string
	gzip, zstd bool
	seed       uint64

	tlsCA, tlsCert, tlsKey string
}

// Register defines the flags on fs with their defaults.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Target, "target", DefaultTarget, "base `URL` of the wirelog to load; events are posted to URL"+IngestPath)
	fs.Float64Var(&f.Rate, "rate", 0, "offer `N` events per second, on a fixed schedule whatever the latency (0 = as fast as possible)")
	fs.DurationVar(&f.Duration, "duration", DefaultDuration, "how long to send (0 = until --count)")
	fs.Int64Var(&f.Count, "count", 0, "stop after this many events were sent, or at --duration, whichever comes first (0 = no cap)")
	fs.IntVar(&f.Size, "size", DefaultSize, "approximate JSON size of each event in `bytes`, reached by padding (the required fields alone take about 200 bytes, so smaller values give ~200-byte events)")
	fs.IntVar(&f.Concurrency, "concurrency", DefaultConcurrency, "number of keep-alive connections, each with one request in flight")
	fs.IntVar(&f.Batch, "batch", DefaultBatch, "events per request")
	fs.StringVar(&f.format, "format", string(FormatNDJSON), "body format: ndjson (one event per line) or json (an array; a single object with --batch 1) to "+IngestPath+"; es-bulk (Elasticsearch bulk create actions) to "+ESBulkPath+"; loki-json or loki-proto (Loki push, JSON or protobuf+snappy; each event's JSON is a line) to "+LokiPath)
	fs.BoolVar(&f.gzip, "gzip", false, "compress bodies with gzip (Content-Encoding: gzip)")
	fs.BoolVar(&f.zstd, "zstd", false, "compress bodies with zstd (Content-Encoding: zstd)")
	fs.BoolVar(&f.JSON, "json", false, "print the final report as a JSON object on stdout")
	fs.StringVar(&f.AckLogPath, "ack-log", "", "append the event_id of every acknowledged event to this `file`, one per line, after each 202 (for durability checks)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed for the synthetic events (content only: event ids are unique per run anyway)")
	fs.StringVar(&f.RunID, "run-id", "", "prefix of every event_id (<run-id>-<seq>); default random, so runs never share ids")
	fs.DurationVar(&f.RequestTimeout, "timeout", DefaultRequestTimeout, "give up on one request after this long (counted as a transport error)")
	fs.BoolVar(&f.Quiet, "quiet", false, "no live progress line on stderr")
	fs.BoolVar(&f.Soak, "soak", false, "sample the target's /metrics every second during the run (stored count, backlog, RSS, CPU, longest store write and checkpoint, freshness p99), "+
		"write them to --soak-csv and --soak-html, and end with a verdict line; exits non-zero when the verdict fails. Use with --rate and a long --duration, e.g. --rate 60000 --duration 15m")
	fs.StringVar(&f.SoakCSV, "soak-csv", "soak.csv", "`file` for the soak samples, one CSV line per second")
	fs.StringVar(&f.SoakHTML, "soak-html", "soak.html", "`file` for the soak chart (self-contained HTML)")
	fs.StringVar(&f.SoakConfig.MetricsURL, "metrics-url", "", "Prometheus `URL` the soak samples (default --target + /metrics)")
	fs.DurationVar(&f.SoakConfig.Stall, "soak-stall", DefaultSoakStall, "longest store write the soak verdict accepts (`duration`); background checkpoints are reported, not held to it")
	fs.DurationVar(&f.SoakConfig.Freshness, "soak-freshness", DefaultSoakFreshness, "ingest → stored p99 the soak verdict accepts (`duration`)")
	fs.Float64Var(&f.soakMaxRSSMB, "soak-max-rss", DefaultSoakMaxRSS>>20, "peak RSS of the target the soak verdict accepts, in `MiB`")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "PEM `file` of CAs to verify an https:// --target with (default: the system roots)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM client certificate `file` (an X.509-SVID) to present to a wirelog that requires mutual TLS")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key `file` of --tls-cert")
}

// Resolve turns the parsed flags into a checked Config. Errors wrap
// ErrInvalidConfig and name the flag to change.
func (f *Flags) Resolve() (Config, error) {
	c := f.Config
	c.Seed = f.seed
	c.Format = Format(f.format)
	switch {
	case f.gzip && f.zstd:
		return c, configErrorf("--gzip and --zstd exclude each other; pick one")
	case f.gzip:
		c.Encoding = EncodingGzip
	case f.zstd:
		c.Encoding = EncodingZstd
	}
	// On the command line a zero means "no limit" for --duration and
	// "invalid" for the sizes; the library's zero-means-default would hide
	// a typo such as --batch 0.
	switch {
	case c.Size <= 0:
		return c, configErrorf("--size must be positive, got %d", c.Size)
	case c.Batch <= 0:
		return c, configErrorf("--batch must be at least 1, got %d", c.Batch)
	case c.Concurrency <= 0:
		return c, configErrorf("--concurrency must be at least 1, got %d", c.Concurrency)
	case c.RequestTimeout <= 0:
		return c, configErrorf("--timeout must be positive, got %v", c.RequestTimeout)
	}
	if f.SoakConfig.MetricsURL == "" {
		f.SoakConfig.MetricsURL = strings.TrimRight(c.Target, "/") + "/metrics"
	}
	f.SoakConfig.MaxRSS = f.soakMaxRSSMB * (1 << 20)
	if f.tlsCA != "" || f.tlsCert != "" || f.tlsKey != "" {
		if !strings.HasPrefix(c.Target, "https://") {
			return c, configErrorf("--tls-ca, --tls-cert and --tls-key need an https:// --target, got %q", c.Target)
		}
		tc, err := tlsconf.NewClientConfig(context.Background(), tlsconf.ClientOptions{CAFile: f.tlsCA, CertFile: f.tlsCert, KeyFile: f.tlsKey}, nil)
		if err != nil {
			return c, configErrorf("%v", err)
		}
		c.TLS = tc
	}
	return c.withDefaults()
}
