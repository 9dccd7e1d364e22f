{{/* What the persister is, for the smoltbot-lib templates (see _workload.tpl there). */}}
{{- define "persister.facts" -}}
portVar: SMOLTBOT_PERSISTER_PORT
public: false
secretEnv: [DATABASE_URL, REDIS_URL, SMOLTBOT_EVENT_KEY]
optionalSecretEnv: [SMOLTBOT_EVENT_KEYS_RETIRED]
postgresql: true
https: false
spool: false
# Consumer group "persister" on verdicts, agents and control (services/persister worker.py).
group: persister
streams: ["verdicts", "agents", "control"]
{{- end -}}

{{- define "persister.validate" -}}
{{- end -}}
