{{/* What the verifier is, for the smoltbot-lib templates (see _workload.tpl there). */}}
{{- define "verifier.facts" -}}
portVar: SMOLTBOT_VERIFIER_PORT
public: false
secretEnv: [REDIS_URL, SMOLTBOT_EVENT_KEY]
optionalSecretEnv: [SMOLTBOT_EVENT_KEYS_RETIRED]
postgresql: false
# The "rules" analyzer runs in process; the LLM backends (planned) will need 443.
https: false
spool: false
# Consumer group "verifier" on traces:priority and traces (services/verifier worker.py).
group: verifier
streams: ["traces:priority", "traces"]
{{- end -}}

{{/* The verifier refuses to start unless SMOLTBOT_BUS_MIN_IDLE_MS >= 3 x SMOLTBOT_ANALYZER_TIMEOUT_MS. */}}
{{- define "verifier.validate" -}}
{{- $c := include "smoltbot-lib.configData" . | fromYaml -}}
{{- $idle := $c.SMOLTBOT_BUS_MIN_IDLE_MS | default "60000" | int -}}
{{- $timeout := $c.SMOLTBOT_ANALYZER_TIMEOUT_MS | default "8000" | int -}}
{{- if lt $idle (mul 3 $timeout) -}}
{{- fail (printf "smoltbot: verifier SMOLTBOT_BUS_MIN_IDLE_MS (%d) must be at least 3 x SMOLTBOT_ANALYZER_TIMEOUT_MS (%d), or the verifier exits at start" $idle $timeout) -}}
{{- end -}}
{{- end -}}
