package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionMismatchError reports an existing topic whose partition count is
// not the configured one. It wraps ErrPartitionMismatch.
type PartitionMismatchError struct {
	Topic      string
	Have, Want int
}

func (e *PartitionMismatchError) Error() string {
	return fmt.Sprintf("topic %q exists with %d partitions but --kafka-partitions is %d; "+
		"wirelog uses the topic as it is and does not change it: "+
		"set --kafka-partitions %d to match, or grow the topic with kafka-topics.sh --alter --partitions %d "+
		"(partitions can only be added, and adding them moves keys to other partitions)",
		e.Topic, e.Have, e.Want, e.Have, e.Want)
}

func (e *PartitionMismatchError) Unwrap() error { return ErrPartitionMismatch }

// EnsureTopics creates the events topic (cfg.Partitions partitions) and the
// dead-letter topic if they are missing and cfg.CreateTopics is set. An
// events topic that exists with another partition count is logged with
// slog.Warn and returned as a *PartitionMismatchError; the transport still
// works with it, so callers may treat that error as a warning.
func EnsureTopics(ctx context.Context, cfg *Config) error {
	opts, err := cfg.commonOpts(ctx)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts, kgo.RetryTimeout(cfg.ProduceTimeout))...)
	if err != nil {
		return fmt.Errorf("kafka client for %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	defer cl.Close()
	return ensureTopics(ctx, kadm.NewClient(cl), cfg)
}

func ensureTopics(ctx context.Context, adm *kadm.Client, cfg *Config) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.ProduceTimeout)
	defer cancel()
	want := []struct {
		topic      string
		partitions int
	}{{cfg.Topic, cfg.Partitions}, {cfg.DLQTopic, dlqPartitions}}

	details, err := adm.ListTopics(ctx, cfg.Topic, cfg.DLQTopic)
	if err != nil {
		return wrap(classify(err), fmt.Sprintf("list topics on Kafka %s (--kafka)", strings.Join(cfg.Brokers, ",")), err)
	}
	var mismatch error
	for _, w := range want {
		d, ok := details[w.topic]
		exists := ok && d.Err == nil
		if ok && d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("describe topic %q: %w", w.topic, d.Err)
		}
		if exists {
			if w.topic == cfg.Topic && len(d.Partitions) != w.partitions {
				mismatch = &PartitionMismatchError{Topic: w.topic, Have: len(d.Partitions), Want: w.partitions}
				slog.Warn("kafka: "+mismatch.Error(), "topic", w.topic, "partitions", len(d.Partitions), "flag", "--kafka-partitions")
			}
			continue
		}
		if !cfg.CreateTopics {
			return fmt.Errorf("topic %q does not exist and --kafka-create-topics=false: create it (kafka-topics.sh --create) or let wirelog create it", w.topic)
		}
		resp, err := adm.CreateTopic(ctx, int32(w.partitions), int16(cfg.ReplicationFactor), nil, w.topic)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			slog.Info("kafka: created topic", "topic", w.topic, "partitions", w.partitions, "replication_factor", cfg.ReplicationFactor)
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Another wirelog created it between our list and create.
		case errors.Is(err, kerr.InvalidReplicationFactor):
			return fmt.Errorf("create topic %q: --kafka-replication-factor %d is more than the cluster's brokers: %w", w.topic, cfg.ReplicationFactor, err)
		default:
			return wrap(classify(err), fmt.Sprintf("create topic %q with %d partitions", w.topic, w.partitions), err)
		}
	}
	return mismatch
}
