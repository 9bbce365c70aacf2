package syslog

import (
	"bytes"
	"time"

	"github.com/wirelog/wirelog/internal/event"
)

// parse5424 reads what follows "<PRI>VERSION SP":
//
//	TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]
//
// Field lengths are not enforced (senders exceed them); a missing field,
// a bad timestamp or malformed structured data is an error.
func (p *Parser) parse5424(b []byte, recv time.Time, e *event.Event, a *attrs, pri int) error {
	e.Level = severityLevel[pri&7]
	a.priority(pri)

	// TIMESTAMP
	if len(b) >= 2 && b[0] == '-' && b[1] == ' ' {
		e.Time = recv
		b = b[2:]
	} else {
		t, n, ok := parseRFC3339(b)
		if !ok || n >= len(b) || b[n] != ' ' {
			return ErrTimestamp
		}
		e.Time = t
		b = b[n+1:]
	}
	var host, app, procid, msgid []byte
	var ok bool
	if host, b, ok = field(b); !ok {
		return ErrHeader
	}
	if app, b, ok = field(b); !ok {
		return ErrHeader
	}
	if procid, b, ok = field(b); !ok {
		return ErrHeader
	}
	if msgid, b, ok = field(b); !ok {
		return ErrHeader
	}
	e.Host = nilvalue(host)
	e.Service = nilvalue(app)
	if s := nilvalue(procid); s != "" {
		a.lit("procid", s)
	}
	if s := nilvalue(msgid); s != "" {
		a.lit("msgid", s)
	}

	// STRUCTURED-DATA
	if len(b) == 0 {
		return ErrStructuredData
	}
	if b[0] == '-' {
		b = b[1:]
	} else {
		var err error
		if b, err = p.structuredData(b, a); err != nil {
			return err
		}
	}

	// MSG
	if len(b) > 0 {
		if b[0] != ' ' {
			return ErrStructuredData
		}
		b = b[1:]
		if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF { // BOM: MSG-UTF8
			b = b[3:]
		}
		e.Message = str(b)
		p.keyValues(b, e, a, true)
	}
	e.Attrs = a.close()
	return nil
}

// field returns the header field up to the next space and the rest after
// it; ok is false when the field is empty or no space follows.
func field(b []byte) (f, rest []byte, ok bool) {
	i := bytes.IndexByte(b, ' ')
	if i <= 0 {
		return nil, b, false
	}
	return b[:i], b[i+1:], true
}

func nilvalue(f []byte) string {
	if len(f) == 1 && f[0] == '-' {
		return ""
	}
	return str(f)
}

// structuredData reads one or more SD-ELEMENTs,
//
//	"[" SD-ID *(SP PARAM-NAME "=" %d34 PARAM-VALUE %d34) "]"
//
// into attrs.sd as {"SD-ID":{"PARAM-NAME":"value",…},…}. In PARAM-VALUE,
// \" \\ and \] stand for the character; any other backslash is literal
// (RFC 5424 §6.3.3). It returns what follows the last element.
func (p *Parser) structuredData(b []byte, a *attrs) ([]byte, error) {
	outer := a.open("sd")
	for len(b) > 0 && b[0] == '[' {
		b = b[1:]
		// SD-ID: up to SP or ']'; '=', '"' and ']' are not allowed in names.
		i := 0
		for i < len(b) && !sdNameEnd[b[i]] {
			i++
		}
		if i == 0 || i == len(b) || b[i] == '=' || b[i] == '"' {
			return b, ErrStructuredData
		}
		inner := a.open(str(b[:i]))
		b = b[i:]
		for len(b) > 0 && b[0] == ' ' {
			b = b[1:]
			// PARAM-NAME "=" %d34
			j := 0
			for j < len(b) && !sdNameEnd[b[j]] {
				j++
			}
			if j == 0 || j+1 >= len(b) || b[j] != '=' || b[j+1] != '"' {
				return b, ErrStructuredData
			}
			a.key(str(b[:j]))
			b = b[j+2:]
			// PARAM-VALUE up to the closing unescaped quote.
			k := bytes.IndexByte(b, '"')
			if k < 0 {
				return b, ErrStructuredData
			}
			if bytes.IndexByte(b[:k], '\\') < 0 {
				a.b = appendString(a.b, str(b[:k]))
			} else {
				for k = 0; k < len(b) && b[k] != '"'; k++ {
					if b[k] == '\\' {
						k++
					}
				}
				if k >= len(b) {
					return b, ErrStructuredData
				}
				a.b = appendString(a.b, str(p.unescape(b[:k])))
			}
			b = b[k+1:]
		}
		if len(b) == 0 || b[0] != ']' {
			return b, ErrStructuredData
		}
		b = b[1:]
		a.shut(inner)
	}
	a.shut(outer)
	return b, nil
}

// sdNameEnd marks the bytes that end an SD-NAME (RFC 5424 §6.3.2).
var sdNameEnd = [256]bool{' ': true, ']': true, '=': true, '"': true}

// unescape resolves \" \\ \] in v into the parser's scratch buffer.
func (p *Parser) unescape(v []byte) []byte {
	s := p.scratch[:0]
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			switch v[i+1] {
			case '"', '\\', ']':
				i++
			}
		}
		s = append(s, v[i])
	}
	p.scratch = s
	return s
}
