//! Command line: every flag also reads an environment variable.

pub mod migrate;
pub mod reference;

use crate::admission::registration::{FailurePolicy, Selection, Target, WebhookConfigOptions};
use crate::api::ApiVersion;
use crate::api::duration::parse_go_duration;
use crate::explain;
use crate::lifecycle_api::LifecycleApiConfig;
use crate::offline::convert::ConvertFormat;
use crate::offline::{self, OutputFormat};
use crate::report::ReportApi;
use crate::server::{ServeConfig, Server, TlsSource, defaults};
use crate::telemetry::LogFormat;
use crate::tls::secret::CertSecretConfig;
use crate::{Error, Result};
use clap::{Parser, Subcommand};
use k8s_openapi::api::admissionregistration::v1::MatchCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use std::io::{IsTerminal, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "roost-keeper",
    version,
    about = "Admission webhook, status controller and offline validator for ManagedRoost"
)]
pub struct Cli {
    /// Log line format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "ROOST_KEEPER_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate ManagedRoost manifests offline, with the same rules and defaults as the cluster.
    Validate(ValidateArgs),
    /// Print a CustomResourceDefinition (YAML): ManagedRoost, or RoostPolicy.
    Crd(CrdArgs),
    /// Serve the admission webhooks (HTTPS) and metrics/health (HTTP).
    Serve(Box<ServeArgs>),
    /// Certificate tools.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Print the ValidatingWebhookConfiguration and MutatingWebhookConfiguration (YAML).
    WebhookConfig(WebhookConfigArgs),
    /// Explain a finding's code: what it checks, why, its level, examples and the fix.
    Explain(ExplainArgs),
    /// Print the JSON Schema (draft-07) of ManagedRoost or RoostPolicy in its storage
    /// version, for editors and kubeconform; or write every version with kubeconform's file names.
    Schema(SchemaArgs),
    /// Print the shell completion script for bash, zsh, fish, PowerShell or elvish.
    Completions(CompletionsArgs),
    /// Print the man page (roff); or write one page per command into a directory.
    Man(ManArgs),
    /// Convert ManagedRoost manifests to another API version, as kubectl convert does;
    /// other documents pass through. Comments and formatting are not kept.
    Convert(ConvertArgs),
    /// Rewrite every ManagedRoost of the cluster in the storage version (v1beta1), then
    /// drop v1alpha1 from the CRD's status.storedVersions. Safe to run again.
    Migrate(MigrateArgs),
}

/// A Go duration flag (`5s`, `1m30s`); negative values are refused.
fn duration_flag(text: &str) -> std::result::Result<Duration, String> {
    let parsed = parse_go_duration(text)
        .map_err(|e| format!("{text:?} is not a duration ({e}); write e.g. 5s"))?;
    u64::try_from(parsed.as_nanos())
        .map(Duration::from_nanos)
        .map_err(|_| format!("{text:?} must not be negative"))
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address both ports listen on.
    #[arg(long, default_value_t = defaults::BIND_ADDRESS, env = "ROOST_KEEPER_BIND_ADDRESS")]
    pub bind_address: IpAddr,
    /// HTTPS port of the admission webhooks (TLS 1.2 and 1.3; h2 and http/1.1).
    #[arg(long, default_value_t = defaults::WEBHOOK_PORT, env = "ROOST_KEEPER_WEBHOOK_PORT")]
    pub webhook_port: u16,
    /// Plain HTTP port of /metrics, /healthz and /readyz.
    #[arg(long, default_value_t = defaults::METRICS_PORT, env = "ROOST_KEEPER_METRICS_PORT")]
    pub metrics_port: u16,
    /// PEM serving certificate (chain), polled for changes; with --tls-key-file,
    /// or --cert-secret instead.
    #[arg(
        long,
        env = "ROOST_KEEPER_TLS_CERT_FILE",
        required_unless_present = "cert_secret",
        conflicts_with = "cert_secret",
        requires = "tls_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the serving certificate.
    #[arg(
        long,
        env = "ROOST_KEEPER_TLS_KEY_FILE",
        conflicts_with = "cert_secret",
        requires = "tls_cert_file"
    )]
    pub tls_key_file: Option<PathBuf>,
    /// Manage the certificates in this Secret (NAMESPACE/NAME) through the API
    /// instead of files: generated when absent, rotated at 2/3 of their
    /// lifetime, CA bundle injected into both webhook configurations.
    #[arg(long, env = "ROOST_KEEPER_CERT_SECRET", value_name = "NAMESPACE/NAME")]
    pub cert_secret: Option<String>,
    /// Names of a managed serving certificate (the Service is in the Secret's namespace).
    #[command(flatten)]
    pub names: CertNameArgs,
    /// Lifetime of a managed serving certificate (rotated at 2/3 of it).
    #[arg(long, default_value = defaults::CERT_VALIDITY, value_parser = duration_flag, env = "ROOST_KEEPER_CERT_VALIDITY")]
    pub cert_validity: Duration,
    /// How often a managed certificate is checked for rotation and the
    /// webhooks' caBundle for being current.
    #[arg(long, default_value = defaults::CERT_CHECK_INTERVAL, value_parser = duration_flag, env = "ROOST_KEEPER_CERT_CHECK_INTERVAL")]
    pub cert_check_interval: Duration,
    /// How often the certificate files are checked for changes.
    #[arg(long, default_value = defaults::CERT_RELOAD_INTERVAL, value_parser = duration_flag, env = "ROOST_KEEPER_CERT_RELOAD_INTERVAL")]
    pub cert_reload_interval: Duration,
    /// After SIGTERM, keep serving this long before closing the listener.
    #[arg(long, default_value = defaults::SHUTDOWN_DELAY, value_parser = duration_flag, env = "ROOST_KEEPER_SHUTDOWN_DELAY")]
    pub shutdown_delay: Duration,
    /// Then wait at most this long for requests in flight.
    #[arg(long, default_value = defaults::SHUTDOWN_GRACE, value_parser = duration_flag, env = "ROOST_KEEPER_SHUTDOWN_GRACE")]
    pub shutdown_grace: Duration,
    /// Time allowed from accepting a connection to its first request's
    /// headers (TLS handshake included), and for each request body.
    #[arg(long, default_value = defaults::READ_TIMEOUT, value_parser = duration_flag, env = "ROOST_KEEPER_READ_TIMEOUT")]
    pub read_timeout: Duration,
    /// Reviews evaluated at once; more wait their turn.
    #[arg(
        long,
        default_value_t = defaults::MAX_CONCURRENT_REVIEWS,
        env = "ROOST_KEEPER_MAX_CONCURRENT_REVIEWS"
    )]
    pub max_concurrent_reviews: usize,
    /// A review's wait for its turn and its evaluation; past it the webhook
    /// answers 503 (no turn) or 504 (still evaluating). Keep it below the
    /// webhooks' timeoutSeconds (5).
    #[arg(long, default_value = defaults::REVIEW_TIMEOUT, value_parser = duration_flag, env = "ROOST_KEEPER_REVIEW_TIMEOUT")]
    pub review_timeout: Duration,
    /// Open webhook connections at once; when all are taken, an idle one or
    /// one whose request body is stalled makes room, else new ones wait.
    /// Lowered to the open-files soft limit minus 128 when that is less.
    #[arg(long, default_value_t = defaults::MAX_CONNECTIONS, env = "ROOST_KEEPER_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// Open webhook connections one client address may hold.
    #[arg(
        long,
        default_value_t = defaults::MAX_CONNECTIONS_PER_PEER,
        env = "ROOST_KEEPER_MAX_CONNECTIONS_PER_PEER"
    )]
    pub max_connections_per_peer: usize,
    /// A connection with no request in flight this long is closed.
    #[arg(long, default_value = defaults::IDLE_TIMEOUT, value_parser = duration_flag, env = "ROOST_KEEPER_IDLE_TIMEOUT")]
    pub idle_timeout: Duration,
    /// Request bodies above 64 KiB held in memory at once, in bytes, across
    /// connections; more wait (then get 503).
    #[arg(
        long,
        default_value_t = defaults::BODY_BUDGET_BYTES,
        env = "ROOST_KEEPER_BODY_BUDGET_BYTES"
    )]
    pub body_budget_bytes: usize,
    /// Memory the validation cache may hold, in bytes (verdicts weighed by
    /// size; a clean one is about 480 bytes).
    #[arg(
        long,
        default_value_t = defaults::VALIDATION_CACHE_BYTES,
        env = "ROOST_KEEPER_VALIDATION_CACHE_BYTES"
    )]
    pub validation_cache_bytes: u64,
    /// Run the status controller beside the webhooks (the cluster from --kubeconfig).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "ROOST_KEEPER_CONTROLLER")]
    pub controller: bool,
    /// Run the controller on one replica at a time, elected through a Lease
    /// (admission is served by every replica either way).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "ROOST_KEEPER_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Namespace of the Lease (default: the client's namespace: the pod's in a
    /// cluster, else the kubeconfig context's).
    #[arg(long, env = "ROOST_KEEPER_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(
        long,
        default_value = defaults::LEADER_ELECTION_LEASE,
        env = "ROOST_KEEPER_LEADER_ELECTION_LEASE"
    )]
    pub leader_election_lease: String,
    /// How long a lease not renewed stays with its holder.
    #[arg(long, default_value = defaults::LEASE_DURATION, value_parser = duration_flag, env = "ROOST_KEEPER_LEASE_DURATION")]
    pub lease_duration: Duration,
    /// A leader that cannot renew for this long stops its controller.
    #[arg(long, default_value = defaults::LEASE_RENEW_DEADLINE, value_parser = duration_flag, env = "ROOST_KEEPER_LEASE_RENEW_DEADLINE")]
    pub lease_renew_deadline: Duration,
    /// How often the lease is renewed or tried.
    #[arg(long, default_value = defaults::LEASE_RETRY_PERIOD, value_parser = duration_flag, env = "ROOST_KEEPER_LEASE_RETRY_PERIOD")]
    pub lease_retry_period: Duration,
    /// This replica's name in the Lease (default: host name and process id,
    /// HOST_PID; set it to the pod name).
    #[arg(long, env = "ROOST_KEEPER_IDENTITY")]
    pub identity: Option<String>,
    /// Watch ManagedRoosts in this namespace only (default: all namespaces).
    #[arg(long, env = "ROOST_KEEPER_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Policy reports the controller writes, one per ManagedRoost: an
    /// OpenReports Report, a wgpolicyk8s.io PolicyReport, or none. Off while
    /// the cluster does not serve the API (checked at start and every minute).
    #[arg(
        long,
        value_enum,
        default_value = defaults::REPORTS,
        env = "ROOST_KEEPER_REPORTS"
    )]
    pub reports: ReportsFlag,
    /// Kubeconfig for the controller, the Lease and the certificate Secret
    /// (default: KUBECONFIG, ~/.kube/config, then the in-cluster config).
    #[arg(long, env = "ROOST_KEEPER_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Serve the lifecycle API, its event stream and the dashboard page over
    /// HTTPS on this address (e.g. 0.0.0.0:8444); off when not given. Callers
    /// authenticate with a Kubernetes bearer token (TokenReview) and see the
    /// namespaces where they may list and watch managedroosts (SubjectAccessReview).
    #[arg(long, env = "ROOST_KEEPER_LIFECYCLE_API_ADDR")]
    pub lifecycle_api_addr: Option<SocketAddr>,
    /// Audiences a lifecycle API token must be issued for (default: the
    /// apiserver's own); comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        env = "ROOST_KEEPER_LIFECYCLE_API_AUDIENCES"
    )]
    pub lifecycle_api_audience: Vec<String>,
    /// Origins (https://host:port) besides the page's own whose scripts may
    /// call the lifecycle API; comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        env = "ROOST_KEEPER_LIFECYCLE_API_ALLOWED_ORIGINS"
    )]
    pub lifecycle_api_allowed_origin: Vec<String>,
    /// Event streams the lifecycle API serves at once.
    #[arg(
        long,
        default_value_t = defaults::LIFECYCLE_API_MAX_STREAMS,
        env = "ROOST_KEEPER_LIFECYCLE_API_MAX_STREAMS"
    )]
    pub lifecycle_api_max_streams: usize,
    /// Event streams one user may hold open at once.
    #[arg(
        long,
        default_value_t = defaults::LIFECYCLE_API_MAX_STREAMS_PER_IDENTITY,
        env = "ROOST_KEEPER_LIFECYCLE_API_MAX_STREAMS_PER_IDENTITY"
    )]
    pub lifecycle_api_max_streams_per_identity: usize,
}

/// `serve --reports`: which policy report API to write, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportsFlag {
    /// `openreports.io/v1alpha1` Report.
    #[value(name = "openreports.io")]
    OpenReports,
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport.
    #[value(name = "wgpolicyk8s.io")]
    WgPolicy,
    /// No reports.
    Off,
}

impl ReportsFlag {
    pub fn api(self) -> Option<crate::report::ReportApi> {
        match self {
            ReportsFlag::OpenReports => Some(crate::report::ReportApi::OpenReports),
            ReportsFlag::WgPolicy => Some(crate::report::ReportApi::WgPolicy),
            ReportsFlag::Off => None,
        }
    }
}

/// Host name and process id: unique enough outside a pod, readable in the Lease.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "roost-keeper".to_owned());
    format!("{host}_{}", std::process::id())
}

impl ServeArgs {
    pub fn config(&self) -> Result<ServeConfig> {
        let tls = match (&self.cert_secret, &self.tls_cert_file, &self.tls_key_file) {
            (Some(secret), _, _) => TlsSource::Secret(CertSecretConfig {
                validity: self.cert_validity,
                check_interval: self.cert_check_interval,
                ..CertSecretConfig::new(secret, &self.names.service, &self.names.extra_sans)?
            }),
            (None, Some(cert), Some(key)) => TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => {
                return Err(Error::Config(
                    "give --tls-cert-file and --tls-key-file, or --cert-secret".into(),
                ));
            }
        };
        Ok(ServeConfig {
            webhook_addr: SocketAddr::new(self.bind_address, self.webhook_port),
            metrics_addr: SocketAddr::new(self.bind_address, self.metrics_port),
            cert_reload_interval: self.cert_reload_interval,
            shutdown_delay: self.shutdown_delay,
            shutdown_grace: self.shutdown_grace,
            read_timeout: self.read_timeout,
            max_concurrent_reviews: self.max_concurrent_reviews,
            review_timeout: self.review_timeout,
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
            idle_timeout: self.idle_timeout,
            body_budget_bytes: self.body_budget_bytes,
            validation_cache_bytes: self.validation_cache_bytes,
            controller: self
                .controller
                .then(|| crate::controller::ControllerConfig {
                    watch_namespace: self.watch_namespace.clone(),
                    reports: self.reports.api(),
                    leader_election: self.leader_election.then(|| {
                        crate::controller::leader::LeaseConfig {
                            lease_duration: self.lease_duration,
                            renew_deadline: self.lease_renew_deadline,
                            retry_period: self.lease_retry_period,
                            ..crate::controller::leader::LeaseConfig::new(
                                self.leader_election_namespace.clone().unwrap_or_default(),
                                self.leader_election_lease.clone(),
                                self.identity.clone().unwrap_or_else(default_identity),
                            )
                        }
                    }),
                }),
            kubeconfig: self.kubeconfig.clone(),
            lifecycle_api: self.lifecycle_api_addr.map(|addr| LifecycleApiConfig {
                audiences: self.lifecycle_api_audience.clone(),
                allowed_origins: self.lifecycle_api_allowed_origin.clone(),
                max_streams: self.lifecycle_api_max_streams.max(1),
                max_streams_per_identity: self.lifecycle_api_max_streams_per_identity.max(1),
                watch_namespace: self.watch_namespace.clone(),
                ..LifecycleApiConfig::new(addr)
            }),
            ..ServeConfig::with_tls(tls)
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Generate a CA and a serving certificate: ca.crt, tls.crt, tls.key (0600).
    Generate(CertsGenerateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CertsGenerateArgs {
    #[command(flatten)]
    pub names: CertNameArgs,
    /// Namespace of the Service.
    #[arg(long, default_value = defaults::NAMESPACE, env = "ROOST_KEEPER_NAMESPACE")]
    pub namespace: String,
    /// Directory to write the files into.
    #[arg(long, env = "ROOST_KEEPER_CERT_DIR")]
    pub out_dir: PathBuf,
}

/// The names a serving certificate covers (`serve --cert-secret` and `certs generate`).
#[derive(Debug, clap::Args)]
pub struct CertNameArgs {
    /// Service the apiserver dials; the certificate covers its DNS names.
    #[arg(long, default_value = defaults::SERVICE, env = "ROOST_KEEPER_SERVICE")]
    pub service: String,
    /// More names or IPs for the serving certificate (e.g. 127.0.0.1, localhost).
    /// Repeatable; the environment variable takes them comma-separated.
    #[arg(
        long = "extra-san",
        env = "ROOST_KEEPER_EXTRA_SANS",
        value_delimiter = ','
    )]
    pub extra_sans: Vec<String>,
}

/// Where the apiserver reaches the webhook server (`webhook-config`, `crd`).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").args(["url", "service"])))]
pub struct ServerTargetArgs {
    /// PEM CA bundle the apiserver trusts; omitted, caBundle is left for injection.
    #[arg(long, env = "ROOST_KEEPER_CA_BUNDLE_FILE")]
    pub ca_bundle_file: Option<PathBuf>,
    /// Base URL of the webhook server (e.g. https://127.0.0.1:8443), instead of a Service.
    #[arg(long, env = "ROOST_KEEPER_WEBHOOK_URL")]
    pub url: Option<String>,
    /// Service in front of the webhook server (port 443).
    #[arg(long, default_value = defaults::SERVICE, env = "ROOST_KEEPER_SERVICE")]
    pub service: String,
    /// The webhook's namespace: the Service's (webhook-config also excludes it from
    /// review, with kube-system).
    #[arg(long, default_value = defaults::NAMESPACE, env = "ROOST_KEEPER_NAMESPACE")]
    pub namespace: String,
}

impl ServerTargetArgs {
    fn target(&self) -> Target {
        match &self.url {
            Some(url) => Target::Url(url.clone()),
            None => Target::Service {
                name: self.service.clone(),
                namespace: self.namespace.clone(),
            },
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct WebhookConfigArgs {
    #[command(flatten)]
    pub server: ServerTargetArgs,
    /// failurePolicy of the validating webhook.
    #[arg(
        long,
        value_enum,
        default_value = "fail",
        env = "ROOST_KEEPER_VALIDATE_FAILURE_POLICY"
    )]
    pub validate_failure_policy: FailurePolicy,
    /// failurePolicy of the mutating webhook.
    #[arg(
        long,
        value_enum,
        default_value = "ignore",
        env = "ROOST_KEEPER_MUTATE_FAILURE_POLICY"
    )]
    pub mutate_failure_policy: FailurePolicy,
    /// timeoutSeconds of every webhook (1 to 30).
    #[arg(
        long,
        default_value_t = 5,
        value_parser = clap::value_parser!(i32).range(1..=30),
        env = "ROOST_KEEPER_WEBHOOK_TIMEOUT_SECONDS"
    )]
    pub timeout_seconds: i32,
    /// A namespace not reviewed, besides kube-system and --namespace. Repeatable.
    #[arg(
        long = "exclude-namespace",
        value_name = "NAMESPACE",
        env = "ROOST_KEEPER_WEBHOOK_EXCLUDE_NAMESPACES",
        value_delimiter = ','
    )]
    pub exclude_namespaces: Vec<String>,
    /// objectSelector of the ManagedRoost webhooks: a LabelSelector as JSON or YAML,
    /// e.g. '{"matchLabels": {"roost.birb.party/review": "true"}}'.
    #[arg(long, value_parser = label_selector_flag, env = "ROOST_KEEPER_WEBHOOK_OBJECT_SELECTOR")]
    pub object_selector: Option<LabelSelector>,
    /// A matchCondition of the ManagedRoost webhooks, NAME=CEL (e.g.
    /// 'not-dry-run=!request.dryRun'). Repeatable.
    #[arg(
        long = "match-condition",
        value_name = "NAME=EXPRESSION",
        value_parser = match_condition_flag,
        env = "ROOST_KEEPER_WEBHOOK_MATCH_CONDITION"
    )]
    pub match_conditions: Vec<MatchCondition>,
    /// objectSelector of the RoostPolicy and RoostPolicyException webhooks
    /// (the two above apply to the ManagedRoost webhooks only).
    #[arg(long, value_parser = label_selector_flag, env = "ROOST_KEEPER_WEBHOOK_POLICY_OBJECT_SELECTOR")]
    pub policy_object_selector: Option<LabelSelector>,
    /// A matchCondition of the RoostPolicy and RoostPolicyException webhooks,
    /// NAME=CEL. Repeatable.
    #[arg(
        long = "policy-match-condition",
        value_name = "NAME=EXPRESSION",
        value_parser = match_condition_flag,
        env = "ROOST_KEEPER_WEBHOOK_POLICY_MATCH_CONDITION"
    )]
    pub policy_match_conditions: Vec<MatchCondition>,
}

/// A LabelSelector flag, JSON or YAML (the shape the chart's value has).
fn label_selector_flag(text: &str) -> std::result::Result<LabelSelector, String> {
    serde_norway::from_str(text).map_err(|e| format!("{text:?} is not a LabelSelector: {e}"))
}

/// `NAME=EXPRESSION`, split at the first `=` (CEL has `==`; names have no `=`).
fn match_condition_flag(text: &str) -> std::result::Result<MatchCondition, String> {
    match text.split_once('=') {
        Some((name, expression)) if !name.is_empty() && !expression.is_empty() => {
            Ok(MatchCondition {
                name: name.to_owned(),
                expression: expression.to_owned(),
            })
        }
        _ => Err(format!("{text:?} is not NAME=EXPRESSION")),
    }
}

#[derive(Debug, clap::Args)]
pub struct CrdArgs {
    /// Which resource's CRD.
    #[arg(
        long,
        value_enum,
        default_value = "managedroost",
        env = "ROOST_KEEPER_CRD_KIND"
    )]
    pub kind: crate::api::crd::CrdKind,
    /// Where the ManagedRoost CRD's conversion webhook is sent (/convert on that server).
    #[command(flatten)]
    pub server: ServerTargetArgs,
}

impl CrdArgs {
    /// Where the apiserver sends the ManagedRoost CRD's ConversionReviews.
    fn conversion_client(&self) -> Result<ConversionClient> {
        use crate::api::crd::CONVERT_PATH;
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ServiceReference;
        let ca_bundle =
            read_ca_bundle(self.server.ca_bundle_file.as_ref())?.map(k8s_openapi::ByteString);
        Ok(match self.server.target() {
            Target::Url(url) => ConversionClient {
                url: Some(format!("{}{CONVERT_PATH}", url.trim_end_matches('/'))),
                ca_bundle,
                service: None,
            },
            Target::Service { name, namespace } => ConversionClient {
                service: Some(ServiceReference {
                    name,
                    namespace,
                    path: Some(CONVERT_PATH.into()),
                    port: Some(443),
                }),
                ca_bundle,
                url: None,
            },
        })
    }
}

/// The CRD's conversion client config (not the admission webhooks' type).
type ConversionClient =
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::WebhookClientConfig;

/// The PEM file `--ca-bundle-file` names, when given.
fn read_ca_bundle(path: Option<&PathBuf>) -> Result<Option<Vec<u8>>> {
    path.map(|path| {
        std::fs::read(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })
    })
    .transpose()
}

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Which resource's schema to print.
    #[arg(
        long,
        value_enum,
        default_value = "managedroost",
        env = "ROOST_KEEPER_SCHEMA_KIND"
    )]
    pub kind: crate::api::crd::CrdKind,
    /// Write the schema of every served version of both resources into this
    /// directory instead, named as kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}.json`
    /// expects (managedroost-roost-v1beta1.json, managedroost-roost-v1alpha1.json, ...).
    #[arg(long, env = "ROOST_KEEPER_SCHEMA_OUT_DIR", conflicts_with = "kind")]
    pub out_dir: Option<PathBuf>,
}

/// Writes every resource's JSON Schema into `dir` (created if missing);
/// returns the file names.
fn write_schemas(dir: &std::path::Path) -> Result<Vec<String>> {
    use crate::api::json_schema::{json_schema_text, versions};
    use clap::ValueEnum;
    std::fs::create_dir_all(dir).map_err(|source| Error::WriteFile {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for kind in crate::api::crd::CrdKind::value_variants() {
        for (version, name) in versions(*kind) {
            let path = dir.join(&name);
            crate::files::replace(
                &path,
                json_schema_text(*kind, Some(&version))?.as_bytes(),
                crate::files::PUBLIC,
            )?;
            written.push(name);
        }
    }
    Ok(written)
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write roost-keeper.1 and one page per subcommand (roost-keeper-validate.1, ...)
    /// into this directory instead of printing the main page.
    #[arg(long, env = "ROOST_KEEPER_MAN_OUT_DIR")]
    pub out_dir: Option<PathBuf>,
    /// Print the flags of SUBCOMMAND (and the global ones) as a Markdown table
    /// instead: flag, environment variable, default, description. The flag
    /// tables in docs/ are this output (`make generate` rewrites them).
    #[arg(
        long,
        value_name = "SUBCOMMAND",
        env = "ROOST_KEEPER_MAN_FLAGS_MARKDOWN",
        conflicts_with = "out_dir"
    )]
    pub flags_markdown: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Files or directories to check (directories recursively: .yaml, .yml, .json); `-` reads stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1.., env = "ROOST_KEEPER_VALIDATE_FILES")]
    pub files: Vec<PathBuf>,
    /// RoostPolicy and RoostPolicyException files or directories (read as -f is), applied
    /// as the webhooks apply them; their Namespace documents give namespace labels.
    /// RoostPolicy and RoostPolicyException documents among the -f inputs apply too.
    /// Repeatable.
    #[arg(
        long = "policy",
        value_name = "FILE_OR_DIR",
        num_args = 1..,
        env = "ROOST_KEEPER_POLICY"
    )]
    pub policies: Vec<PathBuf>,
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value = "text",
        env = "ROOST_KEEPER_OUTPUT"
    )]
    pub output: OutputFormat,
    /// Also show info findings, and findings of policies in Audit mode or exempted by a
    /// RoostPolicyException (with its name, justification and expiry).
    #[arg(short = 'v', long = "verbose", env = "ROOST_KEEPER_VERBOSE")]
    pub verbose: bool,
    /// The time RoostPolicyExceptions' expiresAt is judged at (RFC 3339, e.g.
    /// 2026-12-31T00:00:00Z); default: the system clock.
    #[arg(long, value_name = "RFC3339", value_parser = timestamp_flag, env = "ROOST_KEEPER_NOW")]
    pub now: Option<Timestamp>,
    /// The report API whose object `-o report` prints: openreports.io (Report) or
    /// wgpolicyk8s.io (PolicyReport).
    #[arg(
        long,
        value_enum,
        default_value = "openreports.io",
        env = "ROOST_KEEPER_REPORT_API"
    )]
    pub report_api: ReportApi,
}

/// An RFC 3339 time (`2026-12-31T00:00:00Z`, or with an offset).
fn timestamp_flag(text: &str) -> std::result::Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|e| {
        format!("{text:?} is not an RFC 3339 time ({e}); write e.g. 2026-12-31T00:00:00Z")
    })
}

#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// Files or directories to convert (directories recursively: .yaml, .yml, .json); `-`
    /// reads stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1.., env = "ROOST_KEEPER_CONVERT_FILES")]
    pub files: Vec<PathBuf>,
    /// The API version to write every ManagedRoost in.
    #[arg(long, value_enum, env = "ROOST_KEEPER_CONVERT_TO")]
    pub to: ApiVersion,
    /// Output format: YAML documents (comments and formatting are not kept), or JSON (one
    /// object, or a List of several).
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value = "yaml",
        env = "ROOST_KEEPER_CONVERT_OUTPUT"
    )]
    pub output: ConvertFormat,
}

/// Runs `convert`; returns the exit code (0, or 1 when a document could not
/// be read or converted; the others are still written).
pub fn run_convert(
    args: &ConvertArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<i32> {
    let conversion = offline::convert::convert_inputs(&args.files, args.to, stdin);
    stdout
        .write_all(conversion.render(args.output).as_bytes())
        .map_err(Error::Write)?;
    for error in &conversion.errors {
        writeln!(
            stderr,
            "error: {}: {}",
            crate::text::printable(&error.location()),
            crate::text::printable(&error.message)
        )
        .map_err(Error::Write)?;
    }
    Ok(conversion.exit_code())
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Kubeconfig of the cluster (default: KUBECONFIG, ~/.kube/config, then the
    /// in-cluster config).
    #[arg(long, env = "ROOST_KEEPER_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// List the ManagedRoosts that would be rewritten and those holding inline
    /// credentials; write nothing.
    #[arg(long, env = "ROOST_KEEPER_MIGRATE_DRY_RUN")]
    pub dry_run: bool,
    /// ManagedRoosts per list request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..), env = "ROOST_KEEPER_MIGRATE_PAGE_SIZE")]
    pub page_size: u32,
}

/// Runs `migrate`: progress on stderr, the summary on stdout; returns the
/// exit code (0, or 1 when an object could not be rewritten).
pub fn run_migrate(args: &MigrateArgs, stdout: &mut dyn Write) -> Result<i32> {
    let options = migrate::MigrateOptions {
        dry_run: args.dry_run,
        page_size: args.page_size,
        ..migrate::MigrateOptions::default()
    };
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    let summary = runtime.block_on(async {
        let client = crate::server::kube_client(args.kubeconfig.as_deref()).await?;
        migrate::migrate(client, &options, &mut std::io::stderr()).await
    })?;
    writeln!(stdout, "{summary}").map_err(Error::Write)?;
    Ok(summary.exit_code())
}

/// Runs `validate`; returns the exit code (0 valid, 1 errors or an invalid
/// RoostPolicy, 2 unreadable input).
pub fn run_validate(
    args: &ValidateArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    color: bool,
) -> Result<i32> {
    let now = args.now.unwrap_or_else(Timestamp::now);
    let report = offline::check_inputs_at(&args.files, &args.policies, now, stdin);
    let cwd = std::env::current_dir().unwrap_or_default();
    let rendered = match args.output {
        OutputFormat::Report => offline::render_reports(&report, args.report_api),
        format => offline::render(&report, format, args.verbose, color, &cwd),
    };
    stdout
        .write_all(rendered.as_bytes())
        .map_err(Error::Write)?;
    if args.output == OutputFormat::Report {
        // The stream holds Reports only: a policy or exception the cluster
        // would refuse (exit 1) is said on stderr.
        stderr
            .write_all(offline::render_refused_policies(&report).as_bytes())
            .map_err(Error::Write)?;
    }
    stderr
        .write_all(offline::render_input_errors(&report).as_bytes())
        .map_err(Error::Write)?;
    Ok(report.exit_code())
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").args(["code", "list"]).required(true)))]
pub struct ExplainArgs {
    /// The code to explain, e.g. CHART_VERSION_MISSING (any letter case).
    pub code: Option<String>,
    /// List every code with its level and a one-line summary.
    #[arg(long, env = "ROOST_KEEPER_EXPLAIN_LIST")]
    pub list: bool,
}

/// Runs `explain`; returns the exit code (0, or 2 for an unknown code).
pub fn run_explain(
    args: &ExplainArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<i32> {
    // clap makes the code and --list exclusive, and one of them required.
    let Some(code) = args.code.as_deref() else {
        stdout
            .write_all(explain::render_list().as_bytes())
            .map_err(Error::Write)?;
        return Ok(0);
    };
    if let Some(explanation) = explain::explanation(code) {
        stdout
            .write_all(explanation.render().as_bytes())
            .map_err(Error::Write)?;
        return Ok(0);
    }
    // The code is quoted as the user typed it, so escape what could drive the terminal.
    let shown = code.escape_debug();
    let hint = match explain::suggestions(code).as_slice() {
        [] => "`roost-keeper explain --list` lists every code (a RoostPolicy rule's own code is described in its policy)".to_owned(),
        near => format!("did you mean {}?", near.join(", ")),
    };
    writeln!(stderr, "error: unknown code \"{shown}\"; {hint}").map_err(Error::Write)?;
    Ok(2)
}

/// Runs the parsed command against the process's standard streams.
pub fn run(cli: Cli) -> Result<i32> {
    let stdout = std::io::stdout();
    match cli.command {
        Command::Serve(args) => {
            let _telemetry = crate::telemetry::init(cli.log_format)?;
            let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
            runtime.block_on(async {
                let server = Server::bind(args.config()?).await?;
                server.run(crate::server::shutdown_signal()).await
            })?;
            Ok(0)
        }
        Command::Certs(CertsCommand::Generate(args)) => {
            let bundle = crate::tls::generate::generate(
                &args.names.service,
                &args.namespace,
                &args.names.extra_sans,
                time::OffsetDateTime::now_utc(),
            )?;
            crate::tls::generate::write_bundle(&bundle, &args.out_dir)?;
            writeln!(
                stdout.lock(),
                "wrote ca.crt, tls.crt, tls.key to {}",
                args.out_dir.display()
            )
            .map_err(Error::Write)?;
            Ok(0)
        }
        Command::WebhookConfig(args) => {
            let ca_bundle = read_ca_bundle(args.server.ca_bundle_file.as_ref())?;
            let options = WebhookConfigOptions {
                target: args.server.target(),
                ca_bundle,
                namespace: args.server.namespace.clone(),
                validate_failure_policy: args.validate_failure_policy,
                mutate_failure_policy: args.mutate_failure_policy,
                selection: Selection {
                    timeout_seconds: args.timeout_seconds,
                    exclude_namespaces: args.exclude_namespaces.clone(),
                    object_selector: args.object_selector.clone(),
                    match_conditions: args.match_conditions.clone(),
                    policy_object_selector: args.policy_object_selector.clone(),
                    policy_match_conditions: args.policy_match_conditions.clone(),
                },
            };
            stdout
                .lock()
                .write_all(crate::admission::registration::render(&options)?.as_bytes())
                .map_err(Error::Write)?;
            Ok(0)
        }
        Command::Validate(args) => {
            let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
            run_validate(
                &args,
                &mut std::io::stdin().lock(),
                &mut stdout.lock(),
                &mut std::io::stderr().lock(),
                color,
            )
        }
        Command::Explain(args) => {
            run_explain(&args, &mut stdout.lock(), &mut std::io::stderr().lock())
        }
        Command::Convert(args) => run_convert(
            &args,
            &mut std::io::stdin().lock(),
            &mut stdout.lock(),
            &mut std::io::stderr().lock(),
        ),
        Command::Migrate(args) => run_migrate(&args, &mut stdout.lock()),
        Command::Crd(args) => {
            use crate::api::crd::{CrdKind, crd_yaml_of, managed_roost_crd_yaml_with};
            // Only ManagedRoost has more than one version to convert between.
            let yaml = match args.kind {
                CrdKind::Managedroost => managed_roost_crd_yaml_with(args.conversion_client()?)?,
                CrdKind::Roostpolicy | CrdKind::Roostpolicyexception => crd_yaml_of(args.kind)?,
            };
            stdout
                .lock()
                .write_all(yaml.as_bytes())
                .map_err(Error::Write)?;
            Ok(0)
        }
        Command::Schema(args) => {
            match &args.out_dir {
                Some(dir) => writeln!(
                    stdout.lock(),
                    "wrote {} to {}",
                    write_schemas(dir)?.join(", "),
                    dir.display()
                ),
                None => stdout.lock().write_all(
                    crate::api::json_schema::json_schema_text(args.kind, None)?.as_bytes(),
                ),
            }
            .map_err(Error::Write)?;
            Ok(0)
        }
        Command::Completions(args) => {
            reference::completions(args.shell, &mut stdout.lock())?;
            Ok(0)
        }
        Command::Man(args) => {
            match (&args.out_dir, &args.flags_markdown) {
                (_, Some(subcommand)) => stdout
                    .lock()
                    .write_all(reference::flags_markdown(subcommand)?.as_bytes())
                    .map_err(Error::Write)?,
                (Some(dir), None) => {
                    let pages = reference::write_man_pages(dir)?;
                    writeln!(
                        stdout.lock(),
                        "wrote {pages} man pages to {}",
                        dir.display()
                    )
                    .map_err(Error::Write)?;
                }
                (None, None) => reference::man_page(&mut stdout.lock())?,
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook_config(args: &[&str]) -> std::result::Result<WebhookConfigArgs, clap::Error> {
        let cli = Cli::try_parse_from(["roost-keeper", "webhook-config"].iter().chain(args))?;
        match cli.command {
            Command::WebhookConfig(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn webhook_config_selection_flags() {
        let args = webhook_config(&[
            "--timeout-seconds=10",
            "--exclude-namespace=flock",
            "--exclude-namespace=nest",
            "--object-selector",
            r#"{"matchLabels": {"team": "birds"}}"#,
            "--match-condition",
            "not-dry-run=request.dryRun == false",
        ])
        .unwrap();
        assert_eq!(args.timeout_seconds, 10);
        assert_eq!(args.exclude_namespaces, ["flock", "nest"]);
        let labels = args.object_selector.unwrap().match_labels.unwrap();
        assert_eq!(labels["team"], "birds");
        assert_eq!(args.match_conditions[0].name, "not-dry-run");
        assert_eq!(
            args.match_conditions[0].expression,
            "request.dryRun == false"
        );
    }

    #[test]
    fn webhook_config_refuses_bad_selection_flags() {
        for bad in [
            &["--timeout-seconds=0"][..],
            &["--timeout-seconds=31"],
            &["--object-selector", "[1, 2]"],
            &["--match-condition", "no-expression"],
            &["--match-condition", "=true"],
        ] {
            assert!(webhook_config(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
