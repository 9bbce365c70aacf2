package disklog

import (
	"bytes"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wirelog/wirelog/internal/transport"
)

const benchRecordBytes = 250

func benchRecords(n int) []transport.Record {
	recs := make([]transport.Record, n)
	v := bytes.Repeat([]byte("x"), benchRecordBytes)
	ts := time.Now()
	for i := range recs {
		recs[i] = transport.Record{Value: v, Timestamp: ts}
	}
	return recs
}

// BenchmarkProduce measures one Produce call of batch records of 250 bytes,
// from one goroutine (serial: every call waits for its own fsync) and from
// 8 goroutines (group commit shares each fsync among the calls queued).
func BenchmarkProduce(b *testing.B) {
	for _, sync := range []bool{true, false} {
		for _, batch := range []int{1, 100, 1000} {
			for _, producers := range []int{1, 8} {
				mode := "fsync"
				if !sync {
					mode = "nosync"
				}
				b.Run(fmt.Sprintf("%s/batch=%d/producers=%d", mode, batch, producers), func(b *testing.B) {
					l := openT(b, b.TempDir(), Options{NoSync: !sync, MaxLagBytes: -1, Compression: CompressionNone})
					b.SetBytes(int64(batch * benchRecordBytes))
					b.ReportAllocs()
					if producers == 1 {
						recs := benchRecords(batch)
						p := l.Producer()
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							if err := p.Produce(context.Background(), recs); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						b.SetParallelism((producers + 1) / 2) // GOMAXPROCS=2 here → 8 goroutines
						b.ResetTimer()
						b.RunParallel(func(pb *testing.PB) {
							recs := benchRecords(batch)
							p := l.Producer()
							for pb.Next() {
								if err := p.Produce(context.Background(), recs); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					b.StopTimer()
					b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
					if st := l.Stats(); st.GroupCommits > 0 {
						b.ReportMetric(float64(st.AppendedRecords)/float64(st.GroupCommits), "records/commit")
					}
				})
			}
		}
	}
}

// BenchmarkConsume measures Poll(max=1000) over 250-byte records already in
// the page cache, as the processor reads them.
func BenchmarkConsume(b *testing.B) {
	const total, max = 100_000, 1000
	l := openT(b, b.TempDir(), Options{NoSync: true, MaxLagBytes: -1, SegmentBytes: 16 << 20, Compression: CompressionNone})
	recs := benchRecords(max)
	for i := 0; i < total/max; i++ {
		if err := l.Producer().Produce(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(max * benchRecordBytes)
	b.ReportAllocs()
	b.ResetTimer()
	var c transport.Consumer
	read, group := total, 0
	for i := 0; i < b.N; i++ {
		if read == total { // rewind with a fresh group
			if c != nil {
				c.Close()
			}
			group++
			c = l.Consumer(fmt.Sprintf("bench-%d", group), nil)
			read = 0
		}
		got, err := c.Poll(context.Background(), max)
		if err != nil || len(got) != max {
			b.Fatalf("Poll = %d records, %v", len(got), err)
		}
		read += len(got)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*max)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkBaselineWriteFdatasync is the floor BenchmarkProduce/fsync/…/
// producers=1 is measured against: the same bytes written to a plain file
// with write(2) + fdatasync(2), no framing, checksums or offsets.
func BenchmarkBaselineWriteFdatasync(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "baseline"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := bytes.Repeat([]byte("x"), batch*benchRecordBytes)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// logLines returns n distinct, realistic log records of the two shapes the
// log stores: "syslog" (raw syslog lines of 60-1,200 bytes: sshd, kernel
// firewall, nginx access, Juniper RT_FLOW, logfmt) and "json" (~250-byte
// events as the HTTP ingest stores them). Fields vary per record (addresses,
// ports, ids, users, timings), so a batch compresses like real traffic,
// not like repeated bytes.
func logLines(shape string, n int, seed uint64) [][]byte {
	rng := mrand.New(mrand.NewPCG(seed, 7))
	users := []string{"root", "admin", "deploy", "alice", "bob", "postgres", "git", "ubuntu", "oracle", "test"}
	apps := []string{"sshd", "kernel", "nginx", "RT_FLOW", "api", "worker", "cron", "systemd"}
	paths := []string{"/api/v1/orders", "/api/v1/users", "/static/app.js", "/healthz", "/api/v2/search", "/login"}
	ip := func() string { return fmt.Sprintf("10.%d.%d.%d", rng.IntN(256), rng.IntN(256), 1+rng.IntN(254)) }
	hex := func(k int) string {
		b := make([]byte, k)
		for i := range b {
			b[i] = "0123456789abcdef"[rng.IntN(16)]
		}
		return string(b)
	}
	out := make([][]byte, n)
	ts := int64(1_704_449_732_000)
	for i := range out {
		ts += int64(rng.IntN(3))
		host := fmt.Sprintf("node-%03d", rng.IntN(200))
		app := apps[rng.IntN(len(apps))]
		if shape == "json" {
			out[i] = fmt.Appendf(nil, `{"time":"2024-01-05T10:%02d:%02d.%03dZ","event_id":"r%s-%d","service":%q,"level":%q,"host":%q,`+
				`"message":"%s %s%s/%d completed in %.1f ms","attrs":{"http_status":%d,"user_id":"u-%07d","region":"eu-west-%d","trace_id":"%s"}}`,
				ts/60000%60, ts/1000%60, ts%1000, hex(6), i, app, []string{"info", "warn", "error", "debug"}[rng.IntN(4)], host,
				[]string{"GET", "POST", "PUT"}[rng.IntN(3)], paths[rng.IntN(len(paths))], "", rng.IntN(100000), rng.Float64()*200,
				[]int{200, 200, 200, 201, 404, 500}[rng.IntN(6)], rng.IntN(10_000_000), 1+rng.IntN(3), hex(32))
			continue
		}
		line := fmt.Appendf(nil, "<%d>1 2024-01-05T10:%02d:%02d.%03dZ %s %s %d - - ", 8+rng.IntN(180), ts/60000%60, ts/1000%60, ts%1000, host, app, 100+rng.IntN(60000))
		switch app {
		case "sshd":
			line = fmt.Appendf(line, "Accepted publickey for %s from %s port %d ssh2: RSA SHA256:%s", users[rng.IntN(len(users))], ip(), 1024+rng.IntN(60000), hex(43))
		case "kernel":
			line = fmt.Appendf(line, "[UFW BLOCK] IN=eth0 OUT= MAC=%s SRC=%s DST=%s LEN=%d TOS=0x00 PREC=0x00 TTL=%d ID=%d DF PROTO=TCP SPT=%d DPT=%d WINDOW=%d RES=0x00 SYN URGP=0",
				hex(12), ip(), ip(), 40+rng.IntN(1400), 32+rng.IntN(96), rng.IntN(65536), 1024+rng.IntN(60000), []int{22, 80, 443, 3389, 5432}[rng.IntN(5)], rng.IntN(65536))
		case "nginx":
			line = fmt.Appendf(line, `%s - - [05/Jan/2024:10:15:32 +0000] "GET %s/%d?page=%d HTTP/1.1" %d %d "-" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0.%d.%d"`,
				ip(), paths[rng.IntN(len(paths))], rng.IntN(1000000), rng.IntN(50), []int{200, 200, 304, 404, 502}[rng.IntN(5)], rng.IntN(90000), rng.IntN(9999), rng.IntN(999))
		case "RT_FLOW":
			line = fmt.Appendf(line, `RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.129 source-address="%s" source-port="%d" destination-address="%s" destination-port="%d" service-name="junos-https" nat-source-address="%s" nat-source-port="%d" src-nat-rule-name="r%d" protocol-id="6" policy-name="p-%d" source-zone-name="trust" destination-zone-name="untrust" session-id-32="%d" username="N/A" packet-incoming-interface="ge-0/0/%d.0" application="SSL" encrypted="No"]`,
				ip(), 1024+rng.IntN(60000), ip(), 443, ip(), 1024+rng.IntN(60000), rng.IntN(40), rng.IntN(300), rng.IntN(1<<31), rng.IntN(8))
		default:
			line = fmt.Appendf(line, `level=%s caller=%s.go:%d msg="request completed" method=GET path=%s/%d status=%d duration_ms=%.3f trace_id=%s span_id=%s user=%s`,
				[]string{"info", "warn", "error"}[rng.IntN(3)], app, 10+rng.IntN(900), paths[rng.IntN(len(paths))], rng.IntN(100000), []int{200, 201, 404, 500}[rng.IntN(4)], rng.Float64()*300, hex(32), hex(16), users[rng.IntN(len(users))])
		}
		out[i] = line
	}
	return out
}

// BenchmarkCompression measures each codec and level on batches of 1,000
// realistic records (logLines) as encodeBatch compresses them in Produce:
// one op = one batch. It reports the compression ratio (uncompressed /
// stored bytes), the CPU per record to compress and, in the "decode"
// sub-benchmarks, to decompress and decode as a consumer does. MB/s is of
// uncompressed batch bytes; cpu-ns/record and cpu-MB/s use the process's CPU
// time (getrusage), which other tenants of a shared machine disturb less.
//
//	go test -run '^$' -bench Compression -count 5 ./internal/transport/disklog/
func BenchmarkCompression(b *testing.B) {
	const batch = 1000
	for _, shape := range []string{"syslog", "json"} {
		lines := logLines(shape, 64*batch, 1)
		for _, cl := range []struct {
			name  string
			level int
		}{{CompressionNone, 0}, {CompressionSnappy, 0}, {CompressionLZ4, 0}, {CompressionLZ4, 3}, {CompressionZstd, 1}, {CompressionZstd, 3}, {CompressionZstd, 7}} {
			c, err := newCodec(cl.name, cl.level)
			if err != nil {
				b.Fatal(err)
			}
			recs := make([][]transport.Record, len(lines)/batch)
			for k := range recs {
				recs[k] = make([]transport.Record, batch)
				for i := range recs[k] {
					recs[k][i] = transport.Record{Value: lines[k*batch+i], Key: []byte("10.1.2.3"), Timestamp: time.Unix(1704449732, int64(i))}
				}
			}
			name := fmt.Sprintf("%s/%s-%d", shape, cl.name, cl.level)
			b.Run(name+"/encode", func(b *testing.B) {
				var dst, raw []byte
				var stored, rawTotal int64
				b.ReportAllocs()
				cpu0 := cpuTime()
				for i := 0; i < b.N; i++ {
					var n int
					dst, _, _, n, err = encodeBatch(dst[:0], &raw, recs[i%len(recs)], nil, 0, DefaultTopic, c)
					if err != nil {
						b.Fatal(err)
					}
					stored += int64(len(dst))
					rawTotal += int64(n)
				}
				cpu := cpuTime() - cpu0
				b.SetBytes(rawTotal / int64(b.N))
				b.ReportMetric(float64(rawTotal)/float64(stored), "ratio")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*batch), "cpu-ns/record")
				b.ReportMetric(float64(rawTotal)/cpu.Seconds()/1e6, "cpu-MB/s")
			})
			b.Run(name+"/decode", func(b *testing.B) {
				batches := make([][]byte, len(recs))
				var rawTotal int64
				for k := range recs {
					var raw []byte
					var n int
					batches[k], _, _, n, err = encodeBatch(nil, &raw, recs[k], nil, 0, DefaultTopic, c)
					if err != nil {
						b.Fatal(err)
					}
					rawTotal += int64(n)
				}
				b.SetBytes(rawTotal / int64(len(recs)))
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime()
				for i := 0; i < b.N; i++ {
					bt := batches[i%len(batches)]
					h, err := parseBatchHeader(bt)
					if err != nil {
						b.Fatal(err)
					}
					records, err := batchRecords(h, bt[batchHeaderSize:h.size()], nil)
					if err != nil {
						b.Fatal(err)
					}
					if _, _, err := decodeBatch(h, records, 0, 0, nil, DefaultTopic, 0); err != nil {
						b.Fatal(err)
					}
				}
				cpu := cpuTime() - cpu0
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*batch), "cpu-ns/record")
			})
		}
	}
}

// cpuTime is the process's user+system CPU time: on a shared machine it
// moves far less with other tenants' load than wall time does.
func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFdatasyncModes is what preallocation rests on: write(2) +
// fdatasync(2) of one group commit's bytes, appended to the end of a file
// (the file size and, on ext4, the extent map change with every write, so
// every fdatasync also commits the journal), written into space reserved
// with fallocate(2) (unwritten extents: the first write of each block still
// converts its extent, a metadata change), and written over blocks already
// holding zeros (nothing but data to flush). "writers=2" runs two
// goroutines that each write and fdatasync their own region of the same
// file, to see whether two fdatasyncs in flight overlap. "zeroed+prepare"
// is "zeroed" while another goroutine writes 16 MiB files of zeros and
// fdatasyncs them without pause, as the preparer does (prealloc.go): the
// worst case of its interference with the writer's syncs.
//
//	go test -run '^$' -bench FdatasyncModes -benchtime 400x -count 5 ./internal/transport/disklog/
func BenchmarkFdatasyncModes(b *testing.B) {
	for _, size := range []int{25 << 10, 100 << 10} {
		for _, mode := range []string{"append", "fallocate", "zeroed", "zeroed+prepare"} {
			for _, writers := range []int{1, 2} {
				if writers == 2 && mode != "zeroed" && mode != "append" {
					continue
				}
				b.Run(fmt.Sprintf("%s/bytes=%d/writers=%d", mode, size, writers), func(b *testing.B) {
					benchFdatasync(b, mode, size, writers)
				})
			}
		}
	}
}

func benchFdatasync(b *testing.B, mode string, size, writers int) {
	if mode == "zeroed+prepare" {
		mode = "zeroed"
		stop := make(chan struct{})
		done := make(chan struct{})
		defer func() { close(stop); <-done }()
		path := filepath.Join(b.TempDir(), "prepare")
		go func() {
			defer close(done)
			zeros := make([]byte, zeroChunk)
			for {
				f, err := os.Create(path)
				if err != nil {
					b.Error(err)
					return
				}
				for off := int64(0); off < 16<<20; off += zeroChunk {
					select {
					case <-stop:
						f.Close()
						return
					default:
					}
					f.WriteAt(zeros, off)
				}
				unix.Fdatasync(int(f.Fd()))
				f.Close()
			}
		}()
	}
	flag := os.O_RDWR | os.O_CREATE
	if mode == "append" {
		flag |= os.O_APPEND
	}
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "f"), flag, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	total := int64(b.N+writers) * int64(size)
	switch mode {
	case "fallocate":
		if err := unix.Fallocate(fd, 0, 0, total); err != nil {
			b.Fatal(err)
		}
	case "zeroed":
		zeros := make([]byte, 1<<20)
		for off := int64(0); off < total; off += int64(len(zeros)) {
			if _, err := f.WriteAt(zeros, off); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := unix.Fdatasync(fd); err != nil {
		b.Fatal(err)
	}
	buf := bytes.Repeat([]byte("x"), size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				var err error
				if mode == "append" {
					_, err = f.Write(buf)
				} else {
					_, err = f.WriteAt(buf, i*int64(size))
				}
				if err == nil {
					err = unix.Fdatasync(fd)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
