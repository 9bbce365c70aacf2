package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Soak defaults.
const (
	// DefaultSoakInterval is how often the soak sampler scrapes /metrics.
	DefaultSoakInterval = time.Second
	// DefaultSoakStall is the longest store write a soak run accepts: issue
	// 21's bound. Checkpoints are reported beside it but not held to it: the
	// store runs them in the background, and a write that had to wait for
	// one shows as a long write.
	DefaultSoakStall = 250 * time.Millisecond
	// DefaultSoakMaxRSS is the peak RSS a soak run accepts: docs/OPERATIONS.md
	// plans for ~550 MB of `wirelog run` at 60-70k events/s (mostly DuckDB
	// rows not yet checkpointed, see "Memory and freshness" there), so a run
	// that reaches the documented figure passes and one that keeps growing
	// past it fails. Issue 12's 300 MB is an aim, not what the code does.
	DefaultSoakMaxRSS = 600 << 20
	// DefaultSoakFreshness is the ingest → queryable p99 a soak run accepts.
	DefaultSoakFreshness = time.Second
	// soakBacklogSlack is the backlog growth per minute a soak run still
	// calls flat: one second of a 60k events/s load at ~210 bytes.
	soakBacklogSlack = 16 << 20
	// soakLagSlack is the same for a Kafka consumer's lag, in records.
	soakLagSlack = 60000
)

// The wirelog metrics the soak sampler reads. A metric the target does not
// export (a process node has no ingest, Kafka has no disklog backlog) is
// left at zero.
const (
	mAcked       = "wirelog_ingest_events_total" // {result="accepted"}
	mStored      = "wirelog_processor_events_stored_total"
	mBacklog     = "wirelog_disklog_backlog_bytes"
	mKafkaLag    = "wirelog_kafka_consumer_lag_records"
	mRSS         = "process_resident_memory_bytes"
	mCPU         = "process_cpu_seconds_total"
	mWrite       = "wirelog_store_write_seconds"
	mCheckpoint  = "wirelog_store_checkpoint_seconds"
	mFreshness   = "wirelog_processor_ingest_to_stored_seconds"
	mWAL         = "wirelog_store_wal_bytes"
	mTemp        = "wirelog_store_temp_bytes"
	acceptedPair = "accepted"
)

// SoakConfig configures a Soak sampler.
type SoakConfig struct {
	// MetricsURL is the target's Prometheus endpoint (…/metrics).
	MetricsURL string
	// Interval between samples; zero means DefaultSoakInterval.
	Interval time.Duration
	// Stall is the longest acceptable store pause; zero means DefaultSoakStall.
	Stall time.Duration
	// MaxRSS is the acceptable peak RSS in bytes; zero means DefaultSoakMaxRSS.
	MaxRSS float64
	// Freshness is the acceptable ingest → stored p99; zero means DefaultSoakFreshness.
	Freshness time.Duration
	// Client scrapes /metrics; nil means a client with a 5 s timeout.
	Client *http.Client
	// CSV, when set, receives the header and then each sample as it is
	// taken, so a run cut short keeps what it measured.
	CSV io.Writer
	// Progress, when set, receives a one-line summary every ProgressEvery
	// samples (zero: every 10).
	Progress      io.Writer
	ProgressEvery int
}

// SoakSample is one scrape, with the rates and maxima of the interval
// since the previous one. Histogram maxima and percentiles are the upper
// bound of the bucket they fall in (+Inf beyond the last bucket).
type SoakSample struct {
	Elapsed       time.Duration
	Acked         float64 // acknowledged events so far (ingest counter)
	Stored        float64 // stored events so far (processor counter)
	StoredPerSec  float64 // stored in the interval (Interval apart: per second at the default)
	Backlog       float64 // bytes (embedded log) or records (Kafka lag)
	RSS           float64 // bytes
	CPUSeconds    float64 // process CPU so far
	WriteMax      float64 // longest store write in the interval, seconds
	CheckpointMax float64 // longest checkpoint in the interval, seconds
	FreshP99      float64 // ingest → stored p99 in the interval, seconds
	WAL, Temp     float64 // bytes
}

// Soak scrapes a wirelog's /metrics once per interval while load runs.
type Soak struct {
	cfg     SoakConfig
	start   time.Time
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []SoakSample
	errs    int
	lastErr error
	first   map[string]*dto.MetricFamily
	last    map[string]*dto.MetricFamily
}

// StartSoak takes a first sample and starts sampling until Stop.
func StartSoak(ctx context.Context, cfg SoakConfig) (*Soak, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultSoakInterval
	}
	if cfg.Stall <= 0 {
		cfg.Stall = DefaultSoakStall
	}
	if cfg.MaxRSS <= 0 {
		cfg.MaxRSS = DefaultSoakMaxRSS
	}
	if cfg.Freshness <= 0 {
		cfg.Freshness = DefaultSoakFreshness
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	s := &Soak{cfg: cfg, start: time.Now(), done: make(chan struct{})}
	first, err := s.scrape(ctx)
	if err != nil {
		return nil, fmt.Errorf("soak: first scrape of %s: %w (is --metrics-url right and the target up?)", cfg.MetricsURL, err)
	}
	s.first, s.last = first, first
	if cfg.ProgressEvery <= 0 {
		s.cfg.ProgressEvery = 10
	}
	if cfg.CSV != nil {
		if _, err := io.WriteString(cfg.CSV, csvHeader); err != nil {
			return nil, fmt.Errorf("soak: write CSV header: %w", err)
		}
	}
	ctx, s.stop = context.WithCancel(ctx)
	go s.loop(ctx)
	return s, nil
}

func (s *Soak) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fams, err := s.scrape(ctx)
		s.mu.Lock()
		if err != nil {
			s.errs++
			s.lastErr = err
			s.mu.Unlock()
			continue
		}
		sm := sampleOf(time.Since(s.start), s.last, fams)
		var prevElapsed time.Duration
		if n := len(s.samples); n > 0 {
			prevElapsed = s.samples[n-1].Elapsed
		}
		s.samples = append(s.samples, sm)
		n := len(s.samples)
		s.last = fams
		s.mu.Unlock()
		if s.cfg.CSV != nil {
			io.WriteString(s.cfg.CSV, csvLine(sm, prevElapsed))
		}
		if s.cfg.Progress != nil && n%s.cfg.ProgressEvery == 0 {
			backlog := fmt.Sprintf("backlog %.1f MB", sm.Backlog/1e6)
			if _, ok := fams[mBacklog]; !ok {
				backlog = fmt.Sprintf("consumer lag %.0f records", sm.Backlog)
			}
			fmt.Fprintf(s.cfg.Progress, "soak %s: stored %.0f/s, %s, RSS %.0f MB, longest write ≤%s, checkpoint ≤%s, freshness p99 ≤%s\n",
				sm.Elapsed.Round(time.Second), sm.StoredPerSec/(sm.Elapsed-prevElapsed).Seconds(), backlog, sm.RSS/1e6,
				secStr(sm.WriteMax), secStr(sm.CheckpointMax), secStr(sm.FreshP99))
		}
	}
}

func (s *Soak) scrape(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.MetricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", s.cfg.MetricsURL, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// Stop ends sampling and returns the samples taken.
func (s *Soak) Stop() []SoakSample {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

// sampleOf builds the sample of the interval from prev to cur.
func sampleOf(elapsed time.Duration, prev, cur map[string]*dto.MetricFamily) SoakSample {
	sm := SoakSample{
		Elapsed:    elapsed,
		Acked:      value(cur, mAcked, acceptedPair),
		Stored:     value(cur, mStored, ""),
		RSS:        value(cur, mRSS, ""),
		CPUSeconds: value(cur, mCPU, ""),
		WAL:        value(cur, mWAL, ""),
		Temp:       value(cur, mTemp, ""),
	}
	sm.Backlog = value(cur, mBacklog, "")
	if _, ok := cur[mBacklog]; !ok {
		sm.Backlog = value(cur, mKafkaLag, "")
	}
	sm.StoredPerSec = sm.Stored - value(prev, mStored, "") // per interval; Summarize divides by its length
	sm.WriteMax = histMax(prev, cur, mWrite)
	sm.CheckpointMax = histMax(prev, cur, mCheckpoint)
	sm.FreshP99 = histQuantile(prev, cur, mFreshness, 0.99)
	return sm
}

// value sums the samples of a counter or gauge family; label, when set,
// keeps only series with a label of that value.
func value(fams map[string]*dto.MetricFamily, name, label string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	var v float64
	for _, m := range f.GetMetric() {
		if label != "" && !hasLabelValue(m, label) {
			continue
		}
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Untyped != nil:
			v += m.Untyped.GetValue()
		}
	}
	return v
}

func hasLabelValue(m *dto.Metric, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetValue() == v {
			return true
		}
	}
	return false
}

// bucketDeltas returns the upper bounds and the cumulative count deltas of
// a histogram between two scrapes (+Inf last), and the total delta.
func bucketDeltas(prev, cur map[string]*dto.MetricFamily, name string) (bounds, cum []float64, total float64) {
	f, ok := cur[name]
	if !ok || len(f.GetMetric()) == 0 || f.GetMetric()[0].Histogram == nil {
		return nil, nil, 0
	}
	h := f.GetMetric()[0].Histogram
	var ph *dto.Histogram
	if pf, ok := prev[name]; ok && len(pf.GetMetric()) > 0 {
		ph = pf.GetMetric()[0].Histogram
	}
	for i, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if ph != nil && i < len(ph.GetBucket()) {
			c -= float64(ph.GetBucket()[i].GetCumulativeCount())
		}
		bounds = append(bounds, b.GetUpperBound())
		cum = append(cum, c)
	}
	total = float64(h.GetSampleCount())
	if ph != nil {
		total -= float64(ph.GetSampleCount())
	}
	bounds = append(bounds, math.Inf(1))
	cum = append(cum, total)
	return bounds, cum, total
}

// histMax is the upper bound of the highest bucket that got an observation
// between the scrapes, 0 when none did.
func histMax(prev, cur map[string]*dto.MetricFamily, name string) float64 {
	bounds, cum, total := bucketDeltas(prev, cur, name)
	if total <= 0 {
		return 0
	}
	for i := range bounds {
		if cum[i] >= total {
			return bounds[i]
		}
	}
	return math.Inf(1)
}

// histQuantile is the upper bound of the bucket holding quantile q of the
// observations between the scrapes, 0 when there were none.
func histQuantile(prev, cur map[string]*dto.MetricFamily, name string, q float64) float64 {
	bounds, cum, total := bucketDeltas(prev, cur, name)
	if total <= 0 {
		return 0
	}
	for i := range bounds {
		if cum[i] >= q*total {
			return bounds[i]
		}
	}
	return math.Inf(1)
}

// SoakSummary is the verdict of a soak run.
type SoakSummary struct {
	Duration         time.Duration `json:"duration_ns"`
	Samples          int           `json:"samples"`
	ScrapeErrors     int           `json:"scrape_errors"`
	Acked            float64       `json:"acked"`
	Stored           float64       `json:"stored"`
	AckedPerSec      float64       `json:"acked_per_sec"`
	StoredPerSec     float64       `json:"stored_per_sec"`        // mean over the run
	StoredPerSecP50  float64       `json:"stored_per_sec_median"` // median of the 1-second samples
	BacklogSlope     float64       `json:"backlog_slope_per_min"` // least squares, bytes (or records) per minute
	BacklogMax       float64       `json:"backlog_max"`
	BacklogUnit      string        `json:"backlog_unit"` // "bytes" (embedded log) or "records" (Kafka consumer lag: no disklog there)
	RSSPeak          float64       `json:"rss_peak_bytes"`
	RSSSlope         float64       `json:"rss_slope_bytes_per_min"` // least squares over the run
	CPUPerEvent      float64       `json:"cpu_us_per_stored_event"` // target process CPU / stored events
	WriteMax         float64       `json:"store_write_max_s"`
	CheckpointMax    float64       `json:"checkpoint_max_s"`
	Pauses           int           `json:"pauses_over_stall"` // samples with a store write over Stall
	StalledSeconds   int           `json:"stalled_seconds"`   // samples where nothing was stored while a backlog waited
	FreshP99         float64       `json:"freshness_p99_s"`   // over the whole run
	FreshP99WorstMin float64       `json:"freshness_p99_worst_min"`
	TempMax          float64       `json:"temp_max_bytes"`
	WALMax           float64       `json:"wal_max_bytes"`
	StallBound       float64       `json:"stall_bound_s"`
	RSSBound         float64       `json:"rss_bound_bytes"`
	FreshnessBound   float64       `json:"freshness_bound_s"`
	// Ack and Refused come from the load generator's own report
	// (AddReport): what the senders saw while the samples were taken.
	Ack      LatencyMs `json:"ack_latency_ms"`
	Refused  int64     `json:"requests_refused"` // answered 429 or 503
	Problems []string  `json:"problems"`
	Pass     bool      `json:"pass"`
}

// AddReport adds what the senders saw (ack latency, refused requests) to
// the summary. Refusals are reported, not judged: under a fixed offered
// rate they say the target pushed back, which the backlog and freshness
// lines already judge.
func (sum *SoakSummary) AddReport(r Report) {
	sum.Ack = r.Latency
	sum.Refused = r.Errors["429"] + r.Errors["503"]
}

// Summarize computes the verdict of the samples.
func (s *Soak) Summarize(samples []SoakSample) SoakSummary {
	s.mu.Lock()
	first, last, errs := s.first, s.last, s.errs
	s.mu.Unlock()
	sum := SoakSummary{Samples: len(samples), ScrapeErrors: errs,
		StallBound: s.cfg.Stall.Seconds(), RSSBound: s.cfg.MaxRSS, FreshnessBound: s.cfg.Freshness.Seconds()}
	if len(samples) == 0 {
		sum.Problems = []string{"no sample was taken"}
		return sum
	}
	end := samples[len(samples)-1]
	sum.BacklogUnit = "bytes"
	if _, ok := last[mBacklog]; !ok {
		if _, ok := last[mKafkaLag]; ok {
			sum.BacklogUnit = "records"
		}
	}
	sum.Duration = end.Elapsed
	sum.Acked = end.Acked - value(first, mAcked, acceptedPair)
	sum.Stored = end.Stored - value(first, mStored, "")
	secs := end.Elapsed.Seconds()
	sum.AckedPerSec = sum.Acked / secs
	sum.StoredPerSec = sum.Stored / secs
	rates := make([]float64, len(samples))
	xs := make([]float64, len(samples))
	backlog := make([]float64, len(samples))
	rss := make([]float64, len(samples))
	for i, sm := range samples {
		iv := sm.Elapsed.Seconds()
		if i > 0 {
			iv -= samples[i-1].Elapsed.Seconds()
		}
		if iv > 0 {
			rates[i] = sm.StoredPerSec / iv
		}
		xs[i] = sm.Elapsed.Minutes()
		backlog[i], rss[i] = sm.Backlog, sm.RSS
		sum.BacklogMax = max(sum.BacklogMax, sm.Backlog)
		sum.RSSPeak = max(sum.RSSPeak, sm.RSS)
		sum.WriteMax = max(sum.WriteMax, sm.WriteMax)
		sum.CheckpointMax = max(sum.CheckpointMax, sm.CheckpointMax)
		sum.TempMax = max(sum.TempMax, sm.Temp)
		sum.WALMax = max(sum.WALMax, sm.WAL)
		if sm.WriteMax > s.cfg.Stall.Seconds() {
			sum.Pauses++
		}
		prevBacklog := value(first, mBacklog, "")
		if i > 0 {
			prevBacklog = samples[i-1].Backlog
		}
		if sm.StoredPerSec == 0 && (prevBacklog > 0 || sm.Backlog > 0) {
			sum.StalledSeconds++
		}
	}
	sorted := slices.Clone(rates)
	sort.Float64s(sorted)
	sum.StoredPerSecP50 = sorted[len(sorted)/2]
	sum.BacklogSlope = slope(xs, backlog)
	sum.RSSSlope = slope(xs, rss)
	if sum.Stored > 0 {
		sum.CPUPerEvent = (end.CPUSeconds - value(first, mCPU, "")) / sum.Stored * 1e6
	}
	sum.FreshP99 = histQuantile(first, last, mFreshness, 0.99)
	sum.FreshP99WorstMin = worstMinuteP99(samples)

	if sum.Pauses > 0 {
		sum.Problems = append(sum.Problems, fmt.Sprintf("%d seconds had a store write over %v (longest ≤%s)",
			sum.Pauses, s.cfg.Stall, secStr(sum.WriteMax)))
	}
	if sum.StalledSeconds > 0 {
		sum.Problems = append(sum.Problems, fmt.Sprintf("nothing was stored in %d one-second samples while a backlog waited", sum.StalledSeconds))
	}
	if sum.BacklogUnit == "records" && sum.BacklogSlope > soakLagSlack {
		sum.Problems = append(sum.Problems, fmt.Sprintf("the Kafka consumer lag grew %.0f records/min: the store does not keep up with the offered rate", sum.BacklogSlope))
	} else if sum.BacklogUnit != "records" && sum.BacklogSlope > soakBacklogSlack {
		sum.Problems = append(sum.Problems, fmt.Sprintf("the backlog grew %.1f MB/min: the store does not keep up with the offered rate", sum.BacklogSlope/1e6))
	}
	if sum.RSSPeak > s.cfg.MaxRSS {
		sum.Problems = append(sum.Problems, fmt.Sprintf("peak RSS %.0f MB is over %.0f MB", sum.RSSPeak/1e6, s.cfg.MaxRSS/1e6))
	}
	if sum.FreshP99 > s.cfg.Freshness.Seconds() {
		sum.Problems = append(sum.Problems, fmt.Sprintf("ingest → stored p99 ≤%s is over %v", secStr(sum.FreshP99), s.cfg.Freshness))
	}
	sum.Pass = len(sum.Problems) == 0
	return sum
}

// worstMinuteP99 is the highest per-minute p99 of freshness, each minute's
// p99 approximated by the p99 of its per-second p99s (the sampler keeps no
// per-minute histogram).
func worstMinuteP99(samples []SoakSample) float64 {
	var worst float64
	for i := 0; i < len(samples); {
		m := int(samples[i].Elapsed.Minutes())
		var vals []float64
		for ; i < len(samples) && int(samples[i].Elapsed.Minutes()) == m; i++ {
			if samples[i].StoredPerSec > 0 {
				vals = append(vals, samples[i].FreshP99)
			}
		}
		if len(vals) == 0 {
			continue
		}
		sort.Float64s(vals)
		worst = max(worst, vals[int(math.Ceil(0.99*float64(len(vals))))-1])
	}
	return worst
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func secStr(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return fmt.Sprintf("%gs", v)
}

// WriteText prints the summary and its verdict line.
func (sum SoakSummary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %s, %d samples (%d scrape errors)\n", sum.Duration.Round(time.Second), sum.Samples, sum.ScrapeErrors)
	fmt.Fprintf(&b, "  acknowledged   %.0f events (%.0f/s)\n", sum.Acked, sum.AckedPerSec)
	fmt.Fprintf(&b, "  ack latency    p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d requests refused (429/503)\n", sum.Ack.P50, sum.Ack.P99, sum.Ack.Max, sum.Refused)
	fmt.Fprintf(&b, "  stored         %.0f events (%.0f/s mean, %.0f/s median of 1 s samples)\n", sum.Stored, sum.StoredPerSec, sum.StoredPerSecP50)
	if sum.BacklogUnit == "records" {
		fmt.Fprintf(&b, "  consumer lag   slope %+.0f records/min, max %.0f records (Kafka)\n", sum.BacklogSlope, sum.BacklogMax)
	} else {
		fmt.Fprintf(&b, "  backlog        slope %+.2f MB/min, max %.1f MB\n", sum.BacklogSlope/1e6, sum.BacklogMax/1e6)
	}
	fmt.Fprintf(&b, "  freshness p99  %s over the run, worst minute %s\n", secStr(sum.FreshP99), secStr(sum.FreshP99WorstMin))
	fmt.Fprintf(&b, "  store write    max ≤%s, %d seconds with a write over the bound; background checkpoint max ≤%s\n", secStr(sum.WriteMax), sum.Pauses, secStr(sum.CheckpointMax))
	fmt.Fprintf(&b, "  RSS            peak %.0f MB, slope %+.2f MB/min\n", sum.RSSPeak/1e6, sum.RSSSlope/1e6)
	fmt.Fprintf(&b, "  CPU            %.2f µs per stored event (the target process, all threads)\n", sum.CPUPerEvent)
	fmt.Fprintf(&b, "  DuckDB files   WAL max %.1f MB, temp spill max %.1f MB\n", sum.WALMax/1e6, sum.TempMax/1e6)
	if sum.Pass {
		b.WriteString("verdict: PASS\n")
	} else {
		b.WriteString("verdict: FAIL: " + strings.Join(sum.Problems, "; ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

const csvHeader = "elapsed_s,acked_total,stored_total,stored_per_s,backlog,rss_mb,cpu_s,store_write_max_s,checkpoint_max_s,freshness_p99_s,wal_mb,temp_mb\n"

// csvLine is one sample as CSV; prev is the previous sample's Elapsed.
func csvLine(s SoakSample, prev time.Duration) string {
	rate := 0.0
	if iv := (s.Elapsed - prev).Seconds(); iv > 0 {
		rate = s.StoredPerSec / iv
	}
	return fmt.Sprintf("%.1f,%.0f,%.0f,%.0f,%.0f,%.1f,%.2f,%g,%g,%g,%.1f,%.1f\n", s.Elapsed.Seconds(), s.Acked, s.Stored, rate,
		s.Backlog, s.RSS/1e6, s.CPUSeconds, s.WriteMax, s.CheckpointMax, s.FreshP99, s.WAL/1e6, s.Temp/1e6)
}

// WriteSoakCSV writes the header and one line per sample.
func WriteSoakCSV(w io.Writer, samples []SoakSample) error {
	var b strings.Builder
	b.WriteString(csvHeader)
	var prev time.Duration
	for _, s := range samples {
		b.WriteString(csvLine(s, prev))
		prev = s.Elapsed
	}
	_, err := io.WriteString(w, b.String())
	return err
}
