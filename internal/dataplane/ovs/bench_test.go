package ovs

import (
	"encoding/json"
	"testing"
)

// The parsers run on every scrape; these keep their cost visible.

func BenchmarkParsePMDStats(b *testing.B) {
	text := readTestdata(b, "pmd-stats-show.txt")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		ParsePMDStats(text)
	}
}

func BenchmarkParsePMDPerf(b *testing.B) {
	text := readTestdata(b, "pmd-perf-show.txt")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		ParsePMDStats(text)
	}
}

func BenchmarkParseRxqShow(b *testing.B) {
	text := readTestdata(b, "pmd-rxq-show.txt")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		ParseRxqShow(text)
	}
}

func BenchmarkDecodeInterfaces(b *testing.B) {
	var reply struct {
		Result json.RawMessage `json:"result"`
	}
	json.Unmarshal([]byte(readTestdata(b, "ovsdb-interface-reply.json")), &reply)
	b.SetBytes(int64(len(reply.Result)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeInterfaces(reply.Result); err != nil {
			b.Fatal(err)
		}
	}
}
