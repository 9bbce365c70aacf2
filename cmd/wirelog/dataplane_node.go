package main

import (
	"flag"

	"github.com/wirelog/wirelog/internal/dataplane"
)

// nodeCollectors registers the flags of the node-level collectors (SR-IOV,
// hugepages, CPU isolation, pod resources) on fs and returns a constructor the
// dataplane command calls after parsing. Its owner replaces this stub.
func nodeCollectors(fs *flag.FlagSet) func() ([]dataplane.Collector, error) {
	return func() ([]dataplane.Collector, error) { return nil, nil }
}
