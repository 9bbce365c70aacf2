package sriov

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/vishvananda/netlink"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs/sysfstest"
)

// newCached is a collector over tree whose PFs netlink does not know (as
// when the agent's namespace is not the PFs'), with a clock the test moves.
func newCached(t *testing.T, tree *sysfstest.Tree, now *time.Time) (*Collector, *sysfstest.Adapter) {
	c := New(Options{Sys: tree.Sys})
	c.lookup = func(string) (*netlink.LinkAttrs, error) { return nil, nil }
	c.layout.now = func() time.Time { return *now }
	t.Cleanup(func() { c.Close() })
	return c, &sysfstest.Adapter{C: c}
}

// TestHeldStatsFilesReadCurrentValues: the layout and the VF stats files are
// kept between scrapes, and every scrape still reads the counters as they
// are now.
func TestHeldStatsFilesReadCurrentValues(t *testing.T) {
	tree := sysfstest.New(t)
	pf := sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 2)
	tree.AddPF(pf)
	now := time.Unix(1e9, 0)
	c, a := newCached(t, tree, &now)
	tree.SetVFStats(pf, 1, map[string]uint64{"rx_packets": 10})
	if got := counterOf(t, a, "1"); got != "10" {
		t.Errorf("VF 1 rx_packets: %s, want 10", got)
	}
	first := c.layout.cur
	tree.SetVFStats(pf, 1, map[string]uint64{"rx_packets": 12345})
	if got := counterOf(t, a, "1"); got != "12345" {
		t.Errorf("VF 1 rx_packets after the driver counted on: %s, want 12345", got)
	}
	if c.layout.cur != first {
		t.Error("nothing changed, yet the layout was discovered again")
	}
}

// TestLayoutRediscoveredOnChange: a new interface, a changed sriov_numvfs
// or the maximum age each make the next scrape discover the node again.
func TestLayoutRediscoveredOnChange(t *testing.T) {
	tree := sysfstest.New(t)
	tree.AddPF(sysfstest.ICE("ens1f0", "0000:3b:00.0", 0, 2))
	now := time.Unix(1e9, 0)
	c, a := newCached(t, tree, &now)
	count := func() int { return testutil.CollectAndCount(a, "sriov_pf_info") }
	if n := count(); n != 1 {
		t.Fatalf("%d PFs, want 1", n)
	}
	tree.AddPF(sysfstest.ICE("ens2f0", "0000:5e:00.0", 1, 2))
	if n := count(); n != 2 {
		t.Errorf("after a PF appeared: %d PFs, want 2", n)
	}

	before := c.layout.cur
	tree.Write(sysfstest.DevPath("0000:5e:00.0")+"/sriov_numvfs", "1\n")
	count()
	if c.layout.cur == before || c.layout.cur.numVFs[1] != 1 {
		t.Error("sriov_numvfs changed but the layout was kept")
	}

	before = c.layout.cur
	now = now.Add(layoutMaxAge - time.Second)
	count()
	if c.layout.cur != before {
		t.Error("layout discovered again before its maximum age with nothing changed")
	}
	now = now.Add(2 * time.Second)
	count()
	if c.layout.cur == before {
		t.Errorf("layout kept past its maximum age of %v", layoutMaxAge)
	}
}

// counterOf is VF vf's sriov_vf_rx_packets_total as text.
func counterOf(t *testing.T, a *sysfstest.Adapter, vf string) string {
	t.Helper()
	mfs, err := testutil.CollectAndFormat(a, expfmt.TypeTextPlain, "sriov_vf_rx_packets_total")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mfs), "\n") {
		if strings.Contains(line, `vf="`+vf+`"`) {
			return line[strings.LastIndexByte(line, ' ')+1:]
		}
	}
	t.Fatalf("no rx_packets for VF %s in\n%s", vf, mfs)
	return ""
}
