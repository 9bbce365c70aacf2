package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/telemetry/jaegertest"
)

// TestKafkaTraceCrossesProcesses sends a request with a known traceparent
// to `wirelog ingest`, which produces to a real Kafka topic, consumed by a
// separate `wirelog process`; both export to a real Jaeger. The request's
// trace holds the ingest span, the durable append and kotel's per-record
// publish spans (ended at the acks=all ack); the processor's batch span, in
// the other process, links to a publish span of that trace.
func TestKafkaTraceCrossesProcesses(t *testing.T) {
	j := jaegertest.Start(t)
	k, names := sharedKafka(t), topicNames(t)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
	os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", j.OTLP)
	t.Cleanup(func() { os.Unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT") })
	// The processor exports through the standard variable, ingest through the flag.
	proc := startProc(t, "process", append([]string{"process", "--http", "127.0.0.1:0", "--data", t.TempDir(),
		"--kafka", k.brokers(), "--kafka-partitions", "1", "--group", names.group}, names.flags()...)...)
	os.Unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	ing := startProc(t, "ingest", append([]string{"ingest", "--http", "127.0.0.1:0", "--syslog-udp", "", "--syslog-tcp", "",
		"--kafka", k.brokers(), "--kafka-partitions", "1", "--otlp-traces", j.OTLP}, names.flags()...)...)

	var b [24]byte
	rand.Read(b[:])
	traceID, clientSpan := hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:])
	tp := "00-" + traceID + "-" + clientSpan + "-01"
	if code, _ := ing.post(`{"message":"across kafka","service":"trace"}`+"\n"+`{"message":"second","service":"trace"}`+"\n",
		map[string]string{"traceparent": tp}); code != 202 {
		t.Fatalf("post: %d", code)
	}
	eventually(t, 60*time.Second, func() error {
		if s := proc.stored(); s != 2 {
			return fmt.Errorf("stored %d, want 2", s)
		}
		return nil
	})

	var spans []jaegertest.Span
	eventually(t, 30*time.Second, func() (err error) {
		spans, err = j.Trace(traceID)
		if err == nil && len(spans) < 4 {
			err = fmt.Errorf("%d spans so far", len(spans))
		}
		return err
	})
	byOp := map[string][]jaegertest.Span{}
	for _, s := range spans {
		byOp[s.OperationName] = append(byOp[s.OperationName], s)
	}
	ingest, send, publish := byOp["POST /api/v1/logs"], byOp["send "+names.topic], byOp[names.topic+" publish"]
	if len(ingest) != 1 || !ingest[0].ChildOf(clientSpan) || ingest[0].Service != "wirelog-ingest" {
		t.Fatalf("ingest span %+v (service wirelog-ingest, child of %s); spans %v", ingest, clientSpan, ops(spans))
	}
	if len(send) != 1 || !send[0].ChildOf(ingest[0].SpanID) || send[0].Tag("messaging.system") != "kafka" {
		t.Fatalf("durable append %+v; spans %v", send, ops(spans))
	}
	if len(publish) != 2 {
		t.Fatalf("%d publish spans, want one per record; spans %v", len(publish), ops(spans))
	}
	pubIDs := map[string]bool{}
	for _, p := range publish {
		if !p.ChildOf(send[0].SpanID) {
			t.Errorf("publish span %s is not a child of the durable append", p.SpanID)
		}
		pubIDs[p.SpanID] = true
	}

	eventually(t, 30*time.Second, func() error {
		found, err := j.Find("wirelog-process", "process "+names.topic, 50)
		if err != nil {
			return err
		}
		for _, s := range found {
			for id := range pubIDs {
				if s.LinksTo(traceID, id) {
					if s.Tag("messaging.system") != "kafka" || s.Tag("messaging.consumer.group.name") == "" {
						return fmt.Errorf("batch span tags %+v", s.Tags)
					}
					return nil
				}
			}
		}
		return fmt.Errorf("no wirelog-process batch span (of %d) links to a publish span of trace %s", len(found), traceID)
	})
	proc.term()
	ing.term()
}

func ops(spans []jaegertest.Span) []string {
	var s []string
	for _, sp := range spans {
		s = append(s, sp.Service+":"+sp.OperationName)
	}
	return s
}
