package victorialogs

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/event"
)

// tailSeen is how many recent ids Follow remembers to drop replays.
const tailSeen = 1 << 16

// Follow implements storage.Tailer with VictoriaLogs' live tail
// (/select/logsql/tail): every newly stored row once, reconnecting with
// backoff when the stream breaks, until ctx ends.
func (s *Store) Follow(ctx context.Context, publish func([]event.Event)) error {
	seen := make(map[string]struct{}, tailSeen)
	ring := make([]string, 0, tailSeen)
	backoff := s.opts.RetryBackoff
	for {
		start := time.Now()
		err := s.followOnce(ctx, func(e event.Event, id string) {
			if _, dup := seen[id]; dup {
				s.m.dupsDropped.WithLabelValues("tail").Inc()
				return
			}
			if len(ring) == tailSeen {
				delete(seen, ring[0])
				ring = ring[1:]
			}
			seen[id] = struct{}{}
			ring = append(ring, id)
			publish([]event.Event{e})
		})
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			backoff = s.opts.RetryBackoff
		}
		s.log.Warn("live tail from VictoriaLogs broke; reconnecting", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, MaxRetryBackoff)
	}
}

func (s *Store) followOnce(ctx context.Context, each func(event.Event, string)) error {
	form := url.Values{"query": {"* | fields " + resultFields}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base.String()+"/select/logsql/tail?"+form.Encode(), nil)
	if err != nil {
		return err
	}
	s.setTenant(req.Header)
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("VictoriaLogs tail answered %s", resp.Status)
	}
	var p fastjson.Parser
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		v, err := p.ParseBytes(sc.Bytes())
		if err != nil {
			continue
		}
		se, err := storedEvent(v)
		if err != nil {
			continue
		}
		lvl, _ := event.ParseLevel(se.Level)
		e := event.Event{Time: se.Time, Service: se.Service, Level: lvl, Message: se.Message, Host: se.Host,
			TraceID: se.TraceID, SpanID: se.SpanID, Tenant: se.Tenant, Attrs: se.Attrs}
		each(e, fmt.Sprintf("%s/%d/%d", se.Topic, se.Partition, se.Offset))
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("VictoriaLogs closed the tail stream")
}
