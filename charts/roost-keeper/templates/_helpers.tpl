{{/* Labels of every object: deploy/'s one label, plus Helm's own. */}}
{{- define "roost-keeper.labels" -}}
app.kubernetes.io/name: roost-keeper
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The pod selector; immutable, so the same as deploy/'s. */}}
{{- define "roost-keeper.selector" -}}
app.kubernetes.io/name: roost-keeper
{{- end }}

{{/* Where cert-manager's Certificate stores the serving certificate. */}}
{{- define "roost-keeper.certManagerSecret" -}}
roost-keeper-serving-cert
{{- end }}

{{- define "roost-keeper.certManager" -}}
{{- if eq .Values.certificates.mode "cert-manager" }}true{{ end }}
{{- end }}

{{/* Fields every webhook shares (templates/webhooks.yaml), with the
objectSelector and matchConditions of .selection: webhook.* for the
ManagedRoost webhooks, webhook.policy.* for the RoostPolicy one, so a
selector meant for roosts never lets a policy skip its review. */}}
{{- define "roost-keeper.webhookCommon" -}}
admissionReviewVersions:
  - v1
matchPolicy: Equivalent
sideEffects: None
timeoutSeconds: {{ .timeoutSeconds }}
{{- with .selection.objectSelector }}
objectSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .selection.matchConditions }}
matchConditions:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- define "roost-keeper.webhookRules" -}}
rules:
  - apiGroups: ["roost.birb.party"]
    apiVersions: {{ .versions | toJson }}
    operations: ["CREATE", "UPDATE"]
    resources: [{{ .resource | quote }}]
    scope: {{ .scope }}
{{- end }}
{{- define "roost-keeper.webhookClient" -}}
clientConfig:
  service:
    name: roost-keeper
    namespace: {{ .namespace }}
    path: {{ .path }}
    port: 443
{{- end }}
