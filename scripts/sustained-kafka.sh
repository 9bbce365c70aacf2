#!/usr/bin/env bash
# sustained-kafka.sh — `make sustained` on Kafka: start a fresh single-node
# broker (scripts/kafka.sh) on its own port and folder, run the sustained
# scenario (scripts/soak.sh: `wirelog run --kafka …` taking as much as
# loadgen sends, 8 connections, batches of 500) against it, stop the broker.
# The summary's backlog is the consumer lag (records); the broker's CPU
# seconds during the load are in $SOAK_OUT/cpu.txt.
#
# Environment (defaults in brackets), beside scripts/soak.sh's:
#   STORE_FORMAT          [auto]   --store-format of the run (auto = parquet here, table or parquet)
#   SOAK_RATE             [0]      offered events/s (0: as fast as loadgen can send)
#   SOAK_KAFKA_PORT       [29092]  broker client port; the controller takes the next one
#   SOAK_DURATION         [120s]
#   SOAK_OUT              [bin/sustained-kafka]
set -euo pipefail
PORT=${SOAK_KAFKA_PORT:-29092}
KDIR=$(mktemp -d /tmp/wirelog-sustained-kafka-XXXXXX)
export KAFKA_DIR=$KDIR KAFKA_PORT=$PORT KAFKA_CONTROLLER_PORT=$((PORT + 1))
stop() { bash scripts/kafka.sh stop || true; rm -rf "$KDIR"; }
trap stop EXIT
bash scripts/kafka.sh start
SOAK_CPU_PIDS=$(cat "$KDIR/single/pid") \
SOAK_RATE=${SOAK_RATE:-0} SOAK_DURATION=${SOAK_DURATION:-120s} SOAK_CONCURRENCY=${SOAK_CONCURRENCY:-8} SOAK_BATCH=${SOAK_BATCH:-500} \
SOAK_OUT=${SOAK_OUT:-bin/sustained-kafka} \
SOAK_RUN_FLAGS="--kafka 127.0.0.1:$PORT --kafka-lag-interval 1s --store-format ${STORE_FORMAT:-auto} ${SOAK_RUN_FLAGS:-}" \
	bash scripts/soak.sh
