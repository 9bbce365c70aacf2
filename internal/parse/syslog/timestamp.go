package syslog

import "time"

// The timestamp code works on civil dates directly instead of time.Parse:
// time.Parse allocates for numeric zone offsets (time.FixedZone) and is
// several times slower. Every result is converted to UTC.

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (Howard Hinnant's algorithm). Out-of-range days roll over linearly.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(m, y int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// civil is a wall-clock time as a message writes it.
type civil struct {
	year, month, day     int
	hour, minute, second int
	nsec                 int
}

// in returns c read in zone loc (nil or UTC: no conversion), as UTC.
func (c *civil) in(loc *time.Location) time.Time {
	if loc == nil || loc == time.UTC {
		return c.withOffset(0)
	}
	return time.Date(c.year, time.Month(c.month), c.day, c.hour, c.minute, c.second, c.nsec, loc).UTC()
}

// withOffset returns c, written at UTC+offset seconds, as UTC.
func (c *civil) withOffset(offset int) time.Time {
	sec := daysFromCivil(c.year, c.month, c.day)*86400 +
		int64(c.hour*3600+c.minute*60+c.second-offset)
	return time.Unix(sec, int64(c.nsec)).UTC()
}

// digits reads n decimal digits at b[i:], or ok=false.
func digits(b []byte, i, n int) (v int, ok bool) {
	if i+n > len(b) {
		return 0, false
	}
	for _, c := range b[i : i+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// fraction reads ".ddd…" (1-9 digits are kept, more are skipped) at b[i:]
// and returns nanoseconds and the index after it. Without a '.', it returns
// 0, i.
func fraction(b []byte, i int) (nsec, next int, ok bool) {
	if i >= len(b) || b[i] != '.' {
		return 0, i, true
	}
	i++
	start := i
	scale := 100000000
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if scale > 0 {
			nsec += int(b[i]-'0') * scale
			scale /= 10
		}
		i++
	}
	return nsec, i, i > start
}

// clockTime reads "hh:mm:ss" at b[i:] into c and returns the index after.
func clockTime(b []byte, i int, c *civil) (int, bool) {
	h, ok1 := digits(b, i, 2)
	m, ok2 := digits(b, i+3, 2)
	s, ok3 := digits(b, i+6, 2)
	if !ok1 || !ok2 || !ok3 || b[i+2] != ':' || b[i+5] != ':' || h > 23 || m > 59 || s > 60 {
		return i, false
	}
	c.hour, c.minute, c.second = h, m, s
	return i + 8, true
}

// parseRFC3339 reads an RFC 3339 timestamp ("2003-10-11T22:14:15.003Z",
// "…+02:00") at the start of b and returns it as UTC with the bytes read.
func parseRFC3339(b []byte) (t time.Time, n int, ok bool) {
	var c civil
	y, ok1 := digits(b, 0, 4)
	mo, ok2 := digits(b, 5, 2)
	d, ok3 := digits(b, 8, 2)
	if !ok1 || !ok2 || !ok3 || b[4] != '-' || b[7] != '-' || len(b) < 11 || (b[10] != 'T' && b[10] != 't') {
		return t, 0, false
	}
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) {
		return t, 0, false
	}
	c.year, c.month, c.day = y, mo, d
	i, ok := clockTime(b, 11, &c)
	if !ok {
		return t, 0, false
	}
	if c.nsec, i, ok = fraction(b, i); !ok {
		return t, 0, false
	}
	if i >= len(b) {
		return t, 0, false
	}
	switch b[i] {
	case 'Z', 'z':
		return c.withOffset(0), i + 1, true
	case '+', '-':
		oh, ok1 := digits(b, i+1, 2)
		om, ok2 := digits(b, i+4, 2)
		if !ok1 || !ok2 || b[i+3] != ':' || oh > 23 || om > 59 {
			return t, 0, false
		}
		off := oh*3600 + om*60
		if b[i] == '-' {
			off = -off
		}
		return c.withOffset(off), i + 6, true
	}
	return t, 0, false
}

// month reads a three-letter English month name ("Jan", any case).
func month(b []byte, i int) int {
	if i+3 > len(b) {
		return 0
	}
	k := uint32(b[i]|0x20)<<16 | uint32(b[i+1]|0x20)<<8 | uint32(b[i+2]|0x20)
	switch k {
	case 'j'<<16 | 'a'<<8 | 'n':
		return 1
	case 'f'<<16 | 'e'<<8 | 'b':
		return 2
	case 'm'<<16 | 'a'<<8 | 'r':
		return 3
	case 'a'<<16 | 'p'<<8 | 'r':
		return 4
	case 'm'<<16 | 'a'<<8 | 'y':
		return 5
	case 'j'<<16 | 'u'<<8 | 'n':
		return 6
	case 'j'<<16 | 'u'<<8 | 'l':
		return 7
	case 'a'<<16 | 'u'<<8 | 'g':
		return 8
	case 's'<<16 | 'e'<<8 | 'p':
		return 9
	case 'o'<<16 | 'c'<<8 | 't':
		return 10
	case 'n'<<16 | 'o'<<8 | 'v':
		return 11
	case 'd'<<16 | 'e'<<8 | 'c':
		return 12
	}
	return 0
}

// halfYear bounds how far from the receive time an RFC 3164 timestamp
// (which has no year) may land before the year next to it is taken.
const halfYear = 183 * 24 * time.Hour

// stamp is a parsed RFC 3164 timestamp.
type stamp struct {
	c       civil
	hasYear bool
	utc     bool      // written with a UTC/GMT zone name
	abs     time.Time // an RFC 3339 timestamp, already absolute
	isAbs   bool
}

// resolve returns the timestamp as UTC. Without a year in the message the
// year is the one that puts the time closest to recv: a "Dec 31 23:59:59"
// received on Jan 1 belongs to the year before, a "Jan 1 00:00:01" received
// on Dec 31 (sender clock ahead) to the year after.
func (s *stamp) resolve(recv time.Time, loc *time.Location) time.Time {
	if s.isAbs {
		return s.abs
	}
	if s.utc {
		loc = time.UTC
	}
	if s.hasYear {
		return s.c.in(loc)
	}
	if loc == nil {
		loc = time.UTC
	}
	s.c.year = recv.In(loc).Year()
	t := s.c.in(loc)
	switch d := t.Sub(recv); {
	case d > halfYear:
		s.c.year--
		t = s.c.in(loc)
	case d < -halfYear:
		s.c.year++
		t = s.c.in(loc)
	}
	return t
}

// parseStamp reads an RFC 3164 timestamp at the start of b in any of the
// forms devices send:
//
//	Mmm dd hh:mm:ss             RFC 3164 ("Mar  1", "Mar 01", "Mar 1")
//	Mmm dd hh:mm:ss.fff         milli/micro seconds (Cisco "msec", rsyslog)
//	Mmm dd yyyy hh:mm:ss        a year (Cisco ASA, "service timestamps … year")
//	Mmm dd hh:mm:ss yyyy        a trailing year
//	yyyy Mmm dd hh:mm:ss        a leading year (Cisco NX-OS)
//	… UTC / GMT                 a zone name (Cisco "show-timezone")
//	*Mmm dd …  .Mmm dd …        Cisco's "clock not authoritative/synced" marks
//	2006-01-02T15:04:05…        RFC 3339 in a BSD header (rsyslog forward format)
//
// It returns the bytes read (0: no timestamp) and a trailing ':' is
// consumed (Cisco ends its timestamp with one).
func parseStamp(b []byte, s *stamp) (n int) {
	*s = stamp{}
	i := 0
	if len(b) > 0 && (b[0] == '*' || b[0] == '.') {
		i = 1
	}
	year := 0
	if y, ok := digits(b, i, 4); ok && i+4 < len(b) && b[i+4] == ' ' { // NX-OS "2024 Mar  1 …"
		year = y
		i += 5
	} else if len(b) > i && b[i] >= '0' && b[i] <= '9' {
		t, n, ok := parseRFC3339(b[i:])
		if !ok {
			return 0
		}
		s.abs, s.isAbs = t, true
		return i + n
	}
	m := month(b, i)
	if m == 0 || i+4 > len(b) || b[i+3] != ' ' {
		return 0
	}
	i += 4
	if i < len(b) && b[i] == ' ' { // "Mar  1"
		i++
	}
	d := 0
	for j := 0; j < 2 && i < len(b) && b[i] >= '0' && b[i] <= '9'; j++ {
		d = d*10 + int(b[i]-'0')
		i++
	}
	if d < 1 || d > 31 || i >= len(b) || b[i] != ' ' {
		return 0
	}
	i++
	s.c.month, s.c.day = m, d
	if year > 0 {
		s.c.year, s.hasYear = year, true
	}
	if y, ok := digits(b, i, 4); ok && !s.hasYear && i+4 < len(b) && b[i+4] == ' ' {
		s.c.year, s.hasYear = y, true
		i += 5
	}
	i, ok := clockTime(b, i, &s.c)
	if !ok {
		return 0
	}
	if s.c.nsec, i, ok = fraction(b, i); !ok {
		return 0
	}
	if !s.hasYear && i+5 <= len(b) && b[i] == ' ' {
		if y, ok := digits(b, i+1, 4); ok && (i+5 == len(b) || b[i+5] == ' ' || b[i+5] == ':' && (i+6 == len(b) || b[i+6] == ' ')) {
			s.c.year, s.hasYear = y, true
			i += 5
		}
	}
	if i+4 <= len(b) && b[i] == ' ' {
		z := b[i+1 : i+4]
		if (string(z) == "UTC" || string(z) == "GMT") && (i+4 == len(b) || b[i+4] == ' ' || b[i+4] == ':') {
			s.utc = true
			i += 4
		}
	}
	if i < len(b) && b[i] == ':' {
		i++
	}
	return i
}
