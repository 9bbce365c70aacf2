package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/plugin/kotel"
	"github.com/twmb/franz-go/plugin/kprom"
	"go.opentelemetry.io/otel/propagation"

	"github.com/wirelog/wirelog/internal/transport"
)

// probeInterval is how often a producer that lost the cluster checks whether
// it is back. Short: ingest answers 503 until the probe succeeds.
const probeInterval = 500 * time.Millisecond

// Producer appends records to the events topic: idempotent, acks=all, and
// Produce returns only once every record of the call is acknowledged.
type Producer struct {
	cfg  Config
	cl   *kgo.Client
	prom *kprom.Metrics
	m    producerMetrics

	// down holds the error that made the producer give up on the cluster
	// (nil while available). While set, Produce fails fast with
	// ErrUnavailable instead of queueing records that would time out, and a
	// probe goroutine clears it once the cluster answers again.
	down    atomic.Pointer[error]
	probing atomic.Bool

	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
	batch  sync.Pool // *produceBatch
}

var _ transport.Producer = (*Producer)(nil)

// NewProducer connects to cfg.Brokers and ensures the topics exist (see
// EnsureTopics; a partition-count mismatch is logged, not fatal). It fails
// with an error wrapping transport.ErrUnavailable when no broker answers
// within cfg.ProduceTimeout.
func NewProducer(ctx context.Context, cfg Config) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	comp, _ := codec(cfg.Compression)
	opts, err := cfg.commonOpts(ctx)
	if err != nil {
		return nil, err
	}
	p := &Producer{cfg: cfg, prom: newKprom("producer"), m: newProducerMetrics(), stop: make(chan struct{})}
	p.batch.New = func() any { b := &produceBatch{}; b.promise = b.done; return b }
	opts = append(opts,
		kgo.DefaultProduceTopic(cfg.Topic),
		// acks=all with idempotence (franz-go's default, spelled out): an ack
		// means every in-sync replica has the record, and retries never
		// duplicate or reorder a partition.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(comp),
		kgo.ProducerLinger(cfg.Linger),
		kgo.MaxBufferedBytes(cfg.MaxBufferedBytes),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		// Linger is added so a batch's first record does not expire early.
		kgo.RecordDeliveryTimeout(cfg.ProduceTimeout+cfg.Linger),
		// Without this an idempotent producer waits for the outcome of a
		// batch it tried to send for as long as the broker is away (it
		// cannot tell "never arrived" from "written, reply lost"), and
		// ingest would hang instead of answering 503. With it, such a
		// record fails at the delivery timeout: the call is not
		// acknowledged, and a client retry may store it twice. Acked
		// records are never lost or duplicated by the client's own retries.
		kgo.AllowIdempotentProduceCancellation(),
		// A record's delivery timeout is checked when metadata is
		// refreshed after an error; the 5s default minimum between
		// refreshes would let a 503 come up to 5s after the timeout.
		kgo.MetadataMinAge(time.Second),
		kgo.RetryTimeout(cfg.ProduceTimeout),
		kgo.WithHooks(p.prom, newTracer(cfg, "")),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer for %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	p.cl = cl
	if err := prepareTopics(ctx, cl, &cfg); err != nil {
		cl.Close()
		return nil, err
	}
	return p, nil
}

// newTracer returns the kotel hooks that start a publish span per record
// (child of the span in the caller's ctx) and write its W3C traceparent into
// the record headers, and on the consumer side continue that trace.
func newTracer(cfg Config, group string) kgo.Hook {
	opts := []kotel.TracerOpt{kotel.TracerPropagator(propagation.TraceContext{})}
	if cfg.TracerProvider != nil {
		opts = append(opts, kotel.TracerProvider(cfg.TracerProvider))
	}
	if cfg.ClientID != "" {
		opts = append(opts, kotel.ClientID(cfg.ClientID))
	}
	if group != "" {
		opts = append(opts, kotel.ConsumerGroup(group))
	}
	return kotel.NewTracer(opts...)
}

// prepareTopics runs EnsureTopics on an existing client; a partition
// mismatch is only a warning (it was logged).
func prepareTopics(ctx context.Context, cl *kgo.Client, cfg *Config) error {
	err := ensureTopics(ctx, kadmClient(cl), cfg)
	if err == nil || errors.Is(err, ErrPartitionMismatch) {
		return nil
	}
	return err
}

// Collector exports the producer's metrics: franz-go's client metrics
// (wirelog_kafka_*{role="producer"}) and wirelog's own.
func (p *Producer) Collector() prometheus.Collector {
	return append(collectors{p.prom}, p.m.collectors()...)
}

// produceBatch tracks the records of one Produce call until every one of
// them has its ack or its error.
type produceBatch struct {
	recs    []kgo.Record
	headers []kgo.RecordHeader
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error
	failed  atomic.Bool
	promise func(*kgo.Record, error)
}

func (b *produceBatch) done(_ *kgo.Record, err error) {
	if err != nil {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
		b.failed.Store(true)
	}
	b.wg.Done()
}

// Produce appends recs and returns nil only after Kafka acknowledged every
// one of them with acks=all. It fails with an error wrapping
//   - transport.ErrBackpressure when the producer buffer
//     (--kafka-max-buffered-bytes / --kafka-max-buffered-records) cannot take
//     the whole call: nothing of the call is buffered then;
//   - transport.ErrUnavailable when the records were not acknowledged within
//     --kafka-produce-timeout, or the cluster has been unreachable since an
//     earlier call (until a background probe sees it back).
//
// Produce never returns while franz-go still holds the caller's Key, Value
// or header buffers, so the caller may reuse them as soon as it returns.
func (p *Producer) Produce(ctx context.Context, recs []transport.Record) error {
	if p.closed.Load() {
		return fmt.Errorf("kafka produce: %w", transport.ErrClosed)
	}
	if len(recs) == 0 {
		return nil
	}
	if errp := p.down.Load(); errp != nil {
		p.m.failures.WithLabelValues(failUnavailable.String()).Inc()
		return wrap(failUnavailable, "kafka produce: cluster unreachable (retry after it answers again)", *errp)
	}
	// Refuse the whole call up front when it cannot fit, so a call is either
	// buffered whole or not at all under steady pressure; TryProduce below
	// still catches races between concurrent calls.
	var size int64
	nh := 0
	for i := range recs {
		size += recordSize(&recs[i])
		nh += len(recs[i].Headers)
	}
	if n, b := p.cl.BufferedProduceRecords(), p.cl.BufferedProduceBytes(); n+int64(len(recs)) > int64(p.cfg.MaxBufferedRecords) ||
		b+size > int64(p.cfg.MaxBufferedBytes) {
		p.m.failures.WithLabelValues(failBackpressure.String()).Inc()
		return fmt.Errorf("kafka produce of %d records (%d bytes): producer buffer holds %d records, %d bytes (bounds --kafka-max-buffered-records %d, --kafka-max-buffered-bytes %d): %w",
			len(recs), size, n, b, p.cfg.MaxBufferedRecords, p.cfg.MaxBufferedBytes, transport.ErrBackpressure)
	}

	bt := p.batch.Get().(*produceBatch)
	defer p.putBatch(bt)
	bt.recs = slicesGrow(bt.recs, len(recs))
	bt.headers = headersGrow(bt.headers, nh+len(recs)) // +1 per record for traceparent
	hs := bt.headers
	produced := 0
	for i := range recs {
		if bt.failed.Load() {
			break // the call already failed; do not buffer the rest
		}
		r := &recs[i]
		kr := &bt.recs[i]
		*kr = kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Context: ctx}
		if kr.Topic == "" {
			kr.Topic = p.cfg.Topic
		}
		if len(r.Headers) > 0 {
			// Sub-slice with room for one more, so kotel's traceparent
			// appends in place instead of allocating.
			h := hs[: 0 : len(r.Headers)+1]
			for _, th := range r.Headers {
				h = append(h, kgo.RecordHeader{Key: th.Key, Value: th.Value})
			}
			hs = hs[len(r.Headers)+1:]
			kr.Headers = h
		}
		bt.wg.Add(1)
		p.cl.TryProduce(ctx, kr, bt.promise)
		produced++
	}
	bt.wg.Wait()
	if bt.err == nil {
		p.m.records.Add(float64(produced))
		return nil
	}
	f := classify(bt.err)
	p.m.failures.WithLabelValues(f.String()).Inc()
	what := fmt.Sprintf("kafka produce of %d records to %q", len(recs), p.cfg.Topic)
	switch {
	case f == failUnavailable && ctx.Err() == nil:
		p.markDown(bt.err)
		what += fmt.Sprintf(" (no ack within --kafka-produce-timeout %s)", p.cfg.ProduceTimeout)
	case f == failCanceled || ctx.Err() != nil:
		return fmt.Errorf("%s: canceled by the caller: %w", what, bt.err)
	case errors.Is(bt.err, kerr.MessageTooLarge):
		return fmt.Errorf("%s (an event is larger than the broker's message.max.bytes: lower --max-line-bytes below it): %w: %v", what, transport.ErrTooLarge, bt.err)
	}
	return wrap(f, what, bt.err)
}

func (p *Producer) putBatch(bt *produceBatch) {
	// Drop references to the caller's buffers before pooling.
	clear(bt.recs)
	clear(bt.headers)
	bt.recs, bt.headers = bt.recs[:0], bt.headers[:0]
	bt.err = nil
	bt.failed.Store(false)
	p.batch.Put(bt)
}

func slicesGrow(s []kgo.Record, n int) []kgo.Record {
	if cap(s) < n {
		return make([]kgo.Record, n)
	}
	return s[:n]
}

func headersGrow(s []kgo.RecordHeader, n int) []kgo.RecordHeader {
	if cap(s) < n {
		return make([]kgo.RecordHeader, n)
	}
	return s[:n]
}

// recordSize is what franz-go counts against MaxBufferedBytes.
func recordSize(r *transport.Record) int64 {
	n := int64(len(r.Key) + len(r.Value))
	for _, h := range r.Headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

// markDown records that the cluster stopped taking writes and starts the
// probe that will notice it coming back.
func (p *Producer) markDown(err error) {
	p.down.Store(&err)
	p.m.available.Set(0)
	if p.probing.CompareAndSwap(false, true) {
		slog.Warn("kafka: cluster stopped acknowledging writes; ingest answers 503 until it is back", "brokers", strings.Join(p.cfg.Brokers, ","), "err", err)
		p.wg.Add(1)
		go p.probe()
	}
}

func (p *Producer) probe() {
	defer p.wg.Done()
	defer p.probing.Store(false)
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ReadyTimeout)
		err := p.check(ctx)
		cancel()
		if err == nil {
			p.down.Store(nil)
			p.m.available.Set(1)
			slog.Info("kafka: cluster takes writes again", "brokers", strings.Join(p.cfg.Brokers, ","))
			return
		}
		p.down.Store(&err)
	}
}

// Ready reports nil when the cluster answers a metadata request for the
// events topic within --kafka-ready-timeout and every partition has a
// leader; otherwise an error wrapping transport.ErrUnavailable.
func (p *Producer) Ready(ctx context.Context) error {
	if p.closed.Load() {
		return fmt.Errorf("kafka producer: %w", transport.ErrClosed)
	}
	if errp := p.down.Load(); errp != nil {
		return wrap(failUnavailable, "kafka: cluster not taking writes", *errp)
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	defer cancel()
	if err := p.check(ctx); err != nil {
		return wrap(failUnavailable, fmt.Sprintf("kafka: %s not ready", strings.Join(p.cfg.Brokers, ",")), err)
	}
	return nil
}

// check asks the cluster for the events topic's metadata.
func (p *Producer) check(ctx context.Context) error {
	return checkTopic(ctx, p.cl, p.cfg.Topic)
}

func checkTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if len(resp.Brokers) == 0 {
		return errors.New("metadata lists no brokers")
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return fmt.Errorf("topic %q: %w", topic, err)
		}
		if len(rt.Partitions) == 0 {
			return fmt.Errorf("topic %q has no partitions", topic)
		}
		for _, rp := range rt.Partitions {
			if rp.Leader < 0 {
				return fmt.Errorf("topic %q partition %d has no leader", topic, rp.Partition)
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil && !errors.Is(err, kerr.ReplicaNotAvailable) {
				return fmt.Errorf("topic %q partition %d: %w", topic, rp.Partition, err)
			}
		}
	}
	return nil
}

// Close flushes what is buffered (bounded by --kafka-produce-timeout) and
// closes the client. Produce calls after Close fail with transport.ErrClosed.
func (p *Producer) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(p.stop)
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ProduceTimeout)
	err := p.cl.Flush(ctx)
	cancel()
	p.cl.Close()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("kafka producer close: flush: %w", err)
	}
	return nil
}
