{{/* What the api is, for the smoltbot-lib templates (see _workload.tpl there). */}}
{{- define "api.facts" -}}
portVar: SMOLTBOT_API_PORT
public: true
secretEnv: [DATABASE_URL, REDIS_URL, SMOLTBOT_ADMIN_TOKEN, SMOLTBOT_EVENT_KEY]
optionalSecretEnv: [SMOLTBOT_EVENT_KEYS_RETIRED]
postgresql: true
https: false
spool: false
{{- end -}}

{{- define "api.validate" -}}
{{- $c := include "smoltbot-lib.configData" . | fromYaml -}}
{{- $min := $c.SMOLTBOT_API_DB_POOL_MIN_SIZE | default "1" | int -}}
{{- $max := $c.SMOLTBOT_API_DB_POOL_MAX_SIZE | default "10" | int -}}
{{- if gt $min $max -}}
{{- fail (printf "smoltbot: api.config.SMOLTBOT_API_DB_POOL_MIN_SIZE (%d) must not exceed SMOLTBOT_API_DB_POOL_MAX_SIZE (%d)" $min $max) -}}
{{- end -}}
{{- end -}}
