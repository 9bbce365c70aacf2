{{/*
Names and labels. Every object is named <fullname>-<component> and labelled with the
app.kubernetes.io/* recommended labels; selectors use only name, instance and component.
*/}}

{{- define "wirelog.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wirelog.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* wirelog.component.name: "<fullname>-<component>"; call with (dict "root" $ "component" "ingest"). */}}
{{- define "wirelog.component.name" -}}
{{- printf "%s-%s" (include "wirelog.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wirelog.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* wirelog.selectorLabels: (dict "root" $ "component" "ingest") */}}
{{- define "wirelog.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wirelog.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* wirelog.labels: (dict "root" $ "component" "ingest") */}}
{{- define "wirelog.labels" -}}
{{ include "wirelog.selectorLabels" . }}
helm.sh/chart: {{ include "wirelog.chart" .root }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: wirelog
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* wirelog.instanceSelector: every pod of this release (the allow-nothing policy's selector). */}}
{{- define "wirelog.instanceSelector" -}}
app.kubernetes.io/name: {{ include "wirelog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wirelog.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "wirelog.agentImage" -}}
{{- printf "%s:%s" .Values.agent.image.repository (default .Chart.AppVersion .Values.agent.image.tag) -}}
{{- end -}}

{{/* wirelog.principal: the Istio principal of a component's service account. */}}
{{- define "wirelog.principal" -}}
{{- printf "cluster.local/ns/%s/sa/%s" .root.Release.Namespace (include "wirelog.component.name" .) -}}
{{- end -}}

{{/* wirelog.spiffeID: the SPIFFE ID cert-manager puts in a component's certificate (mtls.enabled). */}}
{{- define "wirelog.spiffeID" -}}
{{- printf "spiffe://%s/ns/%s/sa/%s" .root.Values.mtls.trustDomain .root.Release.Namespace (include "wirelog.component.name" .) -}}
{{- end -}}

{{- define "wirelog.kafkaBrokers" -}}
{{- if .Values.kafka.strimzi.enabled -}}
{{- printf "%s-kafka-bootstrap.%s.svc:9092" (include "wirelog.component.name" (dict "root" . "component" "kafka")) .Release.Namespace -}}
{{- else -}}
{{- join "," .Values.kafka.brokers -}}
{{- end -}}
{{- end -}}

{{- define "wirelog.storeURL" -}}
{{- if .Values.store.victorialogs.deploy -}}
{{- printf "http://%s.%s.svc:9428" (include "wirelog.component.name" (dict "root" . "component" "vlogs-front")) .Release.Namespace -}}
{{- else -}}
{{- required "store.victorialogs.url is required when store.victorialogs.deploy is false" .Values.store.victorialogs.url -}}
{{- end -}}
{{- end -}}

{{/*
wirelog.validate: combinations the schema cannot express, refused with a message that names
the values to change.
*/}}
{{- define "wirelog.validate" -}}
{{- if and .Values.istio.enabled .Values.mtls.enabled -}}
{{- fail "istio.enabled and mtls.enabled are exclusive: under Istio the sidecars do mTLS; set one of them false" -}}
{{- end -}}
{{- if and .Values.dpdk.enabled .Values.ingest.autoscaling.enabled -}}
{{- fail "dpdk.enabled pins ingest pods to dedicated cores and hugepages: set ingest.autoscaling.enabled=false and size ingest.replicas to the data-plane nodes" -}}
{{- end -}}
{{- end -}}

{{/*
wirelog.podAnnotations: mesh and Multus annotations of a wirelog pod.
(dict "root" $ "component" "ingest" "networks" "a,b" "extra" .Values.ingest.podAnnotations)
*/}}
{{- define "wirelog.podAnnotations" -}}
{{- $v := .root.Values -}}
{{- if $v.istio.enabled }}
# Prometheus scrapes the plaintext metrics port directly: it is kept out of the sidecar so
# scraping works under STRICT mTLS without Istio's metrics merging (see docs/KUBERNETES.md).
traffic.sidecar.istio.io/excludeInboundPorts: {{ include "wirelog.excludedInboundPorts" . | quote }}
{{- if .networks }}
# Traffic on the Multus interfaces (SR-IOV VF, vhost-user) bypasses the sidecar.
traffic.sidecar.istio.io/excludeInterfaces: {{ include "wirelog.multusInterfaces" . | quote }}
{{- end }}
{{- end }}
{{- if and $v.istio.enabled (eq .component "ingest") $v.dpdk.enabled }}
# Pinned pods must be Guaranteed in every container, the sidecar too: integer CPU,
# requests equal to limits.
sidecar.istio.io/proxyCPU: "1"
sidecar.istio.io/proxyCPULimit: "1"
sidecar.istio.io/proxyMemory: 256Mi
sidecar.istio.io/proxyMemoryLimit: 256Mi
{{- end }}
{{- if .networks }}
k8s.v1.cni.cncf.io/networks: {{ .networks | quote }}
{{- end }}
{{- if and (eq .component "ingest") $v.dpdk.enabled }}
userspace/mappedDir: {{ $v.dpdk.mountPath | quote }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Ports the sidecar must not intercept: metrics, and syslog TCP (syslog senders are not in the mesh). */}}
{{- define "wirelog.excludedInboundPorts" -}}
{{- $ports := list .root.Values.observability.metricsPort -}}
{{- if and (eq .component "ingest") .root.Values.ingest.syslog.tcp -}}
{{- $ports = append $ports .root.Values.ingest.syslog.port -}}
{{- end -}}
{{- join "," $ports -}}
{{- end -}}

{{/* Multus names interfaces net1, net2, … in the order of the networks annotation. */}}
{{- define "wirelog.multusInterfaces" -}}
{{- $n := len (splitList "," .networks) -}}
{{- $ifs := list -}}
{{- range $i := until $n -}}
{{- $ifs = append $ifs (printf "net%d" (add1 $i)) -}}
{{- end -}}
{{- join "," $ifs -}}
{{- end -}}

{{/* wirelog.podLabels: selector labels plus the sidecar injection label. */}}
{{- define "wirelog.podLabels" -}}
{{ include "wirelog.labels" . }}
{{- if .root.Values.istio.enabled }}
sidecar.istio.io/inject: "true"
{{- end }}
{{- end -}}

{{/* wirelog.ingestNetworks: the Multus networks of the ingest pods, comma-separated. */}}
{{- define "wirelog.ingestNetworks" -}}
{{- $nets := list -}}
{{- if .Values.sriov.enabled -}}
{{- $nets = append $nets (printf "%s/%s" .Release.Namespace (include "wirelog.component.name" (dict "root" . "component" "sriov"))) -}}
{{- end -}}
{{- if .Values.dpdk.enabled -}}
{{- $nets = append $nets (printf "%s/%s" .Release.Namespace (include "wirelog.component.name" (dict "root" . "component" "ovs-dpdk"))) -}}
{{- end -}}
{{- join "," $nets -}}
{{- end -}}

{{/*
wirelog.commonArgs: flags every role (ingest, process, serve) takes: the plaintext metrics
listener, with mtls.enabled the workload certificate, and the token files.
*/}}
{{- define "wirelog.commonArgs" -}}
- --metrics-plaintext=0.0.0.0:{{ .root.Values.observability.metricsPort }}
{{- if .root.Values.mtls.enabled }}
- --tls-cert=/etc/wirelog/tls/tls.crt
- --tls-key=/etc/wirelog/tls/tls.key
- --tls-client-ca=/etc/wirelog/tls/ca.crt
{{- end }}
{{- if .root.Values.auth.tenantTokensSecret }}
- --auth-tokens=/etc/wirelog/tenant-tokens/tokens.json
{{- end }}
{{- if .root.Values.auth.adminTokensSecret }}
- --admin-tokens=/etc/wirelog/admin-tokens/tokens
{{- end }}
{{- end -}}

{{/* wirelog.kafkaArgs: broker flags of ingest and process. */}}
{{- define "wirelog.kafkaArgs" -}}
{{- $k := .Values.kafka -}}
- --kafka={{ include "wirelog.kafkaBrokers" . }}
- --kafka-topic={{ $k.topic }}
- --kafka-dlq-topic={{ $k.dlqTopic }}
- --kafka-create-topics={{ and $k.createTopics (not $k.strimzi.enabled) }}
{{- if $k.tls.enabled }}
- --kafka-tls
{{- if $k.tls.caSecret }}
- --kafka-tls-ca=/etc/wirelog/kafka-ca/ca.crt
{{- end }}
{{- if $k.tls.clientSecret }}
- --kafka-tls-cert=/etc/wirelog/kafka-client/tls.crt
- --kafka-tls-key=/etc/wirelog/kafka-client/tls.key
{{- end }}
{{- if $k.tls.serverName }}
- --kafka-tls-server-name={{ $k.tls.serverName }}
{{- end }}
{{- end }}
{{- end -}}

{{/* wirelog.commonEnv: OpenTelemetry and Kafka SASL environment (secrets stay out of flags). */}}
{{- define "wirelog.commonEnv" -}}
{{- $v := .root.Values -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: OTEL_SERVICE_NAME
  value: wirelog-{{ .component }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: k8s.namespace.name={{ .root.Release.Namespace }},k8s.pod.name=$(POD_NAME)
{{- if $v.observability.otlp.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $v.observability.otlp.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $v.observability.otlp.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $v.observability.otlp.samplerRatio | quote }}
{{- else }}
- name: OTEL_TRACES_EXPORTER
  value: none
{{- end }}
{{- if and .kafka $v.kafka.sasl.mechanism }}
- name: WIRELOG_KAFKA_SASL_MECHANISM
  value: {{ $v.kafka.sasl.mechanism | quote }}
- name: WIRELOG_KAFKA_SASL_USER
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.secret is required with kafka.sasl.mechanism" $v.kafka.sasl.secret }}
      key: {{ $v.kafka.sasl.userKey }}
- name: WIRELOG_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.sasl.secret }}
      key: {{ $v.kafka.sasl.passwordKey }}
{{- end }}
{{- end -}}

{{/* wirelog.containerSecurityContext: what every wirelog container gets unless it needs more. */}}
{{- define "wirelog.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* wirelog.probes: on the plaintext metrics port, which stays on the pod network when
--bind-network moves the HTTP listener to a VF and stays plaintext under mtls.enabled. */}}
{{- define "wirelog.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: metrics}
  periodSeconds: 2
  failureThreshold: 90
livenessProbe:
  httpGet: {path: /healthz, port: metrics}
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: metrics}
  periodSeconds: 5
  failureThreshold: 2
{{- end -}}

{{/* wirelog.roleVolumes: Secrets every role mounts: its cert-manager certificate
(mtls.enabled) and the tenant and operator token files (auth.*). */}}
{{- define "wirelog.roleVolumes" -}}
{{- if .root.Values.mtls.enabled }}
- name: tls
  secret:
    secretName: {{ include "wirelog.component.name" . }}-tls
{{- end }}
{{- with .root.Values.auth.tenantTokensSecret }}
- name: tenant-tokens
  secret:
    secretName: {{ . }}
{{- end }}
{{- with .root.Values.auth.adminTokensSecret }}
- name: admin-tokens
  secret:
    secretName: {{ . }}
{{- end }}
{{- end -}}

{{- define "wirelog.roleMounts" -}}
{{- if .root.Values.mtls.enabled }}
- name: tls
  mountPath: /etc/wirelog/tls
  readOnly: true
{{- end }}
{{- if .root.Values.auth.tenantTokensSecret }}
- name: tenant-tokens
  mountPath: /etc/wirelog/tenant-tokens
  readOnly: true
{{- end }}
{{- if .root.Values.auth.adminTokensSecret }}
- name: admin-tokens
  mountPath: /etc/wirelog/admin-tokens
  readOnly: true
{{- end }}
{{- end -}}

{{- define "wirelog.kafkaVolumes" -}}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
{{- end }}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.clientSecret }}
- name: kafka-client
  secret:
    secretName: {{ .Values.kafka.tls.clientSecret }}
{{- end }}
{{- end -}}

{{- define "wirelog.kafkaMounts" -}}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/wirelog/kafka-ca
  readOnly: true
{{- end }}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.clientSecret }}
- name: kafka-client
  mountPath: /etc/wirelog/kafka-client
  readOnly: true
{{- end }}
{{- end -}}

{{/* wirelog.httpPortName: Istio protocol selection by port name; https when wirelog terminates TLS itself. */}}
{{- define "wirelog.httpPortName" -}}
{{- if .Values.mtls.enabled -}}https{{- else -}}http{{- end -}}
{{- end -}}

{{/* wirelog.meshComponents: JSON list of the components whose pods carry a sidecar. */}}
{{- define "wirelog.meshComponents" -}}
{{- $l := list "ingest" "process" "serve" -}}
{{- if .Values.store.victorialogs.deploy -}}
{{- $l = concat $l (list "vlogs-front" "vlogs-storage") -}}
{{- end -}}
{{- toJson $l -}}
{{- end -}}
