package netlab

import (
	"os"
	"strings"
	"testing"
)

// needRoot skips tests that create namespaces when not run as root (CI and
// `make test` run as root; the reason is printed so a skip is never silent).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and iptables rules")
	}
}

// testPrefix gives each test its own namespace prefix, so a leftover is
// attributable and tests never see each other's namespaces.
func testPrefix(t *testing.T, short string) string {
	t.Helper()
	p := "wlt" + short
	if left, _ := LabNamespaces(p); len(left) > 0 {
		Cleanup(p)
	}
	t.Cleanup(func() {
		left, _ := LabNamespaces(p)
		if len(left) > 0 {
			t.Errorf("namespaces left behind: %s", strings.Join(left, ", "))
			Cleanup(p)
		}
	})
	return p
}
