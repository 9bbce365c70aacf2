// Command nullsink is the trivial fast server used to measure loadgen's own
// ceiling: it answers every POST /api/v1/logs with 202 after reading and
// discarding the body, counting newlines as events in uncompressed NDJSON.
// Loopback only.
//
//	go run ./internal/loadgen/nullsink --addr 127.0.0.1:18080 &
//	wirelog loadgen --target http://127.0.0.1:18080 --duration 5s
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "loopback `address` to listen on")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "nullsink: --addr %q must be a loopback ip:port\n", *addr)
		os.Exit(2)
	}
	bufs := sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
	http.HandleFunc("POST /api/v1/logs", func(w http.ResponseWriter, r *http.Request) {
		bp := bufs.Get().(*[]byte)
		defer bufs.Put(bp)
		var n int
		for {
			k, err := r.Body.Read(*bp)
			n += bytes.Count((*bp)[:k], []byte{'\n'})
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		if r.Header.Get("Content-Encoding") != "" {
			// Not decompressed (that would measure the sink): an empty
			// 202, which loadgen reads as "all accepted".
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"accepted":`+strconv.Itoa(n)+`,"rejected":0,"errors":[]}`)
	})
	slog.Info("nullsink listening", "addr", *addr)
	if err := http.ListenAndServe(*addr, nil); err != nil {
		slog.Error("nullsink", "err", err)
		os.Exit(1)
	}
}
