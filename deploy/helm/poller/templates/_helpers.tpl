{{- define "poller.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "poller.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "poller.labels" -}}
{{ include "poller.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "poller.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "poller.fullname" .) -}}
{{- end -}}

{{/* The poller YAML: the config values plus what the chart owns (server.listen, shutdown_timeout). */}}
{{- define "poller.config" -}}
{{- if hasKey .Values.config "shutdown_timeout" -}}
{{- fail "config.shutdown_timeout: set shutdownTimeoutSeconds instead (it also sets terminationGracePeriodSeconds)" -}}
{{- end -}}
{{- $server := dict "listen" (printf ":%d" (int .Values.port)) -}}
{{- $cfg := merge (dict "server" $server "shutdown_timeout" (printf "%ds" (int .Values.shutdownTimeoutSeconds))) (deepCopy .Values.config) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* GOMEMLIMIT in bytes: goMemLimitPercent of resources.limits.memory (a Kubernetes quantity). */}}
{{- define "poller.goMemLimit" -}}
{{- $q := .Values.resources.limits.memory | toString -}}
{{- $num := regexFind "^[0-9]+" $q -}}
{{- $unit := trimPrefix $num $q -}}
{{- $units := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 -}}
{{- if or (eq $num "") (not (hasKey $units $unit)) -}}
{{- fail (printf "resources.limits.memory %q: give a whole number with one of the units Ki, Mi, Gi, k, M, G" $q) -}}
{{- end -}}
{{- div (mul (int64 $num) (get $units $unit) (int64 .Values.goMemLimitPercent)) 100 -}}
{{- end -}}
