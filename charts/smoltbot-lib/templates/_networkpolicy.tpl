{{/*
smoltbot-lib.networkpolicy: what one service may receive and send; the umbrella adds a
default-deny for every pod of the release, so this is the whole allow list.

Ingress: the service's one port (it serves traffic, probes and /metrics). The HTTP services
(gateway, api) take it from anywhere unless `networkPolicy.ingressFrom` narrows it; stream
workers only from `global.networkPolicy.metricsFrom` (default: any pod in the cluster). Once
narrowed, Prometheus (`metricsFrom`) and the release's `helm test` pod stay allowed.
Egress: DNS; Redis; PostgreSQL for persister and api; 443 for the gateway (providers) and the
notifier (webhooks); the rules the service's facts list under `egress` (the verifier's analysis
server); `networkPolicy.extraEgress` for anything else (e.g. an upstream on port 80).
*/}}
{{- define "smoltbot-lib.networkpolicy" -}}
{{- $np := dig "networkPolicy" dict .Values.global -}}
{{- if (dig "enabled" true $np) }}
{{- $f := include "smoltbot-lib.facts" . | fromYaml -}}
{{- $own := .Values.networkPolicy | default dict -}}
{{- $metricsFrom := dig "metricsFrom" (list (dict "namespaceSelector" dict)) $np -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "smoltbot-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "smoltbot-lib.labels" (dict "ctx" . "component" .Chart.Name) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "smoltbot-lib.selectorLabels" (dict "ctx" . "component" .Chart.Name) | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - ports:
        - port: http
          protocol: TCP
      {{- if or (not $f.public) $own.ingressFrom }}
      from:
        {{- with $own.ingressFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- toYaml $metricsFrom | nindent 8 }}
        - podSelector:
            matchLabels:
              app.kubernetes.io/instance: {{ $.Release.Name }}
              app.kubernetes.io/component: helm-test
      {{- end }}
    {{- with $own.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    {{- include "smoltbot-lib.egressDns" . | nindent 4 }}
    {{- include "smoltbot-lib.egressRedis" . | nindent 4 }}
    {{- if $f.postgresql }}
    {{- include "smoltbot-lib.egressPostgresql" . | nindent 4 }}
    {{- end }}
    {{- if $f.https }}
    - ports:
        - port: 443
          protocol: TCP
      {{- with (dig "httpsTo" list $np) }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- with $f.egress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $own.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* Egress rule to Redis: the in-cluster pods, else `global.networkPolicy.redisTo` (empty: any). */}}
{{- define "smoltbot-lib.egressRedis" -}}
{{- $np := dig "networkPolicy" dict .Values.global -}}
{{- if (include "smoltbot-lib.redisInCluster" .) -}}
- ports:
    - port: 6379
      protocol: TCP
  to:
    - podSelector:
        matchLabels:
          {{- include "smoltbot-lib.selectorLabels" (dict "ctx" . "component" "redis") | nindent 10 }}
{{- else -}}
- ports:
    - port: {{ dig "redis" "port" 6379 .Values.global }}
      protocol: TCP
  {{- with $np.redisTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/* Egress rule to PostgreSQL: the in-cluster pod, else `global.networkPolicy.postgresqlTo`. */}}
{{- define "smoltbot-lib.egressPostgresql" -}}
{{- $np := dig "networkPolicy" dict .Values.global -}}
{{- if (include "smoltbot-lib.postgresqlInCluster" .) -}}
- ports:
    - port: 5432
      protocol: TCP
  to:
    - podSelector:
        matchLabels:
          {{- include "smoltbot-lib.selectorLabels" (dict "ctx" . "component" "postgresql") | nindent 10 }}
{{- else -}}
- ports:
    - port: {{ dig "postgresql" "port" 5432 .Values.global }}
      protocol: TCP
  {{- with $np.postgresqlTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/* Egress rule for DNS: port 53, to `global.networkPolicy.dnsTo` (empty: any address). */}}
{{- define "smoltbot-lib.egressDns" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  {{- with (dig "networkPolicy" "dnsTo" list .Values.global) }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
