{{/* Names: "inquest" for a release called inquest, "<release>-inquest" otherwise. */}}
{{- define "inquest.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "inquest.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: inquest
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "inquest.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "inquest.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-operator" (include "inquest.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* "true" when the operator's RBAC can be namespaced: watchNamespaces lists plain names only. */}}
{{- define "inquest.namespacedRBAC" -}}
{{- if .Values.watchNamespaces -}}
{{- $plain := true -}}
{{- range .Values.watchNamespaces -}}
{{- if regexMatch "[*?\\[\\]!]" . -}}{{- $plain = false -}}{{- end -}}
{{- end -}}
{{- if $plain -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* The operator's subject in (Cluster)RoleBindings. */}}
{{- define "inquest.subjects" -}}
- kind: ServiceAccount
  name: {{ include "inquest.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/*
A ModelProvider from one modelList entry. Called with (dict "name" NAME "entry" ENTRY "root" $).
Built as a dict and rendered with toYaml, so that quoting and nesting are always right.
*/}}
{{- define "inquest.modelProvider" -}}
{{- $name := .name -}}
{{- $e := .entry -}}
{{- $root := .root -}}
{{- $where := printf "modelList.%s" $name -}}
{{- $baseURL := required (printf "%s.api_base is required" $where) $e.api_base -}}
{{- $spec := dict "baseURL" $baseURL "model" (required (printf "%s.model is required" $where) $e.model) -}}
{{- if $e.api_key_secret -}}
{{- $_ := set $spec "apiKeySecretRef" (dict "name" $e.api_key_secret.name "key" $e.api_key_secret.key) -}}
{{- else if $e.api_key -}}
{{- $env := regexReplaceAll "^\\{\\{\\s*env\\.([A-Za-z_][A-Za-z0-9_]*)\\s*\\}\\}$" $e.api_key "${1}" -}}
{{- if eq $env $e.api_key -}}
{{- fail (printf "%s.api_key must be \"{{ env.NAME }}\" naming an additionalEnvVars entry with a secretKeyRef, or use api_key_secret: {name, key}; Inquest never puts a key in a ModelProvider" $where) -}}
{{- end -}}
{{- $ref := dict -}}
{{- range $root.Values.additionalEnvVars -}}
{{- if and (eq .name $env) .valueFrom -}}
{{- if .valueFrom.secretKeyRef -}}
{{- $ref = dict "name" .valueFrom.secretKeyRef.name "key" .valueFrom.secretKeyRef.key -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $ref -}}
{{- fail (printf "%s.api_key names env.%s, but additionalEnvVars has no %s with valueFrom.secretKeyRef" $where $env $env) -}}
{{- end -}}
{{- $_ := set $spec "apiKeySecretRef" $ref -}}
{{- end -}}
{{- $params := dict -}}
{{- if hasKey $e "temperature" -}}{{- $_ := set $params "temperature" $e.temperature -}}{{- end -}}
{{- if $e.max_output_tokens -}}{{- $_ := set $params "maxOutputTokens" (int $e.max_output_tokens) -}}{{- end -}}
{{- if $e.context_window -}}{{- $_ := set $params "contextWindow" (int $e.context_window) -}}{{- end -}}
{{- if $params -}}{{- $_ := set $spec "parameters" $params -}}{{- end -}}
{{- $ca := default $root.Values.certificate $e.certificate -}}
{{- if $ca -}}{{- $_ := set $spec "tls" (dict "caBundle" $ca) -}}{{- end -}}
{{- if $e.allowed_namespaces -}}{{- $_ := set $spec "allowedNamespaces" $e.allowed_namespaces -}}{{- end -}}
{{- if $e.spec -}}{{- $spec = mergeOverwrite $spec (deepCopy $e.spec) -}}{{- end -}}
{{- $labels := fromYaml (include "inquest.labels" $root) -}}
{{- $_ := set $labels "app.kubernetes.io/component" "model-provider" -}}
{{- if $e.default -}}{{- $_ := set $labels "inquest.dev/default" "true" -}}{{- end -}}
{{- $namespace := default $root.Release.Namespace $e.namespace -}}
{{- if and (include "inquest.namespacedRBAC" $root) (not (has $namespace $root.Values.watchNamespaces)) -}}
{{- fail (printf "%s: namespace %s is not in watchNamespaces, so the operator would never see this ModelProvider; set %s.namespace or add it to watchNamespaces" $where $namespace $where) -}}
{{- end -}}
{{- $meta := dict "name" $name "namespace" $namespace "labels" $labels -}}
{{- toYaml (dict "apiVersion" "inquest.dev/v1alpha1" "kind" "ModelProvider" "metadata" $meta "spec" $spec) -}}
{{- end -}}
