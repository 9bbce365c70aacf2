package main

import (
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

var syslogAddrRE = regexp.MustCompile(`syslog_udp=127\.0\.0\.1:(\d+) syslog_tcp=127\.0\.0\.1:(\d+)`)

// TestSyslogThroughRun sends syslog with util-linux logger, a client no one
// here wrote, to `wirelog run` over UDP and TCP (LF and octet-counting
// framing) in RFC 5424 and RFC 3164, and finds each message by search with
// its fields.
func TestSyslogThroughRun(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		t.Fatalf("logger(1) from util-linux is needed (scripts/deps/00-apt.sh installs it): %v", err)
	}
	n := startNode(t, t.TempDir(), "--syslog-udp", "127.0.0.1:0", "--syslog-tcp", "127.0.0.1:0")
	m := syslogAddrRE.FindStringSubmatch(n.Logs())
	if m == nil {
		t.Fatalf("no syslog addresses in the startup log:\n%s", n.Logs())
	}
	udpPort, tcpPort := m[1], m[2]
	run := fmt.Sprintf("sl%d", time.Now().UnixNano())
	cases := []struct {
		name string
		args []string
	}{
		{"udp5424", []string{"--udp", "-P", udpPort, "--rfc5424"}},
		{"udp3164", []string{"--udp", "-P", udpPort, "--rfc3164"}},
		{"tcp5424", []string{"--tcp", "-P", tcpPort, "--rfc5424"}},
		{"tcp3164octet", []string{"--tcp", "-P", tcpPort, "--rfc3164", "--octet-count"}},
		{"tcp5424octet", []string{"--tcp", "-P", tcpPort, "--rfc5424", "--octet-count"}},
	}
	for _, c := range cases {
		args := append([]string{"-n", "127.0.0.1", "-t", "app-" + c.name, "-p", "local3.warning"}, c.args...)
		args = append(args, run+" "+c.name+" hello from logger")
		if out, err := exec.Command("logger", args...).CombinedOutput(); err != nil {
			t.Fatalf("logger %v: %v\n%s", args, err, out)
		}
	}
	for _, c := range cases {
		eventually(t, 30*time.Second, func() error {
			var res searchResult
			q := url.Values{"q": {run + " " + c.name + " hello"}, "from": {"-1h"}}
			n.getJSON("/api/v1/logs/search?"+q.Encode(), &res)
			if len(res.Events) != 1 {
				return fmt.Errorf("%s: found %d events", c.name, len(res.Events))
			}
			e := res.Events[0]
			if e.Service != "app-"+c.name || e.Level != "warn" || e.Message != run+" "+c.name+" hello from logger" || e.Host == "" {
				return fmt.Errorf("%s: stored %+v", c.name, e)
			}
			return nil
		})
	}
}
