package patterns

import (
	"context"
	"log/slog"
	"time"

	"github.com/wirelog/wirelog/internal/store"
)

// DefaultFlushInterval is how often mined templates and counts are written
// to the store: patterns show up in the API at most this late.
const DefaultFlushInterval = 10 * time.Second

// Writer stores what the miner found; *store.Store implements it.
type Writer interface {
	WritePatterns(context.Context, []store.PatternTemplate, []store.PatternCount) error
}

// Run flushes the miner into w every interval until ctx ends, then once
// more. A failed write is retried with the next flush: the templates and
// counts are merged back.
func (m *Miner) Run(ctx context.Context, w Writer, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	flush := func() {
		ts, cs := m.Flush()
		if err := w.WritePatterns(context.WithoutCancel(ctx), ts, cs); err != nil {
			log.Warn("patterns: store write failed; retrying with the next flush", "templates", len(ts), "counts", len(cs), "err", err)
			m.requeue(ts, cs)
		}
	}
	for {
		select {
		case <-ctx.Done():
			flush()
			return
		case <-t.C:
			flush()
		}
	}
}

// requeue merges a failed flush back.
func (m *Miner) requeue(ts []store.PatternTemplate, cs []store.PatternCount) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, st := range ts {
		if t := m.templates[st.ID]; t != nil {
			m.dirty[st.ID] = t
		}
	}
	for _, c := range cs {
		m.counts[countKey{minute: c.Minute, id: c.ID}] += c.Count
	}
}
