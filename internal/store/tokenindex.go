package store

// Free-text skip index (issue 12). A free-text search is a case-insensitive
// substring match on the message (contains(lower(message), lower(q))), which
// DuckDB can only answer by reading every message of the window: linear in
// the events (1.8 s for 24 h at 10M events on the table, 5.1 s on segments,
// docs/bench/store.md). Like VictoriaLogs' per-block bloom filters of tokens,
// the store keeps, for every block of the trace index (traceindex.go: the
// same blocks, time ranges, exactly-once cover and rebuild), a blocked bloom
// filter of the lower-cased words of the block's messages. A search whose
// text contains a whole word reads one 64-byte chunk of each block's token
// bloom and scans only the blocks that may hold the word.
//
// A word is a maximal run of ASCII letters, digits and '_' and of non-ASCII
// bytes. The substring semantics stay: the index can only rule blocks out
// for the words of q that are whole in every match, i.e. those with a
// delimiter on both sides inside q ("orders/77777 " → 77777; "timeout"
// alone could be part of "timeouts" and is not used), and only for words of
// ASCII letters and digits (Go and DuckDB lower-case those identically). A
// query without such a word, or whose words are common (in every block),
// scans as before: the index speeds up searches for rare words (ids, error
// codes), not for frequent ones — SearchNewest answers those from the newest
// seconds.

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Token index sizes.
const (
	// tokenBloomBits is the bits of token bloom per event of a full block.
	// Realistic messages hold about one rare word each (an order or user
	// id) beside common ones repeated in every message, so 16 bits per
	// event is 10-16 bits per distinct word: about 0.1-1% false "maybe"
	// answers with 8 probes; 2 bytes per event on disk.
	tokenBloomBits = 16
	// tokenBloomChunks is the 512-bit chunks of one block's token bloom.
	tokenBloomChunks = TraceBlockRows * tokenBloomBits / (traceChunkWords * 64)
	// tokenBloomProbes is the bits set per word: at 10-40 bits per
	// distinct word (16 per event, a few new words per event) 4 probes
	// give 0.01-2% false "maybe" answers, and each probe costs CPU on the
	// write path for every word of every message.
	tokenBloomProbes = 4
	// tokenFoldFill is the most bits of a folded token bloom that may be
	// set, as 1/tokenFoldFill of them: a sealed block's bloom is halved
	// (foldTokenBloom) while at most a quarter of its bits are set, where 4
	// probes answer "maybe" for ~0.4% of the words it does not hold. A
	// block of 10,000 events (a segment of ingest at 20k/s) then writes
	// ~500 rows instead of tokenBloomChunks; a full block of loadgen's
	// shape is not folded at all.
	tokenFoldFill = 4
	// tokenFoldedBase numbers the chunks of folded token blooms: chunk i of
	// a bloom folded to n = 2^j < tokenBloomChunks chunks is stored as
	// chunk tokenFoldedBase*(j+2)+i, so each size has its own numbers,
	// apart from the full size's [0, tokenBloomChunks), and a lookup tests
	// the one row of each size a word can be in with integer arithmetic
	// DuckDB runs inside the scan (tokenChunkTest). Chunk tokenFoldedBase
	// itself is the marker row of a folded block.
	tokenFoldedBase = tokenBloomChunks
	// tokenBloomLog is log2(tokenBloomChunks): a word's chunk in a bloom of
	// 2^j chunks is its full-size chunk >> (tokenBloomLog-j).
	tokenBloomLog = 11
	// maxQueryTokens bounds the words of one query the index tests.
	maxQueryTokens = 8
	// maxIndexRanges bounds the time ranges a search restricted by an index
	// turns into UNION ALL branches; more are covered by one range from the
	// first to the last (planning hundreds of branches costs more than it
	// skips).
	maxIndexRanges = 32
)

// tokenSchema is applied in both twins with the trace index's schema:
// token_bloom holds each sealed block's token bloom as trace_bloom holds its
// trace bloom (one row per non-zero 64-byte chunk). trace_blocks.tokens says
// whether a block has one: blocks written before this index did not, and a
// lookup keeps them (a scan, never a miss).
var tokenSchema = []string{
	`CREATE TABLE IF NOT EXISTS token_bloom (
		block BIGINT NOT NULL,
		chunk INTEGER NOT NULL,
		w0 BIGINT NOT NULL, w1 BIGINT NOT NULL, w2 BIGINT NOT NULL, w3 BIGINT NOT NULL,
		w4 BIGINT NOT NULL, w5 BIGINT NOT NULL, w6 BIGINT NOT NULL, w7 BIGINT NOT NULL
	)`,
	`ALTER TABLE trace_blocks ADD COLUMN IF NOT EXISTS tokens BOOLEAN DEFAULT false`,
}

// wordClass is 1 for the ASCII bytes of words (letters, digits, '_'), 2
// for non-ASCII bytes (part of words too), 0 for delimiters.
var wordClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			t[c] = 1
		case c >= utf8.RuneSelf:
			t[c] = 2
		}
	}
	return t
}()

// wordHash hashes a word 8 bytes at a time, each byte OR 0x20: ASCII upper
// case becomes lower case, lower case and digits stay, '_' becomes 0x7f
// (no other word byte does), so a word hashes alike in any ASCII case
// without a lower-cased copy. It is stored in the index: stable across
// releases.
func wordHash(w string) uint64 {
	h := uint64(len(w)) * 0x9e3779b97f4a7c15
	for len(w) >= 8 {
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		h = (h ^ (x | 0x2020202020202020)) * 0xff51afd7ed558ccd
		h ^= h >> 32
		w = w[8:]
	}
	if len(w) > 0 {
		var x uint64
		for i := 0; i < len(w); i++ {
			x |= uint64(w[i]|0x20) << (8 * i)
		}
		h = (h ^ x) * 0xff51afd7ed558ccd
		h ^= h >> 32
	}
	return h
}

// tokenKeyOf is where word hash h's bits are in a token bloom.
func tokenKeyOf(h uint64) traceKey {
	x := mix64(h ^ 0x7f4a7c159e3779b9)
	chunk, _ := bits.Mul64(x, tokenBloomChunks)
	return traceKey{chunk: int(chunk), a: uint32(x >> 7), b: uint32(x>>39) | 1}
}

// addText sets the bits of every word of msg in the token bloom tb
// (tokenBloomChunks × traceChunkWords words) without allocating for ASCII
// words; a word with non-ASCII bytes is lower-cased by strings.ToLower
// first (Unicode letters that lower-case to ASCII, like the Kelvin sign,
// must hash as their ASCII form).
func addText(tb []uint64, msg string) {
	start := -1
	var class uint8
	for i := 0; i < len(msg); i++ {
		c := wordClass[msg[i]]
		if c != 0 {
			if start < 0 {
				start, class = i, 0
			}
			class |= c
			continue
		}
		if start >= 0 {
			addWord(tb, msg[start:i], class)
			start = -1
		}
	}
	if start >= 0 {
		addWord(tb, msg[start:], class)
	}
}

func addWord(tb []uint64, word string, class uint8) {
	if class&2 != 0 {
		word = strings.ToLower(word)
	}
	k := tokenKeyOf(wordHash(word))
	k.set(tb[k.chunk*traceChunkWords:(k.chunk+1)*traceChunkWords], tokenBloomProbes)
}

// foldTokenBloom returns the sealed token bloom tb (tokenBloomChunks
// chunks) folded to the fewest chunks that keep at most 1/tokenFoldFill of
// its bits set, and how many chunks that is (tokenBloomChunks: tb itself,
// unchanged). A word's chunk in a bloom of n chunks is the top log2(n)
// bits of its key (tokenKeyOf), so chunk c of a bloom of n/2 chunks is
// chunks 2c and 2c+1 of the one of n ORed, and its probes stay where they
// were inside the chunk: folding loses no word, only precision. Small
// blocks (segments written every SegmentInterval at low rates) thereby
// store rows in proportion to their words rather than tokenBloomChunks
// each, and a lookup reads rows in proportion to the data, not to the
// number of segments. tb is not modified: an unsealed block goes on adding
// to it.
func foldTokenBloom(tb []uint64) ([]uint64, int) {
	n := len(tb) / traceChunkWords
	cur := tb
	for n > 1 {
		half := n / 2
		set := 0
		for c := 0; c < half; c++ {
			lo, hi := cur[2*c*traceChunkWords:(2*c+1)*traceChunkWords], cur[(2*c+1)*traceChunkWords:(2*c+2)*traceChunkWords]
			for w := range traceChunkWords {
				set += bits.OnesCount64(lo[w] | hi[w])
			}
		}
		if set*tokenFoldFill > half*traceChunkWords*64 {
			break
		}
		if n == len(tb)/traceChunkWords {
			cur = make([]uint64, half*traceChunkWords)
			for c := 0; c < half; c++ {
				for w := range traceChunkWords {
					cur[c*traceChunkWords+w] = tb[2*c*traceChunkWords+w] | tb[(2*c+1)*traceChunkWords+w]
				}
			}
		} else { // in place: chunk c is written after chunks 2c and 2c+1 were read
			for c := 0; c < half; c++ {
				for w := range traceChunkWords {
					cur[c*traceChunkWords+w] = cur[2*c*traceChunkWords+w] | cur[(2*c+1)*traceChunkWords+w]
				}
			}
			cur = cur[:half*traceChunkWords]
		}
		n = half
	}
	return cur, n
}

// tokenChunkNumber is the number under which a bloom of n chunks (a
// power of two) stores chunk i: i itself at full size, else
// tokenFoldedBase*(log2(n)+2)+i.
func tokenChunkNumber(n, i int) int {
	if n == tokenBloomChunks {
		return i
	}
	return tokenFoldedBase*(bits.Len(uint(n))+1) + i
}

// tokenChunkTest is the SQL condition on token_bloom.chunk that holds for
// the one row of each bloom size word key k can be in: its chunk at full
// size, or, for a folded bloom of 2^j chunks (stored from
// tokenFoldedBase*(j+2) on), the chunk k.chunk >> (tokenBloomLog-j). The
// numbers are written into the SQL: DuckDB evaluates it inside the scan
// of token_bloom, while an IN list of the 12 numbers became a join of
// every row (26 against 15 CPU ms per lookup at 100M events).
func tokenChunkTest(k traceKey) string {
	return fmt.Sprintf("(chunk = %[1]d OR (chunk >= %[2]d AND chunk %% %[3]d = (%[1]d >> (%[4]d - chunk // %[3]d))))",
		k.chunk, 2*tokenFoldedBase, tokenFoldedBase, tokenBloomLog+2)
}

// queryTokens returns the keys of the words of a free-text query that every
// match holds as whole words: ASCII letters, digits and '_' only, with a
// delimiter on both sides inside q. Empty: the index cannot help.
func queryTokens(q string) []traceKey {
	var keys []traceKey
	var hashes []uint64
	start := -1
	for i := 0; i <= len(q); i++ {
		var t uint8
		if i < len(q) {
			t = wordClass[q[i]]
		}
		if t != 0 {
			if start < 0 {
				start = i
			}
			continue
		}
		if start > 0 && i < len(q) { // a delimiter before and after
			word := q[start:i]
			if isASCIIWord(word) {
				h := wordHash(word)
				if !slices.Contains(hashes, h) && len(keys) < maxQueryTokens {
					hashes = append(hashes, h)
					keys = append(keys, tokenKeyOf(h))
				}
			}
		}
		start = -1
	}
	return keys
}

func isASCIIWord(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// tokenRanges returns the event-time ranges of the blocks whose token
// blooms may hold every key, merged and sorted, with the events those
// blocks hold; indexed is false when the index cannot answer (a twin
// written before the trace index existed): then the caller scans.
func (s *Store) tokenRanges(ctx context.Context, keys []traceKey) (ranges []tsRange, indexed bool, err error) {
	ix := &s.traces
	ix.mu.Lock()
	for i := range twins {
		if ix.unindexed[i] || ix.off {
			ix.mu.Unlock()
			return nil, false, nil
		}
		b := ix.open[i]
		if b == nil || b.rows == 0 {
			continue
		}
		all := b.tokens != nil
		for _, k := range keys {
			all = all && k.has(b.tokens[k.chunk*traceChunkWords:(k.chunk+1)*traceChunkWords], tokenBloomProbes)
		}
		if all || b.tokens == nil {
			ranges = append(ranges, tsRange{b.tsMin, b.tsMax, int64(b.rows)})
		}
	}
	ix.mu.Unlock()
	// Per twin: the blocks whose bloom has every probe bit of every word
	// ((w & mask) = mask in the word's row of the block's bloom size,
	// tokenChunkTest), and the blocks without a token bloom (written
	// before the index: tokens is false and no marker row says folded).
	var args []any
	var tests []string
	for _, k := range keys {
		var mask [traceChunkWords]uint64
		k.set(mask[:], tokenBloomProbes)
		test := tokenChunkTest(k)
		for i, m := range mask {
			if m != 0 {
				args = append(args, int64(m))
				test += fmt.Sprintf(" AND (w%d & $%d) = $%[2]d", i, len(args))
			}
		}
		tests = append(tests, test)
	}
	var branches []string
	for _, twin := range twins {
		var in []string
		for _, t := range tests {
			in = append(in, fmt.Sprintf("block IN (SELECT block FROM %s.main.token_bloom WHERE %s)", twin, t))
		}
		branches = append(branches, fmt.Sprintf(`SELECT ts_min, ts_max, "rows" FROM %[1]s.main.trace_blocks
			WHERE (NOT tokens AND block NOT IN (SELECT block FROM %[1]s.main.token_bloom WHERE chunk = %[2]d)) OR (%[3]s)`,
			twin, tokenFoldedBase, strings.Join(in, " AND ")))
	}
	err = s.query(ctx, "token_index", strings.Join(branches, " UNION ALL "), args, func(r *sql.Rows) error {
		var tr tsRange
		if err := r.Scan(&tr.from, &tr.to, &tr.rows); err != nil {
			return err
		}
		ranges = append(ranges, tr)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return mergeRanges(ranges), true, nil
}

// skipPlan is what the skip indexes say about a search: when indexed, its
// matches can only be in ranges (merged, sorted); otherwise it scans its
// window.
type skipPlan struct {
	ranges  []tsRange
	indexed bool
}

// planSearch asks the trace index (a trace id) or the token index (a text
// with whole words) where req's matches may be.
func (s *Store) planSearch(ctx context.Context, req SearchRequest) (skipPlan, error) {
	var p skipPlan
	var err error
	switch {
	case req.TraceID != "":
		p.ranges, p.indexed, err = s.traceRanges(ctx, req.TraceID)
	case req.Query != "":
		if keys := queryTokens(req.Query); len(keys) > 0 {
			p.ranges, p.indexed, err = s.tokenRanges(ctx, keys)
		}
	}
	if err != nil || !p.indexed {
		return skipPlan{}, err
	}
	return p, nil
}

// within returns the plan's ranges clipped to the window [from, to) (a zero
// end is open) and the events of the blocks they came from. More than
// maxIndexRanges become one range from the first to the last.
func (p *skipPlan) within(from, to time.Time) ([]tsRange, int64) {
	if !p.indexed {
		return nil, 0
	}
	var out []tsRange
	var rows int64
	for _, r := range p.ranges {
		if (!to.IsZero() && !r.from.Before(to)) || (!from.IsZero() && r.to.Before(from)) {
			continue
		}
		if !from.IsZero() && r.from.Before(from) {
			r.from = from
		}
		if !to.IsZero() && r.to.After(to) {
			r.to = to
		}
		out = append(out, r)
		rows += r.rows
	}
	if len(out) > maxIndexRanges {
		out = []tsRange{{from: out[0].from, to: out[len(out)-1].to, rows: rows}}
	}
	return out, rows
}
