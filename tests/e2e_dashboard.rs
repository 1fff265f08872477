//! The lifecycle dashboard (issue 24) in a real browser: a control plane,
//! `roost-keeper serve` with its controller and the lifecycle API, a
//! ServiceAccount that may only list and watch ManagedRoosts, and headless
//! Chromium driven over the DevTools protocol. The page signs in with the
//! account's token, lists the roosts, opens one, and follows a new
//! generation and a RoostPolicy that fails it over the event stream, without
//! a reload. `DASHBOARD_SCREENSHOT=path` keeps the screenshot
//! (`make dashboard-screenshot` refreshes docs/dashboard.png).

use roost_testcluster::{
    Browser, ControlPlane, ServeCommand, ServeProcess, free_port, metric_sum, output_with_stdin,
    scrape, succeeded,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// How long the controller and the stream may take to show a change.
const WITHIN: Duration = Duration::from_secs(30);
const VIEWER: &str = "dashboard-viewer";

fn kubectl(plane: &ControlPlane, args: &[&str]) -> Output {
    plane.kubectl().args(args).output().expect("run kubectl")
}

fn apply(plane: &ControlPlane, manifest: &str) -> Output {
    output_with_stdin(
        plane.kubectl().args(["apply", "-f", "-"]),
        manifest.as_bytes(),
    )
    .expect("run kubectl apply")
}

/// An example of the repository, in namespace `ns` instead of `default`.
fn example_in(example: &str, ns: &str) -> String {
    let path = roost_testcluster::repo_root().join(example);
    let text = std::fs::read_to_string(&path).expect("the example");
    assert!(text.contains("  namespace: default\n"), "{example}");
    text.replace("  namespace: default\n", &format!("  namespace: {ns}\n"))
}

/// A JavaScript string literal.
fn js(text: &str) -> String {
    Value::from(text).to_string()
}

/// The expression of a roost row's cell (`data-field`).
fn cell(roost: &str, field: &str) -> String {
    format!(
        "document.querySelector({})",
        js(&format!(
            "tr[data-roost=\"{roost}\"] [data-field=\"{field}\"]"
        ))
    )
}

/// A ServiceAccount bound to list and watch ManagedRoosts everywhere, and its token.
fn viewer_token(plane: &ControlPlane) -> String {
    for args in [
        &["create", "serviceaccount", VIEWER, "-n", "default"][..],
        &[
            "create",
            "clusterrole",
            VIEWER,
            "--verb=list,watch",
            "--resource=managedroosts.roost.birb.party",
        ],
        &[
            "create",
            "clusterrolebinding",
            VIEWER,
            "--clusterrole",
            VIEWER,
            "--serviceaccount",
            &format!("default:{VIEWER}"),
        ],
    ] {
        succeeded(
            &format!("kubectl {}", args.join(" ")),
            &kubectl(plane, args),
        );
    }
    let out = kubectl(
        plane,
        &["create", "token", VIEWER, "-n", "default", "--duration=1h"],
    );
    succeeded("kubectl create token", &out).trim().to_owned()
}

/// The page and the server, with the server's log in every failure.
struct Page {
    browser: Browser,
    serve: ServeProcess,
    started: Instant,
}

impl Page {
    #[track_caller]
    fn eval(&mut self, expression: &str) -> Value {
        match self.browser.evaluate(expression) {
            Ok(value) => value,
            Err(err) => self.fail(&err),
        }
    }

    #[track_caller]
    fn wait(&mut self, what: &str, predicate: &str) {
        if let Err(err) = self.browser.wait_for(predicate, WITHIN) {
            self.fail(&format!("{what}: {err}"));
        }
        eprintln!("{:>6.1?} {what}", self.started.elapsed());
    }

    #[track_caller]
    fn fail(&self, err: &str) -> ! {
        let log = self.serve.log_text();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!("{err}\nserve log (tail):\n{}", tail.join("\n"))
    }

    /// Signs in as a user would: the token typed into the field, the button clicked.
    fn sign_in(&mut self, token: &str) {
        self.eval(&format!(
            "document.getElementById('token').value = {}; document.getElementById('sign-in').click()",
            js(token)
        ));
    }

    /// Focuses the roost's button and presses Enter (the keyboard opens the detail).
    fn open_with_keyboard(&mut self, roost: &str) {
        self.eval(&format!(
            "document.querySelector({}).focus()",
            js(&format!("tr[data-roost=\"{roost}\"] button"))
        ));
        for kind in ["keyDown", "keyUp"] {
            let key = json!({"type": kind, "key": "Enter", "code": "Enter",
                             "windowsVirtualKeyCode": 13, "text": "\r"});
            if let Err(err) = self.browser.call("Input.dispatchKeyEvent", key) {
                self.fail(&err);
            }
        }
    }
}

#[test]
fn the_dashboard_lists_roosts_and_follows_their_changes_live() {
    let started = Instant::now();
    let plane = ControlPlane::start().expect("control plane starts");
    plane.install_crd().expect("CRDs installed");
    let port = free_port();
    let serve = ServeCommand::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .controller(&plane.kubeconfig)
        .args(["--lifecycle-api-addr", &format!("127.0.0.1:{port}")])
        // A restarted server leads again soon after the killed one's lease.
        .args(["--lease-duration", "4s", "--lease-renew-deadline", "3s"])
        .args(["--lease-retry-period", "1s"])
        .spawn()
        .expect("serve starts");
    plane
        .convert_at(
            &format!("https://127.0.0.1:{}", serve.webhook.port()),
            Some(serve.ca_pem().as_bytes()),
        )
        .expect("CRD conversion pointed at roost-keeper");
    let token = viewer_token(&plane);

    // Two namespaces: the web roost's is labelled for the policy applied later.
    let (web_ns, other_ns) = ("dashboard-web", "dashboard-other");
    for ns in [web_ns, other_ns] {
        succeeded(
            "create namespace",
            &kubectl(&plane, &["create", "namespace", ns]),
        );
    }
    succeeded(
        "label namespace",
        &kubectl(
            &plane,
            &["label", "namespace", web_ns, "dashboard-test=web"],
        ),
    );
    let web = example_in("examples/web-valid.yaml", web_ns);
    succeeded("apply web", &apply(&plane, &web));
    let dashboards = example_in("examples/warnings.yaml", other_ns);
    succeeded("apply dashboards", &apply(&plane, &dashboards));
    let (web_id, dashboards_id) = (format!("{web_ns}/web"), format!("{other_ns}/dashboards"));
    eprintln!("{:>6.1?} cluster, server and roosts", started.elapsed());

    let mut page = Page {
        browser: Browser::launch().expect("chromium starts (make chromium)"),
        serve,
        started,
    };
    let url = format!("https://127.0.0.1:{port}/");
    if let Err(err) = page.browser.navigate(&url) {
        page.fail(&err);
    }
    page.eval("window.__marker = 1");

    // A wrong token: rejected, back at the form.
    page.sign_in("not-a-token");
    page.wait(
        "a wrong token is rejected",
        "document.getElementById('message').textContent.includes('token rejected') \
         && !document.getElementById('signin').hidden",
    );

    page.sign_in(&token);
    page.wait(
        "both roosts listed",
        &format!(
            "!!document.querySelector({}) && !!document.querySelector({})",
            js(&format!("tr[data-roost=\"{web_id}\"]")),
            js(&format!("tr[data-roost=\"{dashboards_id}\"]"))
        ),
    );
    page.wait(
        "the stream is open",
        "document.getElementById('live-status').textContent === 'live'",
    );
    assert_eq!(
        page.eval("sessionStorage.length === 1 && !location.href.includes('eyJ')"),
        true,
        "the token is kept in session storage, never in the URL"
    );
    page.wait(
        "the controller's status reached the page",
        &format!(
            "{}.textContent.startsWith('True') && {}.textContent.startsWith('True')",
            cell(&web_id, "validated"),
            cell(&dashboards_id, "validated")
        ),
    );

    // The warnings of the other roost, with their codes and explanations.
    page.open_with_keyboard(&dashboards_id);
    page.wait(
        "findings with codes in the detail",
        "document.getElementById('detail-title').textContent.endsWith('/dashboards') \
         && [...document.querySelectorAll('#detail-findings [data-finding-code]')] \
              .some((f) => /^[A-Z_]+$/.test(f.dataset.findingCode) && f.textContent.includes('Fix:'))",
    );

    page.open_with_keyboard(&web_id);
    page.wait(
        "the web roost's timeline",
        "document.getElementById('detail-title').textContent.endsWith('/web') \
         && document.querySelectorAll('#detail-timeline [data-record-type]').length > 0 \
         && document.getElementById('detail-findings-state').textContent.startsWith('Generation')",
    );

    // A new generation: a new record on top of the open timeline, the row's chart.
    let upgraded = web.replace("version: \"15.4.4\"", "version: \"15.4.5\"");
    assert_ne!(upgraded, web, "web-valid.yaml pins nginx 15.4.4");
    succeeded("apply web 15.4.5", &apply(&plane, &upgraded));
    page.wait(
        "an Upgrading record appended live",
        &format!(
            "!!document.querySelector('#detail-timeline [data-record-type=\"Upgrading\"]') \
             && {}.textContent === 'nginx@15.4.5'",
            cell(&web_id, "chart")
        ),
    );
    assert_eq!(
        page.eval(
            "[...document.querySelectorAll('#detail-timeline time')] \
               .map((t) => Date.parse(t.getAttribute('datetime'))) \
               .every((at, i, all) => i === 0 || all[i - 1] >= at)"
        ),
        true,
        "the timeline is newest first"
    );

    // A policy that fails the web roost: Validated turns False, its finding shows.
    let policy = json!({
        "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicy",
        "metadata": {"name": "dashboard-no-teardown"},
        "spec": {
            "match": {"namespaceSelector": {"matchLabels": {"dashboard-test": "web"}}},
            "rules": [{"code": "NO_TEARDOWN_E2E", "level": "error",
                       "expression": "!has(object.spec.teardownPolicy)",
                       "message": "roosts here must not tear down on their own"}]
        }
    });
    succeeded("apply the policy", &apply(&plane, &policy.to_string()));
    page.wait(
        "Validated turned False live",
        &format!(
            "{}.textContent.startsWith('False')",
            cell(&web_id, "validated")
        ),
    );
    page.wait(
        "the policy's finding in the open detail",
        "!!document.querySelector('#detail-findings [data-finding-code=\"NO_TEARDOWN_E2E\"]')",
    );
    assert_eq!(
        page.eval("window.__marker"),
        1,
        "the page was reloaded: changes must arrive over the stream"
    );

    // The picture without a row still lit up by its last change.
    page.wait(
        "the change highlight faded",
        "!document.querySelector('tr.changed')",
    );
    let screenshot = std::env::var_os("DASHBOARD_SCREENSHOT").map(PathBuf::from);
    let dir = tempfile::tempdir().unwrap();
    let path = screenshot.unwrap_or_else(|| dir.path().join("dashboard.png"));
    if let Err(err) = page.browser.screenshot_png(&path) {
        page.fail(&err);
    }
    assert!(is_png(&path), "{} is a PNG", path.display());

    // A deleted roost leaves the list; the open detail stays.
    succeeded(
        "delete dashboards",
        &kubectl(
            &plane,
            &[
                "delete",
                "managedroost",
                "dashboards",
                "-n",
                other_ns,
                "--wait=false",
            ],
        ),
    );
    page.wait(
        "the deleted roost's row removed live",
        &format!(
            "!document.querySelector({}) && !!document.querySelector({}) \
             && !document.getElementById('detail').hidden",
            js(&format!("tr[data-roost=\"{dashboards_id}\"]")),
            js(&format!("tr[data-roost=\"{web_id}\"]"))
        ),
    );
    assert_eq!(page.eval("window.__marker"), 1, "no reload for a deletion");

    // The server restarts (a new process, to which the page's last event id
    // means nothing): the page reconnects, is told to resync, lists again,
    // and follows the changes made after.
    page.serve.kill();
    page.wait(
        "the page noticed the stream ended",
        "document.getElementById('live-status').textContent === 'reconnecting'",
    );
    page.serve.restart().expect("serve restarts");
    if let Err(err) = page.serve.wait_ready(Duration::from_secs(60)) {
        page.fail(&err);
    }
    page.wait(
        "live again",
        "document.getElementById('live-status').textContent === 'live'",
    );
    let resyncs = metric_sum(
        &scrape(page.serve.metrics),
        "roost_keeper_lifecycle_api_resyncs_total",
        &["reason=\"unknown_event_id\""],
    );
    assert!(
        resyncs >= 1.0,
        "the page resumed with the old process's event id and was told to resync"
    );
    let again = upgraded.replace("version: \"15.4.5\"", "version: \"15.4.6\"");
    succeeded("apply web 15.4.6", &apply(&plane, &again));
    page.wait(
        "a change after the reconnect arrives live",
        &format!(
            "{}.textContent === 'nginx@15.4.6' \
             && [...document.querySelectorAll('#detail-timeline .record-message')] \
                  .some((m) => m.textContent.includes('-> 15.4.6'))",
            cell(&web_id, "chart")
        ),
    );
    assert_eq!(page.eval("window.__marker"), 1, "no reload for a reconnect");

    let logs = page.browser.logs();
    let refused: Vec<&String> = logs
        .iter()
        .filter(|line| line.contains("Content Security Policy") || line.starts_with("exception"))
        .collect();
    assert!(
        refused.is_empty(),
        "the page broke its CSP or threw: {refused:#?}"
    );
    eprintln!("{:>6.1?} done", started.elapsed());
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.starts_with(b"\x89PNG\r\n\x1a\n"))
}
