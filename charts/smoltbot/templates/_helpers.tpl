{{/* Umbrella-only helpers; names, labels and images come from smoltbot-lib. */}}

{{/* smoltbot.labels "component": labels of an umbrella-owned object. */}}
{{- define "smoltbot.labels" -}}
{{- include "smoltbot-lib.labels" (dict "ctx" .ctx "component" .component) -}}
{{- end -}}

{{/* smoltbot.thirdPartyImage .Values.redis.image: an image that is not ours (no global registry). */}}
{{- define "smoltbot.thirdPartyImage" -}}
{{- if .registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .registry) .repository (toString .tag) -}}
{{- else -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}
{{- end -}}

{{/* smoltbot.migrateHook: when the migrate Job runs (see values.yaml `migrate`). */}}
{{- define "smoltbot.migrateHook" -}}
{{- if (include "smoltbot-lib.postgresqlInCluster" .) -}}
post-install,pre-upgrade
{{- else -}}
pre-install,pre-upgrade
{{- end -}}
{{- end -}}

{{/* smoltbot.kedaUsed: "true" when a stream worker scales with KEDA. */}}
{{- define "smoltbot.kedaUsed" -}}
{{- range $svc := list "observer" "verifier" "persister" "notifier" -}}
{{- $v := index $.Values $svc -}}
{{- if and $v.enabled $v.autoscaling.enabled (eq $v.autoscaling.mode "keda") }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/* smoltbot.redisUrl: REDIS_URL for the chart-managed Secret. */}}
{{- define "smoltbot.redisUrl" -}}
{{- if (include "smoltbot-lib.redisInCluster" .) -}}
{{- printf "redis://%s:6379/0" (include "smoltbot-lib.redisName" .) -}}
{{- else -}}
{{- .Values.global.redis.url -}}
{{- end -}}
{{- end -}}

{{/* smoltbot.databaseUrl (dict "ctx" $ "password" "..."): DATABASE_URL for the chart-managed Secret. */}}
{{- define "smoltbot.databaseUrl" -}}
{{- $ctx := .ctx -}}
{{- if (include "smoltbot-lib.postgresqlInCluster" $ctx) -}}
{{- $pg := $ctx.Values.postgresql -}}
{{- printf "postgresql://%s:%s@%s:5432/%s" $pg.username .password (include "smoltbot-lib.postgresqlName" $ctx) $pg.database -}}
{{- else -}}
{{- $ctx.Values.global.postgresql.url -}}
{{- end -}}
{{- end -}}

{{/* smoltbot.servicePort "gateway": the Service port of a service chart. */}}
{{- define "smoltbot.servicePort" -}}
{{- $v := index .ctx.Values .service -}}
{{- (($v.service | default dict).port) | default $v.port -}}
{{- end -}}

{{/* smoltbot.tmpVolume: the /tmp emptyDir of umbrella-owned pods. */}}
{{- define "smoltbot.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}
