package event

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseLevel maps the level spellings senders use onto the normalised levels:
// names and their common aliases in any case ("WARNING", "err", "crit",
// "informational"), syslog severities by name, and the numeric levels of
// pino/bunyan (10 trace … 60 fatal). ok is false for anything else.
func ParseLevel(s string) (Level, bool) {
	if len(s) > 16 {
		return LevelUnknown, false
	}
	var buf [16]byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(s)]) {
	case "trace", "trc", "finest", "verbose":
		return LevelTrace, true
	case "debug", "dbg", "fine", "finer", "debug1", "debug2":
		return LevelDebug, true
	case "info", "inf", "information", "informational", "notice", "ok":
		return LevelInfo, true
	case "warn", "warning", "wrn":
		return LevelWarn, true
	case "error", "err", "eror", "severe":
		return LevelError, true
	case "fatal", "critical", "crit", "alert", "emerg", "emergency", "panic", "dpanic":
		return LevelFatal, true
	}
	if n, err := strconv.Atoi(s); err == nil {
		return LevelFromNumber(float64(n))
	}
	return LevelUnknown, false
}

// LevelFromNumber maps pino/bunyan numeric levels (10 trace, 20 debug, 30
// info, 40 warn, 50 error, 60 fatal).
func LevelFromNumber(n float64) (Level, bool) {
	switch {
	case n >= 10 && n < 20:
		return LevelTrace, true
	case n >= 20 && n < 30:
		return LevelDebug, true
	case n >= 30 && n < 40:
		return LevelInfo, true
	case n >= 40 && n < 50:
		return LevelWarn, true
	case n >= 50 && n < 60:
		return LevelError, true
	case n >= 60 && n < 70:
		return LevelFatal, true
	}
	return LevelUnknown, false
}

// Bounds on timestamps a sender may give: before 1970 or after 2200 is a unit
// mistake, not a log line from that year.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

var errTimeRange = errors.New("timestamp outside 1970..2200 (wrong unit?)")

// TimeFromEpoch interprets an epoch number by magnitude, as log shippers do:
// below 1e11 seconds (fractions kept), below 1e14 milliseconds, below 1e17
// microseconds, otherwise nanoseconds.
func TimeFromEpoch(v float64) (time.Time, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return time.Time{}, errTimeRange
	}
	var t time.Time
	switch {
	case v < 1e11:
		sec, frac := math.Modf(v)
		t = time.Unix(int64(sec), int64(frac*1e9))
	case v < 1e14:
		t = time.UnixMilli(int64(v))
	case v < 1e17:
		t = time.UnixMicro(int64(v))
	case v < 9.2e18:
		t = time.Unix(0, int64(v))
	default:
		return time.Time{}, errTimeRange
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, errTimeRange
	}
	return t.UTC(), nil
}

// ParseTime accepts RFC 3339 (with or without fractional seconds, "Z" or an
// offset, and a space instead of "T") or an epoch number written as a string.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty timestamp")
	}
	// An RFC 3339 time has its '-' at s[4]: skip the scan for an epoch.
	if c := s[0]; c >= '0' && c <= '9' && (len(s) < 5 || s[4] != '-') && !strings.ContainsAny(s, "-:T") {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return time.Time{}, errors.New("timestamp is neither RFC 3339 nor an epoch number")
		}
		return TimeFromEpoch(v)
	}
	if t, ok := parseUTC(s); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && len(s) > 10 && s[10] == ' ' {
		t, err = time.Parse(time.RFC3339Nano, s[:10]+"T"+s[11:])
	}
	if err != nil {
		return time.Time{}, errors.New("timestamp is not RFC 3339 (2006-01-02T15:04:05Z07:00) or epoch s/ms/us/ns")
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, errTimeRange
	}
	return t.UTC(), nil
}

// parseUTC parses the form nearly every sender writes,
// 2006-01-02T15:04:05[.fraction]Z, as time.Parse(time.RFC3339Nano) does,
// at a fifth of its cost; ok is false for anything else (an offset, a
// space, a field out of range), which goes through time.Parse, so the two
// agree on every string (FuzzParseTime).
func parseUTC(s string) (t time.Time, ok bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	ns := 0
	if frac := s[19 : len(s)-1]; frac != "" {
		// '.' and 1..9 digits; time.Parse rounds nothing, it refuses more.
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		v, ok := digits(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for i := len(frac) - 1; i < 9; i++ {
			v *= 10
		}
		ns = v
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, ns, time.UTC)
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, false
	}
	return t, true
}

// digits is the value of s, all ASCII digits (ok false otherwise).
func digits(s string) (int, bool) {
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + int(c)
	}
	return v, true
}

func daysIn(m time.Month, year int) int {
	if m == time.February {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - int((m-1)%7%2)
}
