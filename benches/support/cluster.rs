//! Helpers of the benchmarks that run a control plane (controller,
//! lifecycle_stream): the wait for a quiet machine, `/proc` readings of
//! processes, the plane's own processes.

use crate::support::load_average;
use k8s_openapi::api::core::v1::Namespace;
use roost_testcluster::text;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn load1() -> f64 {
    load_average()
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

/// Other benchmark runs (`pid cmdline`), ours excluded.
pub fn other_runs(exclude: &[u32]) -> Vec<String> {
    let mut found = Vec::new();
    for pattern in ["deps/load-", "roost-keeper serve"] {
        let Ok(out) = Command::new("pgrep").args(["-af", pattern]).output() else {
            continue;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let pid = line
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !exclude.contains(&p)) {
                let short: String = line.chars().take(120).collect();
                found.push(short);
            }
        }
    }
    found
}

/// What the wait for a quiet machine found.
pub struct Quiet {
    pub waited: Duration,
    pub ok: bool,
    pub load: String,
    pub others: Vec<String>,
}

impl Quiet {
    pub fn describe(&self) -> String {
        if self.ok {
            format!(
                "quiet after {:.0} s (load {})",
                self.waited.as_secs_f64(),
                self.load
            )
        } else {
            format!(
                "NOT quiet after {:.0} s, went on (load {}{})",
                self.waited.as_secs_f64(),
                self.load,
                if self.others.is_empty() {
                    String::new()
                } else {
                    format!("; other runs: {}", self.others.join(" | "))
                }
            )
        }
    }
}

/// Waits until no other benchmark runs and the 1-minute load is below
/// `max_load`, for at most `wait`; `who` names the bench in the message.
pub fn wait_quiet(who: &str, max_load: f64, wait: Duration, exclude: &[u32]) -> Quiet {
    let started = Instant::now();
    let mut announced = false;
    loop {
        let others = other_runs(exclude);
        let load = load1();
        let ok = others.is_empty() && load < max_load;
        if ok || started.elapsed() >= wait {
            return Quiet {
                waited: started.elapsed(),
                ok,
                load: load_average(),
                others,
            };
        }
        if !announced {
            eprintln!(
                "{who} bench: waiting for a quiet machine (load {}, other runs: {:?})",
                load_average(),
                others
            );
            announced = true;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// A `kB` field of `/proc/<pid>/status`, in KiB.
pub fn vm_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim_start_matches(':').split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Pids of the plane's kube-apiserver and etcd: the processes whose command
/// line names the plane's temporary directory.
pub fn plane_pids(dir: &Path) -> (Option<u32>, Option<u32>) {
    let needle = dir.display().to_string();
    let (mut apiserver, mut etcd) = (None, None);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (None, None);
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !args.iter().any(|a| a.contains(&needle)) {
            continue;
        }
        match args
            .first()
            .and_then(|a| Path::new(a).file_name())
            .and_then(|f| f.to_str())
        {
            Some("kube-apiserver") => apiserver = Some(pid),
            Some("etcd") => etcd = Some(pid),
            _ => {}
        }
    }
    (apiserver, etcd)
}

pub fn checked(what: &str, out: Output) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Creates the namespaces (one that exists already is fine).
pub async fn create_namespaces(client: &kube::Client, names: &[String]) {
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    for name in names {
        let namespace = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                ..kube::api::ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match api
            .create(&kube::api::PostParams::default(), &namespace)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(err) => panic!("create namespace {name}: {err}"),
        }
    }
}
