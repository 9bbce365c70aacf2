// Package patterns mines log templates from messages as they are stored,
// with Drain (He et al., "Drain: An Online Log Parsing Approach with Fixed
// Depth Tree", ICWS 2017), the algorithm behind drain3 and Loki's patterns.
//
// Templates are mined per tenant and service. A message is split on whitespace; tokens that carry a digit are masked
// (whole token "<*>", or "key=<*>" for key=value) before the tree is walked,
// since ids, counts and durations are what make otherwise equal lines
// differ. The tree's first level is the service and the token count, the
// next levels the first Depth-2 tokens; a leaf holds templates, and a message
// joins the most similar one when at least SimThreshold of the positions
// agree (the positions that differ become <*>), else it starts a new one.
//
// Cost: most lines repeat a masked shape already seen, so the miner first
// hashes the masked token sequence (one pass, no allocation) and looks it up
// in a bounded cache of shapes → template; only a new shape walks the tree.
//
// Memory is bounded: at most MaxTemplates templates (the least recently
// matched one is evicted when a new one would exceed it), at most
// MaxChildren children per tree node, MaxTokens tokens per template, and a
// shape cache of at most ShapeCache entries (cleared when full).
package patterns

import (
	"hash/maphash"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/store"
)

// Defaults.
const (
	// DefaultMaxTemplates caps the templates kept in memory (and so the ids
	// handed out per process lifetime before eviction starts).
	DefaultMaxTemplates = 5000
	// DefaultDepth is Drain's tree depth (drain3's default 4).
	DefaultDepth = 4
	// DefaultSimThreshold is the share of equal tokens a message needs to
	// join a template (drain3's default 0.4).
	DefaultSimThreshold = 0.4
	// DefaultMaxChildren bounds the children of one tree node; further
	// tokens go to the wildcard child.
	DefaultMaxChildren = 100
	// MaxTokens is the longest template; the rest of a longer message is
	// one trailing wildcard that matches anything.
	MaxTokens = 64
	// ShapeCache bounds the masked-shape cache.
	ShapeCache = 1 << 16
	// Wildcard marks a variable token in a template.
	Wildcard = "<*>"
	// rest is the trailing wildcard of a template cut at MaxTokens.
	rest = "<…>"
)

// Options tune a Miner; zero fields take the defaults.
type Options struct {
	MaxTemplates int
	Depth        int
	SimThreshold float64
	MaxChildren  int
}

// Miner is an incremental Drain miner. It is safe for concurrent use: the
// processor calls Observe, a flusher calls Flush.
type Miner struct {
	opts Options
	mu   sync.Mutex
	seed maphash.Seed

	nextID    int64
	roots     map[rootKey]*node
	templates map[int64]*template
	shapes    map[uint64]*template
	// lru: a doubly linked list of templates, most recently matched first.
	head, tail *template

	counts map[countKey]int64
	dirty  map[int64]*template

	toks []string // scratch
}

type rootKey struct {
	tenant, service string
	n               int
}

type countKey struct {
	minute int64
	id     int64
}

type node struct {
	children map[string]*node
	leaf     []*template
}

type template struct {
	id         int64
	tenant     string
	service    string
	tokens     []string
	first      time.Time
	last       time.Time
	leaf       *node
	prev, next *template
}

// New returns an empty miner.
func New(opts Options) *Miner {
	if opts.MaxTemplates <= 0 {
		opts.MaxTemplates = DefaultMaxTemplates
	}
	if opts.Depth < 3 {
		opts.Depth = DefaultDepth
	}
	if opts.SimThreshold <= 0 {
		opts.SimThreshold = DefaultSimThreshold
	}
	if opts.MaxChildren <= 0 {
		opts.MaxChildren = DefaultMaxChildren
	}
	return &Miner{
		opts: opts, seed: maphash.MakeSeed(), nextID: 1,
		roots: map[rootKey]*node{}, templates: map[int64]*template{}, shapes: map[uint64]*template{},
		counts: map[countKey]int64{}, dirty: map[int64]*template{},
	}
}

// hasDigit reports whether s has an ASCII digit.
func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			return true
		}
	}
	return false
}

// mask returns the token as the tree sees it.
func mask(tok string) string {
	if !hasDigit(tok) {
		return tok
	}
	if k, _, ok := strings.Cut(tok, "="); ok && k != "" && !hasDigit(k) {
		return k + "=" + Wildcard
	}
	return Wildcard
}

func isSpace(c byte) bool { return byteClass[c]&classSpace != 0 }

// Byte classes for shape's single pass over a message: which bytes end a
// token, which make it masked, and where a key=value token's key ends.
// A table lookup per byte instead of six compares, and one pass per token
// instead of three (find its end, look for a digit, look for '='): the
// miner sees every stored event, and this loop was most of its time.
const (
	classSpace = 1 << iota
	classDigit
	classEquals
)

var byteClass = func() (t [256]uint8) {
	for _, c := range []byte{' ', '\t', '\n', '\r', '\v', '\f'} {
		t[c] = classSpace
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = classDigit
	}
	t['='] = classEquals
	return t
}()

// shape hashes the tenant, the service and the masked token sequence of
// msg without allocating.
func (m *Miner) shape(tenant, service, msg string) uint64 {
	var h maphash.Hash
	h.SetSeed(m.seed)
	h.WriteString(tenant)
	h.WriteByte(0)
	h.WriteString(service)
	h.WriteByte(0)
	n := 0
	for i := 0; i < len(msg); {
		for i < len(msg) && isSpace(msg[i]) {
			i++
		}
		if i >= len(msg) {
			break
		}
		// One pass to the token's end: whether it has a digit, and
		// whether one comes before its first '=' (then the key is
		// masked too, as mask does).
		j, eq := i, -1
		var seen, keyDigit uint8
		for j < len(msg) {
			c := byteClass[msg[j]]
			if c&classSpace != 0 {
				break
			}
			if c&classEquals != 0 && eq < 0 {
				eq, keyDigit = j, seen
			}
			seen |= c
			j++
		}
		if n++; n > MaxTokens {
			h.WriteString(rest)
			break
		}
		tok := msg[i:j]
		switch {
		case seen&classDigit == 0:
			h.WriteString(tok)
		case eq > i && keyDigit&classDigit == 0:
			h.WriteString(msg[i:eq])
			h.WriteString("=\x01")
		default:
			h.WriteByte(1)
		}
		h.WriteByte(0)
		i = j
	}
	return h.Sum64()
}

// Observe mines a batch of stored events; it keeps none of them.
func (m *Miner) Observe(events []event.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range events {
		m.observe(&events[i])
	}
}

func (m *Miner) observe(e *event.Event) {
	sh := m.shape(e.Tenant, e.Service, e.Message)
	t := m.shapes[sh]
	if t == nil {
		t = m.match(e.Tenant, e.Service, e.Message)
		if len(m.shapes) >= ShapeCache {
			clear(m.shapes)
		}
		m.shapes[sh] = t
	}
	ts := e.Time
	if t.first.IsZero() || ts.Before(t.first) {
		t.first = ts
		m.dirty[t.id] = t
	}
	if ts.After(t.last) {
		// last_seen is written at most once per flush per template.
		t.last = ts
		m.dirty[t.id] = t
	}
	m.counts[countKey{minute: floorMinute(ts), id: t.id}]++
	m.touch(t)
}

func floorMinute(t time.Time) int64 {
	s := t.Unix()
	if s < 0 && s%60 != 0 {
		return s/60 - 1
	}
	return s / 60
}

// tokens splits and masks msg into m.toks.
func (m *Miner) tokens(msg string) []string {
	m.toks = m.toks[:0]
	for _, f := range strings.Fields(msg) {
		if len(m.toks) == MaxTokens {
			m.toks = append(m.toks, rest)
			break
		}
		m.toks = append(m.toks, mask(f))
	}
	return m.toks
}

// match runs Drain for a message whose shape is new.
func (m *Miner) match(tenant, service, msg string) *template {
	toks := m.tokens(msg)
	leaf := m.leaf(tenant, service, toks, true)
	var best *template
	bestSim := -1.0
	for _, t := range leaf.leaf {
		if s := similarity(t.tokens, toks); s > bestSim {
			best, bestSim = t, s
		}
	}
	if best != nil && bestSim >= m.opts.SimThreshold {
		changed := false
		for i, tok := range toks {
			if best.tokens[i] != tok && best.tokens[i] != Wildcard {
				best.tokens[i] = Wildcard
				changed = true
			}
		}
		if changed {
			m.dirty[best.id] = best
		}
		return best
	}
	t := &template{id: m.nextID, tenant: tenant, service: service, tokens: append([]string(nil), toks...), leaf: leaf}
	m.nextID++
	leaf.leaf = append(leaf.leaf, t)
	m.templates[t.id] = t
	m.dirty[t.id] = t
	m.pushFront(t)
	if len(m.templates) > m.opts.MaxTemplates {
		m.evict(m.tail)
	}
	return t
}

// similarity is Drain's simSeq: the share of positions with equal tokens
// (a template's wildcard counts as equal).
func similarity(tpl, toks []string) float64 {
	if len(toks) == 0 {
		return 1
	}
	eq := 0
	for i, t := range toks {
		if tpl[i] == t || tpl[i] == Wildcard {
			eq++
		}
	}
	return float64(eq) / float64(len(toks))
}

// leaf walks (and, with create, grows) the tree to the leaf for toks.
func (m *Miner) leaf(tenant, service string, toks []string, create bool) *node {
	key := rootKey{tenant, service, len(toks)}
	n := m.roots[key]
	if n == nil {
		n = &node{children: map[string]*node{}}
		m.roots[key] = n
	}
	for d := 0; d < m.opts.Depth-2 && d < len(toks); d++ {
		tok := toks[d]
		c := n.children[tok]
		if c == nil {
			if tok != Wildcard && len(n.children) >= m.opts.MaxChildren {
				tok = Wildcard
				c = n.children[tok]
			}
			if c == nil {
				c = &node{children: map[string]*node{}}
				n.children[tok] = c
			}
		}
		n = c
	}
	return n
}

func (m *Miner) pushFront(t *template) {
	t.prev, t.next = nil, m.head
	if m.head != nil {
		m.head.prev = t
	}
	m.head = t
	if m.tail == nil {
		m.tail = t
	}
}

func (m *Miner) unlink(t *template) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		m.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		m.tail = t.prev
	}
	t.prev, t.next = nil, nil
}

func (m *Miner) touch(t *template) {
	if m.head == t {
		return
	}
	m.unlink(t)
	m.pushFront(t)
}

func (m *Miner) evict(t *template) {
	m.unlink(t)
	delete(m.templates, t.id)
	if t.leaf != nil {
		l := t.leaf.leaf
		for i, x := range l {
			if x == t {
				t.leaf.leaf = append(l[:i], l[i+1:]...)
				break
			}
		}
	}
	// Shapes may point at t: drop them all (eviction is rare once the
	// templates of a workload are known).
	clear(m.shapes)
	// Counts already taken stay; the stored template keeps its id.
}

// Len is the number of templates in memory.
func (m *Miner) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.templates)
}

// Flush returns the templates that changed and the counts taken since the
// last Flush, and forgets the counts.
func (m *Miner) Flush() ([]store.PatternTemplate, []store.PatternCount) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := make([]store.PatternTemplate, 0, len(m.dirty))
	for _, t := range m.dirty {
		ts = append(ts, store.PatternTemplate{ID: t.id, Tenant: t.tenant, Service: t.service, Template: Template(t.tokens), Regex: Regex(t.tokens),
			FirstSeen: t.first, LastSeen: t.last})
	}
	cs := make([]store.PatternCount, 0, len(m.counts))
	for k, n := range m.counts {
		cs = append(cs, store.PatternCount{Minute: k.minute, ID: k.id, Count: n})
	}
	clear(m.dirty)
	clear(m.counts)
	return ts, cs
}

// Load puts stored templates back (after a restart), keeping their ids; new
// templates get ids above them.
func (m *Miner) Load(ts []store.PatternTemplate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, st := range ts {
		if st.ID >= m.nextID {
			m.nextID = st.ID + 1
		}
		toks := strings.Fields(st.Template)
		t := &template{id: st.ID, tenant: st.Tenant, service: st.Service, tokens: toks, first: st.FirstSeen, last: st.LastSeen}
		t.leaf = m.leaf(st.Tenant, st.Service, toks, true)
		t.leaf.leaf = append(t.leaf.leaf, t)
		m.templates[t.id] = t
		m.pushFront(t)
		if len(m.templates) > m.opts.MaxTemplates {
			m.evict(m.tail)
		}
	}
}

// Template is the display form: tokens joined by single spaces.
func Template(toks []string) string { return strings.Join(toks, " ") }

// Regex is an RE2 expression matching every message of the template: each
// wildcard part of a token matches any run of non-space characters, tokens
// are separated by whitespace, and a template cut at MaxTokens ends with
// anything.
func Regex(toks []string) string {
	var b strings.Builder
	b.WriteString(`\s*`)
	for i, t := range toks {
		if i > 0 {
			b.WriteString(`\s+`)
		}
		if t == rest {
			b.WriteString(`.*`)
			continue
		}
		parts := strings.Split(t, Wildcard)
		for j, p := range parts {
			if j > 0 {
				b.WriteString(`\S*`)
			}
			b.WriteString(regexp.QuoteMeta(p))
		}
	}
	b.WriteString(`\s*`)
	return "(?s)" + b.String()
}
