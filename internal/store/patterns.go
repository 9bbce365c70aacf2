package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Pattern defaults.
const (
	// DefaultPatternsLimit and MaxPatternsLimit bound PatternsRequest.Limit.
	DefaultPatternsLimit = 100
	MaxPatternsLimit     = 1000
	// PatternSparkBuckets is how many points each pattern's sparkline has.
	PatternSparkBuckets = 30
	// patternRetentionEvery is how often WritePatterns deletes counts older
	// than the store's retention.
	patternRetentionEvery = time.Hour
)

// latestPatterns is the patterns view with one row per id: the store keeps
// its tables in two twin databases (store.go) and WritePatterns replaces a
// template in the twin it writes, so the other may still hold the previous
// version; the one seen last is current.
const latestPatterns = `(SELECT * FROM patterns QUALIFY row_number() OVER (PARTITION BY id ORDER BY last_seen DESC, length(template)) = 1)`

// patternSchema: patterns holds each mined template once (replaced, by
// delete and insert, when Drain generalises it; no primary key, since
// DuckDB's per-row upserts on an indexed table cost far more memory than a
// bulk delete and insert); pattern_counts holds how many events matched each
// template per minute, appended by every flush of the miner and summed by
// queries. regex is the template as an RE2 expression over the message, so
// Explore can include or exclude a pattern's lines.
var patternSchema = []string{
	`CREATE TABLE IF NOT EXISTS patterns (
		id BIGINT NOT NULL,
		service VARCHAR NOT NULL,
		template VARCHAR NOT NULL,
		regex VARCHAR NOT NULL,
		first_seen TIMESTAMP NOT NULL,
		last_seen TIMESTAMP NOT NULL,
		tenant VARCHAR NOT NULL DEFAULT ''
	)`,
	`CREATE TABLE IF NOT EXISTS pattern_counts (
		minute BIGINT NOT NULL,
		id BIGINT NOT NULL,
		count BIGINT NOT NULL
	)`,
}

func init() { schema = append(schema, patternSchema...) }

// PatternTemplate is one mined template as the miner hands it to the store.
type PatternTemplate struct {
	ID        int64
	Tenant    string
	Service   string
	Template  string
	Regex     string
	FirstSeen time.Time
	LastSeen  time.Time
}

// PatternCount is how many events matched template ID in one minute.
type PatternCount struct {
	Minute int64 // unix seconds / 60
	ID     int64
	Count  int64
}

// WritePatterns upserts changed templates and appends counts, in one
// transaction on the writer connection.
func (s *Store) WritePatterns(ctx context.Context, templates []PatternTemplate, counts []PatternCount) error {
	if len(templates) == 0 && len(counts) == 0 {
		return nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	tx, err := s.wconn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write patterns: begin: %w", err)
	}
	defer tx.Rollback()
	for i := 0; i < len(templates); i += 500 {
		part := templates[i:min(i+500, len(templates))]
		ids := make([]string, len(part))
		var b strings.Builder
		args := make([]any, 0, 7*len(part))
		b.WriteString("INSERT INTO patterns VALUES ")
		for j, t := range part {
			ids[j] = strconv.FormatInt(t.ID, 10)
			if j > 0 {
				b.WriteByte(',')
			}
			n := len(args)
			fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7)
			args = append(args, t.ID, validString(t.Service), validString(t.Template), t.Regex, t.FirstSeen.UTC(), t.LastSeen.UTC(), validString(t.Tenant))
		}
		// ids are integers formatted here, never caller text.
		if _, err := tx.ExecContext(ctx, `DELETE FROM patterns WHERE id IN (`+strings.Join(ids, ",")+`)`); err != nil {
			return fmt.Errorf("replace patterns: %w", err)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("write patterns: %w", err)
		}
	}
	for i := 0; i < len(counts); i += 500 {
		part := counts[i:min(i+500, len(counts))]
		var b strings.Builder
		args := make([]any, 0, 3*len(part))
		b.WriteString("INSERT INTO pattern_counts VALUES ")
		for j, c := range part {
			if j > 0 {
				b.WriteByte(',')
			}
			n := len(args)
			fmt.Fprintf(&b, "($%d, $%d, $%d)", n+1, n+2, n+3)
			args = append(args, c.Minute, c.ID, c.Count)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("write pattern counts: %w", err)
		}
	}
	if s.opts.Retention > 0 && time.Since(s.patternsPruned) > patternRetentionEvery {
		cut := time.Now().Add(-s.opts.Retention).Unix() / 60
		if _, err := tx.ExecContext(ctx, `DELETE FROM pattern_counts WHERE minute < $1`, cut); err != nil {
			return fmt.Errorf("expire pattern counts: %w", err)
		}
		s.patternsPruned = time.Now()
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write patterns: commit: %w", err)
	}
	return nil
}

// LoadPatterns returns every stored template, so a restarted miner keeps
// their ids.
func (s *Store) LoadPatterns(ctx context.Context) ([]PatternTemplate, error) {
	var out []PatternTemplate
	err := s.query(ctx, "patterns", `SELECT id, tenant, service, template, regex, first_seen, last_seen FROM `+latestPatterns+` ORDER BY id`, nil,
		func(rows *sql.Rows) error {
			var t PatternTemplate
			if err := rows.Scan(&t.ID, &t.Tenant, &t.Service, &t.Template, &t.Regex, &t.FirstSeen, &t.LastSeen); err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	return out, err
}

// PatternsRequest selects templates seen in [From, To) (both required),
// optionally of one service and one tenant (templates are mined per tenant
// and service), the Limit most frequent first.
type PatternsRequest struct {
	From, To time.Time
	Service  string
	Tenant   string
	Limit    int
}

// Pattern is one template with its count in the window.
type Pattern struct {
	ID        string    `json:"id"`
	Service   string    `json:"service"`
	Template  string    `json:"template"`
	Count     int64     `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Sparkline is the count per StepSeconds bucket over the window.
	Sparkline []int64 `json:"sparkline"`
}

// PatternsResult is the answer of Patterns. Counts are per minute, so the
// window is widened to whole minutes.
type PatternsResult struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	StepSeconds int64     `json:"step_seconds"`
	Patterns    []Pattern `json:"patterns"`
}

// Patterns returns the most frequent templates in the window.
func (s *Store) Patterns(ctx context.Context, req PatternsRequest) (*PatternsResult, error) {
	limit := req.Limit
	switch {
	case limit == 0:
		limit = DefaultPatternsLimit
	case limit < 0 || limit > MaxPatternsLimit:
		return nil, badField("limit", "%d is out of range 1..%d", limit, MaxPatternsLimit)
	}
	if req.From.IsZero() || req.To.IsZero() || !req.To.After(req.From) {
		return nil, badField("to", "from and to are required, to after from")
	}
	fromMin := floorDiv(req.From.Unix(), 60)
	toMin := floorDiv(secCeil(req.To)+59, 60)
	span := toMin - fromMin
	buckets := int64(min(PatternSparkBuckets, span))
	stepMin := (span + buckets - 1) / buckets
	res := &PatternsResult{From: time.Unix(fromMin*60, 0).UTC(), To: time.Unix(toMin*60, 0).UTC(), StepSeconds: stepMin * 60, Patterns: []Pattern{}}
	var w where
	w.add("c.minute >= ?", fromMin)
	w.add("c.minute < ?", toMin)
	if req.Service != "" {
		w.add("p.service = ?", req.Service)
	}
	if req.Tenant != "" {
		w.add("p.tenant = ?", req.Tenant)
	}
	args := append(w.args, limit, fromMin, stepMin)
	n := len(w.args)
	q := `WITH top AS (
			SELECT c.id, sum(c.count)::BIGINT AS total FROM pattern_counts c JOIN ` + latestPatterns + ` p ON p.id = c.id` + w.String() + `
			GROUP BY c.id ORDER BY total DESC, c.id LIMIT $` + strconv.Itoa(n+1) + `)
		SELECT t.id, p.service, p.template, t.total, p.first_seen, p.last_seen,
			((c.minute - $` + strconv.Itoa(n+2) + `) // $` + strconv.Itoa(n+3) + `)::BIGINT AS b, sum(c.count)::BIGINT
		FROM top t JOIN ` + latestPatterns + ` p ON p.id = t.id JOIN pattern_counts c ON c.id = t.id` + strings.Replace(w.String(), " WHERE ", " WHERE ", 1) + `
		GROUP BY ALL ORDER BY t.total DESC, t.id, b`
	idx := map[int64]int{}
	err := s.query(ctx, "patterns", q, args, func(rows *sql.Rows) error {
		var id, total, b, c int64
		var p Pattern
		if err := rows.Scan(&id, &p.Service, &p.Template, &total, &p.FirstSeen, &p.LastSeen, &b, &c); err != nil {
			return err
		}
		i, ok := idx[id]
		if !ok {
			i = len(res.Patterns)
			idx[id] = i
			p.ID, p.Count = strconv.FormatInt(id, 10), total
			p.FirstSeen, p.LastSeen = p.FirstSeen.UTC(), p.LastSeen.UTC()
			p.Sparkline = make([]int64, buckets)
			res.Patterns = append(res.Patterns, p)
		}
		if b >= 0 && b < buckets {
			res.Patterns[i].Sparkline[b] += c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
