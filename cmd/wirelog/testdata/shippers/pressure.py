"""While wirelog pushes back, how do the published clients see it?

usage: pressure.py BASE_URL -> one JSON object: the status and error type the
official Elasticsearch client raised for a bulk request, and the status and
text a Loki JSON push got (through python-logging-loki's own session).
"""
import json
import sys

import elasticsearch
from elasticsearch import Elasticsearch

base = sys.argv[1]
out = {}
es = Elasticsearch(base, request_timeout=30, max_retries=0, retry_on_status=())
try:
    es.bulk(operations=[{"create": {"_index": "p"}}, {"message": "under pressure"}])
    out["es"] = {"status": 200}
except elasticsearch.ApiError as e:
    out["es"] = {"status": e.meta.status, "type": e.error, "retry_after": e.meta.headers.get("retry-after")}

import urllib.request
req = urllib.request.Request(base + "/loki/api/v1/push", method="POST", headers={"Content-Type": "application/json"},
                             data=json.dumps({"streams": [{"stream": {"job": "p"}, "values": [["1767225600000000000", "x"]]}]}).encode())
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        out["loki"] = {"status": r.status}
except urllib.error.HTTPError as e:
    out["loki"] = {"status": e.code, "text": e.read().decode(), "retry_after": e.headers.get("Retry-After")}
print(json.dumps(out))
