//! Command line: every flag also reads an environment variable.

use crate::api::duration::parse_go_duration;
use crate::offline::{self, OutputFormat};
use crate::server::{ServeConfig, Server};
use crate::telemetry::LogFormat;
use crate::webhook_config::{FailurePolicy, Target, WebhookConfigOptions};
use crate::{Error, Result};
use clap::{Parser, Subcommand};
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
    /// Print the ManagedRoost CustomResourceDefinition (YAML).
    Crd,
    /// Serve the admission webhooks (HTTPS) and metrics/health (HTTP).
    Serve(ServeArgs),
    /// Certificate tools.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Print the ValidatingWebhookConfiguration and MutatingWebhookConfiguration (YAML).
    WebhookConfig(WebhookConfigArgs),
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
    #[arg(long, default_value = "0.0.0.0", env = "ROOST_KEEPER_BIND_ADDRESS")]
    pub bind_address: IpAddr,
    /// HTTPS port of the admission webhooks.
    #[arg(long, default_value_t = 8443, env = "ROOST_KEEPER_WEBHOOK_PORT")]
    pub webhook_port: u16,
    /// Plain HTTP port of /metrics, /healthz and /readyz.
    #[arg(long, default_value_t = 8080, env = "ROOST_KEEPER_METRICS_PORT")]
    pub metrics_port: u16,
    /// PEM serving certificate (chain); re-read when it changes.
    #[arg(long, env = "ROOST_KEEPER_TLS_CERT_FILE")]
    pub tls_cert_file: PathBuf,
    /// PEM private key of the serving certificate.
    #[arg(long, env = "ROOST_KEEPER_TLS_KEY_FILE")]
    pub tls_key_file: PathBuf,
    /// How often the certificate files are checked for changes.
    #[arg(long, default_value = "2s", value_parser = duration_flag, env = "ROOST_KEEPER_CERT_RELOAD_INTERVAL")]
    pub cert_reload_interval: Duration,
    /// After SIGTERM, keep serving this long before closing the listener.
    #[arg(long, default_value = "5s", value_parser = duration_flag, env = "ROOST_KEEPER_SHUTDOWN_DELAY")]
    pub shutdown_delay: Duration,
    /// Then wait at most this long for requests in flight.
    #[arg(long, default_value = "25s", value_parser = duration_flag, env = "ROOST_KEEPER_SHUTDOWN_GRACE")]
    pub shutdown_grace: Duration,
    /// Time allowed for a TLS handshake and for reading a request.
    #[arg(long, default_value = "10s", value_parser = duration_flag, env = "ROOST_KEEPER_READ_TIMEOUT")]
    pub read_timeout: Duration,
    /// Reviews evaluated at once; more wait their turn.
    #[arg(
        long,
        default_value_t = 256,
        env = "ROOST_KEEPER_MAX_CONCURRENT_REVIEWS"
    )]
    pub max_concurrent_reviews: usize,
    /// Open webhook connections at once; more wait to be accepted.
    #[arg(long, default_value_t = 1024, env = "ROOST_KEEPER_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// Run the status controller beside the webhooks (uses KUBECONFIG or the in-cluster config).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "ROOST_KEEPER_CONTROLLER")]
    pub controller: bool,
    /// Watch ManagedRoosts in this namespace only (default: all namespaces).
    #[arg(long, env = "ROOST_KEEPER_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Kubeconfig for the controller (default: KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "ROOST_KEEPER_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

impl ServeArgs {
    pub fn config(&self) -> ServeConfig {
        ServeConfig {
            webhook_addr: SocketAddr::new(self.bind_address, self.webhook_port),
            metrics_addr: SocketAddr::new(self.bind_address, self.metrics_port),
            cert_reload_interval: self.cert_reload_interval,
            shutdown_delay: self.shutdown_delay,
            shutdown_grace: self.shutdown_grace,
            read_timeout: self.read_timeout,
            max_concurrent_reviews: self.max_concurrent_reviews,
            max_connections: self.max_connections,
            controller: self
                .controller
                .then(|| crate::controller::ControllerConfig {
                    watch_namespace: self.watch_namespace.clone(),
                    kubeconfig: self.kubeconfig.clone(),
                }),
            ..ServeConfig::new(self.tls_cert_file.clone(), self.tls_key_file.clone())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Generate a CA and a serving certificate: ca.crt, tls.crt, tls.key (0600).
    Generate(CertsGenerateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CertsGenerateArgs {
    /// Service name the apiserver dials.
    #[arg(long, default_value = "roost-keeper", env = "ROOST_KEEPER_SERVICE")]
    pub service: String,
    /// Namespace of the Service.
    #[arg(long, default_value = "roost-system", env = "ROOST_KEEPER_NAMESPACE")]
    pub namespace: String,
    /// Directory to write the files into.
    #[arg(long, env = "ROOST_KEEPER_CERT_DIR")]
    pub out_dir: PathBuf,
    /// More names or IPs for the serving certificate (e.g. 127.0.0.1, localhost). Repeatable.
    #[arg(
        long = "extra-san",
        env = "ROOST_KEEPER_EXTRA_SANS",
        value_delimiter = ','
    )]
    pub extra_sans: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").args(["url", "service"])))]
pub struct WebhookConfigArgs {
    /// PEM CA bundle to embed; omitted, caBundle is left for injection.
    #[arg(long, env = "ROOST_KEEPER_CA_BUNDLE_FILE")]
    pub ca_bundle_file: Option<PathBuf>,
    /// Base URL of the webhook server (e.g. https://127.0.0.1:8443), instead of a Service.
    #[arg(long, env = "ROOST_KEEPER_WEBHOOK_URL")]
    pub url: Option<String>,
    /// Service in front of the webhook server.
    #[arg(long, default_value = "roost-keeper", env = "ROOST_KEEPER_SERVICE")]
    pub service: String,
    /// The webhook's namespace (the Service's; excluded from review with kube-system).
    #[arg(long, default_value = "roost-system", env = "ROOST_KEEPER_NAMESPACE")]
    pub namespace: String,
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
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Files or directories to check (directories recursively: .yaml, .yml, .json); `-` reads stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1.., env = "ROOST_KEEPER_VALIDATE_FILES")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value = "text",
        env = "ROOST_KEEPER_OUTPUT"
    )]
    pub output: OutputFormat,
    /// Also show info findings.
    #[arg(short = 'v', long = "verbose", env = "ROOST_KEEPER_VERBOSE")]
    pub verbose: bool,
}

/// Runs `validate`; returns the exit code (0 valid, 1 errors, 2 unreadable input).
pub fn run_validate(
    args: &ValidateArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    color: bool,
) -> Result<i32> {
    let report = offline::check_inputs(&args.files, stdin);
    let rendered = match args.output {
        OutputFormat::Json => offline::render_json(&report, args.verbose),
        OutputFormat::Text => offline::render_text(&report, args.verbose, color),
    };
    stdout
        .write_all(rendered.as_bytes())
        .map_err(Error::Write)?;
    stderr
        .write_all(offline::render_input_errors(&report).as_bytes())
        .map_err(Error::Write)?;
    Ok(report.exit_code())
}

/// Runs the parsed command against the process's standard streams.
pub fn run(cli: Cli) -> Result<i32> {
    let stdout = std::io::stdout();
    match cli.command {
        Command::Serve(args) => {
            let _telemetry = crate::telemetry::init(cli.log_format)?;
            let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
            runtime.block_on(async {
                let server = Server::bind(args.config()).await?;
                server.run(crate::server::shutdown_signal()).await
            })?;
            Ok(0)
        }
        Command::Certs(CertsCommand::Generate(args)) => {
            let bundle = crate::certs::generate(
                &args.service,
                &args.namespace,
                &args.extra_sans,
                time::OffsetDateTime::now_utc(),
            )?;
            crate::certs::write_bundle(&bundle, &args.out_dir)?;
            writeln!(
                stdout.lock(),
                "wrote ca.crt, tls.crt, tls.key to {}",
                args.out_dir.display()
            )
            .map_err(Error::Write)?;
            Ok(0)
        }
        Command::WebhookConfig(args) => {
            let ca_bundle = match &args.ca_bundle_file {
                Some(path) => Some(std::fs::read(path).map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?),
                None => None,
            };
            let target = match &args.url {
                Some(url) => Target::Url(url.clone()),
                None => Target::Service {
                    name: args.service.clone(),
                    namespace: args.namespace.clone(),
                },
            };
            let options = WebhookConfigOptions {
                target,
                ca_bundle,
                namespace: args.namespace.clone(),
                validate_failure_policy: args.validate_failure_policy,
                mutate_failure_policy: args.mutate_failure_policy,
            };
            stdout
                .lock()
                .write_all(crate::webhook_config::render(&options)?.as_bytes())
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
        Command::Crd => {
            stdout
                .lock()
                .write_all(crate::crd::crd_yaml()?.as_bytes())
                .map_err(Error::Write)?;
            Ok(0)
        }
    }
}
