{{- define "vso.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "vso.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "vso.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vso.serviceAccountName" -}}
{{- default (include "vso.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The rules the operator needs wherever it serves VaultSecrets. */}}
{{- define "vso.rules" -}}
- apiGroups: [vaultsync.dev]
  resources: [vaultsecrets, vaultconnections]
  verbs: [get, list, watch, patch, update]
- apiGroups: [vaultsync.dev]
  resources: [vaultsecrets/status, vaultconnections/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [serviceaccounts/token]
  verbs: [create]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- /* Read before issuing credentials: none are issued into a namespace being deleted. A Role grants it for its own namespace. */}}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, list, patch]
{{- end -}}
