{{/* Chart name, overridable. */}}
{{- define "beacon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name when it already contains the chart name, else "<release>-<name>".
Truncated so that StatefulSet pod names (plus "-NN" and the controller-revision hash label) stay valid.
*/}}
{{- define "beacon.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "beacon.headlessName" -}}
{{- printf "%s-headless" (include "beacon.fullname" .) }}
{{- end }}

{{/* The ClusterIP Service of the admin port (probes, metrics) that the ServiceMonitor scrapes. */}}
{{- define "beacon.metricsName" -}}
{{- printf "%s-metrics" (include "beacon.fullname" .) }}
{{- end }}

{{- define "beacon.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "beacon.labels" -}}
helm.sh/chart: {{ include "beacon.chart" . }}
{{ include "beacon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: beacon
{{- end }}

{{/* Immutable selector labels (StatefulSet, Services, PDB, ServiceMonitor). */}}
{{- define "beacon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "beacon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "beacon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "beacon.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "beacon.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The job label Prometheus gives beacon's targets (see serviceMonitor.jobLabel): the scraped
Service's app.kubernetes.io/name label, else (prometheus-operator's default) that Service's name.
*/}}
{{- define "beacon.jobName" -}}
{{- if eq .Values.serviceMonitor.jobLabel "app.kubernetes.io/name" }}
{{- include "beacon.name" . }}
{{- else }}
{{- include "beacon.metricsName" . }}
{{- end }}
{{- end }}

{{/*
What every init container shares: environment, security context, resources and the shared
init-data volume, plus the user's extra environment and mounts (e.g. a private CA bundle named
by SSL_CERT_FILE for https fetches). Called with the root context.
*/}}
{{- define "beacon.initContainerCommon" -}}
env:
  - name: BEACON_LOG_FORMAT
    value: {{ .Values.serve.logFormat | quote }}
  {{- with .Values.initData.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
resources:
  {{- toYaml .Values.initData.resources | nindent 2 }}
volumeMounts:
  - name: init-data
    mountPath: {{ .Values.initData.mountPath }}
  {{- with .Values.initData.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
