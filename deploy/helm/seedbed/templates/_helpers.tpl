{{/*
Names. The full name prefixes every object; the RayCluster's name must be a DNS-1035 label of at
most 53 characters (KubeRay), and KubeRay names the head's Service "<cluster>-head-svc".
*/}}
{{- define "seedbed.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "seedbed.fullname" -}}
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

{{- define "seedbed.rayClusterName" -}}
{{- printf "%s-ray" (include "seedbed.fullname" .) -}}
{{- end -}}

{{/* The coordinators' Service and its cluster DNS name (resolved by every pod of the cluster). */}}
{{- define "seedbed.coordinatorServiceName" -}}
{{- include "seedbed.fullname" . -}}
{{- end -}}

{{- define "seedbed.coordinatorServiceHost" -}}
{{- printf "%s.%s.svc" (include "seedbed.coordinatorServiceName" .) .Release.Namespace -}}
{{- end -}}

{{/*
host:port the workers call the coordinator back at (SEEDBED_ADVERTISE_ADDRESS):
coordinator.advertiseAddress, else the Service's DNS name and the gRPC port.
*/}}
{{- define "seedbed.coordinatorAdvertiseAddress" -}}
{{- if .Values.coordinator.advertiseAddress -}}
{{- .Values.coordinator.advertiseAddress -}}
{{- else -}}
{{- printf "%s:%d" (include "seedbed.coordinatorServiceHost" .) (int .Values.coordinator.grpcPort) -}}
{{- end -}}
{{- end -}}

{{/* host:port of the Ray head's GCS, through the head Service KubeRay makes. */}}
{{- define "seedbed.rayHeadAddress" -}}
{{- printf "%s-head-svc:%d" (include "seedbed.rayClusterName" .) (int .Values.ray.ports.gcs) -}}
{{- end -}}

{{- define "seedbed.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "seedbed.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "seedbed.selectorLabels" -}}
app.kubernetes.io/name: {{ include "seedbed.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "seedbed.coordinatorSelectorLabels" -}}
{{ include "seedbed.selectorLabels" . }}
app.kubernetes.io/component: coordinator
{{- end -}}

{{- define "seedbed.coordinatorServiceAccount" -}}
{{- printf "%s-coordinator" (include "seedbed.fullname" .) -}}
{{- end -}}

{{- define "seedbed.rayServiceAccount" -}}
{{- printf "%s-ray" (include "seedbed.fullname" .) -}}
{{- end -}}

{{/* Image references. */}}
{{- define "seedbed.seedbedImage" -}}
{{- $image := index .root.Values.images .which -}}
{{- $tag := required (printf "images.%s.tag is required: the tag `seedbed image build --all` printed for %s" .which $image.name) $image.tag -}}
{{- if .root.Values.images.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.images.registry) $image.name $tag -}}
{{- else -}}
{{- printf "%s:%s" $image.name $tag -}}
{{- end -}}
{{- end -}}

{{- define "seedbed.coordinatorImage" -}}
{{- include "seedbed.seedbedImage" (dict "root" . "which" "coordinator") -}}
{{- end -}}

{{- define "seedbed.workerImage" -}}
{{- include "seedbed.seedbedImage" (dict "root" . "which" "worker") -}}
{{- end -}}

{{- define "seedbed.dockerDaemonImage" -}}
{{- printf "%s:%s" .Values.images.dockerDaemon.repository .Values.images.dockerDaemon.tag -}}
{{- end -}}

{{- define "seedbed.imagePullSecrets" -}}
{{- with .Values.images.pullSecrets -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . | quote }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* The Secret holding the store URL, the secret key and the admin key. */}}
{{- define "seedbed.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- include "seedbed.fullname" . -}}
{{- end -}}
{{- end -}}

{{/*
The coordinator's secret settings, each from the Secret (never a plain value). Used by the migrate
init container and the coordinator alike.
*/}}
{{- define "seedbed.secretEnv" -}}
- name: SEEDBED_STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "seedbed.secretName" . }}
      key: {{ .Values.secrets.keys.storeUrl }}
- name: SEEDBED_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "seedbed.secretName" . }}
      key: {{ .Values.secrets.keys.secretKey }}
{{- if or .Values.secrets.existingSecret .Values.secrets.adminApiKey }}
- name: SEEDBED_ADMIN_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "seedbed.secretName" . }}
      key: {{ .Values.secrets.keys.adminApiKey }}
      optional: {{ not (empty .Values.secrets.existingSecret) }}
{{- end }}
{{- end -}}

{{/* Settings every coordinator container reads (migrate included). */}}
{{- define "seedbed.coordinatorEnv" -}}
- name: SEEDBED_DATA_DIR
  value: /var/lib/seedbed
- name: SEEDBED_LOG_FORMAT
  value: {{ .Values.coordinator.logFormat | quote }}
{{ include "seedbed.secretEnv" . }}
{{- range $name, $value := .Values.coordinator.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The Ray ports as the entry point reads them (coordinator role). */}}
{{- define "seedbed.rayPortEnv" -}}
{{- $p := .Values.ray.ports -}}
- name: SEEDBED_RAY_NODE_MANAGER_PORT
  value: {{ $p.nodeManager | quote }}
- name: SEEDBED_RAY_OBJECT_MANAGER_PORT
  value: {{ $p.objectManager | quote }}
- name: SEEDBED_RAY_RUNTIME_ENV_AGENT_PORT
  value: {{ $p.runtimeEnvAgent | quote }}
- name: SEEDBED_RAY_AGENT_GRPC_PORT
  value: {{ $p.dashboardAgentGrpc | quote }}
- name: SEEDBED_RAY_AGENT_LISTEN_PORT
  value: {{ $p.dashboardAgentListen | quote }}
- name: SEEDBED_RAY_METRICS_EXPORT_PORT
  value: {{ $p.metricsExport | quote }}
- name: SEEDBED_RAY_MIN_WORKER_PORT
  value: {{ $p.minWorker | quote }}
- name: SEEDBED_RAY_MAX_WORKER_PORT
  value: {{ $p.maxWorker | quote }}
{{- end -}}

{{/* The same ports as KubeRay's rayStartParams (head and workers). */}}
{{- define "seedbed.rayStartPorts" -}}
{{- $p := .Values.ray.ports -}}
node-manager-port: {{ $p.nodeManager | quote }}
object-manager-port: {{ $p.objectManager | quote }}
runtime-env-agent-port: {{ $p.runtimeEnvAgent | quote }}
dashboard-agent-grpc-port: {{ $p.dashboardAgentGrpc | quote }}
dashboard-agent-listen-port: {{ $p.dashboardAgentListen | quote }}
metrics-export-port: {{ $p.metricsExport | quote }}
min-worker-port: {{ $p.minWorker | quote }}
max-worker-port: {{ $p.maxWorker | quote }}
disable-usage-stats: "true"
{{- end -}}

{{/* Security context of every container that needs no privilege. */}}
{{- define "seedbed.restrictedContainer" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Values that the schema cannot check: relations between values. */}}
{{- define "seedbed.validate" -}}
{{- $w := .Values.ray.workers -}}
{{- if gt (int $w.minReplicas) (int $w.maxReplicas) -}}
{{- fail (printf "ray.workers.minReplicas (%d) must not exceed ray.workers.maxReplicas (%d)" (int $w.minReplicas) (int $w.maxReplicas)) -}}
{{- end -}}
{{- if or (lt (int $w.replicas) (int $w.minReplicas)) (gt (int $w.replicas) (int $w.maxReplicas)) -}}
{{- fail (printf "ray.workers.replicas (%d) must lie between ray.workers.minReplicas (%d) and ray.workers.maxReplicas (%d)" (int $w.replicas) (int $w.minReplicas) (int $w.maxReplicas)) -}}
{{- end -}}
{{- $p := .Values.ray.ports -}}
{{- if ge (int $p.minWorker) (int $p.maxWorker) -}}
{{- fail (printf "ray.ports.minWorker (%d) must be below ray.ports.maxWorker (%d)" (int $p.minWorker) (int $p.maxWorker)) -}}
{{- end -}}
{{- $fixed := list (int $p.gcs) (int $p.nodeManager) (int $p.objectManager) (int $p.runtimeEnvAgent) (int $p.dashboardAgentGrpc) (int $p.dashboardAgentListen) (int $p.metricsExport) (int .Values.coordinator.grpcPort) (int .Values.coordinator.metricsPort) (int .Values.coordinator.restPort) 2376 -}}
{{- range $fixed -}}
{{- if and (ge . (int $p.minWorker)) (le . (int $p.maxWorker)) -}}
{{- fail (printf "port %d lies inside the Ray worker port range ray.ports.minWorker..ray.ports.maxWorker (%d-%d)" . (int $p.minWorker) (int $p.maxWorker)) -}}
{{- end -}}
{{- end -}}
{{- if ne (len (uniq $fixed)) (len $fixed) -}}
{{- fail "ray.ports, coordinator.grpcPort, coordinator.metricsPort and coordinator.restPort must all differ (and differ from 2376, the Docker daemon's)" -}}
{{- end -}}
{{- with .Values.coordinator.advertiseAddress -}}
{{- $host := regexReplaceAll ":[0-9]+$" . "" -}}
{{- if regexMatch "^(|0\\.0\\.0\\.0|\\[?::\\]?|localhost|127\\.[0-9.]+|\\[?::1\\]?)$" $host -}}
{{- fail (printf "coordinator.advertiseAddress (%s) must be an address the workers in other pods can call, not a wildcard or loopback host; leave it empty for the Service's name" .) -}}
{{- end -}}
{{- end -}}
{{- if not .Values.secrets.existingSecret -}}
{{- $_ := required "secrets.storeUrl is required (a PostgreSQL URL: postgresql+psycopg://user:password@host:5432/db) unless secrets.existingSecret names a Secret holding it" .Values.secrets.storeUrl -}}
{{- $_ := required "secrets.secretKey is required (a Fernet key; see values.yaml) unless secrets.existingSecret names a Secret holding it" .Values.secrets.secretKey -}}
{{- end -}}
{{- if .Values.coordinator.tls.enabled -}}
{{- $_ := required "coordinator.tls.secretName is required when coordinator.tls.enabled is true" .Values.coordinator.tls.secretName -}}
{{- end -}}
{{- $_ := include "seedbed.coordinatorImage" . -}}
{{- $_ := include "seedbed.workerImage" . -}}
{{- end -}}

{{/*
Ray's peers, as NetworkPolicy peers: the head and worker pods of this release's RayCluster (KubeRay
labels them ray.io/cluster, a label a pod template cannot override) and the coordinators (Ray nodes
too).
*/}}
{{- define "seedbed.rayPeers" -}}
- podSelector:
    matchLabels:
      ray.io/cluster: {{ include "seedbed.rayClusterName" . }}
- podSelector:
    matchLabels:
      {{- include "seedbed.coordinatorSelectorLabels" . | nindent 6 }}
{{- end -}}

{{/* Ray's fixed ports (GCS to metrics) and the range of its worker processes, as policy ports. */}}
{{- define "seedbed.rayPorts" -}}
- protocol: TCP
  port: {{ .Values.ray.ports.gcs }}
- protocol: TCP
  port: {{ .Values.ray.ports.nodeManager }}
- protocol: TCP
  port: {{ .Values.ray.ports.objectManager }}
- protocol: TCP
  port: {{ .Values.ray.ports.runtimeEnvAgent }}
- protocol: TCP
  port: {{ .Values.ray.ports.dashboardAgentGrpc }}
- protocol: TCP
  port: {{ .Values.ray.ports.dashboardAgentListen }}
- protocol: TCP
  port: {{ .Values.ray.ports.metricsExport }}
- protocol: TCP
  port: {{ .Values.ray.ports.minWorker }}
  endPort: {{ .Values.ray.ports.maxWorker }}
{{- end -}}
