{{/*
Names, labels, images and the connection facts every smoltbot chart agrees on.

Calling conventions:
- Templates named after a resource ("smoltbot-lib.deployment", ...) take a service chart's root
  context (`.`) and read the service's facts from the named template "<chart name>.facts" that the
  service chart defines (port variable, secrets it needs, streams it consumes, ...).
- Helpers that the umbrella uses for its own components take (dict "ctx" $ "component" "<name>").
*/}}

{{/*
smoltbot-lib.base: the prefix of every resource name in a release: the release name when it
already says "smoltbot", else "<release>-smoltbot"; `global.fullnameOverride` replaces it. Kept
to 40 characters so "<base>-<component>" is a valid DNS label.
*/}}
{{- define "smoltbot-lib.base" -}}
{{- $override := dig "fullnameOverride" "" .Values.global -}}
{{- if $override -}}
{{- $override | trunc 40 | trimSuffix "-" -}}
{{- else if contains "smoltbot" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-smoltbot" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* smoltbot-lib.componentName (dict "ctx" $ "component" "redis"): "<base>-<component>". */}}
{{- define "smoltbot-lib.componentName" -}}
{{- printf "%s-%s" (include "smoltbot-lib.base" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* smoltbot-lib.fullname: a service chart's resource name, "<base>-<chart name>". */}}
{{- define "smoltbot-lib.fullname" -}}
{{- include "smoltbot-lib.componentName" (dict "ctx" . "component" .Chart.Name) -}}
{{- end -}}

{{/* smoltbot-lib.selectorLabels (dict "ctx" $ "component" "gateway"): immutable selector labels. */}}
{{- define "smoltbot-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/part-of: smoltbot
{{- end -}}

{{/* smoltbot-lib.labels (dict "ctx" $ "component" "gateway"): every object's labels. */}}
{{- define "smoltbot-lib.labels" -}}
{{ include "smoltbot-lib.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with (dig "commonLabels" dict .ctx.Values.global) }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* smoltbot-lib.releaseSelector: every pod of this release that is part of smoltbot. */}}
{{- define "smoltbot-lib.releaseSelector" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: smoltbot
{{- end -}}

{{/*
smoltbot-lib.image (dict "ctx" $ "image" .Values.image): "<registry>/<repository>:<tag>" or
"...@<digest>". registry, tag and pullPolicy fall back to `global.image.*`; the tag to the chart's
appVersion (every smoltbot chart carries the same appVersion).
*/}}
{{- define "smoltbot-lib.image" -}}
{{- $g := dig "image" dict .ctx.Values.global -}}
{{- $registry := .image.registry | default $g.registry | default "" -}}
{{- $tag := .image.tag | default $g.tag | default .ctx.Chart.AppVersion | toString -}}
{{- $ref := .image.repository -}}
{{- if $registry -}}{{- $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref -}}{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref $tag -}}
{{- end -}}
{{- end -}}

{{/* smoltbot-lib.pullPolicy (dict "ctx" $ "image" .Values.image) */}}
{{- define "smoltbot-lib.pullPolicy" -}}
{{- .image.pullPolicy | default (dig "image" "pullPolicy" "" .ctx.Values.global) | default "IfNotPresent" -}}
{{- end -}}

{{/* smoltbot-lib.imagePullSecrets: the pod's imagePullSecrets block from `global.imagePullSecrets`. */}}
{{- define "smoltbot-lib.imagePullSecrets" -}}
{{- $secrets := dig "imagePullSecrets" list .Values.global -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ if kindIs "map" . }}{{ .name }}{{ else }}{{ . }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* smoltbot-lib.serviceAccountName: the release's ServiceAccount (created by the umbrella). */}}
{{- define "smoltbot-lib.serviceAccountName" -}}
{{- $sa := dig "serviceAccount" dict .Values.global -}}
{{- if (dig "create" true $sa) -}}
{{- $sa.name | default (include "smoltbot-lib.base" .) -}}
{{- else -}}
{{- $sa.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/*
smoltbot-lib.secretName: the Secret holding DATABASE_URL, REDIS_URL, SMOLTBOT_ADMIN_TOKEN and
SMOLTBOT_EVENT_KEY (SMOLTBOT_EVENT_KEYS_RETIRED optional): `global.secrets.existingSecret`, else
the one the umbrella chart creates.
*/}}
{{- define "smoltbot-lib.secretName" -}}
{{- $existing := dig "secrets" "existingSecret" "" .Values.global -}}
{{- if $existing -}}
{{- $existing -}}
{{- else -}}
{{- include "smoltbot-lib.componentName" (dict "ctx" . "component" "secrets") -}}
{{- end -}}
{{- end -}}

{{/* smoltbot-lib.redisInCluster / postgresqlInCluster: "true" when the release runs its own. */}}
{{- define "smoltbot-lib.redisInCluster" -}}
{{- if (dig "redis" "inCluster" true .Values.global) }}true{{ end -}}
{{- end -}}
{{- define "smoltbot-lib.postgresqlInCluster" -}}
{{- if (dig "postgresql" "inCluster" true .Values.global) }}true{{ end -}}
{{- end -}}

{{/* The in-cluster servers' Service names (also their StatefulSet names). */}}
{{- define "smoltbot-lib.redisName" -}}
{{- include "smoltbot-lib.componentName" (dict "ctx" . "component" "redis") -}}
{{- end -}}
{{- define "smoltbot-lib.postgresqlName" -}}
{{- include "smoltbot-lib.componentName" (dict "ctx" . "component" "postgresql") -}}
{{- end -}}

{{/* smoltbot-lib.streamPrefix: SMOLTBOT_STREAM_PREFIX as every service gets it. */}}
{{- define "smoltbot-lib.streamPrefix" -}}
{{- dig "config" "SMOLTBOT_STREAM_PREFIX" "smoltbot:" .Values.global -}}
{{- end -}}

{{/*
smoltbot-lib.kedaRedis: YAML {address, databaseIndex, enableTLS} for KEDA's redis-streams scaler.
KEDA's operator connects from its own namespace, so the in-cluster Service is named with its
namespace. `global.keda.redis.address` wins; else the in-cluster Redis; else `global.redis.url`.
*/}}
{{- define "smoltbot-lib.kedaRedis" -}}
{{- $k := dig "keda" "redis" dict .Values.global -}}
{{- $url := dig "redis" "url" "" .Values.global -}}
{{- if $k.address -}}
address: {{ $k.address | quote }}
databaseIndex: {{ $k.databaseIndex | default 0 | toString | quote }}
enableTLS: {{ $k.enableTLS | default false | toString | quote }}
{{- else if (include "smoltbot-lib.redisInCluster" .) -}}
address: {{ printf "%s.%s.svc:6379" (include "smoltbot-lib.redisName" .) .Release.Namespace | quote }}
databaseIndex: "0"
enableTLS: "false"
{{- else if $url -}}
{{- $u := urlParse $url -}}
{{- if not (has $u.scheme (list "redis" "rediss")) -}}
{{- fail (printf "smoltbot: KEDA cannot reach a %s:// Redis; set global.keda.redis.address (host:port)" $u.scheme) -}}
{{- end -}}
{{- if and $u.userinfo (not (dig "keda" "authenticationRef" "" .Values.global)) -}}
{{- fail "smoltbot: global.redis.url carries credentials that KEDA's scaler also needs: create a TriggerAuthentication and set global.keda.authenticationRef" -}}
{{- end -}}
{{- $host := $u.host -}}
{{- if not (regexMatch ":[0-9]+$" $host) -}}{{- $host = printf "%s:6379" $host -}}{{- end -}}
{{- $db := trimPrefix "/" ($u.path | default "") | default "0" -}}
address: {{ $host | quote }}
databaseIndex: {{ $db | quote }}
enableTLS: {{ eq $u.scheme "rediss" | toString | quote }}
{{- else -}}
{{- fail "smoltbot: autoscaling.mode=keda needs the Redis address: set global.keda.redis.address (host:port) when REDIS_URL comes from global.secrets.existingSecret" -}}
{{- end -}}
{{- end -}}
