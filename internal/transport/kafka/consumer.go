package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/wirelog/wirelog/internal/transport"
)

// revokeCommitTimeout bounds the commit made while partitions are revoked;
// the rebalance waits for it.
const revokeCommitTimeout = 10 * time.Second

// Consumer reads the events topic as a member of a consumer group, with
// cooperative-sticky balancing (a rebalance only moves the partitions that
// must move; the others keep flowing).
//
// Resuming: when partitions are assigned, the consumer asks the
// transport.OffsetSource (the store) where each one resumes, and takes the
// later of that and the group's committed offset. See docs/KAFKA.md for why
// the later of the two keeps exactly-once on one store and never loses a
// record across stores.
//
// Rebalances are blocked from the moment Poll returns records until the next
// Poll (or Close), so the caller stores and commits a whole batch before any
// of its partitions can move. When partitions are revoked, the store first
// makes what it accepted durable (Config.Release: segment files buffer
// records), then the finished offsets that did not reach the group yet are
// committed before the rebalance proceeds.
type Consumer struct {
	cfg  Config
	log  *slog.Logger // cfg.Logger (or slog.Default()), component=kafka-consumer
	src  transport.OffsetSource
	cl   *kgo.Client
	adm  *kadm.Client
	prom *kprom.Metrics
	m    consumerMetrics

	mu      sync.Mutex
	owned   map[transport.TopicPartition]bool
	pending map[transport.TopicPartition]int64 // finished (next offset) but not yet committed to the group
	// replay: partitions still owned whose store discarded what it had
	// accepted (a failed Release, a Discard); Poll seeks them back to their
	// durable offsets before it returns another record.
	replay map[transport.TopicPartition]bool

	// commitMu orders commits: a Commit that checked ownership before a
	// revoke must not reach the group after the revoke's commit (it would
	// move the offset back below what the revoke committed).
	commitMu sync.Mutex

	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

var _ transport.Consumer = (*Consumer)(nil)

// DeadLetterer is implemented by consumers that can set a record aside with
// the reason it could not be processed. The processor type-asserts its
// transport.Consumer to it.
type DeadLetterer interface {
	SendToDLQ(ctx context.Context, rec transport.Record, cause error) error
}

var _ DeadLetterer = (*Consumer)(nil)

// NewConsumer joins cfg.Group on cfg.Topic. src may be nil (then the group's
// committed offsets alone say where to resume).
func NewConsumer(ctx context.Context, cfg Config, src transport.OffsetSource) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Group == "" {
		return nil, fmt.Errorf("%w: the consumer group is empty: set --group", ErrConfig)
	}
	comp, _ := codec(cfg.Compression)
	opts, err := cfg.commonOpts(ctx)
	if err != nil {
		return nil, err
	}
	c := &Consumer{
		cfg: cfg, src: src,
		log:     cmp.Or(cfg.Logger, slog.Default()).With("component", "kafka-consumer"),
		prom:    newKprom("consumer"),
		m:       newConsumerMetrics(),
		owned:   make(map[transport.TopicPartition]bool),
		pending: make(map[transport.TopicPartition]int64),
		replay:  make(map[transport.TopicPartition]bool),
		stop:    make(chan struct{}),
	}
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		// Offsets are committed by the caller after its store write.
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AdjustFetchOffsetsFn(c.resumeOffsets),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		// The same client writes dead letters.
		kgo.DefaultProduceTopic(cfg.DLQTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(comp),
		kgo.RecordDeliveryTimeout(cfg.ProduceTimeout),
		kgo.WithHooks(c.prom, newTracer(cfg, cfg.Group)),
	)
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	// Topics first, with a short-lived client: a group client starts joining
	// as soon as it exists.
	if err := EnsureTopics(ctx, &cfg); err != nil && !errors.Is(err, ErrPartitionMismatch) {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer for %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	c.cl = cl
	c.adm = kadmClient(cl)
	c.wg.Add(1)
	go c.lagLoop()
	return c, nil
}

func kadmClient(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

// Collector exports the consumer's metrics: franz-go's client metrics
// (wirelog_kafka_*{role="consumer"}), consumer lag per owned partition,
// commits and dead letters.
func (c *Consumer) Collector() prometheus.Collector {
	return append(collectors{c.prom}, c.m.collectors()...)
}

// resumeOffsets runs after the group's committed offsets of newly assigned
// partitions are fetched, before consumption starts: for each partition it
// takes the later of the store's next offset and the group's.
func (c *Consumer) resumeOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	for topic, parts := range offsets {
		for p, o := range parts {
			tp := transport.TopicPartition{Topic: topic, Partition: p}
			group := o.EpochOffset().Offset // negative: the group has no commit
			from, at := "start", int64(-1)
			if group >= 0 {
				from, at = "group", group
			}
			if c.src != nil {
				next, ok, err := c.src(ctx, tp)
				if err != nil {
					// Returning the error makes franz-go rejoin and ask again.
					return nil, fmt.Errorf("ask the store where %s/%d resumes: %w", topic, p, err)
				}
				if ok && next > group {
					parts[p] = kgo.NewOffset().At(next)
					from, at = "store", next
				}
				if ok && next < group {
					c.log.Info("kafka: group is ahead of this store for a partition (another processor stored the records in between); resuming at the group's offset",
						"topic", topic, "partition", p, "store_next", next, "group_next", group)
				}
			}
			c.m.resumed.WithLabelValues(from).Inc()
			c.log.Debug("kafka: resuming partition", "topic", topic, "partition", p, "from", from, "offset", at)
		}
	}
	return offsets, nil
}

func toTPs(m map[string][]int32) []transport.TopicPartition {
	var out []transport.TopicPartition
	for t, ps := range m {
		for _, p := range ps {
			out = append(out, transport.TopicPartition{Topic: t, Partition: p})
		}
	}
	slices.SortFunc(out, func(a, b transport.TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

func (c *Consumer) onAssigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	tps := toTPs(m)
	c.mu.Lock()
	for _, tp := range tps {
		c.owned[tp] = true
	}
	n := len(c.owned)
	c.mu.Unlock()
	c.m.assigned.Set(float64(n))
	c.log.Info("kafka: partitions assigned", "group", c.cfg.Group, "partitions", fmtTPs(tps), "owned", n)
	if c.cfg.OnAssigned != nil && len(tps) > 0 {
		c.cfg.OnAssigned(tps)
	}
}

// onRevoked makes the store's accepted records of the revoked partitions
// durable (Config.Release) and commits what the caller finished on them
// before the rebalance hands them to another member. It runs while the
// caller is in Poll: no store write is in progress.
func (c *Consumer) onRevoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	tps := toTPs(m)
	if len(tps) == 0 {
		return
	}
	var durable map[transport.TopicPartition]int64
	if c.cfg.Release != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeCommitTimeout)
		var err error
		durable, err = c.cfg.Release(rctx, tps)
		cancel()
		if err != nil {
			c.m.releases.WithLabelValues("discarded").Inc()
			c.log.Warn("kafka: the store could not make the revoked partitions' records durable and discarded what it had not written; the new owner replays them, and the partitions kept are replayed here",
				"partitions", fmtTPs(tps), "err", err)
			c.replayKept(tps)
		} else {
			c.m.releases.WithLabelValues("written").Inc()
		}
	}
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.mu.Lock()
	commit := make(map[transport.TopicPartition]int64)
	for _, tp := range tps {
		if next, ok := c.pending[tp]; ok {
			commit[tp] = next
		}
	}
	c.mu.Unlock()
	if len(durable) > 0 {
		// The store's offset of a partition it had long ago can be behind
		// the group's (another member stored the records in between):
		// committing it would hand those records out again.
		committed := cl.CommittedOffsets()
		for tp, o := range durable {
			if o > commit[tp] && o > committed[tp.Topic][tp.Partition].Offset {
				commit[tp] = o
			}
		}
	}
	if len(commit) > 0 {
		ctx, cancel := context.WithTimeout(ctx, revokeCommitTimeout)
		err := c.commit(ctx, cl, commit, "revoke")
		cancel()
		if err != nil {
			c.log.Warn("kafka: commit on revoke failed; the next owner resumes from the older group offset (records between may be stored twice across processors)",
				"partitions", fmtTPs(tps), "err", err)
		}
	}
	c.forget(tps)
	c.log.Info("kafka: partitions revoked", "group", c.cfg.Group, "partitions", fmtTPs(tps), "committed", len(commit))
	if c.cfg.OnRevoked != nil {
		c.cfg.OnRevoked(tps)
	}
}

// onLost: the group took the partitions without asking (session expired);
// committing is pointless, the new owner resumes from the group's offset.
// What the store accepted but has not made durable is dropped
// (Config.Discard): the new owner may already be storing it.
func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	tps := toTPs(m)
	if len(tps) == 0 {
		return
	}
	if c.cfg.Discard != nil {
		if n := c.cfg.Discard(); n > 0 {
			c.m.releases.WithLabelValues("discarded").Inc()
			c.replayKept(tps)
		}
	}
	c.forget(tps)
	c.log.Warn("kafka: partitions lost (the group moved them after a session timeout)", "group", c.cfg.Group, "partitions", fmtTPs(tps))
	if c.cfg.OnLost != nil {
		c.cfg.OnLost(tps)
	}
}

// replayKept marks the partitions still owned, other than gone, to be
// sought back to their durable offsets by the next Poll: their store
// discarded the records it had accepted beyond them.
func (c *Consumer) replayKept(gone []transport.TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for tp := range c.owned {
		if !slices.Contains(gone, tp) {
			c.replay[tp] = true
		}
	}
}

// seekDurable seeks the replay partitions to the later of the store's next
// offset and the group's committed one (as resumeOffsets chooses on
// assignment; the log start when neither is known). It runs in Poll after
// PollRecords returned, where franz-go wants SetOffsets called: no revoke
// can run, and it drops what was fetched beyond the new offsets.
func (c *Consumer) seekDurable(ctx context.Context, tps map[transport.TopicPartition]bool) {
	committed := c.cl.CommittedOffsets()
	set := make(map[string]map[int32]kgo.EpochOffset)
	var unknown []string
	for tp := range tps {
		at := int64(-1)
		if eo, ok := committed[tp.Topic][tp.Partition]; ok {
			at = eo.Offset
		}
		if c.src != nil {
			if next, ok, err := c.src(ctx, tp); err == nil && ok && next > at {
				at = next
			} else if err != nil {
				c.log.Warn("kafka: ask the store where a replayed partition resumes", "topic", tp.Topic, "partition", tp.Partition, "err", err)
			}
		}
		if at < 0 {
			unknown = append(unknown, tp.Topic)
			continue
		}
		if set[tp.Topic] == nil {
			set[tp.Topic] = make(map[int32]kgo.EpochOffset)
		}
		set[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
	}
	if len(unknown) > 0 {
		starts, err := c.adm.ListStartOffsets(ctx, unknown...)
		for tp := range tps {
			if _, ok := set[tp.Topic][tp.Partition]; ok {
				continue
			}
			o, ok := starts.Lookup(tp.Topic, tp.Partition)
			if err != nil || !ok || o.Err != nil {
				c.log.Error("kafka: cannot find where to replay a partition from; it continues where it was (records discarded by the store are missing from it until a restart replays them)",
					"topic", tp.Topic, "partition", tp.Partition, "err", errors.Join(err, o.Err))
				continue
			}
			if set[tp.Topic] == nil {
				set[tp.Topic] = make(map[int32]kgo.EpochOffset)
			}
			set[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o.Offset}
		}
	}
	if len(set) == 0 {
		return
	}
	c.m.rewinds.Add(float64(len(tps)))
	c.log.Warn("kafka: replaying partitions from their durable offsets (the store discarded records it had accepted)", "group", c.cfg.Group, "offsets", set)
	c.cl.SetOffsets(set)
}

func (c *Consumer) forget(tps []transport.TopicPartition) {
	c.mu.Lock()
	for _, tp := range tps {
		delete(c.owned, tp)
		delete(c.pending, tp)
		delete(c.replay, tp)
		c.m.lag.DeleteLabelValues(tp.Topic, strconv.Itoa(int(tp.Partition)))
	}
	n := len(c.owned)
	c.mu.Unlock()
	c.m.assigned.Set(float64(n))
}

func fmtTPs(tps []transport.TopicPartition) string {
	var b strings.Builder
	for i, tp := range tps {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s/%d", tp.Topic, tp.Partition)
	}
	return b.String()
}

// Poll returns up to max fetched records (max <= 0: all buffered). It first
// lets a pending rebalance run: the caller has finished the previous batch.
// Transient errors (a coordinator moving, a broker restarting) are logged and
// polling goes on, since franz-go retries them underneath; other errors are
// returned.
func (c *Consumer) Poll(ctx context.Context, max int) ([]transport.Record, error) {
	if max <= 0 {
		max = -1
	}
	for {
		if c.closed.Load() {
			return nil, fmt.Errorf("kafka poll: %w", transport.ErrClosed)
		}
		c.cl.AllowRebalance()
		fs := c.cl.PollRecords(ctx, max)
		if fs.IsClientClosed() {
			return nil, fmt.Errorf("kafka poll: %w", transport.ErrClosed)
		}
		var fatal error
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			if classify(err) == failUnavailable {
				c.log.Warn("kafka: fetch error, retrying", "topic", topic, "partition", p, "err", err)
				return
			}
			c.log.Error("kafka: fetch error", "topic", topic, "partition", p, "err", err)
			if fatal == nil {
				fatal = fmt.Errorf("kafka poll %s/%d: %w", topic, p, err)
			}
		})
		// A revoke or loss during PollRecords may have made the store drop
		// what it had accepted: those partitions restart from their durable
		// offsets, and what was fetched for them is dropped, before any of
		// their records reaches the caller (who would store it past a gap).
		replay := c.takeReplay()
		if len(replay) > 0 {
			c.seekDurable(ctx, replay)
		}
		out := make([]transport.Record, 0, fs.NumRecords())
		fs.EachRecord(func(r *kgo.Record) {
			if replay[transport.TopicPartition{Topic: r.Topic, Partition: r.Partition}] {
				return
			}
			tr := transport.Record{
				Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
				Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
			}
			if len(r.Headers) > 0 {
				tr.Headers = make([]transport.Header, len(r.Headers))
				for i, h := range r.Headers {
					tr.Headers[i] = transport.Header{Key: h.Key, Value: h.Value}
				}
			}
			out = append(out, tr)
		})
		if len(out) > 0 {
			return out, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if fatal != nil {
			return nil, fatal
		}
		// Only transient errors: franz-go injects each once per failure,
		// so polling again waits for data rather than spinning.
	}
}

func (c *Consumer) takeReplay() map[transport.TopicPartition]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.replay) == 0 {
		return nil
	}
	out := c.replay
	c.replay = make(map[transport.TopicPartition]bool)
	return out
}

// Commit commits the next offsets to read to the group, for the partitions
// this member still owns (a partition already handed to another member is
// left to it: committing would move its offset backwards). Offsets of a
// failed commit are retried when the partitions are revoked.
func (c *Consumer) Commit(ctx context.Context, next map[transport.TopicPartition]int64) error {
	if c.closed.Load() {
		return fmt.Errorf("kafka commit: %w", transport.ErrClosed)
	}
	owned := make(map[transport.TopicPartition]int64, len(next))
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.mu.Lock()
	for tp, o := range next {
		if c.owned[tp] {
			owned[tp] = o
			if o > c.pending[tp] {
				c.pending[tp] = o
			}
		}
	}
	c.mu.Unlock()
	if len(owned) == 0 {
		return nil
	}
	return c.commit(ctx, c.cl, owned, "poll")
}

func (c *Consumer) commit(ctx context.Context, cl *kgo.Client, next map[transport.TopicPartition]int64, cause string) error {
	req := make(map[string]map[int32]kgo.EpochOffset)
	for tp, o := range next {
		if req[tp.Topic] == nil {
			req[tp.Topic] = make(map[int32]kgo.EpochOffset)
		}
		req[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, req, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	if cerr != nil {
		c.m.commits.WithLabelValues(cause, "error").Inc()
		return wrap(classify(cerr), fmt.Sprintf("kafka commit to group %q", c.cfg.Group), cerr)
	}
	c.m.commits.WithLabelValues(cause, "ok").Inc()
	c.mu.Lock()
	for tp, o := range next {
		if c.pending[tp] == o {
			delete(c.pending, tp)
		}
	}
	c.mu.Unlock()
	return nil
}

// Rewind seeks the partitions this member still owns back to the given next
// offsets, dropping records fetched beyond them; partitions it no longer
// owns are skipped (their new owner resumes from the group's committed
// offset, which is never past them). A store whose writes become durable
// later (VictoriaLogs) asks for it when rows it had sent were lost.
func (c *Consumer) Rewind(next map[transport.TopicPartition]int64) {
	set := make(map[string]map[int32]kgo.EpochOffset)
	c.mu.Lock()
	for tp, o := range next {
		if !c.owned[tp] {
			continue
		}
		if set[tp.Topic] == nil {
			set[tp.Topic] = make(map[int32]kgo.EpochOffset)
		}
		set[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	c.mu.Unlock()
	if len(set) == 0 {
		return
	}
	c.m.rewinds.Add(float64(len(next)))
	c.log.Warn("kafka: rewinding partitions to replay records the store lost", "group", c.cfg.Group, "offsets", next)
	c.cl.SetOffsets(set)
}

// DLQ record headers, beside the record's own headers (traceparent…).
const (
	HeaderDLQError     = "wirelog.dlq.error"
	HeaderDLQTopic     = "wirelog.dlq.topic"
	HeaderDLQPartition = "wirelog.dlq.partition"
	HeaderDLQOffset    = "wirelog.dlq.offset"
	HeaderDLQTime      = "wirelog.dlq.time"
)

// SendToDLQ writes rec, unchanged in key and value, to the dead-letter topic
// with the error and its origin (topic, partition, offset) in headers, and
// returns once acked. The caller then treats the record as done, so its
// partition keeps moving.
func (c *Consumer) SendToDLQ(ctx context.Context, rec transport.Record, cause error) error {
	if c.closed.Load() {
		return fmt.Errorf("kafka dead letter: %w", transport.ErrClosed)
	}
	msg := "unknown error"
	if cause != nil {
		msg = cause.Error()
	}
	kr := &kgo.Record{
		Topic: c.cfg.DLQTopic, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp, Context: ctx,
		Headers: make([]kgo.RecordHeader, 0, len(rec.Headers)+5),
	}
	for _, h := range rec.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	kr.Headers = append(kr.Headers,
		kgo.RecordHeader{Key: HeaderDLQError, Value: []byte(msg)},
		kgo.RecordHeader{Key: HeaderDLQTopic, Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: HeaderDLQPartition, Value: strconv.AppendInt(nil, int64(rec.Partition), 10)},
		kgo.RecordHeader{Key: HeaderDLQOffset, Value: strconv.AppendInt(nil, rec.Offset, 10)},
		kgo.RecordHeader{Key: HeaderDLQTime, Value: time.Now().UTC().AppendFormat(nil, time.RFC3339Nano)},
	)
	if err := c.cl.ProduceSync(ctx, kr).FirstErr(); err != nil {
		return wrap(classify(err), fmt.Sprintf("kafka dead letter of %s/%d@%d to %q", rec.Topic, rec.Partition, rec.Offset, c.cfg.DLQTopic), err)
	}
	c.m.dlq.Inc()
	return nil
}

// Ready reports nil when the cluster answers for the events topic within
// --kafka-ready-timeout.
func (c *Consumer) Ready(ctx context.Context) error {
	if c.closed.Load() {
		return fmt.Errorf("kafka consumer: %w", transport.ErrClosed)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	if err := checkTopic(ctx, c.cl, c.cfg.Topic); err != nil {
		return wrap(failUnavailable, fmt.Sprintf("kafka: %s not ready", strings.Join(c.cfg.Brokers, ",")), err)
	}
	return nil
}

// Assigned returns the partitions this member owns now, sorted.
func (c *Consumer) Assigned() []transport.TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Collect(maps.Keys(c.owned))
	slices.SortFunc(out, func(a, b transport.TopicPartition) int { return int(a.Partition - b.Partition) })
	return out
}

// lagLoop refreshes the lag gauge of the partitions this member owns.
func (c *Consumer) lagLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.LagInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.LagInterval)
		c.refreshLag(ctx)
		cancel()
	}
}

func (c *Consumer) refreshLag(ctx context.Context) {
	lags, err := c.adm.Lag(ctx, c.cfg.Group)
	if err != nil {
		c.log.Debug("kafka: lag refresh failed", "err", err)
		return
	}
	gl, ok := lags[c.cfg.Group]
	if !ok || gl.Error() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for tp := range c.owned {
		l, ok := gl.Lag.Lookup(tp.Topic, tp.Partition)
		if !ok || l.Err != nil {
			continue
		}
		lag := l.Lag
		if l.Commit.At < 0 {
			// No commit yet: everything from the log start is behind.
			lag = l.End.Offset - l.Start.Offset
		}
		c.m.lag.WithLabelValues(tp.Topic, strconv.Itoa(int(tp.Partition))).Set(float64(lag))
	}
}

// Close commits what was finished on the partitions still owned, leaves the
// group (its partitions move to the other members at once) and closes the
// client.
func (c *Consumer) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(c.stop)
	// Leaving the group revokes every partition, and onRevoked commits the
	// pending offsets; CloseAllowingRebalance releases a poll-blocked rebalance.
	c.cl.CloseAllowingRebalance()
	c.wg.Wait()
	return nil
}
