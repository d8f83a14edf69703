{{/*
phoenix.name is the chart name, or nameOverride.
*/}}
{{- define "phoenix.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
phoenix.fullname is the release-qualified name every object starts with. It leaves room for the
longest suffix the chart appends ("-query-gateway", 14 characters) within the 63-character limit.
*/}}
{{- define "phoenix.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 49 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 49 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 49 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
phoenix.chart is name-version for the helm.sh/chart label.
*/}}
{{- define "phoenix.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
phoenix.selectorLabels are the immutable labels a workload selects its pods by.
*/}}
{{- define "phoenix.selectorLabels" -}}
app.kubernetes.io/name: {{ include "phoenix.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
phoenix.labels are the standard labels of every object.
*/}}
{{- define "phoenix.labels" -}}
helm.sh/chart: {{ include "phoenix.chart" . }}
{{ include "phoenix.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: phoenix
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
phoenix.componentLabels: standard labels plus the component, for a dict(root, component).
*/}}
{{- define "phoenix.componentLabels" -}}
{{ include "phoenix.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
phoenix.componentSelectorLabels: selector labels plus the component, for a dict(root, component).
*/}}
{{- define "phoenix.componentSelectorLabels" -}}
{{ include "phoenix.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
phoenix.image is the image reference; a digest wins over the tag.
*/}}
{{- define "phoenix.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
phoenix.serviceAccountName is the gateways' service account.
*/}}
{{- define "phoenix.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "phoenix.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
phoenix.secretName is the Secret the gateways read: existingSecret, or the chart's own.
*/}}
{{- define "phoenix.secretName" -}}
{{- default (include "phoenix.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/*
phoenix.migrationSecretName is the Secret the migration hook reads. A pre-install hook runs before
the release's ordinary objects exist, so it cannot use the chart's Secret: it reads
existingSecret, or a hook-annotated copy ("-migrate") created just before the Job.
*/}}
{{- define "phoenix.migrationSecretName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else }}
{{- printf "%s-migrate" (include "phoenix.fullname" .) }}
{{- end }}
{{- end }}

{{/*
phoenix.useJWTSecret is "true" when PHOENIX_JWT_SECRET comes from the Secret: always with an
existing Secret (its key is optional, so a Secret without it plus jwksURL or publicKey works),
and with the chart's Secret when secret.jwtSecret is set.
*/}}
{{- define "phoenix.useJWTSecret" -}}
{{- if or .Values.secret.existingSecret .Values.secret.jwtSecret }}true{{ end }}
{{- end }}

{{/*
phoenix.redisURLFromSecret is "true" when PHOENIX_REDIS_URL comes from the Secret.
*/}}
{{- define "phoenix.redisURLFromSecret" -}}
{{- if .Values.secret.existingSecret }}
{{- if .Values.secret.redisURLKey }}true{{ end }}
{{- else if .Values.secret.redisURL }}true{{ end }}
{{- end }}

{{/*
phoenix.redisURLKey is the Secret key of PHOENIX_REDIS_URL.
*/}}
{{- define "phoenix.redisURLKey" -}}
{{- if .Values.secret.existingSecret }}{{ .Values.secret.redisURLKey }}{{ else }}PHOENIX_REDIS_URL{{ end }}
{{- end }}

{{/*
phoenix.databaseURLKey, phoenix.jwtSecretKey and phoenix.addressHashKeyKey are the Secret keys of
the secrets.
*/}}
{{- define "phoenix.databaseURLKey" -}}
{{- if .Values.secret.existingSecret }}{{ .Values.secret.databaseURLKey }}{{ else }}PHOENIX_DATABASE_URL{{ end }}
{{- end }}
{{- define "phoenix.jwtSecretKey" -}}
{{- if .Values.secret.existingSecret }}{{ .Values.secret.jwtSecretKey }}{{ else }}PHOENIX_JWT_SECRET{{ end }}
{{- end }}
{{- define "phoenix.addressHashKeyKey" -}}
{{- if .Values.secret.existingSecret }}{{ .Values.secret.addressHashKeyKey }}{{ else }}PHOENIX_ADDRESS_HASH_KEY{{ end }}
{{- end }}

{{/*
phoenix.publicKeyPath is where jwt.publicKey is mounted.
*/}}
{{- define "phoenix.publicKeyPath" -}}
/etc/phoenix/jwt/public.pem
{{- end }}

{{/*
phoenix.terminationGracePeriodSeconds must exceed the drain delay plus the shutdown timeout, or
the kubelet would kill a pod that is still finishing requests.
*/}}
{{- define "phoenix.terminationGracePeriodSeconds" -}}
{{- $need := add .Values.config.drainDelaySeconds .Values.config.shutdownTimeoutSeconds }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $need 10 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) (int $need) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed config.drainDelaySeconds + config.shutdownTimeoutSeconds (%d)" (int .Values.terminationGracePeriodSeconds) (int $need)) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
phoenix.validate fails the render on contradictory settings.
*/}}
{{- define "phoenix.validate" -}}
{{- if and .Values.secret.jwtSecret (lt (len .Values.secret.jwtSecret) 32) }}
{{- fail "secret.jwtSecret must be at least 32 bytes" }}
{{- end }}
{{- if and .Values.secret.addressHashKey (lt (len .Values.secret.addressHashKey) 32) }}
{{- fail "secret.addressHashKey must be at least 32 bytes" }}
{{- end }}
{{- if and .Values.secret.existingSecret (or .Values.secret.databaseURL .Values.secret.jwtSecret .Values.secret.redisURL .Values.secret.addressHashKey) }}
{{- fail "secret.existingSecret is set: put the database URL, JWT secret, address hash key and Redis URL in that Secret, not in secret.databaseURL/jwtSecret/addressHashKey/redisURL" }}
{{- end }}
{{- if and .Values.jwt.publicKey .Values.jwt.jwksURL }}
{{- fail "set at most one of jwt.publicKey and jwt.jwksURL" }}
{{- end }}
{{- if and .Values.config.autoMigrate .Values.migrations.enabled }}
{{- fail "config.autoMigrate and migrations.enabled both apply migrations: choose one" }}
{{- end }}
{{- range $c := list "adminGateway" "queryGateway" }}
{{- $v := index $.Values $c }}
{{- if and $v.pdb.enabled (not (kindIs "invalid" $v.pdb.minAvailable)) (not (kindIs "invalid" $v.pdb.maxUnavailable)) }}
{{- fail (printf "%s.pdb: set only one of minAvailable and maxUnavailable" $c) }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail (printf "%s.autoscaling: minReplicas exceeds maxReplicas" $c) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
phoenix.configChecksum rolls the pods when the ConfigMap or the chart's Secret changes.
*/}}
{{- define "phoenix.configChecksum" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secret.existingSecret }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/*
phoenix.secretEnv is the environment taken from a Secret, for dict(root, secretName). The
database URL is required; the JWT secret is optional so that an existing Secret may leave it out
when jwt.jwksURL or jwt.publicKey is used.
*/}}
{{- define "phoenix.secretEnv" -}}
{{- $root := .root -}}
- name: PHOENIX_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ include "phoenix.databaseURLKey" $root }}
{{- if include "phoenix.useJWTSecret" $root }}
- name: PHOENIX_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ include "phoenix.jwtSecretKey" $root }}
      optional: true
{{- end }}
- name: PHOENIX_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ $root.Values.secret.secretKeyKey }}
      optional: true
{{- end }}

{{/*
phoenix.gateway renders a gateway's Deployment for dict(root, component, binary, values).
*/}}
{{- define "phoenix.gateway" -}}
{{- $root := .root -}}
{{- $v := .values }}
{{- $ctx := dict "root" $root "component" .component }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "phoenix.fullname" $root }}-{{ .component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "phoenix.componentLabels" $ctx | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "phoenix.componentSelectorLabels" $ctx | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 25%
  template:
    metadata:
      labels:
        {{- include "phoenix.componentLabels" $ctx | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- include "phoenix.configChecksum" $root | nindent 8 }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "phoenix.serviceAccountName" $root }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ include "phoenix.terminationGracePeriodSeconds" $root }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "phoenix.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            - /usr/local/bin/{{ .binary }}
          ports:
            - name: http
              containerPort: {{ .port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "phoenix.fullname" $root }}
          env:
            - name: PHOENIX_HTTP_ADDR
              value: ":{{ .port }}"
            {{- include "phoenix.secretEnv" (dict "root" $root "secretName" (include "phoenix.secretName" $root)) | nindent 12 }}
            {{- if eq .component "admin-gateway" }}
            {{- /* Optional in the Secret so that a development install (config.extra.PHOENIX_DEV)
                   may leave it out; the Admin Gateway refuses to serve without it otherwise. */}}
            - name: PHOENIX_ADDRESS_HASH_KEY
              valueFrom:
                secretKeyRef:
                  name: {{ include "phoenix.secretName" $root }}
                  key: {{ include "phoenix.addressHashKeyKey" $root }}
                  optional: true
            {{- end }}
            {{- if and (eq .component "query-gateway") (include "phoenix.redisURLFromSecret" $root) }}
            - name: PHOENIX_REDIS_URL
              valueFrom:
                secretKeyRef:
                  name: {{ include "phoenix.secretName" $root }}
                  key: {{ include "phoenix.redisURLKey" $root }}
            {{- end }}
            {{- with $root.Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            {{- toYaml $root.Values.probes.startup | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $root.Values.jwt.publicKey }}
            - name: jwt-public-key
              mountPath: /etc/phoenix/jwt
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if $root.Values.jwt.publicKey }}
        - name: jwt-public-key
          configMap:
            name: {{ include "phoenix.fullname" $root }}-jwt
        {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- range . }}
        {{- $tsc := . }}
        {{- if not (hasKey $tsc "labelSelector") }}
        {{- $tsc = merge (dict "labelSelector" (dict "matchLabels" (fromYaml (include "phoenix.componentSelectorLabels" $ctx)))) $tsc }}
        {{- end }}
        - {{ toYaml $tsc | nindent 10 | trim }}
        {{- end }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
