{{/* What the gateway is, for the smoltbot-lib templates (see _workload.tpl there). */}}
{{- define "gateway.facts" -}}
portVar: SMOLTBOT_GATEWAY_PORT
public: true
secretEnv: [REDIS_URL, SMOLTBOT_EVENT_KEY]
optionalSecretEnv: [SMOLTBOT_EVENT_KEYS_RETIRED]
postgresql: false
# Providers (SMOLTBOT_UPSTREAM_*_URL) are called on 443.
https: true
# Events are spooled to SMOLTBOT_SPOOL_DIR while Redis is down or the bus is over budget.
spool: true
{{- end -}}

{{- define "gateway.validate" -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) 120 -}}
{{- fail "smoltbot: gateway.terminationGracePeriodSeconds must be at least 120: streamed LLM calls need time to finish" -}}
{{- end -}}
{{- end -}}
