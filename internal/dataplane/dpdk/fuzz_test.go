package dpdk

import (
	"encoding/json"
	"errors"
	"testing"
)

// replyBlob answers every command from one JSON object holding a key per
// command name, which lets the fuzzer shape a whole conversation.
type replyBlob []byte

func (b replyBlob) QueryBatch(cmds []string) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(cmds))
	for i, cmd := range cmds {
		v, err := decodeReply(cmd, b)
		if errors.Is(err, ErrNoData) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// FuzzTelemetryReplies feeds arbitrary bytes as the greeting and as every
// reply of a scrape: decoding must return data or an error, never panic,
// and a port list must never yield more ports than it names.
func FuzzTelemetryReplies(f *testing.F) {
	var all = map[string]any{}
	for _, cmd := range []string{"/", "/ethdev/list", "/ethdev/stats,0", "/ethdev/xstats,0", "/ethdev/info,0",
		"/ethdev/link_status,0", "/eal/heap_list", "/eal/heap_info,0", "/eal/lcore/usage"} {
		msg, _ := dpdk2311(cmd)
		var m map[string]any
		json.Unmarshal([]byte(msg), &m)
		for k, v := range m {
			all[k] = v
		}
	}
	seed, _ := json.Marshal(all)
	f.Add([]byte(goodGreeting), seed)
	f.Add([]byte(`{"version":"DPDK 22.11.11","pid":11368,"max_output_len":16384}`),
		[]byte(`{"/":["/ethdev/list","/ethdev/stats"],"/ethdev/list":[0,1,1],"/ethdev/stats":{"ipackets":7968448,"opackets":-1}}`))
	f.Add([]byte(`{"pid":1}`), []byte(`{"/":["/eal/lcore/usage"],"/eal/lcore/usage":{"lcore_ids":[1,2],"busy_cycles":[1]}}`))
	f.Add([]byte(`null`), []byte(`{"/":null}`))
	f.Add([]byte(`{"pid":1,"max_output_len":-5}`), []byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, greeting, reply []byte) {
		g, gerr := decodeGreeting(greeting)
		if gerr == nil && g.PID <= 0 {
			t.Fatalf("greeting accepted without a pid: %+v", g)
		}
		p, err := read(replyBlob(reply), Socket{FilePrefix: "f", Name: socketName}, g)
		if err != nil {
			return
		}
		var ids []int
		if v, err := decodeReply("/ethdev/list", reply); err == nil {
			json.Unmarshal(v, &ids)
		}
		if len(p.Ports) > len(ids) {
			t.Fatalf("%d ports read from a list of %d", len(p.Ports), len(ids))
		}
	})
}
