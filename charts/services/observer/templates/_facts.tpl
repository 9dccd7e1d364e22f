{{/* What the observer is, for the smoltbot-lib templates (see _workload.tpl there). */}}
{{- define "observer.facts" -}}
portVar: SMOLTBOT_OBSERVER_PORT
public: false
secretEnv: [REDIS_URL, SMOLTBOT_EVENT_KEY]
optionalSecretEnv: [SMOLTBOT_EVENT_KEYS_RETIRED]
postgresql: false
https: false
spool: false
# Consumer group "observer" on exchanges:priority and exchanges (services/observer worker.py).
group: observer
streams: ["exchanges:priority", "exchanges"]
{{- end -}}

{{- define "observer.validate" -}}
{{- end -}}
