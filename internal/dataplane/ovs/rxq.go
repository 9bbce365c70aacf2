package ovs

import (
	"strconv"
	"strings"
)

// RxqThread is one PMD thread's block of pmd-rxq-show.
type RxqThread struct {
	NUMAID string
	CoreID string
	// Isolated is set when the thread only polls queues pinned to it
	// (pmd-rxq-affinity); nil when the line is absent.
	Isolated *bool
	// Overhead is the share of the thread's cycles not attributed to any
	// queue, 0..1; nil when absent or "NOT AVAIL".
	Overhead *float64
	Queues   []Rxq
}

// Rxq is one receive queue polled by a PMD thread.
type Rxq struct {
	Port  string
	Queue int
	// Enabled is nil when OVS did not print "(enabled)"/"(disabled)".
	Enabled *bool
	// Usage is the share of the thread's processing cycles this queue
	// used over the shown interval, 0..1; nil while OVS has no full
	// interval yet ("NOT AVAIL").
	Usage *float64
}

// RxqReport is a parsed pmd-rxq-show reply.
type RxqReport struct {
	Threads []RxqThread
	// Unknown counts lines that were neither recognised nor blank.
	Unknown int
}

// ParseRxqShow parses the text of dpif-netdev/pmd-rxq-show (OVS 2.9 to
// 3.x). It never fails: what it cannot read is counted in Unknown.
func ParseRxqShow(text string) RxqReport {
	var r RxqReport
	var cur *RxqThread
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "Displaying last"):
			// "Displaying last 60 seconds pmd usage %": the window.
			continue
		}
		if t, ok := parseThreadHeader(line); ok && !t.Main {
			r.Threads = append(r.Threads, RxqThread{NUMAID: t.NUMAID, CoreID: t.CoreID})
			cur = &r.Threads[len(r.Threads)-1]
			continue
		}
		if cur == nil {
			r.Unknown++
			continue
		}
		label, rest, ok := strings.Cut(line, ":")
		if !ok {
			r.Unknown++
			continue
		}
		rest = strings.TrimSpace(rest)
		switch strings.TrimSpace(label) {
		case "isolated":
			b, err := strconv.ParseBool(rest)
			if err != nil {
				r.Unknown++
				continue
			}
			cur.Isolated = &b
		case "overhead":
			if v, ok := percent(rest); ok {
				cur.Overhead = &v
			} else if !strings.HasPrefix(rest, "NOT AVAIL") {
				r.Unknown++
			}
		case "port":
			q, ok := parseRxqLine(rest)
			if !ok {
				r.Unknown++
				continue
			}
			cur.Queues = append(cur.Queues, q)
		default:
			r.Unknown++
		}
	}
	return r
}

// parseRxqLine reads what follows "port:" in
// "port: p0   queue-id:  0 (enabled)   pmd usage: 44 %".
func parseRxqLine(s string) (Rxq, bool) {
	var q Rxq
	port, rest, ok := strings.Cut(s, "queue-id:")
	if !ok {
		return q, false
	}
	q.Port = strings.TrimSpace(port)
	if q.Port == "" {
		return q, false
	}
	qid, rest, _ := strings.Cut(rest, "pmd usage:")
	fields := strings.Fields(qid)
	if len(fields) == 0 {
		return q, false
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n < 0 {
		return q, false
	}
	q.Queue = n
	for _, f := range fields[1:] {
		switch f {
		case "(enabled)":
			b := true
			q.Enabled = &b
		case "(disabled)":
			b := false
			q.Enabled = &b
		}
	}
	if v, ok := percent(strings.TrimSpace(rest)); ok {
		q.Usage = &v
	}
	return q, true
}

// percent reads "44 %" or "44%" as 0.44.
func percent(s string) (float64, bool) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v / 100, true
}
