"""Shippers' credentials against a wirelog with --auth-tokens.

usage: auth.py BASE_URL TOKEN RUN_ID -> one JSON object of results.
The official Elasticsearch client with HTTP Basic (token as password) and
with an API key (token as the key), including a template install as Filebeat
makes; python-logging-loki with Basic auth; and a wrong password.
"""
import json
import logging
import sys

import elasticsearch
import logging_loki
from elasticsearch import Elasticsearch, helpers

base, tok, run = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
docs = lambda tag: ({"_index": "a", "message": "%s %s %d" % (run, tag, i)} for i in range(10))

basic = Elasticsearch(base, basic_auth=("elastic", tok), request_timeout=30)
out["basic_version"] = basic.info()["version"]["number"]
out["basic_bulk"] = helpers.bulk(basic, docs("basic"))[0]
out["template"] = basic.indices.put_index_template(name="wl-test", index_patterns=["wl-*"]).body

apikey = Elasticsearch(base, api_key=("some-id", tok), request_timeout=30)
out["apikey_bulk"] = helpers.bulk(apikey, docs("apikey"))[0]

try:
    helpers.bulk(Elasticsearch(base, basic_auth=("elastic", "wrong"), request_timeout=30, max_retries=0), docs("wrong"))
    out["wrong"] = 200
except elasticsearch.AuthenticationException as e:
    out["wrong"] = e.meta.status

handler = logging_loki.LokiHandler(url=base + "/loki/api/v1/push", version="1", auth=("loki", tok),
                                   tags={"service_name": "auth-loki"})
failures = []
handler.handleError = lambda record: failures.append(str(sys.exc_info()[1]))
log = logging.getLogger("wl-auth")
log.propagate = False
log.addHandler(handler)
for i in range(5):
    log.warning("%s loki %d", run, i)
out["loki_failures"] = failures
print(json.dumps(out))
