package disklog

import (
	"sync/atomic"

	"github.com/wirelog/wirelog/internal/transport"
)

// Stats is a snapshot of the log for metrics, status pages and readiness.
type Stats struct {
	Topic      string
	Partitions []PartitionStats
	// Groups maps each known consumer group to its committed next offset per
	// partition (partitions it never committed are absent).
	Groups       map[string]map[int32]int64
	BacklogBytes int64 // not yet committed by the slowest known group
	MaxLagBytes  int64 // Produce pushes back above this backlog (negative = never)
	Segments     int   // segment files, all partitions
	SizeBytes    int64 // bytes of segment files, all partitions

	AppendedRecords  int64 // since Open
	AppendedBytes    int64 // as stored, since Open
	AppendedRawBytes int64 // the same batches before compression
	AppendedBatches  int64 // one per Produce call and partition
	GroupCommits     int64 // write+fsync rounds
	MaxGroupBatches  int64 // most batches completed by one group commit
	Fsyncs           int64
	RecoveredBytes   int64 // validated by recovery at Open
	TruncatedBytes   int64 // cut off by recovery at Open
	DeletedSegments  int64 // by retention since Open
	BackpressureHits int64

	Unavailable string // non-empty after a disk failure: the error
	Closed      bool
}

// PartitionStats describes one partition.
type PartitionStats struct {
	Partition   int32
	StartOffset int64 // earliest retained offset
	EndOffset   int64 // next offset to be assigned; every lower one is durable
	Segments    int
	SizeBytes   int64
}

// counters mirror the Prometheus counters that Stats reports.
type counters struct {
	records, batches, groupCommits, maxGroupBatches, fsyncs atomic.Int64
	bytes, rawBytes                                         atomic.Int64
	recovered, truncated, deletedSegments, backpressure     atomic.Int64
}

// Stats returns a consistent-enough snapshot; each partition is read under
// its own lock.
func (l *Log) Stats() Stats {
	st := Stats{
		Topic:            l.opts.Topic,
		Groups:           map[string]map[int32]int64{},
		BacklogBytes:     l.backlog.Load(),
		MaxLagBytes:      l.opts.MaxLagBytes,
		AppendedRecords:  l.st.records.Load(),
		AppendedBytes:    l.st.bytes.Load(),
		AppendedRawBytes: l.st.rawBytes.Load(),
		AppendedBatches:  l.st.batches.Load(),
		GroupCommits:     l.st.groupCommits.Load(),
		MaxGroupBatches:  l.st.maxGroupBatches.Load(),
		Fsyncs:           l.st.fsyncs.Load(),
		RecoveredBytes:   l.st.recovered.Load(),
		TruncatedBytes:   l.st.truncated.Load(),
		DeletedSegments:  l.st.deletedSegments.Load(),
		BackpressureHits: l.st.backpressure.Load(),
	}
	if err := l.failure(); err != nil {
		st.Unavailable = err.Error()
	}
	select {
	case <-l.closing:
		st.Closed = true
	default:
	}
	for _, p := range l.parts {
		p.mu.RLock()
		ps := PartitionStats{Partition: p.id, EndOffset: p.hw, StartOffset: p.hw, Segments: len(p.segs)}
		if len(p.segs) > 0 {
			ps.StartOffset = p.segs[0].base
		}
		for _, s := range p.segs {
			ps.SizeBytes += s.size
		}
		p.mu.RUnlock()
		st.Partitions = append(st.Partitions, ps)
		st.Segments += ps.Segments
		st.SizeBytes += ps.SizeBytes
	}
	l.gmu.Lock()
	for name, g := range l.groups {
		offs := map[int32]int64{}
		for p, off := range g.committed {
			if off >= 0 {
				offs[int32(p)] = off
			}
		}
		st.Groups[name] = offs
	}
	l.gmu.Unlock()
	return st
}

// EndOffsets returns the next offset per partition, for tools and tests.
func (l *Log) EndOffsets() map[transport.TopicPartition]int64 {
	out := make(map[transport.TopicPartition]int64, len(l.parts))
	for _, p := range l.parts {
		p.mu.RLock()
		out[transport.TopicPartition{Topic: l.opts.Topic, Partition: p.id}] = p.hw
		p.mu.RUnlock()
	}
	return out
}
