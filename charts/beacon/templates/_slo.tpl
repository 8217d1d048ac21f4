{{/*
The service-level objectives of `/` (prometheusRule.slo; docs/alerts.md, "Service-level
objectives"): one rule group per SLO, generated here because every expression depends on the
values. For each SLO:
  - beacon:slo_objective:ratio           the objective (0.999), labelled with its period;
  - beacon:slo_errors:ratio_rate<window> the share of bad requests over each window that a
                                         burn-rate alert uses (5m, 30m, 1h, 2h, 6h, 1d, 3d);
  - beacon:slo_errors:ratio_period       the same over the whole period (30d);
  - Beacon<Slo>FastBurn (critical) and Beacon<Slo>SlowBurn (warning): the multi-window,
    multi-burn-rate alerts of the SRE workbook, one `or` branch per window pair.
Every series is labelled {namespace, job, slo}; the selectors keep to this release's namespace and
job, so two releases never record the same series.
Called with the root context; returns YAML `groups: [...]`.
*/}}
{{- define "beacon.sloGroups" -}}
{{- $slo := .Values.prometheusRule.slo }}
{{- $sel := printf "job=%q, namespace=%q, route=\"/\"" (include "beacon.jobName" .) .Release.Namespace }}
{{- $outSel := printf "job=%q, namespace=%q" (include "beacon.jobName" .) .Release.Namespace }}
{{- $windows := list }}
{{- range $severity := list "fastBurn" "slowBurn" }}
{{- range $pair := index $slo $severity }}
{{- $windows = append $windows $pair.long }}
{{- $windows = append $windows $pair.short }}
{{- end }}
{{- end }}
{{- $windows = uniq $windows }}
groups:
{{- range $name := list "availability" "latency" }}
{{- $spec := index $slo $name }}
{{- if $spec.enabled }}
{{- $objective := toString $spec.objective }}
{{- $budget := printf "(1 - %s / 100)" $objective }}
{{- $title := title $name }}
  - name: beacon.slo.{{ $name }}
    rules:
      - record: beacon:slo_objective:ratio
        expr: vector({{ $objective }} / 100)
        labels:
          namespace: {{ $.Release.Namespace | quote }}
          job: {{ include "beacon.jobName" $ | quote }}
          slo: {{ $name }}
          period: {{ $slo.period | quote }}
{{- range $i, $window := append $windows $slo.period }}
      - record: beacon:slo_errors:{{ if eq $i (len $windows) }}ratio_period{{ else }}ratio_rate{{ $window }}{{ end }}
        expr: |
{{- if eq $name "availability" }}
          (
            sum by (namespace, job) (rate(http_requests_total{ {{- $sel }}, status=~"5.."}[{{ $window }}]))
              or
            0 * sum by (namespace, job) (rate(http_requests_total{ {{- $sel }}}[{{ $window }}]))
          )
            /
          sum by (namespace, job) (rate(http_requests_total{ {{- $sel }}}[{{ $window }}]))
{{- else }}
          1 - (
            sum by (namespace, job) (rate(http_request_duration_seconds_bucket{ {{- $sel }}, le="{{ include "beacon.sloLe" $spec.threshold }}"}[{{ $window }}]))
              /
            sum by (namespace, job) (rate(http_request_duration_seconds_count{ {{- $sel }}}[{{ $window }}]))
          )
{{- end }}
        labels:
          slo: {{ $name }}
{{- end }}
{{- range $severity := list "fastBurn" "slowBurn" }}
{{- $pairs := index $slo $severity }}
{{- if $pairs }}
      - alert: Beacon{{ $title }}{{ if eq $severity "fastBurn" }}FastBurn{{ else }}SlowBurn{{ end }}
        expr: |
{{- range $i, $pair := $pairs }}
{{- if gt (mulf $pair.factor (subf 100 $spec.objective)) 100.0 }}
{{- fail (printf "prometheusRule.slo.%s: a %v× burn of the %s objective %v%% needs more than 100%% bad requests, so it can never fire; lower the factor or raise the objective" $severity $pair.factor $name $spec.objective) }}
{{- end }}
          {{- if $i }}
            or
          {{- end }}
          (
            beacon:slo_errors:ratio_rate{{ $pair.long }}{ {{- $outSel }}, slo="{{ $name }}"} / {{ $budget }} > {{ $pair.factor }}
              and
            beacon:slo_errors:ratio_rate{{ $pair.short }}{ {{- $outSel }}, slo="{{ $name }}"} / {{ $budget }} > {{ $pair.factor }}
          )
{{- end }}
        labels:
          severity: {{ if eq $severity "fastBurn" }}critical{{ else }}warning{{ end }}
        annotations:
          summary: beacon is spending its {{ $name }} error budget too fast.
          description: >-
            beacon in namespace {{ "{{" }} $labels.namespace {{ "}}" }} spends its {{ $name }} error budget
            ({{ $objective }}% of requests to / {{ if eq $name "availability" }}not answered 5xx{{ else }}answered within {{ $spec.threshold }}s{{ end }} over {{ $slo.period }})
            {{ "{{" }} $value | humanize {{ "}}" }} times as fast as the objective allows;
            {{- range $i, $pair := $pairs }}{{ if $i }} or{{ end }} {{ $pair.factor }}× over {{ $pair.long }} and {{ $pair.short }}{{ end }}
            {{- if eq $severity "fastBurn" }} pages{{ else }} opens a ticket{{ end }}.
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The `le` label of a latency threshold as beacon exposes it (OpenMetrics) and Prometheus 3 stores
it: Go's shortest float form with ".0" when that has neither "." nor "e" (1 -> "1.0").
*/}}
{{- define "beacon.sloLe" -}}
{{- $s := toString . }}
{{- if or (contains "." $s) (contains "e" $s) }}{{ $s }}{{ else }}{{ $s }}.0{{ end }}
{{- end }}
