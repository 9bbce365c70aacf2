package syslog

import (
	"syscall"
	"testing"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/wirelog/wirelog/internal/event"
)

// Benchmark lines: short, average (~250 B) and long, per format.
var benchLines = []struct{ format, size, line string }{
	{"rfc5424", "short", `<13>1 2024-01-05T10:15:32Z web01 app - - - user login ok`},
	{"rfc5424", "average", `<165>1 2024-01-05T10:15:32.123456+01:00 web01.example.com checkout 4242 ORDER ` +
		`[order@32473 id="A-1029384" amount="129.90" currency="EUR"][trace@32473 trace_id="4bf92f3577b34da6a3ce929d0e0e4736"] ` +
		`order placed by customer 77812 in 183 ms`},
	{"rfc5424", "long", `<14>1 2024-01-05T11:15:58.123+01:00 srx01 RT_FLOW - RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.129 ` +
		`source-address="10.0.0.1" source-port="51234" destination-address="192.0.2.10" destination-port="443" ` +
		`service-name="junos-https" nat-source-address="203.0.113.5" nat-source-port="40001" nat-destination-address="192.0.2.10" ` +
		`nat-destination-port="443" src-nat-rule-type="source rule" src-nat-rule-name="snat-1" dst-nat-rule-type="N/A" ` +
		`dst-nat-rule-name="N/A" protocol-id="6" policy-name="trust-to-untrust" source-zone-name="trust" ` +
		`destination-zone-name="untrust" session-id-32="12345" username="N/A" roles="N/A" packet-incoming-interface="ge-0/0/1.0" ` +
		`application="SSL" nested-application="GOOGLE" encrypted="Yes" application-category="Web" application-sub-category="N/A" ` +
		`application-risk="2" application-characteristics="Can Leak Information;Supports File Transfer;Prone to Misuse;"] ` +
		`session created 10.0.0.1/51234->192.0.2.10/443 0x0 junos-https 203.0.113.5/40001->192.0.2.10/443 0x0 source rule snat-1 ` +
		`N/A N/A 6 trust-to-untrust trust untrust 12345 N/A(N/A) ge-0/0/1.0 SSL GOOGLE Yes Web N/A 2`},
	{"rfc3164", "short", `<13>Jan  5 10:15:32 web01 app: user login ok`},
	{"rfc3164", "average", `<38>Jan  5 10:15:32 web01 sshd[4242]: Accepted publickey for deploy from 198.51.100.23 port 52344 ssh2: ` +
		`ED25519 SHA256:8Qf0eG1XbqLQJcTx0pP4cVh3Jk9s2aZQwErTyUiOpAs session opened for user deploy(uid=1000) by (uid=0) tty=pts/0`},
	{"rfc3164", "long", `<189>date=2024-01-05 time=10:15:32 devname="FGT60E-HQ" devid="FGT60ETK19000000" logid="0000000013" ` +
		`type="traffic" subtype="forward" level="notice" vd="root" eventtime=1704449732123456789 tz="+0100" srcip=10.1.1.10 ` +
		`srcport=51234 srcintf="internal" srcintfrole="lan" dstip=93.184.216.34 dstport=443 dstintf="wan1" dstintfrole="wan" ` +
		`srccountry="Reserved" dstcountry="United States" sessionid=123456789 proto=6 action="accept" policyid=1 ` +
		`policytype="policy" poluuid="9f2b6c2e-1c2d-51ea-8b4f-3b2a1c9d0e1f" policyname="LAN-to-WAN" service="HTTPS" ` +
		`trandisp="snat" transip=203.0.113.5 transport=40001 appid=40568 app="HTTPS.BROWSER" appcat="Web.Client" apprisk="medium" ` +
		`applist="default" duration=12 sentbyte=1234 rcvdbyte=5678 sentpkt=12 rcvdpkt=10 shapercategory="LAN" ` +
		`vwlid=0 vwlquality="Seq_num(1 wan1), alive, selected" mastersrcmac="aa:bb:cc:dd:ee:ff" srcmac="aa:bb:cc:dd:ee:ff" ` +
		`srcserver=0 msg="traffic allowed"`},
}

var benchRecv = time.Date(2024, 1, 5, 10, 20, 0, 0, time.UTC)

// cpuTime is the process's user+system CPU time. The machine is shared, so
// wall-clock ns/op is inflated by other tenants; cpu-ns/op is not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs body b.N times and reports CPU time per op beside ns/op.
func loop(b *testing.B, body func()) {
	n := 0
	start := cpuTime()
	for b.Loop() {
		body()
		n++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
}

// BenchmarkParse is the hand-written parser into a reused Event.
func BenchmarkParse(b *testing.B) {
	for _, bl := range benchLines {
		b.Run(bl.format+"/"+bl.size, func(b *testing.B) {
			line := []byte(bl.line)
			p := Parser{Location: time.UTC}
			var e event.Event
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			loop(b, func() { _ = p.Parse(line, benchRecv, &e) })
		})
	}
}

// BenchmarkParseEncode is the receive hot path: parse, then the log-record
// JSON (event.AppendJSON) into a reused buffer.
func BenchmarkParseEncode(b *testing.B) {
	for _, bl := range benchLines {
		b.Run(bl.format+"/"+bl.size, func(b *testing.B) {
			line := []byte(bl.line)
			p := Parser{Location: time.UTC}
			var e event.Event
			var out []byte
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			loop(b, func() {
				_ = p.Parse(line, benchRecv, &e)
				out = event.AppendJSON(out[:0], &e)
			})
		})
	}
}

func goSyslogParser(format string, recv time.Time) gosyslog.Machine {
	if format == "rfc5424" {
		return rfc5424.NewParser(rfc5424.WithBestEffort())
	}
	return rfc3164.NewParser(rfc3164.WithBestEffort(), rfc3164.WithYear(rfc3164.Year{YYYY: recv.Year()}),
		rfc3164.WithTimezone(time.UTC), rfc3164.WithRFC3339(), rfc3164.WithSecondFractions())
}

// BenchmarkGoSyslog is github.com/leodido/go-syslog/v4 on the same lines,
// best-effort mode (as a receiver must run it), for comparison.
func BenchmarkGoSyslog(b *testing.B) {
	for _, bl := range benchLines {
		b.Run(bl.format+"/"+bl.size, func(b *testing.B) {
			line := []byte(bl.line)
			m := goSyslogParser(bl.format, benchRecv)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			loop(b, func() { _, _ = m.Parse(line) })
		})
	}
}

func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

// BenchmarkCorpus parses the whole real-world corpus with each parser and
// reports how many of its cases each gets right (time, service, host and
// message equal to the expected event) as the metric "cases_ok".
func BenchmarkCorpus(b *testing.B) {
	cases := loadCorpus(b)
	lines := make([][]byte, len(cases))
	total := 0
	for i := range cases {
		lines[i] = cases[i].raw()
		total += len(lines[i])
	}
	b.Run("wirelog", func(b *testing.B) {
		p := Parser{Location: time.UTC}
		var e event.Event
		ok := 0
		for i := range cases {
			if cases[i].Want != nil && cases[i].Want.equal(cases[i].got(&p, &e)) {
				ok++
			}
		}
		b.SetBytes(int64(total))
		b.ReportAllocs()
		for b.Loop() {
			for i := range lines {
				_ = p.Parse(lines[i], cases[i].Recv, &e)
			}
		}
		b.ReportMetric(float64(ok), "cases_ok")
	})
	b.Run("go-syslog", func(b *testing.B) {
		machines := make([]gosyslog.Machine, len(cases))
		ok := 0
		for i := range cases {
			format := "rfc3164"
			if _, n := parsePRI(lines[i]); n > 0 && versionLen(lines[i][n:]) > 0 {
				format = "rfc5424"
			}
			machines[i] = goSyslogParser(format, cases[i].Recv)
			m, _ := machines[i].Parse(lines[i])
			w := cases[i].Want
			if m == nil || w == nil {
				continue
			}
			var base gosyslog.Base
			switch v := m.(type) {
			case *rfc5424.SyslogMessage:
				base = v.Base
			case *rfc3164.SyslogMessage:
				base = v.Base
			}
			ts := deref(base.Timestamp)
			if ts.IsZero() {
				ts = cases[i].Recv
			}
			if ts.Equal(w.Time) && deref(base.Appname) == w.Service && deref(base.Hostname) == w.Host &&
				deref(base.Message) == w.Message {
				ok++
			}
		}
		b.SetBytes(int64(total))
		b.ReportAllocs()
		for b.Loop() {
			for i := range lines {
				_, _ = machines[i].Parse(lines[i])
			}
		}
		b.ReportMetric(float64(ok), "cases_ok")
	})
}
