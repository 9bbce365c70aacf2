"""Drive wirelog's shipper endpoints with published Python clients.

usage: clients.py BASE_URL RUN_ID  -> prints one JSON object of results.

- elasticsearch (the official client): info(), ping(), helpers.bulk with good
  documents mixed with bad ones (raise_on_error=False, so the per-item errors
  come back), once plain and once gzip-compressed (http_compress=True).
- python-logging-loki: a logging.Handler pushing Loki JSON.
- a Loki protobuf+snappy push built with the protobuf runtime from the push
  schema's field numbers (PushRequest/StreamAdapter/EntryAdapter/
  LabelPairAdapter, as published in grafana/loki pkg/push, Apache-2.0) and
  compressed with cramjam's raw snappy, as Promtail sends it.
"""
import json
import logging
import sys
import time
import urllib.request

import cramjam
import logging_loki
from elasticsearch import Elasticsearch, helpers
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

base, run = sys.argv[1], sys.argv[2]
out = {}

# --- Elasticsearch -----------------------------------------------------------
es = Elasticsearch(base, request_timeout=30)
out["es_version"] = es.info()["version"]["number"]
out["es_ping"] = es.ping()


def actions(tag):
    for i in range(50):
        yield {"_index": "py-logs", "@timestamp": "2026-05-01T10:00:%02dZ" % (i % 60),
               "message": "%s %s good %d" % (run, tag, i), "service": {"name": "py-es"},
               "host": {"name": "py-host"}, "log": {"level": "error"}, "labels": {"i": i}}
        if i % 10 == 0:
            # a document Elasticsearch would refuse on its own: a date that is not one
            yield {"_index": "py-logs", "@timestamp": "yesterday-ish", "message": "%s %s bad %d" % (run, tag, i)}
    # actions an append-only log cannot do
    yield {"_op_type": "delete", "_index": "py-logs", "_id": "gone"}
    yield {"_op_type": "update", "_index": "py-logs", "_id": "x", "doc": {"a": 1}}


for tag, client in (("plain", es), ("gzip", Elasticsearch(base, request_timeout=30, http_compress=True))):
    ok, errors = helpers.bulk(client, actions(tag), raise_on_error=False, stats_only=False, chunk_size=37)
    out["es_" + tag] = {"ok": ok, "errors": [{"op": list(e)[0], "status": list(e.values())[0]["status"]} for e in errors]}

# --- Loki JSON: python-logging-loki ------------------------------------------
handler = logging_loki.LokiHandler(url=base + "/loki/api/v1/push", version="1",
                                   tags={"service_name": "py-loki", "host": "loki-host"})
log = logging.getLogger("wirelog-test")
log.propagate = False
log.addHandler(handler)
log.setLevel(logging.INFO)
failures = []
handler.handleError = lambda record: failures.append(str(sys.exc_info()[1]))
for i in range(20):
    log.warning("%s loki-json %d", run, i, extra={"tags": {"request_id": "r%d" % i}})
out["loki_json"] = {"sent": 20, "failures": failures}

# --- Loki protobuf + snappy ----------------------------------------------------
fdp = descriptor_pb2.FileDescriptorProto(name="wirelog_test_push.proto", package="logproto", syntax="proto3",
                                         dependency=["google/protobuf/timestamp.proto"])
S, M, R, OPT = (descriptor_pb2.FieldDescriptorProto.TYPE_STRING, descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED, descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
m = fdp.message_type.add(name="LabelPairAdapter")
m.field.add(name="name", number=1, type=S, label=OPT)
m.field.add(name="value", number=2, type=S, label=OPT)
m = fdp.message_type.add(name="EntryAdapter")
m.field.add(name="timestamp", number=1, type=M, label=OPT, type_name=".google.protobuf.Timestamp")
m.field.add(name="line", number=2, type=S, label=OPT)
m.field.add(name="structuredMetadata", number=3, type=M, label=R, type_name=".logproto.LabelPairAdapter")
m = fdp.message_type.add(name="StreamAdapter")
m.field.add(name="labels", number=1, type=S, label=OPT)
m.field.add(name="entries", number=2, type=M, label=R, type_name=".logproto.EntryAdapter")
m.field.add(name="hash", number=3, type=descriptor_pb2.FieldDescriptorProto.TYPE_UINT64, label=OPT)
m = fdp.message_type.add(name="PushRequest")
m.field.add(name="streams", number=1, type=M, label=R, type_name=".logproto.StreamAdapter")
pool = descriptor_pool.DescriptorPool()
pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
pool.Add(fdp)
PushRequest = message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


def push(req):
    body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
    r = urllib.request.Request(base + "/loki/api/v1/push", data=body, method="POST",
                               headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


req = PushRequest()
st = req.streams.add(labels='{service_name="py-proto", host="proto-host", level="info", env="test"}')
now = time.time_ns()
for i in range(30):
    e = st.entries.add(line="%s loki-proto %d" % (run, i))
    e.timestamp.seconds, e.timestamp.nanos = divmod(now + i, 10**9)
    e.structuredMetadata.add(name="trace_id", value="%032x" % (i + 1))
    e.structuredMetadata.add(name="pod", value="pod-%d" % i)
out["loki_proto"] = push(req)

# good streams mixed with a bad one: the good entries are stored, Loki's 400 names the bad
req = PushRequest()
st = req.streams.add(labels='{service_name="py-proto-mixed"}')
for i in range(5):
    e = st.entries.add(line="%s loki-mixed %d" % (run, i))
    e.timestamp.seconds = int(time.time())
req.streams.add(labels='not labels at all').entries.add(line="%s loki-mixed bad" % run)
out["loki_mixed"] = push(req)

print(json.dumps(out))
