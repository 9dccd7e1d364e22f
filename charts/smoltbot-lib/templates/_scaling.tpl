{{/*
Availability and scaling of one service: PodDisruptionBudget, and exactly one of a CPU
HorizontalPodAutoscaler (`autoscaling.mode: hpa`) or a KEDA ScaledObject on consumer-group lag
(`autoscaling.mode: keda`, stream workers only) while `autoscaling.enabled`. The Deployment omits
`spec.replicas` while either owns the replica count.
*/}}

{{- define "smoltbot-lib.pdb" -}}
{{- $pdb := .Values.podDisruptionBudget -}}
{{- if $pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "smoltbot-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "smoltbot-lib.labels" (dict "ctx" . "component" .Chart.Name) | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $pdb.minAvailable) }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable | default 1 }}
  {{- end }}
  # A pod still waiting for Redis/PostgreSQL (startup 503) must not block a node drain.
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "smoltbot-lib.selectorLabels" (dict "ctx" . "component" .Chart.Name) | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "smoltbot-lib.hpa" -}}
{{- $a := .Values.autoscaling -}}
{{- if and $a.enabled (eq $a.mode "hpa") }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "smoltbot-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "smoltbot-lib.labels" (dict "ctx" . "component" .Chart.Name) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "smoltbot-lib.fullname" . }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.hpa.targetCPUUtilizationPercentage }}
    {{- with $a.hpa.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with $a.hpa.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
smoltbot-lib.scaledobject: one redis-streams trigger per stream the service's group reads, on
the group's lag (XINFO GROUPS, Redis >= 7): the only mode that measures unread work (a prompt
acker keeps its pending list short whatever the backlog). The HPA KEDA creates takes the
largest of the triggers.
*/}}
{{- define "smoltbot-lib.scaledobject" -}}
{{- $a := .Values.autoscaling -}}
{{- if and $a.enabled (eq $a.mode "keda") }}
{{- $f := include "smoltbot-lib.facts" . | fromYaml -}}
{{- $redis := include "smoltbot-lib.kedaRedis" . | fromYaml -}}
{{- $prefix := include "smoltbot-lib.streamPrefix" . -}}
{{- $auth := dig "keda" "authenticationRef" "" .Values.global -}}
{{- $k := $a.keda -}}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ include "smoltbot-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "smoltbot-lib.labels" (dict "ctx" . "component" .Chart.Name) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "smoltbot-lib.fullname" . }}
  minReplicaCount: {{ $a.minReplicas }}
  maxReplicaCount: {{ $a.maxReplicas }}
  pollingInterval: {{ $k.pollingInterval }}
  cooldownPeriod: {{ $k.cooldownPeriod }}
  {{- with $k.fallback }}
  fallback:
    failureThreshold: {{ .failureThreshold }}
    replicas: {{ .replicas }}
  {{- end }}
  {{- with $k.behavior }}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        {{- toYaml . | nindent 8 }}
  {{- end }}
  triggers:
    {{- range $f.streams }}
    - type: redis-streams
      metadata:
        address: {{ $redis.address | quote }}
        databaseIndex: {{ $redis.databaseIndex | quote }}
        enableTLS: {{ $redis.enableTLS | quote }}
        stream: {{ printf "%s%s" $prefix . | quote }}
        consumerGroup: {{ $f.group | quote }}
        lagCount: {{ $k.lagCount | toString | quote }}
        activationLagCount: {{ $k.activationLagCount | toString | quote }}
      {{- if $auth }}
      authenticationRef:
        name: {{ $auth }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end -}}
