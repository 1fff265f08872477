//! `roost-keeper serve` as a process, the one way tests and benches start
//! it: free ports, certificates, flags, a log file, ready awaited, killed
//! on drop; and the one way they read its metrics port.

use crate::{free_ports, try_wait_for, watchdog};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// Where the serving certificate comes from.
enum Certs {
    /// `roost-keeper certs generate` into the process's own directory, with
    /// this extra SAN.
    Generated(String),
    /// `tls.crt` and `tls.key` in this directory.
    In(PathBuf),
    /// None given: the caller passes `--cert-secret` (managed certificates).
    Managed,
}

/// How to start `roost-keeper serve`; [`ServeCommand::spawn`] starts it.
pub struct ServeCommand {
    binary: PathBuf,
    global_args: Vec<OsString>,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    certs: Certs,
    /// The status controller's kubeconfig; `None`: webhooks only.
    controller: Option<PathBuf>,
    ports: Option<(u16, u16)>,
    settings_in_env: bool,
    piped: bool,
    ready_path: &'static str,
    ready_within: Option<Duration>,
}

impl ServeCommand {
    /// `binary serve` on 127.0.0.1 with webhooks only (`--controller=false`),
    /// `RUST_LOG=info`, a generated certificate for 127.0.0.1, no trace
    /// export, ready within 30 s.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        ServeCommand {
            binary: binary.into(),
            global_args: Vec::new(),
            args: Vec::new(),
            env: vec![
                ("RUST_LOG".into(), Some("info".into())),
                // Trace export would reach a collector the test does not run.
                ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), None),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".into(), None),
                ("ROOST_KEEPER_WATCH_NAMESPACE".into(), None),
                ("KUBECONFIG".into(), None),
            ],
            certs: Certs::Generated("127.0.0.1".to_owned()),
            controller: None,
            ports: None,
            settings_in_env: false,
            piped: false,
            ready_path: "/readyz",
            ready_within: Some(Duration::from_secs(30)),
        }
    }

    /// A flag of `serve`.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Flags of `serve`.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// A flag before `serve` (`--log-format json`).
    pub fn global_arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.global_args.push(arg.as_ref().to_owned());
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    pub fn rust_log(self, filter: &str) -> Self {
        self.env("RUST_LOG", filter)
    }

    /// The status controller too, with this kubeconfig.
    pub fn controller(mut self, kubeconfig: &Path) -> Self {
        self.controller = Some(kubeconfig.to_owned());
        self
    }

    /// A certificate generated for `san` (besides the service names).
    pub fn generated_certs(mut self, san: &str) -> Self {
        self.certs = Certs::Generated(san.to_owned());
        self
    }

    /// The certificate in `dir` (`tls.crt`, `tls.key`).
    pub fn certs_in(mut self, dir: &Path) -> Self {
        self.certs = Certs::In(dir.to_owned());
        self
    }

    /// No certificate files: the caller gives `--cert-secret`.
    pub fn managed_certs(mut self) -> Self {
        self.certs = Certs::Managed;
        self
    }

    /// These ports instead of free ones.
    pub fn ports(mut self, webhook: u16, metrics: u16) -> Self {
        self.ports = Some((webhook, metrics));
        self
    }

    /// Ports, certificate files and the controller switch as
    /// `ROOST_KEEPER_*` environment variables instead of flags (what a
    /// Deployment's `env:` does).
    pub fn settings_in_env(mut self) -> Self {
        self.settings_in_env = true;
        self
    }

    /// stdout and stderr piped to the test (`ServeProcess::child`) instead
    /// of the log file.
    pub fn piped(mut self) -> Self {
        self.piped = true;
        self
    }

    /// What [`ServeCommand::spawn`] waits for instead of `/readyz` (e.g.
    /// `/healthz`: up, before the controller's first list).
    pub fn ready_path(mut self, path: &'static str) -> Self {
        self.ready_path = path;
        self
    }

    /// How long [`ServeCommand::spawn`] waits for the ready path; `None`:
    /// it does not wait.
    pub fn ready_within(mut self, within: Option<Duration>) -> Self {
        self.ready_within = within;
        self
    }

    /// Starts it (certificates first, when generated) and waits until
    /// `/readyz` answers 200; the error holds the log.
    pub fn spawn(self) -> Result<ServeProcess, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let cert_dir = match &self.certs {
            Certs::Generated(san) => {
                let status = Command::new(&self.binary)
                    .args(["certs", "generate", "--out-dir"])
                    .arg(dir.path())
                    .args(["--extra-san", san])
                    .status()
                    .map_err(|e| format!("run {}: {e}", self.binary.display()))?;
                if !status.success() {
                    return Err(format!("certs generate: {status}"));
                }
                Some(dir.path().to_owned())
            }
            Certs::In(path) => Some(path.clone()),
            Certs::Managed => None,
        };
        let [free_webhook, free_metrics] = free_ports();
        let (webhook, metrics) = self.ports.unwrap_or((free_webhook, free_metrics));
        let mut process = ServeProcess {
            child: None,
            watchdog: None,
            webhook: SocketAddr::from(([127, 0, 0, 1], webhook)),
            metrics: SocketAddr::from(([127, 0, 0, 1], metrics)),
            log: dir.path().join("serve.log"),
            cert_dir,
            command: self,
            _dir: dir,
        };
        process.start()?;
        if let Some(within) = process.command.ready_within {
            process.wait_ready(within)?;
        }
        Ok(process)
    }

    fn command(&self, webhook: u16, metrics: u16, cert_dir: Option<&Path>) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(&self.global_args)
            .args(["serve", "--bind-address", "127.0.0.1"]);
        let cert_files = cert_dir.map(|dir| (dir.join("tls.crt"), dir.join("tls.key")));
        let controller = if self.controller.is_some() {
            "true"
        } else {
            "false"
        };
        if self.settings_in_env {
            command
                .env("ROOST_KEEPER_WEBHOOK_PORT", webhook.to_string())
                .env("ROOST_KEEPER_METRICS_PORT", metrics.to_string())
                .env("ROOST_KEEPER_CONTROLLER", controller);
            if let Some((cert, key)) = cert_files {
                command
                    .env("ROOST_KEEPER_TLS_CERT_FILE", cert)
                    .env("ROOST_KEEPER_TLS_KEY_FILE", key);
            }
        } else {
            command
                .args(["--webhook-port", &webhook.to_string()])
                .args(["--metrics-port", &metrics.to_string()])
                .arg(format!("--controller={controller}"));
            if let Some((cert, key)) = cert_files {
                command
                    .arg("--tls-cert-file")
                    .arg(cert)
                    .arg("--tls-key-file")
                    .arg(key);
            }
        }
        if let Some(kubeconfig) = &self.controller {
            command.arg("--kubeconfig").arg(kubeconfig);
        }
        command.args(&self.args);
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command.stdin(Stdio::null());
        command
    }
}

/// A running `roost-keeper serve`, killed when dropped.
pub struct ServeProcess {
    /// `None` only between [`ServeProcess::kill`] and [`ServeProcess::restart`].
    child: Option<Child>,
    /// Stops the child if this process dies without dropping it.
    watchdog: Option<Child>,
    pub webhook: SocketAddr,
    /// Plain HTTP: `/metrics`, `/healthz`, `/readyz`.
    pub metrics: SocketAddr,
    /// stdout and stderr, appended across restarts (unless piped).
    pub log: PathBuf,
    cert_dir: Option<PathBuf>,
    command: ServeCommand,
    _dir: tempfile::TempDir,
}

impl ServeProcess {
    fn start(&mut self) -> Result<(), String> {
        let mut command = self.command.command(
            self.webhook.port(),
            self.metrics.port(),
            self.cert_dir.as_deref(),
        );
        if self.command.piped {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        } else {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .map_err(|e| format!("open {}: {e}", self.log.display()))?;
            let err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
            command.stdout(log).stderr(err);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("start {}: {e}", self.command.binary.display()))?;
        self.watchdog = Some(watchdog(&[child.id()], None)?);
        self.child = Some(child);
        Ok(())
    }

    /// The running child (its pipes when [`ServeCommand::piped`]).
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the server was killed")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server was killed").id()
    }

    /// The CA of the generated certificate (PEM).
    pub fn ca_pem(&self) -> String {
        let dir = self.cert_dir.as_ref().expect("certificate files");
        std::fs::read_to_string(dir.join("ca.crt")).expect("ca.crt")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the ready path (`/readyz`) answers 200; fails early,
    /// with the log, when the process exits.
    pub fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let (metrics, path) = (self.metrics, self.command.ready_path);
        let mut exited = None;
        let child = self.child.as_mut().expect("the server was killed");
        let ready = try_wait_for(within, Duration::from_millis(25), || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return Some(false);
            }
            matches!(http_get(metrics, path), Ok((200, _))).then_some(true)
        });
        match (ready, exited) {
            (Some(true), _) => Ok(()),
            (_, Some(status)) => Err(format!(
                "serve exited before it was ready ({status}):\n{}",
                self.log_text()
            )),
            _ => Err(format!(
                "serve not ready within {within:?}:\n{}",
                self.log_text()
            )),
        }
    }

    /// Sends `signal` (`-TERM`, `-STOP`, ...) with `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal}");
    }

    /// Waits for the exit, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        // Polled often: benches report how long a stop takes.
        try_wait_for(within, Duration::from_millis(10), || {
            child.try_wait().ok().flatten()
        })
    }

    /// Its exit status if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGKILL, then reaps it.
    pub fn kill(&mut self) {
        for mut child in [self.child.take(), self.watchdog.take()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`; its exit
    /// status (`None` when it was killed).
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        let status = match self.exited() {
            Some(status) => Some(status),
            None if self.child.is_some() => {
                self.signal("-TERM");
                self.wait_exit(grace)
            }
            None => None,
        };
        self.kill();
        status
    }

    /// Starts it again on the same ports with the same certificate and
    /// flags (after [`ServeProcess::kill`] or an exit; does not wait).
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.start()
    }

    /// `/metrics`, as Prometheus scrapes it.
    pub fn metrics_text(&self) -> String {
        scrape(self.metrics)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `GET path` over plain HTTP/1.1 (`Connection: close`): the status code
/// (0 when the answer has none) and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // One write: a server that answers after the first segment and closes
    // must not meet the rest of the request (a broken pipe).
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, body)| body.to_owned());
    Ok((status, body))
}

/// The exposition of a metrics port's `/metrics`; panics unless it answers 200.
#[track_caller]
pub fn scrape(metrics: SocketAddr) -> String {
    match http_get(metrics, "/metrics") {
        Ok((200, body)) => body,
        other => panic!("GET http://{metrics}/metrics: {other:?}"),
    }
}

/// The sum of the samples of `metric` (without suffix: `name{...} value`
/// lines) whose labels contain every one of `labels` (`webhook="validate"`).
pub fn metric_sum(exposition: &str, metric: &str, labels: &[&str]) -> f64 {
    exposition
        .lines()
        .filter(|line| {
            line.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sum_adds_the_matching_samples_only() {
        let text = "# HELP x_total x\n\
                    x_total{webhook=\"validate\",code=\"200\"} 3\n\
                    x_total{webhook=\"mutate\",code=\"200\"} 4\n\
                    x_total_other{webhook=\"validate\"} 100\n\
                    y 7\n";
        assert_eq!(metric_sum(text, "x_total", &[]), 7.0);
        assert_eq!(metric_sum(text, "x_total", &["webhook=\"validate\""]), 3.0);
        assert_eq!(metric_sum(text, "y", &[]), 7.0);
        assert_eq!(metric_sum(text, "z", &[]), 0.0);
    }

    #[test]
    fn http_get_reads_status_and_body() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // The whole request head, then the answer.
            let mut request = Vec::new();
            let mut byte = [0; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                request.push(byte[0]);
            }
            assert!(request.starts_with(b"GET /readyz HTTP/1.1\r\n"));
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
                .unwrap();
        });
        assert_eq!(http_get(addr, "/readyz").unwrap(), (503, "busy".to_owned()));
        server.join().unwrap();
    }
}
