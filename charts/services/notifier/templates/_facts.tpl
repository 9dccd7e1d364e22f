{{/* What the notifier is, for the smoltbot-lib templates (see _workload.tpl there). */}}
{{- define "notifier.facts" -}}
portVar: SMOLTBOT_NOTIFIER_PORT
public: false
secretEnv: [REDIS_URL, SMOLTBOT_EVENT_KEY]
optionalSecretEnv: [SMOLTBOT_EVENT_KEYS_RETIRED]
postgresql: false
# Webhook deliveries go out on 443.
https: true
spool: false
# Consumer group "notifier" on verdicts and control (services/notifier __main__.py).
group: notifier
streams: ["verdicts", "control"]
{{- end -}}

{{- define "notifier.validate" -}}
{{- end -}}
