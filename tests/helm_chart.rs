//! The Helm chart (charts/roost-keeper) without a cluster: `helm lint`,
//! `helm template` with defaults and with every option on, values.schema.json
//! refusing wrong types, and no drift from deploy/ (kustomize) or from
//! `roost-keeper webhook-config`. tests/e2e_helm.rs installs it for real.

use roost_testcluster::{repo_root, succeeded, text};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Labels Helm's conventions add and deploy/ does not carry.
const HELM_LABELS: &[&str] = &[
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
];

fn chart() -> PathBuf {
    repo_root().join("charts/roost-keeper")
}

fn every_option() -> PathBuf {
    repo_root().join("tests/fixtures/helm/every-option.yaml")
}

fn helm(args: &[&str], extra: &[&Path]) -> Output {
    let home = tempfile::tempdir().unwrap();
    roost_testcluster::helm(home.path())
        .args(args)
        .args(extra)
        .output()
        .unwrap()
}

/// Every non-empty document of a YAML stream.
fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

/// `helm template roost-keeper` into `namespace` with these extra arguments;
/// the objects a `helm install` creates (CRDs included, hooks left out).
fn template(namespace: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec![
        "template",
        "roost-keeper",
        "--namespace",
        namespace,
        "--include-crds",
        "--no-hooks",
    ];
    all.extend_from_slice(args);
    documents(&succeeded("helm template", &helm(&all, &[&chart()])))
}

/// `kind/namespace/name` of an object.
fn key(object: &Value) -> String {
    let meta = &object["metadata"];
    format!(
        "{}/{}/{}",
        object["kind"].as_str().unwrap(),
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap()
    )
}

/// Keyed by [`key`], Helm's own labels removed.
fn by_key(objects: Vec<Value>) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .map(|mut object| {
            // get_mut: indexing would insert `labels: null` where there are none.
            if let Some(labels) = object["metadata"]
                .get_mut("labels")
                .and_then(Value::as_object_mut)
            {
                labels.retain(|name, _| !HELM_LABELS.contains(&name.as_str()));
            }
            (key(&object), object)
        })
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

#[test]
fn lint_passes_with_defaults_and_every_option() {
    succeeded(
        "helm lint --strict",
        &helm(&["lint", "--strict"], &[&chart()]),
    );
    succeeded(
        "helm lint --strict -f every-option.yaml",
        &helm(&["lint", "--strict", "-f"], &[&every_option(), &chart()]),
    );
}

/// With the release deploy/ stands for (roost-keeper in roost-system), the
/// chart installs exactly deploy/'s objects, field for field. The Namespace
/// is the exception: Helm installs into an existing one (docs/install.md: Install
/// with Helm creates it with deploy/namespace.yaml's Pod Security labels).
#[test]
fn defaults_render_what_deploy_installs() {
    let rendered = by_key(template("roost-system", &[]));
    let mut deployed = BTreeMap::new();
    for entry in std::fs::read_dir(repo_root().join("deploy")).unwrap() {
        let path = entry.unwrap().path();
        // deploy/lifecycle-api/ is a component deploy/ leaves out (below).
        if path.is_dir() || path.file_name().unwrap() == "kustomization.yaml" {
            continue;
        }
        for object in documents(&std::fs::read_to_string(&path).unwrap()) {
            if object["kind"] != "Namespace" {
                deployed.insert(key(&object), object);
            }
        }
    }
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        deployed.keys().collect::<Vec<_>>(),
        "the chart and deploy/ install different objects"
    );
    for (key, object) in &deployed {
        assert_eq!(&rendered[key], object, "{key} drifted from deploy/");
    }
}

#[test]
fn chart_crds_and_version_follow_the_crate() {
    for file in ["managedroost.yaml", "roostpolicy.yaml"] {
        let generated = std::fs::read_to_string(repo_root().join("crds").join(file)).unwrap();
        let in_chart = std::fs::read_to_string(chart().join("crds").join(file)).unwrap();
        assert!(
            generated == in_chart,
            "charts/roost-keeper/crds/{file} is stale: run `make crd`"
        );
    }
    let meta: Value =
        serde_norway::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap())
            .unwrap();
    assert_eq!(meta["appVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(meta["version"], env!("CARGO_PKG_VERSION"));
}

/// The two webhook configurations by kind (Helm orders by kind, the CLI
/// validating first), labels and annotations removed (the CLI has no Helm
/// labels and leaves the CA to the server or cert-manager).
/// crds/ cannot follow the release: with the default namespace, the CRD's
/// conversion webhook is the chart's Service, on a port it serves.
#[test]
fn the_crds_conversion_webhook_is_the_charts_service_in_the_default_namespace() {
    let objects = template("roost-system", &[]);
    let crd = find(
        &objects,
        "CustomResourceDefinition",
        "managedroosts.roost.birb.party",
    );
    let client = &crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"];
    assert_eq!(client["path"], "/convert", "{client}");
    let service = find(&objects, "Service", client["name"].as_str().unwrap());
    assert_eq!(service["metadata"]["namespace"], client["namespace"]);
    let ports = service["spec"]["ports"].as_array().unwrap();
    assert!(
        ports.iter().any(|p| p["port"] == client["port"]),
        "{client} not served by {service}"
    );
}

fn webhook_configurations(objects: &[Value]) -> Vec<Value> {
    let mut found: Vec<Value> = objects
        .iter()
        .filter(|o| {
            o["kind"] == "ValidatingWebhookConfiguration"
                || o["kind"] == "MutatingWebhookConfiguration"
        })
        .cloned()
        .collect();
    found.sort_by_key(|o| o["kind"].as_str().unwrap().to_owned());
    for object in &mut found {
        let meta = object["metadata"].as_object_mut().unwrap();
        meta.remove("labels");
        meta.remove("annotations");
    }
    found
}

fn cli_webhooks(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["webhook-config"];
    all.extend_from_slice(args);
    webhook_configurations(&documents(&roost_testcluster::stdout_of(
        env!("CARGO_BIN_EXE_roost-keeper"),
        &all,
    )))
}

/// The webhooks that take webhook.policy.* (and never the roost selection).
const POLICY_WEBHOOKS: [&str; 2] = [
    "validate.roostpolicy.roost.birb.party",
    "validate.roostpolicyexception.roost.birb.party",
];

/// One set of rendering rules: the chart's webhooks equal the binary's, with
/// defaults and with every webhook option (flags built from the same values).
#[test]
fn chart_webhooks_equal_webhook_config() {
    assert_eq!(
        webhook_configurations(&template("roost-system", &[])),
        cli_webhooks(&[]),
        "default webhooks differ"
    );

    let values: Value =
        serde_norway::from_str(&std::fs::read_to_string(every_option()).unwrap()).unwrap();
    let webhook = &values["webhook"];
    let policy = |p: &Value| p.as_str().unwrap().to_lowercase();
    let mut args = vec![
        "--namespace".to_owned(),
        "aviary".to_owned(),
        "--validate-failure-policy".to_owned(),
        policy(&webhook["validate"]["failurePolicy"]),
        "--mutate-failure-policy".to_owned(),
        policy(&webhook["mutate"]["failurePolicy"]),
        format!("--timeout-seconds={}", webhook["timeoutSeconds"]),
        format!("--object-selector={}", webhook["objectSelector"]),
    ];
    for namespace in webhook["excludeNamespaces"].as_array().unwrap() {
        args.push(format!(
            "--exclude-namespace={}",
            namespace.as_str().unwrap()
        ));
    }
    for (flag, conditions) in [
        ("match-condition", &webhook["matchConditions"]),
        (
            "policy-match-condition",
            &webhook["policy"]["matchConditions"],
        ),
    ] {
        for condition in conditions.as_array().unwrap() {
            args.push(format!(
                "--{flag}={}={}",
                condition["name"].as_str().unwrap(),
                condition["expression"].as_str().unwrap()
            ));
        }
    }
    args.push(format!(
        "--policy-object-selector={}",
        webhook["policy"]["objectSelector"]
    ));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let from_chart = webhook_configurations(&template(
        "aviary",
        &["-f", every_option().to_str().unwrap()],
    ));
    assert_eq!(
        from_chart,
        cli_webhooks(&args),
        "webhooks with every option differ"
    );
    // The fixture really changes what the defaults render.
    assert_ne!(from_chart, cli_webhooks(&["--namespace", "aviary"]));
}

/// A selection meant for roosts never reaches the RoostPolicy and
/// RoostPolicyException webhooks (it would let policies or exceptions skip
/// their review), and webhook.policy.* reaches those webhooks alone.
#[test]
fn the_policy_webhook_has_a_selection_of_its_own() {
    let values: Value =
        serde_norway::from_str(&std::fs::read_to_string(every_option()).unwrap()).unwrap();
    let webhook = &values["webhook"];
    let roost = json!({
        "objectSelector": webhook["objectSelector"],
        "matchConditions": webhook["matchConditions"],
    });
    let policy = &webhook["policy"];
    let dir = tempfile::tempdir().unwrap();
    let only = |name: &str, values: Value| {
        let file = dir.path().join(name);
        std::fs::write(&file, json!({ "webhook": values }).to_string()).unwrap();
        file
    };
    let cases = [
        (
            "roost values only",
            only("roost.yaml", roost.clone()),
            &roost,
            &Value::Null,
        ),
        (
            "policy values only",
            only("policy.yaml", json!({ "policy": policy })),
            &Value::Null,
            policy,
        ),
        ("every option", every_option(), &roost, policy),
    ];
    for (what, file, roost, policy) in cases {
        let rendered = template("roost-system", &["-f", file.to_str().unwrap()]);
        let webhooks: Vec<Value> = webhook_configurations(&rendered)
            .into_iter()
            .flat_map(|c| c["webhooks"].as_array().unwrap().clone())
            .collect();
        assert_eq!(webhooks.len(), 4, "{what}");
        for webhook in &webhooks {
            let name = webhook["name"].as_str().unwrap();
            let want = if POLICY_WEBHOOKS.contains(&name) {
                policy
            } else {
                roost
            };
            for field in ["objectSelector", "matchConditions"] {
                assert_eq!(
                    webhook.get(field),
                    want.get(field),
                    "{what}: {name} {field}"
                );
            }
        }
    }
}

#[test]
fn every_option_renders() {
    let objects = template("aviary", &["-f", every_option().to_str().unwrap()]);
    let values: Value =
        serde_norway::from_str(&std::fs::read_to_string(every_option()).unwrap()).unwrap();

    // cert-manager: an Issuer, its Certificate for the Service, the CA
    // injected into both webhook configurations, the files mounted for serve.
    let certificate = find(&objects, "Certificate", "roost-keeper-serving");
    assert_eq!(
        certificate["spec"]["issuerRef"]["name"],
        "roost-keeper-selfsigned"
    );
    find(&objects, "Issuer", "roost-keeper-selfsigned");
    assert_eq!(
        certificate["spec"]["dnsNames"][0], "roost-keeper.aviary.svc",
        "{certificate}"
    );
    for (kind, name) in [
        ("ValidatingWebhookConfiguration", "roost-keeper-validating"),
        ("MutatingWebhookConfiguration", "roost-keeper-mutating"),
    ] {
        assert_eq!(
            find(&objects, kind, name)["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "aviary/roost-keeper-serving"
        );
    }
    let deployment = find(&objects, "Deployment", "roost-keeper");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        pod["volumes"][1]["secret"]["secretName"],
        certificate["spec"]["secretName"]
    );
    let mount = container["volumeMounts"][1]["mountPath"].as_str().unwrap();
    let lifecycle = &values["lifecycleApi"];
    assert_eq!(
        container["args"],
        json!([
            "serve",
            "--tls-cert-file",
            format!("{mount}/tls.crt"),
            "--tls-key-file",
            format!("{mount}/tls.key"),
            format!("--lifecycle-api-addr=0.0.0.0:{}", lifecycle["port"]),
            format!("--lifecycle-api-max-streams={}", lifecycle["maxStreams"]),
            format!(
                "--lifecycle-api-max-streams-per-identity={}",
                lifecycle["maxStreamsPerIdentity"]
            ),
        ])
    );
    // Without the Secret to manage or caBundle to patch, RBAC drops those rules.
    for (kind, forbidden) in [
        ("ClusterRole", "webhookconfigurations"),
        ("ClusterRole", "customresourcedefinitions"),
        ("Role", "secrets"),
    ] {
        let rules = find(&objects, kind, "roost-keeper")["rules"].to_string();
        assert!(
            !rules.contains(forbidden),
            "{kind} still grants {forbidden}: {rules}"
        );
    }

    // The Deployment's values.
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        container["image"],
        "registry.invalid/birbs/roost-keeper:9.9.9"
    );
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(container["resources"], values["resources"]);
    assert_eq!(container["securityContext"], values["securityContext"]);
    assert_eq!(pod["securityContext"], values["podSecurityContext"]);
    let env: BTreeMap<&str, &Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), &e["value"]))
        .collect();
    assert_eq!(env["ROOST_KEEPER_LEADER_ELECTION"], "false");
    assert_eq!(env["ROOST_KEEPER_REPORTS"], "wgpolicyk8s.io");
    assert_eq!(env["ROOST_KEEPER_LOG_FORMAT"], "text");
    assert_eq!(
        env["OTEL_EXPORTER_OTLP_ENDPOINT"],
        "http://otel-collector.observability:4317"
    );

    // The lifecycle API on its port, its lists as the server's comma lists,
    // reachable only from the fixture's peers.
    let joined = |list: &Value| {
        list.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(
        env["ROOST_KEEPER_LIFECYCLE_API_AUDIENCES"]
            .as_str()
            .unwrap(),
        joined(&lifecycle["audiences"])
    );
    assert_eq!(
        env["ROOST_KEEPER_LIFECYCLE_API_ALLOWED_ORIGINS"]
            .as_str()
            .unwrap(),
        joined(&lifecycle["allowedOrigins"])
    );
    let api = LifecycleApi::of(&objects);
    assert_eq!(api.container_port["containerPort"], lifecycle["port"]);
    assert_eq!(api.service_port["port"], lifecycle["port"]);
    assert_eq!(api.ingress_rule["ports"][0]["port"], lifecycle["port"]);
    assert_eq!(api.ingress_rule["from"], lifecycle["networkPolicy"]["from"]);
    assert_eq!(api.delegator["subjects"][0]["namespace"], "aviary");

    // Monitoring: the ServiceMonitor scrapes the Service's metrics port; the
    // rules and the dashboard are the chart's files, unchanged.
    let monitor = find(&objects, "ServiceMonitor", "roost-keeper");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["interval"], "15s");
    let rules: Value = serde_norway::from_str(
        &std::fs::read_to_string(chart().join("files/prometheus-rules.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        find(&objects, "PrometheusRule", "roost-keeper")["spec"],
        rules
    );
    let dashboard = find(&objects, "ConfigMap", "roost-keeper-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        dashboard["data"]["roost-keeper.json"],
        std::fs::read_to_string(chart().join("files/grafana-dashboard.json")).unwrap()
    );
}

/// `reports: off` turns the server's reports off and drops the report RBAC;
/// the exception granter ClusterRole is installed either way, never
/// aggregated into admin or edit.
#[test]
fn reports_off_drops_the_report_rules_and_the_granter_is_never_aggregated() {
    for (value, granted) in [
        ("openreports.io", true),
        ("wgpolicyk8s.io", true),
        ("off", false),
    ] {
        let objects = template("roost-system", &["--set", &format!("reports={value}")]);
        let rules = find(&objects, "ClusterRole", "roost-keeper")["rules"].to_string();
        for resource in ["\"reports\"", "\"policyreports\""] {
            assert_eq!(
                rules.contains(resource),
                granted,
                "reports={value}: {rules}"
            );
        }
        assert!(rules.contains("roostpolicyexceptions"), "{rules}");
        let container = &find(&objects, "Deployment", "roost-keeper")["spec"]["template"]["spec"]["containers"]
            [0];
        let env = container["env"].to_string();
        assert_eq!(
            env.contains(&format!("\"value\":\"{value}\"")),
            value != "openreports.io",
            "reports={value}: {env}"
        );
        let granter = find(&objects, "ClusterRole", "roost-keeper-exception-granter");
        let labels = granter["metadata"]["labels"].to_string();
        assert!(!labels.contains("aggregate-to"), "{labels}");
        assert!(
            granter["rules"]
                .to_string()
                .contains("roostpolicyexceptions"),
            "{granter}"
        );
    }
}

/// values.schema.json: a value of the wrong type or outside its set fails
/// the render (and so `helm install`), naming the value.
#[test]
fn schema_refuses_wrong_values() {
    for (set, value) in [
        ("--set", "replicaCount=two"),
        ("--set-string", "leaderElection.enabled=true"),
        ("--set", "webhook.timeoutSeconds=31"),
        ("--set", "webhook.validate.failurePolicy=Maybe"),
        ("--set", "webhook.excludeNamespaces=flock"),
        ("--set", "webhook.policy.objectSelector=birds"),
        ("--set", "webhook.policy.matchConditions=always"),
        ("--set", "certificates.mode=vault"),
        ("--set", "logFormat=xml"),
        ("--set", "reports=kyverno.io"),
        ("--set-string", "lifecycleApi.enabled=true"),
        ("--set", "lifecycleApi.port=80"),
        ("--set", "lifecycleApi.port=8443"),
        ("--set", "lifecycleApi.maxStreams=0"),
        ("--set", "lifecycleApi.maxStreamsPerIdentity=-1"),
        // The server reads comma lists: no commas in an item.
        ("--set", "lifecycleApi.audiences={a\\,b}"),
        (
            "--set",
            "lifecycleApi.allowedOrigins={https://ops.example.org/page}",
        ),
        ("--set", "lifecycleApi.networkPolicy.from=anyone"),
    ] {
        let out = helm(&["template", "roost-keeper", set, value], &[&chart()]);
        let stderr = text(&out.stderr);
        let name = value.split('=').next().unwrap().rsplit('.').next().unwrap();
        assert!(
            !out.status.success() && stderr.contains("schema") && stderr.contains(name),
            "{set} {value} was not refused by the schema:\n{stderr}"
        );
    }
}

/// What the lifecycle API adds to a rendering, each found exactly once.
struct LifecycleApi<'a> {
    args: Vec<&'a str>,
    container_port: &'a Value,
    service_port: &'a Value,
    ingress_rule: &'a Value,
    delegator: &'a Value,
    viewer: &'a Value,
}

impl<'a> LifecycleApi<'a> {
    fn of(objects: &'a [Value]) -> Self {
        let named = |list: &'a Value| -> &'a Value {
            let found: Vec<&Value> = list
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["name"] == "lifecycle-api")
                .collect();
            assert_eq!(found.len(), 1, "one lifecycle-api port in {list}");
            found[0]
        };
        let container = &find(objects, "Deployment", "roost-keeper")["spec"]["template"]["spec"]["containers"]
            [0];
        let service = find(objects, "Service", "roost-keeper");
        let policy = find(objects, "NetworkPolicy", "roost-keeper");
        let container_port = named(&container["ports"]);
        let rules: Vec<&Value> = policy["spec"]["ingress"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|rule| {
                rule["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["port"] == container_port["containerPort"])
            })
            .collect();
        assert_eq!(rules.len(), 1, "one ingress rule for the port: {policy}");
        LifecycleApi {
            args: container["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .filter(|a| a.starts_with("--lifecycle-api-"))
                .collect(),
            container_port,
            service_port: named(&service["spec"]["ports"]),
            ingress_rule: rules[0],
            delegator: find(objects, "ClusterRoleBinding", "roost-keeper-auth-delegator"),
            viewer: find(objects, "ClusterRole", "roost-keeper-lifecycle-viewer"),
        }
    }
}

/// lifecycleApi.enabled=true adds the serve flag, the container port, the
/// Service port, the NetworkPolicy rule (from anywhere by default), the
/// ServiceAccount's system:auth-delegator binding and the viewer ClusterRole;
/// the defaults add none of it.
#[test]
fn the_lifecycle_api_is_off_by_default_and_complete_when_enabled() {
    let off = template("roost-system", &[]);
    for object in &off {
        let text = object.to_string();
        if object["kind"] != "CustomResourceDefinition" {
            assert!(
                !text.contains("lifecycle-api") && !text.contains("8444"),
                "{} renders the lifecycle API by default: {text}",
                key(object)
            );
        }
        assert!(
            !text.contains("system:auth-delegator")
                && !text.contains("roost-keeper-lifecycle-viewer"),
            "{} renders the lifecycle API's RBAC by default",
            key(object)
        );
    }

    let on = template("roost-system", &["--set", "lifecycleApi.enabled=true"]);
    let api = LifecycleApi::of(&on);
    assert_eq!(
        api.args,
        [
            "--lifecycle-api-addr=0.0.0.0:8444",
            "--lifecycle-api-max-streams=256",
            "--lifecycle-api-max-streams-per-identity=8",
        ]
    );
    assert_eq!(
        api.container_port,
        &json!({"name": "lifecycle-api", "containerPort": 8444, "protocol": "TCP"})
    );
    assert_eq!(
        api.service_port,
        &json!({"name": "lifecycle-api", "port": 8444, "targetPort": "lifecycle-api", "protocol": "TCP"})
    );
    // No `from`: anyone the cluster lets reach the pods, as the webhook port.
    assert_eq!(
        api.ingress_rule,
        &json!({"ports": [{"protocol": "TCP", "port": 8444}]})
    );
    assert_eq!(
        api.delegator["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"})
    );
    assert_eq!(
        api.delegator["subjects"],
        json!([{"kind": "ServiceAccount", "name": "roost-keeper", "namespace": "roost-system"}])
    );
    assert_eq!(
        api.viewer["rules"],
        json!([{"apiGroups": ["roost.birb.party"], "resources": ["managedroosts"], "verbs": ["get", "list", "watch"]}])
    );
    // Bound to nobody by the chart: admins choose who reads which namespace.
    assert!(
        !on.iter()
            .any(|o| o["roleRef"]["name"] == "roost-keeper-lifecycle-viewer"),
        "the chart binds the viewer ClusterRole"
    );
    // The empty lists are not passed on: the server's defaults apply.
    let env = find(&on, "Deployment", "roost-keeper")["spec"]["template"]["spec"]["containers"][0]
        ["env"]
        .to_string();
    assert!(!env.contains("ROOST_KEEPER_LIFECYCLE_API"), "{env}");

    // Exactly two objects more; the others only change where shown above.
    let (off, on) = (by_key(off), by_key(on));
    let added: Vec<&String> = on.keys().filter(|k| !off.contains_key(*k)).collect();
    assert_eq!(
        added,
        [
            "ClusterRole//roost-keeper-lifecycle-viewer",
            "ClusterRoleBinding//roost-keeper-auth-delegator",
        ]
    );
    let changed: Vec<&String> = off.keys().filter(|k| off[*k] != on[*k]).collect();
    assert_eq!(
        changed,
        [
            "Deployment/roost-system/roost-keeper",
            "NetworkPolicy/roost-system/roost-keeper",
            "Service/roost-system/roost-keeper",
        ]
    );
}

/// deploy/ with its lifecycle-api component (a kustomization that adds it to
/// deploy/, as docs/install.md shows) installs exactly what the chart does with
/// lifecycleApi.enabled=true: the component cannot drift from the chart.
#[test]
fn deploy_lifecycle_api_component_renders_what_the_chart_enables() {
    let dir = roost_testcluster::deploy_with_lifecycle_api();
    let kubectl = roost_testcluster::bin_dir().unwrap().join("kubectl");
    let built = succeeded(
        "kubectl kustomize",
        &std::process::Command::new(kubectl)
            .arg("kustomize")
            .arg(dir.path())
            .output()
            .unwrap(),
    );
    // kustomize writes the CRDs' `minimum: 1.0` as `1`: compare numbers by value.
    let deployed: BTreeMap<String, Value> = documents(&built)
        .into_iter()
        .filter(|o| o["kind"] != "Namespace")
        .map(|o| (key(&o), integral_numbers(o)))
        .collect();
    let rendered: BTreeMap<String, Value> = by_key(template(
        "roost-system",
        &["--set", "lifecycleApi.enabled=true"],
    ))
    .into_iter()
    .map(|(key, o)| (key, integral_numbers(o)))
    .collect();
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        deployed.keys().collect::<Vec<_>>(),
        "the chart and deploy/ + lifecycle-api install different objects"
    );
    for (key, object) in &deployed {
        assert_eq!(
            &rendered[key], object,
            "{key} drifted from deploy/ + lifecycle-api"
        );
    }
    // The component is left out of deploy/ itself, as the chart's default.
    let kustomization: Value = serde_norway::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/kustomization.yaml")).unwrap(),
    )
    .unwrap();
    assert!(kustomization.get("components").is_none(), "{kustomization}");
}

/// `value` with every float that is a whole number written as an integer.
fn integral_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, integral_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}
