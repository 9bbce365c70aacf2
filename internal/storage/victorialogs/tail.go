package victorialogs

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/wirelog/wirelog/internal/event"
)

// tailSeen is how many recent ids Follow remembers to drop replays.
const tailSeen = 1 << 16

// Follow implements storage.Tailer with VictoriaLogs' live tail
// (/select/logsql/tail): every newly stored row once, reconnecting with
// backoff when the stream breaks, until ctx ends. A tail reads one
// account, so there is one stream per account (--store-tenants); the API's
// tail hub then gives each subscriber its own tenant's events.
func (s *Store) Follow(ctx context.Context, publish func([]event.Event)) error {
	seen := make(map[string]struct{}, tailSeen)
	ring := make([]string, 0, tailSeen)
	var mu sync.Mutex
	each := func(e event.Event, id string) {
		mu.Lock()
		defer mu.Unlock()
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
	}
	var wg sync.WaitGroup
	for _, a := range s.accounts() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.followAccount(inAccount(ctx, a), each)
		}()
	}
	wg.Wait()
	return nil
}

// followAccount follows the account of ctx until ctx ends.
func (s *Store) followAccount(ctx context.Context, each func(event.Event, string)) {
	backoff := s.opts.RetryBackoff
	for {
		start := time.Now()
		err := s.followOnce(ctx, each)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = s.opts.RetryBackoff
		}
		s.log.Warn("live tail from VictoriaLogs broke; reconnecting", "account", s.accountIn(ctx), "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
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
	setAccount(req.Header, s.accountIn(ctx))
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
