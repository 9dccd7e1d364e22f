{{/* ServiceMonitor (Prometheus Operator) for one service's /metrics on its own port. */}}
{{- define "smoltbot-lib.servicemonitor" -}}
{{- $sm := dig "serviceMonitor" dict .Values.global -}}
{{- if $sm.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "smoltbot-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "smoltbot-lib.labels" (dict "ctx" . "component" .Chart.Name) | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "smoltbot-lib.selectorLabels" (dict "ctx" . "component" .Chart.Name) | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  endpoints:
    - port: http
      path: /metrics
      scheme: http
      interval: {{ $sm.interval | default "30s" }}
      scrapeTimeout: {{ $sm.scrapeTimeout | default "10s" }}
{{- end }}
{{- end -}}
