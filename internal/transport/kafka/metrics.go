package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/plugin/kprom"
)

// metricsNamespace prefixes franz-go's client metrics (kprom):
// wirelog_kafka_produce_bytes_total, wirelog_kafka_buffered_produce_records…
const metricsNamespace = "wirelog_kafka"

// newKprom returns franz-go's Prometheus hooks for one client, registered
// nowhere: the Producer or Consumer hands them out through Collector(), and
// the role label keeps a producer and a consumer in one process apart.
func newKprom(role string) *kprom.Metrics {
	return kprom.NewMetrics(metricsNamespace,
		kprom.Registry(nil),
		kprom.WithStaticLabel(prometheus.Labels{"role": role}),
		kprom.FetchAndProduceDetail(kprom.ByNode, kprom.ByTopic, kprom.Batches, kprom.Records, kprom.CompressedBytes, kprom.UncompressedBytes, kprom.ConsistentNaming),
	)
}

type producerMetrics struct {
	records   prometheus.Counter
	failures  *prometheus.CounterVec
	available prometheus.Gauge
}

func newProducerMetrics() producerMetrics {
	m := producerMetrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_kafka_producer_acked_records_total",
			Help: "Records Kafka acknowledged (acks=all) to the wirelog producer.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_kafka_producer_failed_calls_total",
			Help: "Produce calls that failed, by reason: backpressure (buffer full, HTTP 429), unavailable (no ack within --kafka-produce-timeout, HTTP 503), canceled, closed, error.",
		}, []string{"reason"}),
		available: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wirelog_kafka_producer_available",
			Help: "1 while the producer believes the cluster takes writes, 0 after a produce timed out until a probe succeeds.",
		}),
	}
	for _, r := range []failure{failBackpressure, failUnavailable, failCanceled, failClosed, failOther} {
		m.failures.WithLabelValues(r.String())
	}
	m.available.Set(1)
	return m
}

func (m *producerMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.records, m.failures, m.available}
}

type consumerMetrics struct {
	lag      *prometheus.GaugeVec
	dlq      prometheus.Counter
	commits  *prometheus.CounterVec
	assigned prometheus.Gauge
	resumed  *prometheus.CounterVec
	rewinds  prometheus.Counter
	releases *prometheus.CounterVec
}

func newConsumerMetrics() consumerMetrics {
	m := consumerMetrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wirelog_kafka_consumer_lag_records",
			Help: "Records between the group's committed offset and the end of each partition this processor owns (refreshed every --kafka-lag-interval).",
		}, []string{"topic", "partition"}),
		dlq: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_kafka_dlq_records_total",
			Help: "Records sent to the dead-letter topic.",
		}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_kafka_consumer_commits_total",
			Help: "Offset commits to the group, by result (ok, error) and cause (poll, revoke).",
		}, []string{"cause", "result"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wirelog_kafka_consumer_assigned_partitions",
			Help: "Partitions currently assigned to this processor.",
		}),
		resumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_kafka_consumer_resumed_partitions_total",
			Help: "Partition assignments by where consumption resumed: store (the store's offset was ahead of the group's), group (committed offset), start (nothing known).",
		}, []string{"from"}),
		rewinds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wirelog_kafka_consumer_rewinds_total",
			Help: "Partitions sought back because the store lost or discarded rows it had accepted before they were durable (VictoriaLogs; segment files after a failed release); they are replayed.",
		}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wirelog_kafka_consumer_releases_total",
			Help: "Rebalances in which the store handed partitions over (Config.Release/Discard, --store-format parquet), by result: written (buffered records made durable, their offsets committed with the revoke), discarded (the write failed or partitions were lost: buffered records dropped and replayed).",
		}, []string{"result"}),
	}
	for _, r := range []string{"written", "discarded"} {
		m.releases.WithLabelValues(r)
	}
	for _, f := range []string{"store", "group", "start"} {
		m.resumed.WithLabelValues(f)
	}
	return m
}

func (m *consumerMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.lag, m.dlq, m.commits, m.assigned, m.resumed, m.rewinds, m.releases}
}

// collectors joins several collectors into one, for Collector().
type collectors []prometheus.Collector

func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}
