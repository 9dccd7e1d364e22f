{{/* What the verifier is, for the smoltbot-lib templates (see _workload.tpl there). */}}
{{- define "verifier.facts" -}}
{{- $a := .Values.analyzer | default dict -}}
{{- $llm := ne ($a.backend | default "rules") "rules" -}}
portVar: SMOLTBOT_VERIFIER_PORT
public: false
secretEnv: [REDIS_URL, SMOLTBOT_EVENT_KEY]
optionalSecretEnv: [SMOLTBOT_EVENT_KEYS_RETIRED]
postgresql: false
# The "rules" analyzer runs in process; the LLM backends call their analysis server, on that
# server's port only (`egress` below), not 443 to anywhere.
https: false
spool: false
# Consumer group "verifier" on traces:priority and traces (services/verifier worker.py).
group: verifier
streams: ["traces:priority", "traces"]
{{- if $llm }}
{{- $np := dig "networkPolicy" dict .Values.global }}
{{- $to := (dig "analyzerEgress" list (.Values.networkPolicy | default dict)) | default (dig "httpsTo" list $np) }}
{{- $rule := dict "ports" (list (dict "port" (include "verifier.analyzerPort" . | int) "protocol" "TCP")) }}
{{- with $to }}{{ $_ := set $rule "to" . }}{{ end }}
{{- $env := dict "SMOLTBOT_ANALYZER_BACKEND" $a.backend }}
{{- with $a.baseUrl }}{{ $_ := set $env "SMOLTBOT_ANALYZER_BASE_URL" . }}{{ end }}
{{- with $a.model }}{{ $_ := set $env "SMOLTBOT_ANALYZER_MODEL" . }}{{ end }}
# Set from `analyzer` (the ConfigMap): never the key.
configEnv:
  {{- toYaml $env | nindent 2 }}
# The key, by reference only: your Secret, else the chart's (which holds it when apiKey is set).
{{- if or $a.existingSecret $a.apiKey }}
secretRefs:
  - env: SMOLTBOT_ANALYZER_API_KEY
    {{- if $a.existingSecret }}
    secret: {{ $a.existingSecret | quote }}
    key: {{ $a.existingSecretKey | default "SMOLTBOT_ANALYZER_API_KEY" | quote }}
    {{- else }}
    secret: {{ include "smoltbot-lib.secretName" . | quote }}
    key: SMOLTBOT_ANALYZER_API_KEY
    {{- end }}
{{- end }}
# Roll the pods when the key (or where it comes from) changes; a digest, never the key.
secretInputs: {{ pick $a "apiKey" "existingSecret" "existingSecretKey" | toJson | sha256sum | quote }}
# Egress to the analysis server only: its port, to `networkPolicy.analyzerEgress` (else httpsTo).
egress:
  {{- toYaml (list $rule) | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
verifier.analyzerUrl: `analyzer.baseUrl` taken apart (YAML: scheme, hostname, port, path,
userinfo); empty values when it is empty (the anthropic backend's default URL, on 443). The
schema's pattern has already refused what url.Parse could not read.
*/}}
{{- define "verifier.analyzerUrl" -}}
{{- $url := (.Values.analyzer | default dict).baseUrl | default "" -}}
{{- if $url -}}
{{- $u := urlParse $url -}}
{{- $port := regexFind ":[0-9]+$" $u.host | trimPrefix ":" -}}
scheme: {{ $u.scheme | quote }}
hostname: {{ $u.hostname | lower | quote }}
port: {{ $port | default (ternary "80" "443" (eq $u.scheme "http")) | quote }}
path: {{ $u.path | quote }}
userinfo: {{ $u.userinfo | quote }}
{{- else -}}
scheme: https
hostname: ""
port: "443"
path: ""
userinfo: ""
{{- end -}}
{{- end -}}

{{/* verifier.analyzerPort: the port the analysis server listens on (NetworkPolicy egress). */}}
{{- define "verifier.analyzerPort" -}}
{{- (include "verifier.analyzerUrl" . | fromYaml).port -}}
{{- end -}}

{{/*
verifier.validate: what the verifier would refuse at start (exit 2), refused at render instead,
with the values to change. The umbrella adds the checks that need the other charts' values
(charts/smoltbot/templates/validations.yaml).
*/}}
{{- define "verifier.validate" -}}
{{- $c := include "smoltbot-lib.configData" . | fromYaml -}}
{{- $idle := $c.SMOLTBOT_BUS_MIN_IDLE_MS | default "60000" | int -}}
{{- $timeout := $c.SMOLTBOT_ANALYZER_TIMEOUT_MS | default "8000" | int -}}
{{- if lt $idle (mul 3 $timeout) -}}
{{- fail (printf "smoltbot: verifier SMOLTBOT_BUS_MIN_IDLE_MS (%d) must be at least 3 x SMOLTBOT_ANALYZER_TIMEOUT_MS (%d), or the verifier exits at start" $idle $timeout) -}}
{{- end -}}
{{- $a := .Values.analyzer | default dict -}}
{{- $backend := $a.backend | default "rules" -}}
{{- if and $a.apiKey $a.existingSecret -}}
{{- fail "smoltbot: verifier.analyzer.apiKey and verifier.analyzer.existingSecret are contradictory: keep the key in your Secret (clear apiKey), or clear existingSecret to have the chart store it" -}}
{{- end -}}
{{- if and $a.apiKey (dig "secrets" "existingSecret" "" .Values.global) -}}
{{- fail "smoltbot: verifier.analyzer.apiKey is ignored with global.secrets.existingSecret (the chart creates no Secret): put the key in a Secret of yours and name it in verifier.analyzer.existingSecret (and existingSecretKey)" -}}
{{- end -}}
{{- if ne $backend "rules" -}}
{{- if and (has $backend (list "anthropic" "hybrid")) (not $a.apiKey) (not $a.existingSecret) -}}
{{- fail (printf "smoltbot: verifier.analyzer.backend=%s needs an API key: set verifier.analyzer.apiKey (stored in the chart's Secret), or verifier.analyzer.existingSecret naming a Secret that holds it" $backend) -}}
{{- end -}}
{{- if and (has $backend (list "openai" "hybrid")) (not $a.baseUrl) -}}
{{- fail (printf "smoltbot: verifier.analyzer.backend=%s needs verifier.analyzer.baseUrl, the analysis server's root URL" $backend) -}}
{{- end -}}
{{- if and (eq $backend "openai") (not $a.model) -}}
{{- fail "smoltbot: verifier.analyzer.backend=openai needs verifier.analyzer.model, the served model's name" -}}
{{- end -}}
{{- if $a.baseUrl -}}
{{- $u := include "verifier.analyzerUrl" . | fromYaml -}}
{{- if $u.userinfo -}}
{{- fail "smoltbot: verifier.analyzer.baseUrl carries credentials, which would land in the ConfigMap: remove them from the URL and give the key as verifier.analyzer.apiKey or existingSecret" -}}
{{- end -}}
{{- $port := $u.port | int -}}
{{- if or (lt $port 1) (gt $port 65535) -}}
{{- fail (printf "smoltbot: verifier.analyzer.baseUrl has port %s, outside 1-65535" $u.port) -}}
{{- end -}}
{{- $gateway := include "smoltbot-lib.componentName" (dict "ctx" . "component" "gateway") -}}
{{- $route := regexReplaceAll "/.*$" (trimPrefix "/" ($u.path | lower)) "" -}}
{{- $why := "" -}}
{{- if or (eq $u.hostname $gateway) (hasPrefix (printf "%s." $gateway) $u.hostname) -}}
{{- $why = printf "the gateway's Service %s" $gateway -}}
{{- else if eq $port 8787 -}}
{{- $why = "port 8787, the gateway's" -}}
{{- else if has $route (list "anthropic" "openai" "gemini" "agent") -}}
{{- $why = printf "a /%s route of the gateway" $route -}}
{{- end -}}
{{- if $why -}}
{{- fail (printf "smoltbot: verifier.analyzer.baseUrl points at the smoltbot gateway (%s): give the analysis server itself, not the gateway in front of it; analyses sent through the gateway would be traced and analysed in turn, without end" $why) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
