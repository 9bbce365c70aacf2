package tlsconf

import (
	"net/http"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestParseRuleAndAllows(t *testing.T) {
	p := Policy{}
	for _, s := range []string{
		"ingest=spiffe://cluster.local/ns/logs/sa/*",
		"query=spiffe://cluster.local/ns/ui/sa/dashboard",
		"spiffe://admin.example/*",
	} {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if r.String() != s {
			t.Errorf("String() = %q, want %q", r.String(), s)
		}
		p = append(p, r)
	}
	id := func(s string) spiffeid.ID { return spiffeid.RequireFromString(s) }
	for _, c := range []struct {
		role Role
		id   string
		want bool
	}{
		{RoleIngest, "spiffe://cluster.local/ns/logs/sa/shipper", true},
		{RoleQuery, "spiffe://cluster.local/ns/logs/sa/shipper", false},
		{RoleAny, "spiffe://cluster.local/ns/logs/sa/shipper", true},
		{RoleIngest, "spiffe://cluster.local/ns/logs/sa", false},         // the prefix itself is not below it
		{RoleIngest, "spiffe://cluster.local/ns/logs/sabotage/x", false}, // path segments, not string prefixes
		{RoleQuery, "spiffe://cluster.local/ns/ui/sa/dashboard", true},
		{RoleQuery, "spiffe://cluster.local/ns/ui/sa/dashboard2", false},
		{RoleMetrics, "spiffe://admin.example/anyone", true},
		{RoleMetrics, "spiffe://other.example/anyone", false},
	} {
		if got := p.Allows(c.role, id(c.id)); got != c.want {
			t.Errorf("Allows(%q, %s) = %v, want %v", c.role, c.id, got, c.want)
		}
	}
	if p.Allows(RoleIngest, spiffeid.ID{}) {
		t.Error("a certificate without SPIFFE ID is allowed by a non-empty policy")
	}
	if !(Policy{}).Allows(RoleQuery, spiffeid.ID{}) {
		t.Error("an empty policy must allow every verified certificate")
	}
	for _, bad := range []string{"reader=spiffe://x/y", "spiffe://", "http://x/y", "spiffe://x/y/", "cluster.local/ns/*", "spiffe://UPPER/x"} {
		if _, err := ParseRule(bad); err == nil || !strings.Contains(err.Error(), "--allow-spiffe-id") {
			t.Errorf("ParseRule(%q) = %v, want an error naming --allow-spiffe-id", bad, err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{CertFile: "c"}, "--tls-cert and --tls-key"},
		{Options{ClientCAFile: "ca"}, "--tls-client-ca needs --tls-cert"},
		{Options{CertFile: "c", KeyFile: "k", Allow: Policy{{Role: RoleIngest}}}, "--allow-spiffe-id needs --tls-client-ca"},
		{Options{SPIFFESocket: "/run/agent.sock"}, "unix://"},
		{Options{SPIFFESocket: "unix:///a", CertFile: "c", KeyFile: "k"}, "replaces"},
	} {
		err := c.o.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want it to say %q", c.o, err, c.want)
		}
	}
	if err := (&Options{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestRouteRole(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         Role
	}{
		{"POST", "/api/v1/logs", RoleIngest},
		{"POST", "/v1/logs", RoleIngest},
		{"POST", "/_bulk", RoleIngest},
		{"PUT", "/_index_template/x", RoleIngest},
		{"POST", "/loki/api/v1/push", RoleIngest},
		{"GET", "/_license", RoleAny},
		{"HEAD", "/_index_template/filebeat", RoleAny},
		{"GET", "/insert/elasticsearch/", RoleAny},
		{"GET", "/", RoleAny},
		{"GET", "/healthz", RoleAny},
		{"GET", "/metrics", RoleMetrics},
		{"GET", "/api/v1/logs/search", RoleQuery},
		{"GET", "/api/v1/tail", RoleQuery},
		{"POST", "/api/v1/processor/pause", RoleQuery},
	} {
		r, _ := http.NewRequest(c.method, "http://x"+c.path, nil)
		if got := RouteRole(r); got != c.want {
			t.Errorf("%s %s: role %q, want %q", c.method, c.path, got, c.want)
		}
	}
}
