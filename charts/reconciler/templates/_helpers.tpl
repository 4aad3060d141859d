{{- define "reconciler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "reconciler.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "reconciler.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "reconciler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "reconciler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reconciler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "reconciler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "reconciler.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "reconciler.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Always for a tag (it may have moved), IfNotPresent for a digest, unless set. */}}
{{- define "reconciler.pullPolicy" -}}
{{- if .Values.image.pullPolicy -}}
{{- .Values.image.pullPolicy -}}
{{- else if .Values.image.digest -}}
IfNotPresent
{{- else -}}
Always
{{- end -}}
{{- end -}}

{{/* The Deployments: the unsharded one ("" shard) and one per shard key. */}}
{{- define "reconciler.deployments" -}}
{{- $all := list (dict "shard" "" "name" (include "reconciler.fullname" .)) -}}
{{- range .Values.shards -}}
{{- $all = append $all (dict "shard" . "name" (printf "%s-shard-%s" (include "reconciler.fullname" $) . | trunc 63 | trimSuffix "-")) -}}
{{- end -}}
{{- toJson $all -}}
{{- end -}}

{{/* RBAC rules on namespaced kinds: cluster-wide in the ClusterRole, or per watched namespace. */}}
{{- define "reconciler.namespacedRules" -}}
# Cartographer's owners: the daemon reads, applies (server-side apply) and finalizes them.
- apiGroups: [carto.run]
  resources: [workloads, deliverables, runnables]
  verbs: [get, list, watch, patch, update]
- apiGroups: [carto.run]
  resources: [workloads/status, deliverables/status, runnables/status]
  verbs: [get, patch, update]
# Flux's kinds the daemon reconciles.
- apiGroups: [source.toolkit.fluxcd.io]
  resources: [gitrepositories]
  verbs: [get, list, watch, patch, update]
- apiGroups: [source.toolkit.fluxcd.io]
  resources: [gitrepositories/status]
  verbs: [get, patch, update]
- apiGroups: [kustomize.toolkit.fluxcd.io]
  resources: [kustomizations]
  verbs: [get, list, watch, patch, update]
- apiGroups: [kustomize.toolkit.fluxcd.io]
  resources: [kustomizations/status]
  verbs: [get, patch, update]
- apiGroups: [notification.toolkit.fluxcd.io]
  resources: [receivers]
  verbs: [get, list, watch, patch, update]
- apiGroups: [notification.toolkit.fluxcd.io]
  resources: [receivers/status]
  verbs: [get, patch, update]
# Git credentials and Receiver tokens (spec.secretRef): read only.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
# The ServiceAccounts owners write as: read by the owner controllers' no-op fast path, which
# notices their changes (an informer: list and watch too).
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, list, watch]
# The daemon's core/v1 Events, counted up when repeated.
- apiGroups: [""]
  resources: [events]
  verbs: [create, get, list, patch]
{{- if .Values.rbac.impersonate }}
# Multi-tenancy: an owner's writes go as its ServiceAccount.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [impersonate]
{{- end }}
# What the supply chains and Kustomizations stamp (rbac.stampedKinds).
{{- include "reconciler.stampedRules" . }}
{{- end }}

{{/* rbac.stampedKinds as rules: the daemon's, and the Workloads' ServiceAccounts'. */}}
{{- define "reconciler.stampedRules" -}}
{{- range .Values.rbac.stampedKinds }}
- apiGroups: {{ toJson .apiGroups }}
  resources: {{ toJson .resources }}
  verbs: [get, list, watch, create, update, patch, delete]
{{- end }}
{{- end }}

{{/* The portal token Secret's name and key (`portal.tokenSecret`), "" name for none; fails
when portal actions are asked for without one: the daemon listens on all interfaces. */}}
{{- define "reconciler.portalTokenSecret" -}}
{{- $portal := .Values.portal | default dict -}}
{{- $secret := $portal.tokenSecret | default dict -}}
{{- if and $portal.actions (not $secret.name) -}}
{{- fail "portal.actions needs portal.tokenSecret.name: the daemon listens on all interfaces, so portal actions must carry a token (make a Secret holding it and name it there)" -}}
{{- end -}}
{{- toJson (dict "name" ($secret.name | default "") "key" ($secret.key | default "token")) -}}
{{- end -}}
