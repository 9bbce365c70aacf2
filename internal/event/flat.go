package event

import (
	"bytes"
	"encoding/binary"
	"time"
)

// The flat decoder.
//
// Nearly every line shippers and applications send is one flat object whose
// values are strings without escapes, numbers, true, false or null. For
// such a line fastjson's parse tree is work done twice: the line is
// tokenised into values, then the values are visited to fill the event and
// to re-encode the attributes. decodeFlat does both in one pass over the
// bytes, with no tree. It accepts only what it decodes exactly as the tree
// decoder does, and hands everything else back: a nested value, a
// backslash in a string, a number strict JSON does not allow, a scalar
// where a field wants a string, a field value that does not parse, more
// members than --max-attributes, and every syntax error. The tree decoder
// then decodes or refuses the line with its own words, so one line has one
// result whichever path took it (FuzzDecodeFlat checks that).

// decodeFlat decodes line into e when it is a flat object of plain values
// (above) and reports whether it did. When it did not, e and d hold partial
// work that decodeTree resets.
func (d *Decoder) decodeFlat(line []byte, arrival time.Time, e *Event) bool {
	e.Reset()
	d.attrs = d.attrs[:0]
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return false
	}
	i = skipSpace(line, i+1)
	var seen [8]bool // as in decodeTree
	members := 0
	if i < len(line) && line[i] == '}' {
		i++
	} else {
		for {
			if i >= len(line) || line[i] != '"' {
				return false
			}
			key, next, ok := plainString(line, i+1)
			if !ok {
				return false
			}
			i = skipSpace(line, next)
			if i >= len(line) || line[i] != ':' {
				return false
			}
			i = skipSpace(line, i+1)
			if i >= len(line) {
				return false
			}
			// The value: for a string its content, else its literal text.
			var val []byte
			str := false
			switch c := line[i]; {
			case c == '"':
				if val, next, ok = plainString(line, i+1); !ok {
					return false
				}
				str = true
			case c == '-' || (c >= '0' && c <= '9'):
				// fastjson's number token is the longest run of these
				// bytes; the tree decoder keeps one strict JSON does not
				// allow as a string, which is left to it.
				next = i + 1
				for next < len(line) && isNumberByte(line[next]) {
					next++
				}
				if val = line[i:next]; !validNumber(val) {
					return false
				}
			case c == 't' && bytes.HasPrefix(line[i:], litTrue):
				val, next = litTrue, i+len(litTrue)
			case c == 'f' && bytes.HasPrefix(line[i:], litFalse):
				val, next = litFalse, i+len(litFalse)
			case c == 'n' && bytes.HasPrefix(line[i:], litNull):
				val, next = litNull, i+len(litNull)
			default: // an object, an array, or not JSON
				return false
			}
			members++
			if d.MaxAttributes > 0 && members > d.MaxAttributes {
				return false // the tree decoder says which limit
			}
			k := b2s(key)
			slot, ck := slotOf(k)
			if slot < 0 || (seen[slot] && ck != k) {
				d.appendFlatAttr(key, val, str)
			} else {
				// Numbers and literals in a field (an epoch ts, a pino
				// level, a scalar message) are the tree decoder's.
				if !str || setString(e, slot, k, b2s(val)) != nil {
					return false
				}
				seen[slot] = true
			}
			i = skipSpace(line, next)
			if i >= len(line) {
				return false
			}
			if line[i] == ',' {
				i = skipSpace(line, i+1)
				continue
			}
			if line[i] != '}' {
				return false
			}
			i++
			break
		}
	}
	if skipSpace(line, i) != len(line) {
		return false
	}
	d.finish(e, arrival, seen[0])
	return true
}

var litTrue, litFalse, litNull = []byte("true"), []byte("false"), []byte("null")

// appendFlatAttr appends the member key: val to the attributes, encoded as
// appendAttr encodes the same member from the parse tree.
func (d *Decoder) appendFlatAttr(key, val []byte, str bool) {
	d.appendAttrKey(key)
	if str {
		d.attrs = AppendString(d.attrs, b2s(val))
	} else {
		d.attrs = append(d.attrs, val...)
	}
}

// plainString returns the content of the string whose opening quote is
// just before line[start], and the index after its closing quote. ok is
// false when it has no closing quote, holds a backslash (an escape, which
// the tree decoder unescapes) or a control character JSON does not allow.
func plainString(line []byte, start int) (s []byte, next int, ok bool) {
	// Eight bytes at a time to the word holding the closing quote (or a
	// backslash): values are short, and two IndexByte calls cost more.
	i := start
	for ; i+8 <= len(line); i += 8 {
		if x := binary.LittleEndian.Uint64(line[i:]); hasQuoteOrBackslash(x) || hasByteBelow20(x) {
			break
		}
	}
	for ; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"':
			return line[start:i], i + 1, true
		case c == '\\':
			return nil, 0, false
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
			return nil, 0, false // Decode refuses it (ControlByte)
		}
	}
	return nil, 0, false
}

// hasQuoteOrBackslash reports whether any byte of x is '"' or '\\' (the
// has-zero-byte trick, exact for "any byte").
func hasQuoteOrBackslash(x uint64) bool {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	q := x ^ ('"' * ones)
	b := x ^ ('\\' * ones)
	return ((q-ones)&^q|(b-ones)&^b)&high != 0
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// isNumberByte reports whether c continues a number token (as fastjson
// reads one).
func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == 'e' || c == 'E' || c == '+'
}
