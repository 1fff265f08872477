//! One explanation per code, by rule group in the order of RULES.md.
//!
//! Examples are whole documents: `roost!` wraps a spec (indented two spaces)
//! in the same header, and `chart!` is a valid chart block, so each example
//! shows only what it is about.

use super::Explanation;
use crate::validation::codes;

/// A complete ManagedRoost document around spec lines.
macro_rules! roost {
    ($($spec:tt)*) => {
        concat!(
            "apiVersion: roost.birb.party/v1alpha1\n",
            "kind: ManagedRoost\n",
            "metadata:\n",
            "  name: web\n",
            "  namespace: default\n",
            "spec:\n",
            $($spec)*
        )
    };
}

/// A valid chart block.
macro_rules! chart {
    () => {
        "  chart:
    repository:
      url: https://charts.example.com/stable
    name: web
    version: \"1.4.2\"
"
    };
}

/// What an error does by default.
macro_rules! denied {
    () => {
        "Error: the validating webhook denies the create or update and lists every error with its code. \
         An object already stored (e.g. created before the webhook) gets the condition Validated=False. \
         `roost-keeper validate` prints it and exits 1. A RoostPolicy cannot lower a built-in error."
    };
}

/// What a warning does by default.
macro_rules! warned {
    () => {
        "Warning: the object is admitted and kubectl prints `Warning: <field>: <message> [CODE]`. \
         Its status says Validated=True with reason ValidationPassedWithWarnings. \
         `roost-keeper validate` prints it and exits 0. Silence it on one object with the annotation \
         roost.birb.party/silence-warnings: CODE, or change its level with a RoostPolicy override."
    };
}

/// What an info finding does by default.
macro_rules! noted {
    () => {
        "Info: the object is admitted and kubectl shows nothing; the finding is recorded in the status. \
         `roost-keeper validate` shows it with -v and exits 0. A RoostPolicy override can raise it \
         to a warning or an error."
    };
}

pub(super) const ENTRIES: &[Explanation] = &[
    // ---- Schema and documents ----
    Explanation {
        code: codes::SCHEMA_INVALID,
        checks: "Every value of the spec has the type the CRD schema declares (a list where a list belongs, \
                 an object where an object belongs, a number or string where one belongs), and lists and maps \
                 stay within the schema's size limits. The webhook's decoder reads a numeric string as its \
                 number; `roost-keeper validate` checks every scalar against the declared type as the \
                 apiserver does (`port: \"80\"` where an integer belongs is refused).",
        why: "The apiserver refuses such an object. roost-keeper sets the value aside and still checks the rest, \
              so every other problem is reported in the same run. The message names the expected type but never \
              quotes the value, which may be a secret.",
        default_behaviour: concat!(
            denied!(),
            " In a cluster the CRD schema usually refuses the object before the webhook sees it. \
             The mutating webhook leaves an object it cannot decode unchanged."
        ),
        failing: roost!(
            chart!(),
            "  healthChecks:
    name: web
    type: http
    http:
      url: http://web.default.svc/healthz
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
"
        ),
        fix: "Give the value the type the message names; here healthChecks is a list, so each check starts \
              with `- `.",
    },
    Explanation {
        code: codes::API_VERSION_UNKNOWN,
        checks: "A document of kind ManagedRoost has an apiVersion the CRD serves: roost.birb.party/v1alpha1 \
                 or roost.birb.party/v1beta1 (a RoostPolicy: roost.birb.party/v1alpha1).",
        why: "The cluster has no such version: kubectl apply fails with \"no matches for kind\". \
              Offline nothing else is checked, since the fields of another version are unknown.",
        default_behaviour: "Offline only: `roost-keeper validate` reports this one error for the document \
                            (field apiVersion) and exits 1. In a cluster the apiserver refuses the document \
                            before any webhook.",
        failing: "apiVersion: roost.birb.party/v1
kind: ManagedRoost
metadata:
  name: web
  namespace: default
spec:
  chart:
    repository:
      url: https://charts.example.com/stable
    name: web
    version: \"1.4.2\"
",
        passing: roost!(chart!()),
        fix: "Set apiVersion: roost.birb.party/v1beta1 (or v1alpha1, deprecated).",
    },
    Explanation {
        code: codes::UNKNOWN_FIELD,
        checks: "Every field of the document is one the ManagedRoost CRD schema declares (sub-trees the schema \
                 keeps free-form are not walked). The message suggests the closest known field.",
        why: "A misspelt field is not what you meant: kubectl's strict field validation refuses the object, and \
              where validation is not strict the apiserver drops the field silently, so a typo in \
              teardownPolicy leaves a roost that is never torn down.",
        default_behaviour: "Offline only: `roost-keeper validate` reports it at the field's path and exits 1. \
                            In a cluster kubectl's strict field validation (its default) refuses the object \
                            before the webhook sees it.",
        failing: roost!(
            chart!(),
            "  teardownPolcy:
    triggers:
      - type: timeout
        timeout: 24h
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: timeout
        timeout: 24h
"
        ),
        fix: "Rename the field to the one the message suggests, or remove it.",
    },
    // ---- Chart ----
    Explanation {
        code: codes::CHART_NAME_MISSING,
        checks: "spec.chart.name is set and not empty.",
        why: "Without a chart name there is nothing to install; the controller could never reconcile the roost.",
        default_behaviour: denied!(),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
    version: \"1.4.2\"
"
        ),
        passing: roost!(chart!()),
        fix: "Set spec.chart.name to the chart's name in the repository, e.g. web.",
    },
    Explanation {
        code: codes::CHART_NAME_INVALID,
        checks: "spec.chart.name matches ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$: lower case letters, digits and '-', \
                 starting and ending with a letter or digit.",
        why: "Helm chart names follow that form, and the name becomes part of release and resource names, \
              which Kubernetes limits the same way. A name outside it can never be fetched or installed.",
        default_behaviour: denied!(),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
    name: Web_Frontend
    version: \"1.4.2\"
"
        ),
        passing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
    name: web-frontend
    version: \"1.4.2\"
"
        ),
        fix: "Write the chart name in lower case with '-' between words, as the repository lists it.",
    },
    Explanation {
        code: codes::CHART_VERSION_MISSING,
        checks: "spec.chart.version is set and not blank.",
        why: "Without a version the install takes whatever is newest when the controller reconciles: two \
              clusters drift apart and upgrades arrive unannounced.",
        default_behaviour: denied!(),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
    name: web
"
        ),
        passing: roost!(chart!()),
        fix: "Set spec.chart.version to one exact version, e.g. \"1.4.2\" (quote it, so YAML keeps it text).",
    },
    Explanation {
        code: codes::CHART_VERSION_INVALID,
        checks: "spec.chart.version is a semver version (1.2.3, v1.2.3) or a range as Helm reads it: ^1.2, ~1.2.0, \
                 >=1.0 <2.0, 1.2.x, a hyphen range 1.0 - 2.0, alternatives joined by ||.",
        why: "Helm resolves the version with semver; anything else (a tag like latest, a branch name) never \
              resolves, so the install would fail on every reconcile.",
        default_behaviour: denied!(),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
    name: web
    version: latest
"
        ),
        passing: roost!(chart!()),
        fix: "Write one exact version such as 1.4.2 (or, if you must float, a range such as ^1.4).",
    },
    Explanation {
        code: codes::CHART_VERSION_UNPINNED,
        checks: "spec.chart.version names one exact version (1.2.3, v1.2.3, =1.2.3) rather than a range or \
                 wildcard (^1.2, >=1.0 <2.0, 1.2.x, *).",
        why: "A range installs whatever newest version matches at reconcile time, so the same manifest deploys \
              different charts on different days and clusters, and a rollback has no version to go back to.",
        default_behaviour: concat!(
            warned!(),
            " The example policy examples/policies/production-guardrails.yaml raises it to an error in \
             namespaces labelled env=prod."
        ),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
    name: web
    version: \"^1.4\"
"
        ),
        passing: roost!(chart!()),
        fix: "Pin the version you tested, e.g. \"1.4.2\", and bump it on purpose.",
    },
    Explanation {
        code: codes::CHART_REPO_URL_MISSING,
        checks: "spec.chart.repository.url is set and not empty.",
        why: "The controller needs to know where to fetch the chart from; without a URL the install cannot start.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook derives repository.type from the URL, so without one it sets no type."
        ),
        failing: roost!(
            "  chart:
    name: web
    version: \"1.4.2\"
"
        ),
        passing: roost!(chart!()),
        fix: "Set spec.chart.repository.url, e.g. https://charts.example.com/stable or oci://charts.example.com/web.",
    },
    Explanation {
        code: codes::CHART_REPO_URL_INVALID,
        checks: "spec.chart.repository.url is a URL with a host and the scheme http, https, oci or git+https.",
        why: "Helm fetches charts only over those schemes; a URL without a scheme or host, or with another scheme \
              (ftp, s3), cannot be fetched. The message shows the URL without any user or password in it.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook sets repository.type from the scheme: oci for oci://, git for \
             git+https://, else http."
        ),
        failing: roost!(
            "  chart:
    repository:
      url: charts.example.com/stable
    name: web
    version: \"1.4.2\"
"
        ),
        passing: roost!(chart!()),
        fix: "Write the full URL with its scheme, e.g. https://charts.example.com/stable.",
    },
    Explanation {
        code: codes::CHART_REPO_TYPE_INVALID,
        checks: "spec.chart.repository.type, when set, is one of http, oci, git. The message suggests the \
                 closest one for a typo.",
        why: "The type decides how the controller fetches the chart; an unknown type cannot be fetched.",
        default_behaviour: concat!(
            denied!(),
            " When the type is absent the mutating webhook sets it from the URL (oci://: oci, \
             git+https://: git, else http), so leaving it out is usually best."
        ),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
      type: helm
    name: web
    version: \"1.4.2\"
"
        ),
        passing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
      type: http
    name: web
    version: \"1.4.2\"
"
        ),
        fix: "Set the type to http, oci or git, or remove it and let the webhook derive it from the URL.",
    },
    Explanation {
        code: codes::CHART_REPO_TYPE_MISMATCH,
        checks: "The repository type agrees with the URL: oci needs oci://, git needs git+https://, http needs \
                 http:// or https://.",
        why: "The controller fetches by type; an OCI client cannot read an index.yaml repository, nor a Helm \
              repository client an OCI registry, so a mismatch fails at install time.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook only sets a type that is absent, so it never causes this."
        ),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
      type: oci
    name: web
    version: \"1.4.2\"
"
        ),
        passing: roost!(
            "  chart:
    repository:
      url: oci://charts.example.com/stable
      type: oci
    name: web
    version: \"1.4.2\"
"
        ),
        fix: "Fix whichever is wrong: the URL's scheme or the type (or remove the type to have it derived).",
    },
    Explanation {
        code: codes::CHART_REPO_INSECURE,
        checks: "spec.chart.repository.url does not use plain http://.",
        why: "Over plain HTTP anyone on the path can read the credentials sent and swap the chart for another, \
              which then runs in your cluster.",
        default_behaviour: warned!(),
        failing: roost!(
            "  chart:
    repository:
      url: http://charts.example.com/stable
    name: web
    version: \"1.4.2\"
"
        ),
        passing: roost!(chart!()),
        fix: "Serve the repository over https and use the https:// URL.",
    },
    Explanation {
        code: codes::AUTH_TYPE_INVALID,
        checks: "spec.chart.repository.auth.type is one of basic, token, docker-config. The message suggests \
                 the closest one for a typo.",
        why: "The type says which credentials the controller presents to the repository; with an unknown type \
              it cannot authenticate.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook sets auth.type: basic when an auth block has no type."
        ),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
      auth:
        type: bearer
        secretRef:
          name: charts-token
    name: web
    version: \"1.4.2\"
"
        ),
        passing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
      auth:
        type: token
        secretRef:
          name: charts-token
    name: web
    version: \"1.4.2\"
"
        ),
        fix: "Use basic (user and password), token (a bearer token) or docker-config (a registry config \
              Secret).",
    },
    Explanation {
        code: codes::AUTH_INLINE_CREDENTIALS,
        checks: "spec.chart.repository.auth has no inline password or token.",
        why: "Inline credentials are stored in plain text in the object: anyone who can read ManagedRoosts, \
              and every copy of the manifest in git, has them. roost-keeper never prints their value.",
        default_behaviour: warned!(),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
      auth:
        username: deployer
        password: example-only-password
    name: web
    version: \"1.4.2\"
"
        ),
        passing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
      auth:
        username: deployer
        secretRef:
          name: charts-credentials
    name: web
    version: \"1.4.2\"
"
        ),
        fix: "Move the password or token into a Secret, reference it with auth.secretRef, and remove the \
              inline value (and rotate it if it was ever committed).",
    },
    Explanation {
        code: codes::AUTH_CREDENTIALS_INCOMPLETE,
        checks: "Basic auth (the type, or no type) with a username also has a password or a secretRef.",
        why: "A username alone cannot log in, so every fetch of the chart would fail.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook sets auth.type: basic when an auth block has no type, so an untyped \
             block is checked as basic."
        ),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
      auth:
        username: deployer
    name: web
    version: \"1.4.2\"
"
        ),
        passing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
      auth:
        username: deployer
        secretRef:
          name: charts-credentials
    name: web
    version: \"1.4.2\"
"
        ),
        fix: "Put the password in a Secret and set auth.secretRef to it.",
    },
    Explanation {
        code: codes::TLS_INSECURE_SKIP_VERIFY,
        checks: "insecureSkipVerify is not true on spec.chart.repository.tls, nor on a health check's http.tls \
                 or grpc.tls.",
        why: "Without certificate checks anyone on the path can pose as the server: serve another chart, or \
              answer health checks with whatever they like.",
        default_behaviour: warned!(),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
      tls:
        insecureSkipVerify: true
    name: web
    version: \"1.4.2\"
"
        ),
        passing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
      tls:
        secretRef:
          name: charts-ca
    name: web
    version: \"1.4.2\"
"
        ),
        fix: "Trust the server's CA instead (tls.caBundle or tls.secretRef) and remove insecureSkipVerify.",
    },
    Explanation {
        code: codes::VALUES_INLINE_INVALID,
        checks: "spec.chart.values.inline is a mapping (key: value lines), given as an object or as a YAML \
                 string; empty is fine. A list, a single value, broken YAML, several documents or nesting \
                 deeper than the parser allows are not.",
        why: "Helm merges values as a mapping; anything else fails the install. The message gives the line \
              and column of a YAML error but never quotes the values, which may hold secrets.",
        default_behaviour: denied!(),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
    name: web
    version: \"1.4.2\"
    values:
      inline: |
        - replicaCount: 2
"
        ),
        passing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
    name: web
    version: \"1.4.2\"
    values:
      inline: |
        replicaCount: 2
"
        ),
        fix: "Write the values as key: value lines, as in a values.yaml file.",
    },
    Explanation {
        code: codes::VALUES_REF_NAME_MISSING,
        checks: "Every spec.chart.values.configMapRefs[i] and secretRefs[i] has a name.",
        why: "Without a name the controller cannot find the ConfigMap or Secret to read values from.",
        default_behaviour: denied!(),
        failing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
    name: web
    version: \"1.4.2\"
    values:
      secretRefs:
        - key: values.yaml
"
        ),
        passing: roost!(
            "  chart:
    repository:
      url: https://charts.example.com/stable
    name: web
    version: \"1.4.2\"
    values:
      secretRefs:
        - name: web-values
          key: values.yaml
"
        ),
        fix: "Set name to the ConfigMap's or Secret's name.",
    },
    // ---- Health checks ----
    Explanation {
        code: codes::NO_HEALTH_CHECKS,
        checks: "spec.healthChecks has at least one check.",
        why: "Without checks the roost's health stays Unknown, and failure_count teardown triggers can never \
              fire.",
        default_behaviour: noted!(),
        failing: roost!(chart!()),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
"
        ),
        fix: "Add an http, tcp or kubernetes check.",
    },
    Explanation {
        code: codes::HEALTH_CHECK_NAME_MISSING,
        checks: "Every spec.healthChecks[i] has a name.",
        why: "Check results, status entries and events are reported by name; an unnamed check cannot be told \
              apart from the others.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - type: http
      http:
        url: http://web.default.svc/healthz
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
"
        ),
        fix: "Give each check a short unique name.",
    },
    Explanation {
        code: codes::HEALTH_CHECK_NAME_DUPLICATE,
        checks: "Health check names are unique; the later check of a repeated name is reported.",
        why: "Results are kept by name, so one check would overwrite the other's status.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
    - name: web
      type: tcp
      tcp:
        host: web.default.svc
        port: 8080
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
    - name: web-port
      type: tcp
      tcp:
        host: web.default.svc
        port: 8080
"
        ),
        fix: "Rename one of the checks.",
    },
    Explanation {
        code: codes::HEALTH_CHECK_TYPE_MISSING,
        checks: "Every health check has a type: http, tcp, udp, grpc, prometheus or kubernetes.",
        why: "The type says which probe runs and which block configures it; without one the check cannot run.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      http:
        url: http://web.default.svc/healthz
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
"
        ),
        fix: "Set type to the kind of the block you wrote (here http).",
    },
    Explanation {
        code: codes::HEALTH_CHECK_TYPE_INVALID,
        checks: "The type is one of http, tcp, udp, grpc, prometheus, kubernetes. The message suggests the \
                 closest one for a typo.",
        why: "There is no probe for another type, so the check could never run.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: https
      http:
        url: https://web.default.svc/healthz
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: https://web.default.svc/healthz
"
        ),
        fix: "Use one of the listed types; an https URL is still type http.",
    },
    Explanation {
        code: codes::HTTP_CONFIG_MISSING,
        checks: "A check of type http has its http block.",
        why: "The http block holds the URL to probe; without it the check has nothing to call.",
        default_behaviour: concat!(
            denied!(),
            " When the block is there the mutating webhook sets http.method: GET if absent."
        ),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
"
        ),
        fix: "Add http with at least url, or change the type to the block you configured.",
    },
    Explanation {
        code: codes::TCP_CONFIG_MISSING,
        checks: "A check of type tcp has its tcp block.",
        why: "The tcp block holds the host and port to connect to; without it the check has nothing to dial.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: db
      type: tcp
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: db
      type: tcp
      tcp:
        host: db.default.svc
        port: 5432
"
        ),
        fix: "Add tcp with host and port.",
    },
    Explanation {
        code: codes::UDP_CONFIG_MISSING,
        checks: "A check of type udp has its udp block.",
        why: "The udp block holds the host and port to send to; without it the check has nothing to probe.",
        default_behaviour: concat!(
            denied!(),
            " When the block is there the mutating webhook sets udp.sendData: ping, udp.readTimeout: 5s and \
             udp.retries: 3 if absent."
        ),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: dns
      type: udp
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: dns
      type: udp
      udp:
        host: dns.default.svc
        port: 53
"
        ),
        fix: "Add udp with host and port.",
    },
    Explanation {
        code: codes::GRPC_CONFIG_MISSING,
        checks: "A check of type grpc has its grpc block.",
        why: "The grpc block holds the host and port of the gRPC health service; without it the check has \
              nothing to call.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: api
      type: grpc
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: api
      type: grpc
      grpc:
        host: api.default.svc
        port: 9090
"
        ),
        fix: "Add grpc with host and port (and service, if the server checks one by name).",
    },
    Explanation {
        code: codes::PROMETHEUS_CONFIG_MISSING,
        checks: "A check of type prometheus has its prometheus block.",
        why: "The prometheus block holds the query and threshold; without it there is nothing to evaluate.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: errors
      type: prometheus
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: errors
      type: prometheus
      prometheus:
        endpoint: http://prometheus.monitoring.svc:9090
        query: sum(rate(http_requests_total{code=~\"5..\"}[5m]))
        threshold: \"1\"
        operator: lt
"
        ),
        fix: "Add prometheus with query, threshold, operator and endpoint.",
    },
    Explanation {
        code: codes::KUBERNETES_CONFIG_MISSING,
        checks: "A check of type kubernetes has its kubernetes block.",
        why: "The kubernetes block says which resources to watch (pods, deployments, ...); without it the check \
              watches nothing.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: pods
      type: kubernetes
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: pods
      type: kubernetes
      kubernetes:
        checkPods: true
"
        ),
        fix: "Add kubernetes with what to check, e.g. checkPods: true.",
    },
    Explanation {
        code: codes::HEALTH_CHECK_CONFIG_MISMATCH,
        checks: "A health check carries only the block of its own type.",
        why: "The other block is ignored, which usually means the type or the block is not the one you meant: \
              the check probes something else than you think. The v1beta1 API refuses such a check outright.",
        default_behaviour: warned!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
      tcp:
        host: web.default.svc
        port: 8080
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
"
        ),
        fix: "Remove the other block, or make it a check of its own.",
    },
    Explanation {
        code: codes::HTTP_URL_MISSING,
        checks: "A check of type http has http.url.",
        why: "The URL is what the check calls; without it there is nothing to probe.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        expectedCodes: [200]
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
        expectedCodes: [200]
"
        ),
        fix: "Set http.url, e.g. http://web.default.svc/healthz.",
    },
    Explanation {
        code: codes::HTTP_URL_INVALID,
        checks: "http.url is an http:// or https:// URL with a host.",
        why: "The probe speaks HTTP only and needs a host to connect to. The message shows the URL without any \
              user or password in it.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: web.default.svc/healthz
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
"
        ),
        fix: "Write the full URL with its scheme and host.",
    },
    Explanation {
        code: codes::HTTP_METHOD_INVALID,
        checks: "http.method, when set, is one of GET, POST, PUT, HEAD (upper case). The message suggests the \
                 closest one for a typo.",
        why: "The probe sends only those methods.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook sets http.method: GET when it is absent."
        ),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
        method: get
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
        method: GET
"
        ),
        fix: "Use one of the methods, in upper case, or leave it out for GET.",
    },
    Explanation {
        code: codes::HTTP_EXPECTED_CODE_INVALID,
        checks: "Every http.expectedCodes entry is an integer from 100 to 599.",
        why: "No response carries another status, so the check would never pass.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
        expectedCodes: [200, 2004]
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
        expectedCodes: [200, 204]
"
        ),
        fix: "List status codes from 100 to 599.",
    },
    Explanation {
        code: codes::TCP_HOST_MISSING,
        checks: "tcp.host is set.",
        why: "The check connects to host:port; without a host it has nowhere to connect.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: db
      type: tcp
      tcp:
        port: 5432
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: db
      type: tcp
      tcp:
        host: db.default.svc
        port: 5432
"
        ),
        fix: "Set tcp.host to the service's DNS name or an IP.",
    },
    Explanation {
        code: codes::UDP_HOST_MISSING,
        checks: "udp.host is set.",
        why: "The check sends to host:port; without a host it has nowhere to send.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: dns
      type: udp
      udp:
        port: 53
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: dns
      type: udp
      udp:
        host: dns.default.svc
        port: 53
"
        ),
        fix: "Set udp.host to the service's DNS name or an IP.",
    },
    Explanation {
        code: codes::GRPC_HOST_MISSING,
        checks: "grpc.host is set.",
        why: "The check calls the gRPC health service at host:port; without a host it has nowhere to call.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: api
      type: grpc
      grpc:
        port: 9090
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: api
      type: grpc
      grpc:
        host: api.default.svc
        port: 9090
"
        ),
        fix: "Set grpc.host to the service's DNS name or an IP.",
    },
    Explanation {
        code: codes::TCP_PORT_INVALID,
        checks: "tcp.port is given and is an integer from 1 to 65535.",
        why: "No TCP port exists outside that range, so the check could never connect.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: db
      type: tcp
      tcp:
        host: db.default.svc
        port: 70000
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: db
      type: tcp
      tcp:
        host: db.default.svc
        port: 5432
"
        ),
        fix: "Set tcp.port to the port the service listens on, from 1 to 65535.",
    },
    Explanation {
        code: codes::UDP_PORT_INVALID,
        checks: "udp.port is given and is an integer from 1 to 65535.",
        why: "No UDP port exists outside that range, so the check could never send.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: dns
      type: udp
      udp:
        host: dns.default.svc
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: dns
      type: udp
      udp:
        host: dns.default.svc
        port: 53
"
        ),
        fix: "Set udp.port to the port the service listens on, from 1 to 65535.",
    },
    Explanation {
        code: codes::GRPC_PORT_INVALID,
        checks: "grpc.port is given and is an integer from 1 to 65535.",
        why: "No port exists outside that range, so the check could never connect.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: api
      type: grpc
      grpc:
        host: api.default.svc
        port: 0
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: api
      type: grpc
      grpc:
        host: api.default.svc
        port: 9090
"
        ),
        fix: "Set grpc.port to the port the server listens on, from 1 to 65535.",
    },
    Explanation {
        code: codes::UDP_RETRIES_INVALID,
        checks: "udp.retries, when set, is an integer from 1 to 10.",
        why: "Zero retries never sends a probe; many retries hold a check far beyond its timeout.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook sets udp.retries: 3 when it is absent."
        ),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: dns
      type: udp
      udp:
        host: dns.default.svc
        port: 53
        retries: 20
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: dns
      type: udp
      udp:
        host: dns.default.svc
        port: 53
        retries: 3
"
        ),
        fix: "Set retries from 1 to 10, or leave it out for 3.",
    },
    Explanation {
        code: codes::PROMETHEUS_QUERY_MISSING,
        checks: "prometheus.query is set.",
        why: "The query is what the check evaluates; without it there is nothing to compare.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: errors
      type: prometheus
      prometheus:
        endpoint: http://prometheus.monitoring.svc:9090
        threshold: \"1\"
        operator: lt
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: errors
      type: prometheus
      prometheus:
        endpoint: http://prometheus.monitoring.svc:9090
        query: sum(rate(http_requests_total{code=~\"5..\"}[5m]))
        threshold: \"1\"
        operator: lt
"
        ),
        fix: "Set prometheus.query to a PromQL expression that returns one number.",
    },
    Explanation {
        code: codes::PROMETHEUS_THRESHOLD_MISSING,
        checks: "prometheus.threshold is set.",
        why: "The query's result is compared with the threshold; without one the check cannot decide.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: errors
      type: prometheus
      prometheus:
        endpoint: http://prometheus.monitoring.svc:9090
        query: sum(rate(http_requests_total{code=~\"5..\"}[5m]))
        operator: lt
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: errors
      type: prometheus
      prometheus:
        endpoint: http://prometheus.monitoring.svc:9090
        query: sum(rate(http_requests_total{code=~\"5..\"}[5m]))
        threshold: \"1\"
        operator: lt
"
        ),
        fix: "Set prometheus.threshold to the number the result is compared with.",
    },
    Explanation {
        code: codes::PROMETHEUS_THRESHOLD_INVALID,
        checks: "prometheus.threshold is a number (written as a number or a numeric string).",
        why: "The query returns a number; it can only be compared with a number.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: availability
      type: prometheus
      prometheus:
        endpoint: http://prometheus.monitoring.svc:9090
        query: avg(up{job=\"web\"})
        threshold: 95%
        operator: gte
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: availability
      type: prometheus
      prometheus:
        endpoint: http://prometheus.monitoring.svc:9090
        query: avg(up{job=\"web\"})
        threshold: \"0.95\"
        operator: gte
"
        ),
        fix: "Write the threshold as a plain number, e.g. \"0.95\" rather than 95%.",
    },
    Explanation {
        code: codes::PROMETHEUS_OPERATOR_INVALID,
        checks: "prometheus.operator, when set, is one of gt, gte, lt, lte, eq, ne. The message suggests the \
                 closest one for a typo.",
        why: "The operator decides how the result is compared with the threshold; symbols such as >= are not \
              understood.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: availability
      type: prometheus
      prometheus:
        endpoint: http://prometheus.monitoring.svc:9090
        query: avg(up{job=\"web\"})
        threshold: \"0.95\"
        operator: \">=\"
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: availability
      type: prometheus
      prometheus:
        endpoint: http://prometheus.monitoring.svc:9090
        query: avg(up{job=\"web\"})
        threshold: \"0.95\"
        operator: gte
"
        ),
        fix: "Use the word for the comparison: gt, gte, lt, lte, eq or ne.",
    },
    Explanation {
        code: codes::PROMETHEUS_ENDPOINT_MISSING,
        checks: "A prometheus check has prometheus.endpoint or prometheus.serviceDiscovery.",
        why: "Without either the controller must guess where Prometheus is, and the check may query the wrong \
              server or none.",
        default_behaviour: warned!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: availability
      type: prometheus
      prometheus:
        query: avg(up{job=\"web\"})
        threshold: \"0.95\"
        operator: gte
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: availability
      type: prometheus
      prometheus:
        endpoint: http://prometheus.monitoring.svc:9090
        query: avg(up{job=\"web\"})
        threshold: \"0.95\"
        operator: gte
"
        ),
        fix: "Set prometheus.endpoint to the Prometheus URL, or serviceDiscovery to find it.",
    },
    Explanation {
        code: codes::KUBERNETES_READY_RATIO_INVALID,
        checks: "kubernetes.requiredReadyRatio, when set, is a number from 0 to 1.",
        why: "It is the share of resources that must be ready; 80 (meaning 80%) could never be reached.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: pods
      type: kubernetes
      kubernetes:
        checkPods: true
        requiredReadyRatio: 80
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: pods
      type: kubernetes
      kubernetes:
        checkPods: true
        requiredReadyRatio: 0.8
"
        ),
        fix: "Write the ratio as a fraction, e.g. 0.8 for 80%.",
    },
    Explanation {
        code: codes::FAILURE_THRESHOLD_INVALID,
        checks: "failureThreshold, when set, is an integer of at least 1.",
        why: "It is how many failures in a row make the check unhealthy; 0 or less would mark it unhealthy \
              before it ever ran.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook sets failureThreshold: 3 when it is absent, but never overwrites a value \
             you set, so an explicit 0 stays and is reported."
        ),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
      failureThreshold: 0
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
      failureThreshold: 3
"
        ),
        fix: "Set failureThreshold to 1 or more, or leave it out for 3.",
    },
    Explanation {
        code: codes::WEIGHT_INVALID,
        checks: "weight, when set, is an integer from 0 to 100.",
        why: "Weights combine check results into the roost's health on a 0-100 scale; other values skew or \
              break that sum.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook sets weight: 1 when it is absent."
        ),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
      weight: 150
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
      weight: 100
"
        ),
        fix: "Set weight from 0 to 100, or leave it out for 1.",
    },
    Explanation {
        code: codes::DURATION_INVALID,
        checks: "Every duration of the spec (health check interval and timeout and the durations inside their \
                 blocks, chart upgradePolicy and hooks timeouts, teardown timeouts and cleanup grace period, \
                 metrics interval) is a Go duration: a number and a unit (ns, us, ms, s, m, h), several \
                 combined, e.g. 300ms, 30s, 1h30m, 1.5h. The field names the exact path.",
        why: "The controller parses durations the Go way; 30sec or 1 minute cannot be parsed, so the setting \
              would not work.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook sets interval: 30s and timeout: 10s on a health check when absent."
        ),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
      interval: 30sec
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
      interval: 30s
"
        ),
        fix: "Write the duration with Go units, e.g. 30s, 5m or 1h30m.",
    },
    Explanation {
        code: codes::HEALTH_CHECK_TIMEOUT_EXCEEDS_INTERVAL,
        checks: "A health check's timeout is shorter than its interval (after defaults).",
        why: "A probe that may run longer than the interval overlaps the next one, so slow checks pile up.",
        default_behaviour: concat!(
            warned!(),
            " The mutating webhook sets interval: 30s and timeout: 10s when absent, so a timeout of 30s or \
             more with no interval is reported too."
        ),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
      interval: 10s
      timeout: 15s
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
      interval: 30s
      timeout: 15s
"
        ),
        fix: "Make the timeout shorter than the interval, or the interval longer.",
    },
    Explanation {
        code: codes::HEALTH_CHECK_INTERVAL_TOO_SHORT,
        checks: "A health check's interval is at least 5s.",
        why: "Very frequent probes load the service and the controller for little gain; a few seconds of delay \
              rarely matters for health.",
        default_behaviour: concat!(
            warned!(),
            " The mutating webhook sets interval: 30s when it is absent."
        ),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
      interval: 2s
      timeout: 1s
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
      interval: 10s
      timeout: 5s
"
        ),
        fix: "Use an interval of 5s or more (and a timeout below it).",
    },
    // ---- Teardown ----
    Explanation {
        code: codes::NO_TEARDOWN_POLICY,
        checks: "spec.teardownPolicy is present.",
        why: "Without one the roost lives until someone deletes it; temporary environments tend to be \
              forgotten and keep costing.",
        default_behaviour: concat!(
            noted!(),
            " The example policy examples/policies/production-guardrails.yaml requires one in namespaces \
             labelled env=prod."
        ),
        failing: roost!(chart!()),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: timeout
        timeout: 24h
"
        ),
        fix: "Add a teardownPolicy, e.g. a timeout trigger for a temporary roost.",
    },
    Explanation {
        code: codes::TEARDOWN_TRIGGERS_MISSING,
        checks: "A spec.teardownPolicy has at least one trigger.",
        why: "A policy without triggers never fires: it looks like the roost is cleaned up, but it never is.",
        default_behaviour: warned!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    requireManualApproval: true
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    requireManualApproval: true
    triggers:
      - type: timeout
        timeout: 24h
"
        ),
        fix: "Add a trigger, or remove the policy if the roost should live until deleted.",
    },
    Explanation {
        code: codes::TRIGGER_TYPE_MISSING,
        checks: "Every teardownPolicy.triggers[i] has a type: timeout, failure_count, resource_threshold, \
                 schedule or webhook.",
        why: "The type says what fires the trigger; without it the trigger can never fire.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - timeout: 24h
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: timeout
        timeout: 24h
"
        ),
        fix: "Set the type that matches the trigger's settings (here timeout).",
    },
    Explanation {
        code: codes::TRIGGER_TYPE_INVALID,
        checks: "A trigger's type is one of timeout, failure_count, resource_threshold, schedule, webhook. The \
                 message suggests the closest one for a typo.",
        why: "There is no trigger of another type, so it could never fire.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: timout
        timeout: 24h
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: timeout
        timeout: 24h
"
        ),
        fix: "Use one of the listed types (with an underscore: failure_count, resource_threshold).",
    },
    Explanation {
        code: codes::TIMEOUT_MISSING,
        checks: "A trigger of type timeout has timeout.",
        why: "The timeout is how long the roost lives; without it the trigger cannot fire.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: timeout
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: timeout
        timeout: 24h
"
        ),
        fix: "Set timeout to a Go duration, e.g. 2h or 24h.",
    },
    Explanation {
        code: codes::TEARDOWN_TIMEOUT_TOO_SHORT,
        checks: "A timeout trigger's timeout is at least 5m.",
        why: "A roost torn down within minutes of its creation has barely installed; the value is most likely \
              a unit slip (2m for 2h).",
        default_behaviour: warned!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: timeout
        timeout: 2m
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: timeout
        timeout: 2h
"
        ),
        fix: "Use a timeout of 5m or more; check the unit (m is minutes, h is hours).",
    },
    Explanation {
        code: codes::FAILURE_COUNT_MISSING,
        checks: "A trigger of type failure_count has failureCount.",
        why: "failureCount is how many health check failures tear the roost down; without it the trigger \
              cannot fire.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
  teardownPolicy:
    triggers:
      - type: failure_count
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
  teardownPolicy:
    triggers:
      - type: failure_count
        failureCount: 10
"
        ),
        fix: "Set failureCount, e.g. 10.",
    },
    Explanation {
        code: codes::FAILURE_COUNT_INVALID,
        checks: "A trigger's failureCount, when set, is an integer of at least 1.",
        why: "0 or fewer failures would tear the roost down before any check failed.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
  teardownPolicy:
    triggers:
      - type: failure_count
        failureCount: 0
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
  teardownPolicy:
    triggers:
      - type: failure_count
        failureCount: 10
"
        ),
        fix: "Set failureCount to 1 or more.",
    },
    Explanation {
        code: codes::FAILURE_COUNT_WITHOUT_HEALTH_CHECKS,
        checks: "A roost with a failure_count trigger has at least one health check.",
        why: "Failures are counted from health checks; without any the trigger can never fire.",
        default_behaviour: warned!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: failure_count
        failureCount: 10
"
        ),
        passing: roost!(
            chart!(),
            "  healthChecks:
    - name: web
      type: http
      http:
        url: http://web.default.svc/healthz
  teardownPolicy:
    triggers:
      - type: failure_count
        failureCount: 10
"
        ),
        fix: "Add a health check, or use another trigger type.",
    },
    Explanation {
        code: codes::SCHEDULE_MISSING,
        checks: "A trigger of type schedule has schedule.",
        why: "The schedule is when the trigger fires; without it it never does.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: schedule
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: schedule
        schedule: \"0 2 * * *\"
"
        ),
        fix: "Set schedule to a 5-field cron expression, e.g. \"0 2 * * *\" (02:00 every day).",
    },
    Explanation {
        code: codes::SCHEDULE_INVALID,
        checks: "A trigger's schedule, when set, is a standard 5-field cron expression: minute hour \
                 day-of-month month day-of-week.",
        why: "The controller reads standard cron; a seconds field, a year field or a word such as @daily does \
              not parse, so the trigger would never fire.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: schedule
        schedule: \"0 0 2 * * *\"
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: schedule
        schedule: \"0 2 * * *\"
"
        ),
        fix: "Write five fields: minute hour day month weekday, e.g. \"0 2 * * *\".",
    },
    Explanation {
        code: codes::RESOURCE_THRESHOLD_MISSING,
        checks: "A trigger of type resource_threshold has resourceThreshold with at least one of memory, cpu, \
                 storage or custom.",
        why: "Without a threshold there is nothing to compare usage with, so the trigger cannot fire.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: resource_threshold
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: resource_threshold
        resourceThreshold:
          memory: 80%
"
        ),
        fix: "Set resourceThreshold with memory, cpu, storage or custom, e.g. memory: 80%.",
    },
    Explanation {
        code: codes::RESOURCE_THRESHOLD_INVALID,
        checks: "Every resourceThreshold value (memory, cpu, storage, custom[...]) is a percentage from 1% to \
                 100% or a non-negative Kubernetes quantity (4Gi, 500m).",
        why: "Usage is compared with a share or an amount; any other value can never be reached.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: resource_threshold
        resourceThreshold:
          memory: 120%
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: resource_threshold
        resourceThreshold:
          memory: 80%
"
        ),
        fix: "Write a percentage from 1% to 100% or a quantity such as 4Gi.",
    },
    Explanation {
        code: codes::WEBHOOK_TRIGGER_URL_MISSING,
        checks: "A trigger of type webhook has webhook.url.",
        why: "The URL is what the trigger listens to; without it it never fires.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: webhook
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: webhook
        webhook:
          url: https://hooks.example.com/teardown
"
        ),
        fix: "Set webhook.url to an http or https URL.",
    },
    Explanation {
        code: codes::WEBHOOK_TRIGGER_URL_INVALID,
        checks: "A trigger's webhook.url is an http:// or https:// URL with a host.",
        why: "Webhooks are called over HTTP; another URL cannot be reached. The message shows the URL without \
              any user or password in it.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: webhook
        webhook:
          url: hooks.example.com/teardown
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: webhook
        webhook:
          url: https://hooks.example.com/teardown
"
        ),
        fix: "Write the full URL with its scheme and host.",
    },
    Explanation {
        code: codes::TRIGGER_CONFIG_MISMATCH,
        checks: "A teardown trigger carries only the block of its own type.",
        why: "The other block is ignored, which usually means the type or the block is not the one you meant: \
              the roost is torn down on another condition than you think. The v1beta1 API refuses such a \
              trigger outright.",
        default_behaviour: warned!(),
        failing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: schedule
        schedule: \"0 2 * * *\"
        timeout: 2h
"
        ),
        passing: roost!(
            chart!(),
            "  teardownPolicy:
    triggers:
      - type: schedule
        schedule: \"0 2 * * *\"
      - type: timeout
        timeout: 2h
"
        ),
        fix: "Remove the other block, or make it a trigger of its own.",
    },
    // ---- Tenancy ----
    Explanation {
        code: codes::TENANT_ID_MISSING,
        checks: "With spec.tenancy.rbac.enabled, a tenant id is set (spec.tenancy.tenantId or \
                 spec.tenancy.rbac.tenantId), after defaults.",
        why: "RBAC roles and bindings are created per tenant; without a tenant id they cannot be named or \
              scoped.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook copies spec.tenancy.tenantId into rbac.tenantId when RBAC is enabled, and \
             adds the label roost.birb.party/tenant."
        ),
        failing: roost!(
            chart!(),
            "  tenancy:
    rbac:
      enabled: true
"
        ),
        passing: roost!(
            chart!(),
            "  tenancy:
    tenantId: team-web
    rbac:
      enabled: true
"
        ),
        fix: "Set spec.tenancy.tenantId.",
    },
    Explanation {
        code: codes::TENANT_ID_INVALID,
        checks: "spec.tenancy.tenantId and spec.tenancy.rbac.tenantId are DNS-1123 labels: a-z, 0-9 and '-', \
                 starting and ending with a letter or digit, at most 63 characters.",
        why: "The tenant id names namespaces, roles and labels, which Kubernetes limits to that form.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook adds the label roost.birb.party/tenant only for a tenant id that is a \
             valid label value."
        ),
        failing: roost!(
            chart!(),
            "  tenancy:
    tenantId: Team_Web
"
        ),
        passing: roost!(
            chart!(),
            "  tenancy:
    tenantId: team-web
"
        ),
        fix: "Use lower case letters, digits and '-'.",
    },
    Explanation {
        code: codes::TENANT_ID_MISMATCH,
        checks: "When spec.tenancy.tenantId and spec.tenancy.rbac.tenantId are both set, they are equal.",
        why: "RBAC would be granted to another tenant than the one that owns the roost.",
        default_behaviour: concat!(
            denied!(),
            " The mutating webhook fills rbac.tenantId only when it is empty, so leaving it out avoids this."
        ),
        failing: roost!(
            chart!(),
            "  tenancy:
    tenantId: team-web
    rbac:
      enabled: true
      tenantId: team-api
"
        ),
        passing: roost!(
            chart!(),
            "  tenancy:
    tenantId: team-web
    rbac:
      enabled: true
"
        ),
        fix: "Make them equal, or remove rbac.tenantId so it is copied from tenancy.tenantId.",
    },
    Explanation {
        code: codes::TENANT_ID_IMMUTABLE,
        checks: "On UPDATE, a tenant id once set (spec.tenancy.tenantId) is neither changed nor removed. The \
                 failing example is the update; the passing one is the object as stored.",
        why: "Namespaces, RBAC and quotas were created for the first tenant; moving a roost to another tenant \
              in place would leave them behind or hand them over.",
        default_behaviour: concat!(
            denied!(),
            " Only an UPDATE can report it, so `roost-keeper validate`, which sees one version of an object, \
             does not."
        ),
        failing: roost!(
            chart!(),
            "  tenancy:
    tenantId: team-api
"
        ),
        passing: roost!(
            chart!(),
            "  tenancy:
    tenantId: team-web
"
        ),
        fix: "Keep the tenant id; to move the roost to another tenant, create a new roost and delete this one.",
    },
    Explanation {
        code: codes::NAMESPACE_ISOLATION_PREFIX_INVALID,
        checks: "spec.tenancy.namespaceIsolation.prefix, when set, starts with a-z or 0-9, uses only a-z, 0-9 \
                 and '-', and is at most 63 characters.",
        why: "The prefix starts the names of the tenant's namespaces; a prefix outside that form makes every \
              such name invalid.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  tenancy:
    tenantId: team-web
    namespaceIsolation:
      enabled: true
      prefix: Team-
"
        ),
        passing: roost!(
            chart!(),
            "  tenancy:
    tenantId: team-web
    namespaceIsolation:
      enabled: true
      prefix: team-
"
        ),
        fix: "Use lower case letters, digits and '-', starting with a letter or digit.",
    },
    Explanation {
        code: codes::RESOURCE_QUOTA_EMPTY,
        checks: "With spec.tenancy.resourceQuota.enabled, resourceQuota.hard has at least one limit.",
        why: "A quota without limits limits nothing, while it looks like the tenant is capped.",
        default_behaviour: warned!(),
        failing: roost!(
            chart!(),
            "  tenancy:
    tenantId: team-web
    resourceQuota:
      enabled: true
"
        ),
        passing: roost!(
            chart!(),
            "  tenancy:
    tenantId: team-web
    resourceQuota:
      enabled: true
      hard:
        requests.cpu: \"4\"
        requests.memory: 8Gi
"
        ),
        fix: "Add hard limits, e.g. requests.cpu and requests.memory, or disable the quota.",
    },
    // ---- Observability ----
    Explanation {
        code: codes::TRACING_ENDPOINT_URL_MISSING,
        checks: "With spec.observability.tracing.enabled and an endpoint block, endpoint.url is set.",
        why: "Spans need somewhere to go; without a URL tracing is on but sends nothing.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  observability:
    tracing:
      enabled: true
      endpoint:
        url: \"\"
"
        ),
        passing: roost!(
            chart!(),
            "  observability:
    tracing:
      enabled: true
      endpoint:
        url: http://otel-collector.monitoring.svc:4317
"
        ),
        fix: "Set endpoint.url to the collector, e.g. http://otel-collector:4317.",
    },
    Explanation {
        code: codes::TRACING_ENDPOINT_URL_INVALID,
        checks: "spec.observability.tracing.endpoint.url, when set, is a URL with a scheme and a host.",
        why: "The exporter needs the scheme to pick a protocol and the host to connect to. The message shows \
              the URL without any user or password in it.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  observability:
    tracing:
      enabled: true
      endpoint:
        url: otel-collector.monitoring.svc:4317
"
        ),
        passing: roost!(
            chart!(),
            "  observability:
    tracing:
      enabled: true
      endpoint:
        url: http://otel-collector.monitoring.svc:4317
"
        ),
        fix: "Write the URL with its scheme, e.g. http://otel-collector:4317.",
    },
    Explanation {
        code: codes::SAMPLING_RATE_INVALID,
        checks: "spec.observability.tracing.samplingRate, when set, is a number from 0 to 1.",
        why: "It is the share of traces kept; 10 (meaning 10%) is not a share.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  observability:
    tracing:
      enabled: true
      samplingRate: 10
      endpoint:
        url: http://otel-collector.monitoring.svc:4317
"
        ),
        passing: roost!(
            chart!(),
            "  observability:
    tracing:
      enabled: true
      samplingRate: \"0.1\"
      endpoint:
        url: http://otel-collector.monitoring.svc:4317
"
        ),
        fix: "Write the rate as a fraction, e.g. \"0.1\" for 10%.",
    },
    Explanation {
        code: codes::LOG_LEVEL_INVALID,
        checks: "spec.observability.logging.level, when set, is one of debug, info, warn, error. The message \
                 suggests the closest one for a typo.",
        why: "The workload's logger knows only those levels.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  observability:
    logging:
      level: warning
"
        ),
        passing: roost!(
            chart!(),
            "  observability:
    logging:
      level: warn
"
        ),
        fix: "Use debug, info, warn or error.",
    },
    Explanation {
        code: codes::METRICS_INTERVAL_TOO_SHORT,
        checks: "With spec.observability.metrics.enabled, metrics.interval is at least 1s.",
        why: "Collecting more than once a second floods the metrics pipeline for no useful resolution.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  observability:
    metrics:
      enabled: true
      interval: 500ms
"
        ),
        passing: roost!(
            chart!(),
            "  observability:
    metrics:
      enabled: true
      interval: 15s
"
        ),
        fix: "Set interval to 1s or more, e.g. 15s.",
    },
    // ---- Target namespace ----
    Explanation {
        code: codes::TARGET_NAMESPACE_INVALID,
        checks: "spec.namespace, the namespace the chart is installed into, is a DNS-1123 label: a-z, 0-9 and \
                 '-', starting and ending with a letter or digit, at most 63 characters.",
        why: "Kubernetes namespace names have that form; the install could never create or use another.",
        default_behaviour: denied!(),
        failing: roost!(
            chart!(),
            "  namespace: Web_Prod
"
        ),
        passing: roost!(
            chart!(),
            "  namespace: web-prod
"
        ),
        fix: "Use lower case letters, digits and '-'.",
    },
    Explanation {
        code: codes::TARGET_NAMESPACE_IMMUTABLE,
        checks: "On UPDATE, a target namespace once set (spec.namespace) is neither changed nor removed. The \
                 failing example is the update; the passing one is the object as stored.",
        why: "The release lives in the first namespace; changing it in place would orphan what was installed \
              there.",
        default_behaviour: concat!(
            denied!(),
            " Only an UPDATE can report it, so `roost-keeper validate`, which sees one version of an object, \
             does not."
        ),
        failing: roost!(
            chart!(),
            "  namespace: web-staging
"
        ),
        passing: roost!(
            chart!(),
            "  namespace: web-prod
"
        ),
        fix: "Keep the namespace; to install elsewhere, create a new roost and delete this one.",
    },
    // ---- Policies ----
    Explanation {
        code: codes::POLICY_INVALID,
        checks: "A RoostPolicy decodes, has a name, and compiles: valid label selectors, rule codes that are \
                 new SCREAMING_SNAKE_CASE codes (not built-in, not used by another rule or policy), messages, \
                 CEL expressions that compile with the supported functions, overrides of built-in codes that \
                 do not lower an error, at most 100 rules and 100 overrides, and defaults that are a valid \
                 partial spec.",
        why: "A policy that does not compile cannot be applied; the cluster refuses it so that what is stored is \
              always in force.",
        default_behaviour: "The RoostPolicy webhook denies the policy and lists every problem. \
                            `roost-keeper validate` reports it on the RoostPolicy document (scope RoostPolicy), \
                            checks the roosts without it, and exits 1.",
        failing: concat!(
            "apiVersion: roost.birb.party/v1alpha1
kind: RoostPolicy
metadata:
  name: relaxed-versions
spec:
  overrides:
    - code: CHART_VERSION_MISSING
      level: warning
---
",
            roost!(chart!())
        ),
        passing: concat!(
            "apiVersion: roost.birb.party/v1alpha1
kind: RoostPolicy
metadata:
  name: relaxed-versions
spec:
  overrides:
    - code: CHART_VERSION_UNPINNED
      level: info
---
",
            roost!(chart!())
        ),
        fix: "Fix each problem at the field the message names; here, a built-in error cannot be lowered, but a \
              warning can.",
    },
    Explanation {
        code: codes::POLICY_EVALUATION_ERROR,
        checks: "Each custom rule of a matching RoostPolicy evaluates to true or false on the roost; an \
                 expression that fails (e.g. reads a field the roost does not have) reports this, naming the \
                 policy and the rule.",
        why: "A rule that cannot decide must not let an object through silently, so by default it counts as \
              failed.",
        default_behaviour: "Error: the roost is denied at admission, gets Validated=False in its status, and \
                            `roost-keeper validate` exits 1, as long as the rule keeps the default \
                            failurePolicy: Fail. With failurePolicy: Ignore the rule passes instead.",
        failing: concat!(
            "apiVersion: roost.birb.party/v1alpha1
kind: RoostPolicy
metadata:
  name: tenant-names
spec:
  rules:
    - code: TENANT_PREFIX_REQUIRED
      level: error
      expression: object.spec.tenancy.tenantId.startsWith('team-')
      message: tenant ids start with team-
      field: spec.tenancy.tenantId
---
",
            roost!(chart!())
        ),
        passing: concat!(
            "apiVersion: roost.birb.party/v1alpha1
kind: RoostPolicy
metadata:
  name: tenant-names
spec:
  rules:
    - code: TENANT_PREFIX_REQUIRED
      level: error
      expression: \"!has(object.spec.tenancy) || !has(object.spec.tenancy.tenantId) || object.spec.tenancy.tenantId.startsWith('team-')\"
      message: tenant ids start with team-
      field: spec.tenancy.tenantId
---
",
            roost!(chart!())
        ),
        fix: "Guard optional fields with has() in the expression (or set the rule's failurePolicy: Ignore if \
              passing is the right answer when it cannot be evaluated).",
    },
    Explanation {
        code: codes::EXCEPTION_INVALID,
        checks: "A RoostPolicyException decodes, has a name, and compiles: 1 to 50 codes, each a \
                 SCREAMING_SNAKE_CASE code listed once that may be exempted (a custom rule's code or a built-in \
                 warning or info code, never a built-in error), either roosts (1 to 100 names) or a valid label \
                 selector (not both), and a justification that is not blank (at most 1024 bytes).",
        why: "An exception that does not compile cannot be applied; the cluster refuses it so that what is stored \
              is in force. A built-in error means the roost cannot work, so no exception lowers one.",
        default_behaviour: "The RoostPolicyException webhook denies the exception and lists every problem. \
                            `roost-keeper validate` reports it on the RoostPolicyException document (scope \
                            RoostPolicyException/NAMESPACE), checks the roosts without it, and exits 1.",
        failing: concat!(
            "apiVersion: roost.birb.party/v1alpha1
kind: RoostPolicyException
metadata:
  name: web-unpinned
  namespace: default
spec:
  codes: [CHART_VERSION_MISSING]
  roosts: [web]
  justification: the chart is pinned by digest in the release pipeline
  expiresAt: \"2099-01-01T00:00:00Z\"
---
",
            roost!(chart!())
        ),
        passing: concat!(
            "apiVersion: roost.birb.party/v1alpha1
kind: RoostPolicyException
metadata:
  name: web-unpinned
  namespace: default
spec:
  codes: [CHART_VERSION_UNPINNED]
  roosts: [web]
  justification: the chart is pinned by digest in the release pipeline
  expiresAt: \"2099-01-01T00:00:00Z\"
---
",
            roost!(
                "  chart:
    repository:
      url: https://charts.example.com/stable
    name: web
    version: \"^1.4\"
"
            )
        ),
        fix: "Fix each problem at the field the message names; here, a built-in error cannot be exempted (set the \
              chart version), but a warning such as CHART_VERSION_UNPINNED can.",
    },
    // ---- Findings ----
    Explanation {
        code: codes::TOO_MANY_FINDINGS,
        checks: "How many findings one object has. Each level lists at most 100 findings; the findings past \
                 that are counted in one TOO_MANY_FINDINGS finding at the level of the most severe one left out.",
        why: "A denial, a warning list, a status and a cached verdict must stay small whatever the object: \
              the apiserver, kubectl and etcd all have size limits, and one object must not make the webhook \
              build an unbounded answer.",
        default_behaviour: concat!(
            "It takes the level of the most severe finding left out. ",
            denied!()
        ),
        failing: roost!(
            chart!(),
            "  healthChecks: [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}]\n"
        ),
        passing: roost!(chart!()),
        fix: "Fix the findings listed and validate again (`roost-keeper validate -f FILE` lists them offline); \
              the ones left out come into view as the listed ones go.",
    },
];
