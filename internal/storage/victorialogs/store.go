// Package victorialogs is wirelog's scale-out store: every processor of a
// consumer group writes to one VictoriaLogs cluster (storage nodes behind a
// front node), and `wirelog serve` queries it.
//
// VictoriaLogs has no transactions and no deduplication, and a row answered
// 200 is durable only after the storage node's in-memory flush. So Write
// only sends; a tracker verifies, DurableAfter later, that every sent row is
// in the store, and reports durable offsets (storage.Deferred) for the
// processor to commit to Kafka, or lost ones for it to replay. Each row
// carries its deterministic id (wl_topic, wl_partition, wl_offset) and every
// query collapses rows with the same id, so replays never count twice; the
// copies no writer could know of are found and marked at verification
// (dupmark.go). Into VictoriaLogs this is at-least-once; in answers, each
// id once. docs/ARCHITECTURE.md ("The commit protocol") has the argument in
// full.
package victorialogs

import (
	"context"

	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/transport"
)

// Defaults. Every zero field of Options takes the value here.
const (
	// DefaultDurableAfter is how long after a batch was answered 200 its
	// rows are taken to be on a storage node's disk, and verified. In
	// VictoriaLogs v1.52 the front node forwards rows within about 1s, the
	// storage node turns them into an in-memory part within about 1s, and
	// its flusher runs every -inmemoryDataFlushInterval (5s by default)
	// writing the parts whose deadline (creation + interval) has passed, so
	// a part waits up to two intervals: 1+1+2×5 = 12s, plus 4s of slack for
	// a busy machine. Measured: with 8s, rows verified present were lost to
	// a storage node's kill -9 under load. Raise it with the interval.
	DefaultDurableAfter = 16 * time.Second
	// DefaultVerifyInterval is how often due batches are verified.
	DefaultVerifyInterval = time.Second
	// DefaultTimeout bounds one HTTP request to VictoriaLogs.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxAttempts bounds the tries of one insert; the processor then
	// retries the whole batch after its own pause, so nothing is dropped.
	DefaultMaxAttempts = 6
	// DefaultRetryBackoff is the first pause between insert attempts; it
	// doubles up to MaxRetryBackoff.
	DefaultRetryBackoff = 200 * time.Millisecond
	MaxRetryBackoff     = 5 * time.Second
	// DefaultMaxPendingRows bounds rows sent but not yet verified durable;
	// past it Write waits (a storage node down for long stops commits, and
	// the processor then stops reading instead of growing without bound).
	DefaultMaxPendingRows = 5_000_000
	// DefaultMaxLineBytes is VictoriaLogs' -insert.maxLineSizeBytes: a
	// longer JSON line is skipped with a warning and a 200 answer, so the
	// row would be missing at verification and replayed forever. Write
	// refuses such rows instead, and the processor dead-letters them.
	DefaultMaxLineBytes = 256 << 10
	// DefaultRetention and DefaultFutureRetention are VictoriaLogs'
	// -retentionPeriod and -futureRetention: it drops rows whose _time
	// is outside them with a 200. Write sends such rows to the dead
	// letters instead; set them to the cluster's flags.
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultFutureRetention = 2 * 24 * time.Hour
	// DefaultSearchUnsortedRows is how many matches a search reads unsorted
	// first: when fewer match, they are all, and are ordered here, because
	// VictoriaLogs hands few matches over fast but sorts them slowly (a
	// substring at 10M rows here: 0.7 s unsorted, 6.5 s sorted).
	DefaultSearchUnsortedRows = 4000
	// DefaultSearchSlack is how many rows beyond limit+1 a search reads, so
	// that dropping duplicates rarely needs a second read.
	DefaultSearchSlack = 64
)

// StreamFields are VictoriaLogs' stream fields for wirelog's rows: few
// values each, present on every row, what dashboards filter and count by
// first. Level is one because every dashboard total and histogram groups by
// it: a stream field is constant within a block, so VictoriaLogs counts by
// it without reading the column (totals 9x faster at 2M rows, for about
// 17% of ingest speed; docs/bench/victorialogs.md).
var StreamFields = []string{"service", "host", "tenant", "level"}

// Options configures a Store.
type Options struct {
	// URL is the front node (or single node), e.g. http://127.0.0.1:19428.
	URL string
	// DurableAfter: see DefaultDurableAfter.
	DurableAfter time.Duration
	// VerifyInterval: see DefaultVerifyInterval.
	VerifyInterval time.Duration
	// Timeout: see DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts and RetryBackoff: see the defaults.
	MaxAttempts  int
	RetryBackoff time.Duration
	// MaxPendingRows: see DefaultMaxPendingRows.
	MaxPendingRows int
	// MaxLineBytes: see DefaultMaxLineBytes; set it to the cluster's
	// -insert.maxLineSizeBytes.
	MaxLineBytes int
	// Retention and FutureRetention: see DefaultRetention.
	Retention, FutureRetention time.Duration
	// DeadLetters is the account dead letters are written to (records the
	// store refuses, see WriteDeadLetters); zero means DefaultDeadLetters.
	// It must be no tenant's account.
	DeadLetters Account
	// SearchUnsortedRows: see DefaultSearchUnsortedRows.
	SearchUnsortedRows int
	// ExportSliceRows: see DefaultExportSliceRows.
	ExportSliceRows int
	// StreamFields overrides StreamFields (benchmarks).
	StreamFields []string
	// AccountID and ProjectID are the default VictoriaLogs account
	// (headers AccountID / ProjectID): rows of tenants Tenants does not
	// list, and of events without a tenant, are written there.
	AccountID, ProjectID uint32
	// Tenants maps wirelog tenants to their own accounts (--store-tenants).
	// Inside an account the stream field tenant still tells tenants apart
	// (several may share one). A tenant's queries read its account only;
	// a query across tenants reads every account and merges the answers.
	Tenants map[string]Account
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Client; nil means a client with keep-alive to the front node.
	Client *http.Client
}

func (o *Options) setDefaults() {
	if o.DurableAfter <= 0 {
		o.DurableAfter = DefaultDurableAfter
	}
	if o.VerifyInterval <= 0 {
		o.VerifyInterval = DefaultVerifyInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.MaxPendingRows <= 0 {
		o.MaxPendingRows = DefaultMaxPendingRows
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.FutureRetention <= 0 {
		o.FutureRetention = DefaultFutureRetention
	}
	if o.DeadLetters == (Account{}) {
		o.DeadLetters = DefaultDeadLetters
	}
	if o.SearchUnsortedRows <= 0 {
		o.SearchUnsortedRows = DefaultSearchUnsortedRows
	}
	if o.ExportSliceRows <= 0 {
		o.ExportSliceRows = DefaultExportSliceRows
	}
	if len(o.StreamFields) == 0 {
		o.StreamFields = StreamFields
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		o.Client = &http.Client{Transport: tr}
	}
}

// Store is a VictoriaLogs cluster seen through its front node.
type Store struct {
	opts    Options
	base    *url.URL
	log     *slog.Logger
	m       *metrics
	tracker *tracker
	marks   []markCheck // ranges whose duplicates were marked (dupmark.go)
	failed  failedWrites

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

var (
	_ storage.Store    = (*Store)(nil)
	_ storage.Deferred = (*Store)(nil)
	_ storage.Tailer   = (*Store)(nil)
)

// Open checks the URL and starts the durability tracker. It does not wait
// for VictoriaLogs to be up: Write retries, queries fail with
// storage.ErrUnavailable until it is.
func Open(opts Options) (*Store, error) {
	opts.setDefaults()
	u, err := url.Parse(strings.TrimRight(opts.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--store-url %q is not an http(s) URL of a VictoriaLogs front node (e.g. http://127.0.0.1:19428)", opts.URL)
	}
	if opts.DeadLetters == (Account{opts.AccountID, opts.ProjectID}) {
		return nil, fmt.Errorf("--store-dead-letters %s is the default account (--store-tenant): dead letters need an account of their own", opts.DeadLetters)
	}
	for t, a := range opts.Tenants {
		if a == opts.DeadLetters {
			return nil, fmt.Errorf("--store-dead-letters %s is tenant %q's account (--store-tenants): dead letters need an account of their own", a, t)
		}
	}
	s := &Store{
		opts: opts, base: u,
		log:  opts.Logger.With("component", "store-victorialogs"),
		m:    newMetrics(),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.tracker = newTracker(s)
	go s.verifyLoop()
	return s, nil
}

// Close stops the tracker. Rows sent but not yet verified stay uncommitted
// in Kafka and are replayed by whoever owns their partitions next.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}

// Collector exports the store's metrics.
func (s *Store) Collector() prometheus.Collector { return s.m.set() }

// NextOffset answers "unknown": VictoriaLogs keeps no offsets; the group's
// committed offset, which only ever covers verified rows, decides.
func (s *Store) NextOffset(context.Context, transport.TopicPartition) (int64, bool, error) {
	return 0, false, nil
}

// Ready reports whether the front node answers /health.
func (s *Store) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base.String()+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("VictoriaLogs %s (--store-url) not reachable: %w", s.base, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("VictoriaLogs %s (--store-url) /health answered %s", s.base, resp.Status)
	}
	return nil
}

// setAccount sets the VictoriaLogs tenant headers.
func setAccount(h http.Header, a Account) {
	h.Set("AccountID", strconv.FormatUint(uint64(a.AccountID), 10))
	h.Set("ProjectID", strconv.FormatUint(uint64(a.ProjectID), 10))
}

// errClosed is returned by Write after Close.
var errClosed = fmt.Errorf("victorialogs store: %w", store.ErrClosed)
