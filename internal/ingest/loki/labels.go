package loki

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

type label struct{ name, value string }

// maxLabels bounds the labels of one stream (Loki's default
// max_label_names_per_series is 15; senders of more are misconfigured, but
// we only refuse what would make a stream absurdly costly).
const maxLabels = 64

// parseLabels reads a stream's label string as Promtail and Alloy write it:
// {name="value", other="va\"lue"}. Names follow Prometheus' rules; values
// are Go-quoted strings.
func parseLabels(dst []label, s string) ([]label, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return dst, errors.New(`want {name="value", …}`)
	}
	s = strings.TrimSpace(s[1 : len(s)-1])
	for len(s) > 0 {
		i := 0
		for i < len(s) && isNameChar(s[i], i == 0) {
			i++
		}
		if i == 0 {
			return dst, fmt.Errorf("expected a label name at %q", short(s))
		}
		name := s[:i]
		s = strings.TrimSpace(s[i:])
		if len(s) == 0 || s[0] != '=' {
			return dst, fmt.Errorf("expected = after label %s", name)
		}
		s = strings.TrimSpace(s[1:])
		if len(s) == 0 || s[0] != '"' {
			return dst, fmt.Errorf("expected a quoted value for label %s", name)
		}
		end := 1
		esc := false
		for ; end < len(s); end++ {
			if esc {
				esc = false
				continue
			}
			if s[end] == '\\' {
				esc = true
			} else if s[end] == '"' {
				break
			}
		}
		if end >= len(s) {
			return dst, fmt.Errorf("unterminated value for label %s", name)
		}
		q := s[:end+1]
		value := q[1 : len(q)-1]
		if strings.IndexByte(value, '\\') >= 0 {
			v, err := strconv.Unquote(q)
			if err != nil {
				return dst, fmt.Errorf("value of label %s: %v", name, err)
			}
			value = v
		}
		if len(dst) >= maxLabels {
			return dst, fmt.Errorf("more than %d labels", maxLabels)
		}
		dst = append(dst, label{name, value})
		s = strings.TrimSpace(s[end+1:])
		if len(s) > 0 {
			if s[0] != ',' {
				return dst, fmt.Errorf("expected , after label %s", name)
			}
			s = strings.TrimSpace(s[1:])
		}
	}
	return dst, nil
}

func isNameChar(c byte, first bool) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || (!first && '0' <= c && c <= '9')
}
