package agent

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/wirelog/wirelog/internal/dataplane"
	"github.com/wirelog/wirelog/internal/dataplane/dpdk"
	"github.com/wirelog/wirelog/internal/dataplane/ovs"
)

// TestEveryMetricIsDocumented: docs/DATAPLANE-METRICS.md names every
// metric the exporter, the DPDK and the OVS collectors can export.
func TestEveryMetricIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/DATAPLANE-METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New([]dataplane.Collector{dpdk.New(dpdk.Options{}), ovs.New(ovs.Options{})}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// client_golang has no accessor for a Desc's name; its String form
	// is stable: Desc{fqName: "name", ...}.
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	descs := e.Descs()
	if len(descs) < 50 {
		t.Fatalf("only %d descriptors", len(descs))
	}
	for _, d := range descs {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		if !strings.Contains(string(doc), "`"+m[1]+"`") {
			t.Errorf("%s is not documented in docs/DATAPLANE-METRICS.md", m[1])
		}
	}
}
