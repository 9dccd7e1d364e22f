{{/*
smoltbot-lib.validate: contradictions values.schema.json cannot express, for one service. Each
failure names the values to change; every message starts with "smoltbot:". A service chart may
add its own checks in "<chart name>.validate" (always defined, possibly empty).
*/}}
{{- define "smoltbot-lib.validate" -}}
{{- $f := include "smoltbot-lib.facts" . | fromYaml -}}
{{- $a := .Values.autoscaling -}}
{{- $svc := .Chart.Name -}}
{{- if $a.enabled -}}
  {{- if and (eq $a.mode "keda") $f.public -}}
    {{- fail (printf "smoltbot: %s.autoscaling.mode=keda: the %s serves HTTP and has no consumer-group lag to scale on; use mode hpa" $svc $svc) -}}
  {{- end -}}
  {{- if gt (int $a.minReplicas) (int $a.maxReplicas) -}}
    {{- fail (printf "smoltbot: %s.autoscaling.minReplicas (%v) is greater than maxReplicas (%v)" $svc $a.minReplicas $a.maxReplicas) -}}
  {{- end -}}
  {{- if and (eq $a.mode "hpa") (lt (int $a.minReplicas) 1) -}}
    {{- fail (printf "smoltbot: %s.autoscaling.minReplicas=0 needs mode keda (an HPA cannot scale to zero)" $svc) -}}
  {{- end -}}
  {{- if and (eq $a.mode "keda") (lt (int $a.minReplicas) 1) $a.keda.fallback -}}
    {{- if lt (int $a.keda.fallback.replicas) 1 -}}
    {{- fail (printf "smoltbot: %s.autoscaling.keda.fallback.replicas must be at least 1" $svc) -}}
    {{- end -}}
  {{- end -}}
{{- end -}}
{{- $pdb := .Values.podDisruptionBudget -}}
{{- if and $pdb.enabled (not (kindIs "invalid" $pdb.minAvailable)) (not (kindIs "invalid" $pdb.maxUnavailable)) -}}
  {{- fail (printf "smoltbot: %s.podDisruptionBudget: set minAvailable or maxUnavailable, not both" $svc) -}}
{{- end -}}
{{- $config := include "smoltbot-lib.configData" . | fromYaml -}}
{{- $drain := $config.SMOLTBOT_DRAIN_TIMEOUT_S | default "25" | float64 -}}
{{- if le (float64 .Values.terminationGracePeriodSeconds) $drain -}}
  {{- fail (printf "smoltbot: %s.terminationGracePeriodSeconds (%v) must exceed SMOLTBOT_DRAIN_TIMEOUT_S (%v): SIGTERM drains the batch in hand before the kill" $svc .Values.terminationGracePeriodSeconds $drain) -}}
{{- end -}}
{{- if and .Values.lifecycle (ge (int (dig "preStopSleepSeconds" 0 .Values.lifecycle)) (int .Values.terminationGracePeriodSeconds)) -}}
  {{- fail (printf "smoltbot: %s.lifecycle.preStopSleepSeconds must be shorter than terminationGracePeriodSeconds" $svc) -}}
{{- end -}}
{{- include (printf "%s.validate" $svc) . -}}
{{- end -}}
