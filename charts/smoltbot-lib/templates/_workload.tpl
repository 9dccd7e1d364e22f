{{/*
One smoltbot service: ConfigMap, Deployment and Service. A service chart's templates are
one-line includes of these; what differs between services comes from "<chart name>.facts":

  portVar:   SMOLTBOT_<SERVICE>_PORT
  public:    true for the HTTP services (gateway, api): Ingress, HPA on CPU, open ingress port
  secretEnv: keys of the Secret this service reads (each also its environment variable)
  optionalSecretEnv: keys read only when present (SMOLTBOT_EVENT_KEYS_RETIRED)
  postgresql: true when the service talks to PostgreSQL
  https:     true when the service calls out on 443 (providers, webhooks)
  spool:     true when the service keeps an on-disk spool (SMOLTBOT_SPOOL_DIR)
  group, streams: the consumer group and the streams it reads (stream workers: KEDA triggers)

and, only when the service's values call for them:

  configEnv:  {VARIABLE: value} the chart sets from dedicated values (not `config`)
  secretRefs: [{env, secret, key}] variables read from a Secret other than by their own name
  secretInputs: a digest of those values, so checksum/secret rolls the pods when they change
  egress:     NetworkPolicy egress rules beyond DNS, Redis, PostgreSQL and 443
*/}}

{{- define "smoltbot-lib.facts" -}}
{{- include (printf "%s.facts" .Chart.Name) . -}}
{{- end -}}

{{/*
smoltbot-lib.configData: the service's non-secret environment. `global.config` (shared
variables), then the service's `config`, then what the chart itself decides (the port the
container listens on, the spool directory on its volume, the facts' `configEnv`).
*/}}
{{- define "smoltbot-lib.configData" -}}
{{- $f := include "smoltbot-lib.facts" . | fromYaml -}}
{{- $data := dict -}}
{{- range $k, $v := (dig "config" dict .Values.global) }}{{ $_ := set $data $k (include "smoltbot-lib.envValue" $v) }}{{ end -}}
{{- range $k, $v := (.Values.config | default dict) }}{{ $_ := set $data $k (include "smoltbot-lib.envValue" $v) }}{{ end -}}
{{- $_ := set $data $f.portVar (toString .Values.port) -}}
{{- if $f.spool }}{{ $_ := set $data "SMOLTBOT_SPOOL_DIR" .Values.spool.path }}{{ end -}}
{{- range $k, $v := ($f.configEnv | default dict) }}{{ $_ := set $data $k (toString $v) }}{{ end -}}
{{- toYaml $data -}}
{{- end -}}

{{/* smoltbot-lib.envValue: a value as the environment gets it (YAML numbers arrive as floats:
1073741824 must not become "1.073741824e+09"). */}}
{{- define "smoltbot-lib.envValue" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{- define "smoltbot-lib.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "smoltbot-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "smoltbot-lib.labels" (dict "ctx" . "component" .Chart.Name) | nindent 4 }}
data:
  {{- include "smoltbot-lib.configData" . | nindent 2 }}
{{- end -}}

{{/*
smoltbot-lib.secretChecksum: changes when anything the chart-managed Secret is built from changes
(generated values are kept across upgrades, so they do not roll pods). With an existing Secret
only its name is known: roll pods yourself (or with a reloader) after editing it. The facts'
`secretInputs` (a service's own secret values) count only for that service.
*/}}
{{- define "smoltbot-lib.secretChecksum" -}}
{{- $g := .Values.global -}}
{{- $f := include "smoltbot-lib.facts" . | fromYaml -}}
{{- $in := dict "secrets" (dig "secrets" dict $g) "redis" (dig "redis" dict $g) "postgresql" (dig "postgresql" dict $g) -}}
{{- with $f.secretInputs }}{{ $_ := set $in "own" . }}{{ end -}}
{{- toJson $in | sha256sum -}}
{{- end -}}

{{- define "smoltbot-lib.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
  scheme: HTTP
{{ toYaml .timing }}
{{- end -}}

{{- define "smoltbot-lib.deployment" -}}
{{- include "smoltbot-lib.validate" . -}}
{{- $f := include "smoltbot-lib.facts" . | fromYaml -}}
{{- $v := .Values -}}
{{- $name := include "smoltbot-lib.fullname" . -}}
{{- $secret := include "smoltbot-lib.secretName" . -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "smoltbot-lib.labels" (dict "ctx" . "component" .Chart.Name) | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: {{ $v.revisionHistoryLimit }}
  strategy:
    {{- toYaml $v.strategy | nindent 4 }}
  selector:
    matchLabels:
      {{- include "smoltbot-lib.selectorLabels" (dict "ctx" . "component" .Chart.Name) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "smoltbot-lib.labels" (dict "ctx" . "component" .Chart.Name) | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "smoltbot-lib.configmap" . | sha256sum }}
        checksum/secret: {{ include "smoltbot-lib.secretChecksum" . }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "smoltbot-lib.serviceAccountName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with (include "smoltbot-lib.imagePullSecrets" . | trim) }}{{ . | nindent 6 }}{{- end }}
      securityContext:
        {{- include "smoltbot-lib.podSecurityContext" (dict "ctx" . "override" $v.podSecurityContext) | nindent 8 }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      {{- with (include "smoltbot-lib.scheduling" . | trim) }}{{ . | nindent 6 }}{{- end }}
      containers:
        - name: {{ .Chart.Name }}
          image: {{ include "smoltbot-lib.image" (dict "ctx" . "image" $v.image) | quote }}
          imagePullPolicy: {{ include "smoltbot-lib.pullPolicy" (dict "ctx" . "image" $v.image) }}
          ports:
            - name: http
              containerPort: {{ $v.port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ $name }}
          env:
            # One consumer name per pod: two processes never share one (architecture §3.2).
            - name: SMOLTBOT_CONSUMER_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            {{- range $f.secretEnv }}
            - name: {{ . }}
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ . }}
            {{- end }}
            {{- range $f.optionalSecretEnv }}
            - name: {{ . }}
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ . }}
                  optional: true
            {{- end }}
            {{- range $f.secretRefs }}
            - name: {{ .env }}
              valueFrom:
                secretKeyRef:
                  name: {{ .secret | quote }}
                  key: {{ .key | quote }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          startupProbe:
            {{- include "smoltbot-lib.probe" (dict "path" "/health/startup" "timing" $v.probes.startup) | nindent 12 }}
          readinessProbe:
            {{- include "smoltbot-lib.probe" (dict "path" "/health/ready" "timing" $v.probes.readiness) | nindent 12 }}
          livenessProbe:
            {{- include "smoltbot-lib.probe" (dict "path" "/health/live" "timing" $v.probes.liveness) | nindent 12 }}
          {{- if (dig "preStopSleepSeconds" 0 ($v.lifecycle | default dict)) }}
          lifecycle:
            preStop:
              # Stay in rotation a few seconds after removal from the Endpoints, so no new call is
              # routed to a pod that stops accepting; SIGTERM then drains what is in flight.
              exec:
                command: ["sleep", {{ $v.lifecycle.preStopSleepSeconds | toString | quote }}]
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "smoltbot-lib.containerSecurityContext" (dict "ctx" . "override" $v.securityContext) | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $f.spool }}
            - name: spool
              mountPath: {{ $v.spool.path }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $v.tmpSizeLimit | default "64Mi" }}
        {{- if $f.spool }}
        - name: spool
          {{- if $v.spool.volume }}
          {{- toYaml $v.spool.volume | nindent 10 }}
          {{- else }}
          emptyDir:
            sizeLimit: {{ $v.spool.sizeLimit }}
          {{- end }}
        {{- end }}
{{- end -}}

{{- define "smoltbot-lib.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "smoltbot-lib.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "smoltbot-lib.labels" (dict "ctx" . "component" .Chart.Name) | nindent 4 }}
  {{- with .Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .Values.service.type }}
  selector:
    {{- include "smoltbot-lib.selectorLabels" (dict "ctx" . "component" .Chart.Name) | nindent 4 }}
  ports:
    - name: http
      port: {{ .Values.service.port | default .Values.port }}
      targetPort: http
      protocol: TCP
      appProtocol: http
{{- end -}}
