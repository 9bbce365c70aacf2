// Package disklog is wirelog's embedded durable log: the single-machine
// stand-in for Kafka behind transport.Producer and transport.Consumer, so the
// ingest gateway and the processor cannot tell the two apart.
//
// It is a log of topic partitions made of segment files (format.go), with
// CRC-32C per record batch, group commit (one writer goroutine appends
// everything queued, issues one fdatasync per touched segment, then
// acknowledges every caller it covered), recovery that truncates a torn tail
// on Open, durable consumer-group offsets, retention by size and age that
// never deletes what a known group has not consumed, and backpressure
// (transport.ErrBackpressure) once the unconsumed backlog passes a bound.
//
// Why hand-written: no well-kept Go library offers Kafka-shaped semantics
// (topic/partition/offset, consumer groups with committed offsets that hold
// back retention) together with group-committed fsync. The embeddable WAL
// libraries (tidwall/wal and its forks, and similar) address entries by a
// single index, fsync per write or not at all, and keep no consumer offsets;
// liftbridge's commitlog lives inside the liftbridge server. Building those
// semantics on top of one of them would leave little of the library in use,
// while the format here stays small enough to read in one sitting.
//
// Records are never lost once Produce returned nil: the writer publishes an
// offset to consumers only after the fsync that covers it, and after a
// failed write or fsync the log refuses writes (transport.ErrUnavailable)
// until it is reopened and recovery has re-read the files.
package disklog
