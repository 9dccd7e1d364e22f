{{/*
Pod-level pieces shared by the services and the umbrella's own pods (migrate Job, helm test,
in-cluster Redis/PostgreSQL).
*/}}

{{/*
smoltbot-lib.podSecurityContext (dict "ctx" $ "override" <map>): non-root, non-zero UID,
RuntimeDefault seccomp; `global.podSecurityContext` then the override are merged over it.
*/}}
{{- define "smoltbot-lib.podSecurityContext" -}}
{{- $defaults := dict "runAsNonRoot" true "runAsUser" 10001 "runAsGroup" 10001 "fsGroup" 10001 "fsGroupChangePolicy" "OnRootMismatch" "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- $global := dig "podSecurityContext" dict .ctx.Values.global -}}
{{- toYaml (mergeOverwrite $defaults (deepCopy $global) (deepCopy (.override | default dict))) -}}
{{- end -}}

{{/*
smoltbot-lib.containerSecurityContext (dict "ctx" $ "override" <map>): no privilege escalation,
read-only root filesystem, every capability dropped.
*/}}
{{- define "smoltbot-lib.containerSecurityContext" -}}
{{- $defaults := dict "runAsNonRoot" true "allowPrivilegeEscalation" false "privileged" false "readOnlyRootFilesystem" true "capabilities" (dict "drop" (list "ALL")) "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- $global := dig "securityContext" dict .ctx.Values.global -}}
{{- toYaml (mergeOverwrite $defaults (deepCopy $global) (deepCopy (.override | default dict))) -}}
{{- end -}}

{{/* smoltbot-lib.scheduling: nodeSelector, tolerations, affinity, spread, priority of a pod. */}}
{{- define "smoltbot-lib.scheduling" -}}
{{- $v := .Values -}}
{{- with ($v.nodeSelector | default (dig "nodeSelector" dict .Values.global)) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with ($v.tolerations | default (dig "tolerations" list .Values.global)) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- tpl (toYaml .) $ | nindent 2 }}
{{- end }}
{{- with ($v.priorityClassName | default (dig "priorityClassName" "" .Values.global)) }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}
