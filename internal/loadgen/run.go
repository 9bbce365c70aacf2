package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxAckBody bounds how much of a 2xx answer is read for the accepted and
// rejected counts; the rest is drained so the connection can be reused.
const maxAckBody = 1 << 20

// Run posts events to cfg.Target until cfg.Duration has passed, cfg.Count
// events were sent, or ctx is cancelled, and reports what was acknowledged.
// Requests in flight when the duration ends are waited for (up to
// RequestTimeout); when ctx is cancelled they are abandoned at once.
//
// The Report is valid whenever the run started, also with an error:
// ErrNoneAcknowledged when no event was acknowledged, an ErrInvalidConfig
// error before anything was sent, or an error writing the ack log (which
// ends the run early, since a crash test would then check a partial log).
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	if cfg.RunID == "" {
		cfg.RunID = strconv.FormatUint(uint64(rand.Uint32())|1<<32, 36)[1:]
	}
	r := &runner{
		cfg:    cfg,
		url:    strings.TrimRight(cfg.Target, "/") + cfg.Format.path(),
		client: cfg.Client,
		hist:   newHistogram(),
		window: newHistogram(),
		errs:   make(map[string]int64),
	}
	if r.client == nil {
		r.client = newClient(cfg)
		defer r.client.CloseIdleConnections()
	}
	r.cat = newCatalogue(cfg.Seed, catalogueSize, cfg.Size, headLen(cfg.RunID, expectedSeqDigits(cfg)))
	builders := make([]*bodyBuilder, cfg.Concurrency)
	for i := range builders {
		gen := newGenerator(r.cat, cfg.RunID, cfg.Seed, uint64(i)+1)
		if builders[i], err = newBodyBuilder(gen, cfg.Format, cfg.Encoding); err != nil {
			return Report{}, err
		}
		builders[i].worker = i
	}

	r.stopCtx, r.stop = context.WithCancel(ctx)
	defer r.stop()
	r.start = time.Now()
	r.runCtx = r.stopCtx
	if cfg.Duration > 0 {
		r.deadline = r.start.Add(cfg.Duration)
		var cancel context.CancelFunc
		r.runCtx, cancel = context.WithDeadline(r.stopCtx, r.deadline)
		defer cancel()
	}
	r.sched = schedule{start: r.start, rate: cfg.Rate, batch: cfg.Batch, count: offeredCount(cfg)}

	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if cfg.Progress != nil {
		progressWG.Go(func() { r.progress(progressDone) })
	}
	var wg sync.WaitGroup
	for _, bb := range builders {
		wg.Go(func() { r.worker(bb) })
	}
	wg.Wait()
	elapsed := time.Since(r.start)
	close(progressDone)
	progressWG.Wait()

	rep := r.report(elapsed)
	switch {
	case r.failErr != nil:
		return rep, r.failErr
	case rep.EventsAcked == 0:
		return rep, ErrNoneAcknowledged
	}
	return rep, nil
}

// offeredCount is the number of events the run may send: Count, and with
// a rate and a duration at most Rate×Duration, so that a batch larger than
// the whole run's offer (--rate 5 --batch 100 --duration 10s) is cut to
// the offer instead of never coming due.
func offeredCount(cfg Config) int64 {
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return cfg.Count
	}
	offered := max(int64(cfg.Rate*cfg.Duration.Seconds()), 1)
	if cfg.Count > 0 {
		return min(cfg.Count, offered)
	}
	return offered
}

// expectedSeqDigits estimates the digits of a typical sequence number, so
// --size accounts for the event_id's length.
func expectedSeqDigits(cfg Config) int {
	n := int64(10_000_000)
	switch {
	case cfg.Count > 0:
		n = cfg.Count
	case cfg.Rate > 0 && cfg.Duration > 0:
		n = int64(cfg.Rate * cfg.Duration.Seconds())
	}
	return len(strconv.FormatInt(max(n/2, 1), 10))
}

// newClient returns a keep-alive client with enough idle connections per
// host for every worker, no proxy (a proxy would measure itself) and no
// transparent response decompression.
func newClient(cfg Config) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: cfg.RequestTimeout,
		// A redirected POST is an error of the target URL, not something
		// to follow silently (and it would replay the body).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConns:        2 * cfg.Concurrency,
			MaxIdleConnsPerHost: 2 * cfg.Concurrency,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			TLSClientConfig:     cfg.TLS,
			DisableCompression:  true,
			WriteBufferSize:     256 << 10,
			ReadBufferSize:      16 << 10,
		},
	}
}

// schedule hands out batches: consecutive sequence numbers and, with a
// rate, the time each batch is due. The schedule is open loop — a batch's
// due time does not move when earlier requests are slow — so a server that
// cannot keep up sees the offered load, not a politely slowed one.
type schedule struct {
	start time.Time
	rate  float64
	batch int
	count int64

	mu   sync.Mutex
	next uint64
}

// claim returns the next batch; ok is false once Count events were handed
// out. A batch is due when its last event would have been produced at the
// configured rate, so a run of duration D offers Rate×D events.
func (s *schedule) claim() (seq uint64, n int, due time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = s.batch
	if s.count > 0 {
		left := s.count - int64(s.next)
		if left <= 0 {
			return 0, 0, time.Time{}, false
		}
		n = int(min(int64(n), left))
	}
	seq = s.next
	s.next += uint64(n)
	if s.rate > 0 {
		due = s.start.Add(time.Duration(float64(s.next) / s.rate * float64(time.Second)))
	}
	return seq, n, due, true
}

type runner struct {
	cfg    Config
	url    string
	client *http.Client
	cat    *catalogue
	sched  schedule

	start    time.Time
	deadline time.Time // zero without Duration
	// stopCtx ends on the caller's cancel or a fatal error: requests use
	// it. runCtx also ends at the deadline: claiming and Retry-After
	// sleeps use it, so in-flight requests may finish after the deadline.
	stopCtx, runCtx context.Context
	stop            context.CancelFunc
	failOnce        sync.Once
	failErr         error

	sent, acked, rejected, requests atomic.Int64
	ackedBytes, wireBytes           atomic.Int64
	errCount                        atomic.Int64
	errMu                           sync.Mutex
	errs                            map[string]int64

	hist, window *histogram

	ackMu  sync.Mutex
	ackBuf []byte
}

// fail records the first fatal error and stops the run.
func (r *runner) fail(err error) {
	r.failOnce.Do(func() {
		r.failErr = err
		r.stop()
	})
}

func (r *runner) countError(key string) {
	r.errCount.Add(1)
	r.errMu.Lock()
	r.errs[key]++
	r.errMu.Unlock()
}

func (r *runner) worker(bb *bodyBuilder) {
	for r.runCtx.Err() == nil {
		seq, n, due, ok := r.sched.claim()
		if !ok {
			return
		}
		if !due.IsZero() {
			if !r.deadline.IsZero() && due.After(r.deadline) {
				return
			}
			// Wait on stopCtx, not runCtx: due is at or before the
			// deadline, and the batch due exactly then still goes out.
			if !sleepCtx(r.stopCtx, time.Until(due)) {
				return
			}
		}
		body, rawLen, err := bb.build(seq, n, time.Now().UnixNano())
		if err != nil {
			r.fail(err)
			return
		}
		r.send(bb, body, rawLen, seq, n)
	}
}

// send posts one batch and accounts for the answer.
//
// The body is a plain *bytes.Reader, which net/http knows to be in memory:
// headers and body then go out in one write, with no per-request copy
// buffer. RoundTrip may still be reading the body after it returns (when
// a server answers early), so the worker reuses its buffer only after the
// WroteRequest trace hook says the transport is done with it; otherwise
// the buffers are dropped and the next batch allocates fresh ones.
func (r *runner) send(bb *bodyBuilder, body []byte, rawLen int, seq uint64, n int) {
	wrote := make(chan struct{}, 1)
	ctx := httptrace.WithClientTrace(r.stopCtx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) {
			select {
			case wrote <- struct{}{}:
			default:
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		r.fail(fmt.Errorf("build request for %s: %w", r.url, err))
		return
	}
	// Without GetBody the transport never replays the body on its own
	// (a retry or redirect would read the buffer again behind our back).
	req.GetBody = nil
	req.Header.Set("Content-Type", bb.contentType())
	if bb.encoding != EncodingIdentity {
		req.Header.Set("Content-Encoding", string(bb.encoding))
	}
	req.Header.Set("User-Agent", "wirelog-loadgen")
	gotResponse := false
	defer func() {
		select {
		case <-wrote:
			return
		default:
		}
		if gotResponse {
			// The request was written at least in part; the writer
			// finishes or fails promptly (net/http closes a connection
			// whose write lags the response).
			t := time.NewTimer(time.Second)
			defer t.Stop()
			select {
			case <-wrote:
				return
			case <-t.C:
			}
		}
		bb.forget()
	}()

	r.requests.Add(1)
	r.sent.Add(int64(n))
	r.wireBytes.Add(int64(len(body)))
	t0 := time.Now()
	resp, err := r.client.Do(req)
	gotResponse = err == nil
	if err != nil {
		if r.stopCtx.Err() != nil {
			return // cancelled by the caller: not the server's fault
		}
		r.countError("transport")
		sleepCtx(r.runCtx, errorBackoff)
		return
	}
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxAckBody))
	if readErr == nil {
		_, readErr = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	latency := time.Since(t0)
	if readErr != nil {
		// A 202 whose body broke off may hide a partial acceptance, so the
		// batch counts as not acknowledged.
		if r.stopCtx.Err() == nil {
			r.countError("transport")
		}
		return
	}

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		out := parseAck(answer, n, bb.format)
		r.hist.record(latency)
		r.window.record(latency)
		if err := r.logAcks(seq, n, out); err != nil {
			r.fail(err)
		}
		r.acked.Add(out.acked)
		r.rejected.Add(out.rejected)
		r.ackedBytes.Add(int64(rawLen) * out.acked / int64(n))
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		r.countError(strconv.Itoa(code))
		d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok {
			d = DefaultRetryAfter
		}
		sleepCtx(r.runCtx, d)
	default:
		r.countError(strconv.Itoa(code))
		if code >= 500 {
			sleepCtx(r.runCtx, errorBackoff)
		}
	}
}

// logAcks appends the acknowledged ids of a batch to the ack log in one
// write, so a reader never sees half a line from two workers.
func (r *runner) logAcks(seq uint64, n int, out ackOutcome) error {
	if r.cfg.AckLog == nil || !out.idsKnown || out.acked == 0 {
		return nil
	}
	r.ackMu.Lock()
	defer r.ackMu.Unlock()
	buf := r.ackBuf[:0]
	for i := range n {
		if out.skip[int64(i)] {
			continue
		}
		buf = append(buf, r.cfg.RunID...)
		buf = append(buf, '-')
		buf = strconv.AppendUint(buf, seq+uint64(i), 10)
		buf = append(buf, '\n')
	}
	r.ackBuf = buf
	if _, err := r.cfg.AckLog.Write(buf); err != nil {
		return fmt.Errorf("write ack log: %w (check --ack-log's disk and permissions)", err)
	}
	return nil
}

// sleepCtx sleeps for d or until ctx ends; it reports whether ctx is
// still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// progress writes one line per progressInterval until done is closed:
// rates and p99 are for the last interval, counts since the start.
func (r *runner) progress(done <-chan struct{}) {
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	last, lastAcked, lastBytes := r.start, int64(0), int64(0)
	for {
		select {
		case <-done:
			if r.cfg.ProgressTTY {
				fmt.Fprintln(r.cfg.Progress)
			}
			return
		case now := <-t.C:
			acked, bytes := r.acked.Load(), r.ackedBytes.Load()
			dt := now.Sub(last).Seconds()
			w := r.window.snapshot(true)
			line := fmt.Sprintf("%6.1fs  sent %s  acked %s ev/s  %.1f MB/s  p99 %s ms  errors %d",
				now.Sub(r.start).Seconds(), commas(r.sent.Load()),
				commas(int64(float64(acked-lastAcked)/dt)), float64(bytes-lastBytes)/dt/1e6,
				fmtMs(w.quantile(0.99)), r.errCount.Load())
			last, lastAcked, lastBytes = now, acked, bytes
			if r.cfg.ProgressTTY {
				fmt.Fprintf(r.cfg.Progress, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintln(r.cfg.Progress, line)
			}
		}
	}
}

func (r *runner) report(elapsed time.Duration) Report {
	s := r.hist.snapshot(false)
	secs := elapsed.Seconds()
	rep := Report{
		RunID:          r.cfg.RunID,
		Target:         r.url,
		DurationS:      secs,
		TargetRate:     r.cfg.Rate,
		EventsSent:     r.sent.Load(),
		EventsAcked:    r.acked.Load(),
		EventsRejected: r.rejected.Load(),
		Requests:       r.requests.Load(),
		Latency: LatencyMs{
			P50:  ms(s.quantile(0.50)),
			P90:  ms(s.quantile(0.90)),
			P99:  ms(s.quantile(0.99)),
			P999: ms(s.quantile(0.999)),
			Max:  ms(time.Duration(s.max)),
			Mean: ms(s.mean()),
		},
		Errors: make(map[string]int64),
	}
	r.errMu.Lock()
	for k, v := range r.errs {
		rep.Errors[k] = v
	}
	r.errMu.Unlock()
	if secs > 0 {
		rep.EventsPerSecond = float64(rep.EventsAcked) / secs
		rep.MBPerSecond = float64(r.ackedBytes.Load()) / secs / 1e6
		rep.WireMBPerSecond = float64(r.wireBytes.Load()) / secs / 1e6
	}
	if rep.EventsAcked > 0 {
		rep.AvgEventBytes = float64(r.ackedBytes.Load()) / float64(rep.EventsAcked)
	}
	if r.stopCtx.Err() != nil && r.failErr == nil {
		rep.Interrupted = true
	}
	return rep
}
