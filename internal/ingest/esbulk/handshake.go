package esbulk

import (
	"fmt"
	"net/http"
	"time"
)

// The handshake: what shippers ask an Elasticsearch cluster before (and
// between) bulk requests, answered so they go on sending. Every answer
// carries X-Elastic-Product, which the 8.x clients check.

const clusterName = "wirelog"

// info answers GET / and HEAD /: the version Filebeat, Logstash, Vector and
// the clients read (see Version), with the tagline and build flavour the
// 7.14+ clients' product check looked for.
func info(w http.ResponseWriter, r *http.Request) {
	header(w)
	fmt.Fprintf(w, `{"name":"wirelog","cluster_name":%q,"cluster_uuid":"d2lyZWxvZy1jbHVzdGVy","version":{"number":%q,"build_flavor":"default","build_type":"wirelog","build_hash":"wirelog","build_date":"2025-07-24T00:00:00.000Z","build_snapshot":false,"lucene_version":%q,"minimum_wire_compatibility_version":"7.17.0","minimum_index_compatibility_version":"7.0.0"},"tagline":"You Know, for Search"}`+"\n",
		clusterName, Version, lucene)
}

// license answers GET /_license: Filebeat and Logstash read the type and
// status to decide whether ILM is available. A basic, active license
// makes them use it (harmlessly: see acknowledged).
func license(w http.ResponseWriter, r *http.Request) {
	header(w)
	fmt.Fprint(w, `{"license":{"status":"active","uid":"wirelog","type":"basic","issue_date":"2025-01-01T00:00:00.000Z","issue_date_in_millis":1735689600000,"max_nodes":1000,"max_resource_units":null,"issued_to":"wirelog","issuer":"wirelog","start_date_in_millis":-1}}`+"\n")
}

// xpack answers GET /_xpack, which Logstash and older Beats read for the
// same reason as /_license.
func xpack(w http.ResponseWriter, r *http.Request) {
	header(w)
	fmt.Fprintf(w, `{"build":{"hash":"wirelog","date":"2025-07-24T00:00:00.000Z"},"license":{"uid":"wirelog","type":"basic","mode":"basic","status":"active"},"features":{"ilm":{"available":true,"enabled":true}},"tagline":"You know, for X"}`+"\n")
}

// nodesHTTP answers GET /_nodes/http, which sniffing clients (Logstash
// sniffing, the Python client's sniff_on_start) use to find more nodes:
// there is one, reachable where the client already is.
func nodesHTTP(w http.ResponseWriter, r *http.Request) {
	header(w)
	host := r.Host
	if host == "" {
		host = "127.0.0.1:8080"
	}
	fmt.Fprintf(w, `{"_nodes":{"total":1,"successful":1,"failed":0},"cluster_name":%q,"nodes":{"d2lyZWxvZy1ub2Rl":{"name":"wirelog","transport_address":%q,"host":%q,"ip":%q,"version":%q,"roles":["data","ingest","master"],"http":{"bound_address":[%q],"publish_address":%q,"max_content_length_in_bytes":104857600}}}}`+"\n",
		clusterName, host, host, host, Version, host, host)
}

// clusterHealth answers GET /_cluster/health (Vector's and Logstash's
// health checks): green, because the gateway answering means it can take
// writes; a log pushing back answers 429 on the bulk request itself.
func clusterHealth(w http.ResponseWriter, r *http.Request) {
	header(w)
	fmt.Fprintf(w, `{"cluster_name":%q,"status":"green","timed_out":false,"number_of_nodes":1,"number_of_data_nodes":1,"active_primary_shards":1,"active_shards":1,"relocating_shards":0,"initializing_shards":0,"unassigned_shards":0,"delayed_unassigned_shards":0,"number_of_pending_tasks":0,"number_of_in_flight_fetch":0,"task_max_waiting_in_queue_millis":0,"active_shards_percent_as_number":100.0}`+"\n", clusterName)
}

// catHealth answers GET /_cat/health, rsyslog omelasticsearch's
// connection check, in the cat API's text form.
func catHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	now := time.Now().UTC()
	fmt.Fprintf(w, "%d %s %s green 1 1 1 1 0 0 0 0 - 100.0%%\n", now.Unix(), now.Format("15:04:05"), clusterName)
}

// acknowledged answers the template, ILM, ingest pipeline and data stream
// calls: GET/HEAD say it exists (so a shipper does not try to install it),
// PUT says it was installed. wirelog keeps one schema for every source, so
// there is nothing to install.
func acknowledged(w http.ResponseWriter, r *http.Request) {
	header(w)
	if r.Method == http.MethodPut {
		fmt.Fprint(w, `{"acknowledged":true}`+"\n")
		return
	}
	fmt.Fprint(w, "{}\n")
}
