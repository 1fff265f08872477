//! Reviews that may run administrators' policy rules (issue 21): off the
//! async workers, within `--review-timeout`, never more at once than
//! `--max-concurrent-reviews`. Over real TLS against a real server whose
//! webhooks are answered by a reviewer as slow as an expensive evaluation.

mod common;

use common::*;
use roost_keeper::admission::cache::{VALIDATION_TTL, ValidationCache};
use roost_keeper::admission::{Admission, Reply, Reviewer, Webhook};
use roost_keeper::engine::Engine;
use roost_keeper::metrics::Metrics;
use roost_keeper::policy::RoostPolicy;
use roost_keeper::policy::{Known, PolicySet};
use roost_keeper::server::{ServeConfig, Server};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Answers as the real webhook does; a review whose body says `expensive`
/// first blocks its thread for `evaluation`, as a costly CEL rule would.
struct Expensive {
    admission: Admission,
    evaluation: Duration,
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Reviewer for Expensive {
    fn review(&self, webhook: Webhook, body: &[u8]) -> Reply {
        if body.windows(9).any(|w| w == b"expensive") {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(self.evaluation);
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
        self.admission.review(webhook, body)
    }

    fn may_run_policies(&self, _webhook: Webhook) -> bool {
        true
    }
}

struct Running {
    webhook: std::net::SocketAddr,
    metrics: std::net::SocketAddr,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.webhook.port())
    }
}

/// A real server (as `tests/common` builds one) answered by `reviewer`.
async fn start(
    config: impl FnOnce(ServeConfig) -> ServeConfig,
    reviewer: Arc<Expensive>,
) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let bundle = roost_keeper::tls::generate::generate(
        "roost-keeper",
        "roost-system",
        &["127.0.0.1".into(), "localhost".into()],
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    roost_keeper::tls::generate::write_bundle(&bundle, dir.path()).unwrap();
    let server = Server::bind(config(common::config(dir.path())))
        .await
        .unwrap()
        .with_reviewer(reviewer);
    let running = Running {
        webhook: server.webhook_addr(),
        metrics: server.metrics_addr(),
        ca_pem: bundle.ca_pem,
        _dir: dir,
    };
    tokio::spawn(server.run(std::future::pending()));
    for _ in 0..100 {
        if reqwest::get(format!("http://{}/readyz", running.metrics))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server never became ready");
}

fn expensive_review(uid: &str) -> String {
    review(uid, "CREATE", roost("expensive-secret", valid_spec()), None).to_string()
}

async fn post_review(server: &Running, body: String) -> (u16, Value) {
    // A client (and connection) of its own.
    post(
        &client_trusting(&[&server.ca_pem]),
        &server.url(VALIDATE),
        body,
    )
    .await
}

async fn until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..250 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never: {what}");
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expensive_reviews_run_off_the_async_workers_within_the_review_timeout() {
    let reviewer = Arc::new(Expensive {
        admission: Admission::new(
            ValidationCache::new(1 << 20, VALIDATION_TTL),
            Metrics::new(),
        ),
        evaluation: Duration::from_millis(2500),
        running: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    });
    let server = Arc::new(
        start(
            |c| ServeConfig {
                max_concurrent_reviews: 3,
                review_timeout: Duration::from_secs(1),
                ..c
            },
            Arc::clone(&reviewer),
        )
        .await,
    );

    // Two expensive evaluations take both async workers' worth of threads...
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                post_review(&server, expensive_review(&format!("slow-{i}"))).await
            })
        })
        .collect();
    until("two evaluations running", || {
        reviewer.running.load(Ordering::SeqCst) == 2
    })
    .await;
    // ...yet readiness and a cheap review on another connection are answered meanwhile.
    let ready = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("http://{}/readyz", server.metrics))
        .send()
        .await
        .unwrap()
        .status();
    let (status, cheap) = post_review(
        &server,
        review("cheap", "CREATE", roost("web", valid_spec()), None).to_string(),
    )
    .await;
    assert_eq!(
        reviewer.running.load(Ordering::SeqCst),
        2,
        "/readyz and the cheap review were answered only after the evaluations ended"
    );
    assert_eq!(ready, 200);
    assert_eq!((status, &cheap["response"]["allowed"]), (200, &json!(true)));

    // Past the review timeout the evaluations are refused, with nothing of the object.
    for slow in slow {
        let (status, reply) = slow.await.unwrap();
        assert_eq!(status, 504, "{reply}");
        assert_eq!(reply["reason"], "Timeout", "{reply}");
        assert!(
            reply["message"]
                .as_str()
                .unwrap()
                .contains("--review-timeout"),
            "{reply}"
        );
        assert!(!reply.to_string().contains("expensive-secret"), "{reply}");
    }

    // Six at once with three permits: three evaluate (then time out), three
    // get no turn; the permits go with the evaluations, so no more than
    // three ever run, even after their callers stopped waiting.
    until("the first evaluations ended", || {
        reviewer.running.load(Ordering::SeqCst) == 0
    })
    .await;
    let burst: Vec<_> = (0..6)
        .map(|i| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                post_review(&server, expensive_review(&format!("burst-{i}")))
                    .await
                    .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for answer in burst {
        statuses.push(answer.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [503, 503, 503, 504, 504, 504]);
    until("the burst's evaluations ended", || {
        reviewer.running.load(Ordering::SeqCst) == 0
    })
    .await;
    assert_eq!(reviewer.most.load(Ordering::SeqCst), 3);

    let metrics = reqwest::get(format!("http://{}/metrics", server.metrics))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let timeouts = |stage: &str| {
        metric(
            &metrics,
            &format!(
                "roost_keeper_admission_review_timeouts_total{{webhook=\"validate\",stage=\"{stage}\"}}"
            ),
        )
    };
    assert_eq!(
        (timeouts("evaluating"), timeouts("queued")),
        (5.0, 3.0),
        "{metrics}"
    );
}

fn policy(name: &str, spec: Value) -> Arc<roost_keeper::policy::CompiledPolicy> {
    let policy: RoostPolicy = serde_json::from_value(json!({
        "apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicy",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap();
    let taken = BTreeMap::new();
    let known = Known { taken: &taken };
    Arc::new(roost_keeper::policy::compile(&policy, &known).unwrap())
}

#[test]
fn only_reviews_that_may_run_custom_rules_leave_the_async_workers() {
    let engine = Engine::default();
    let admission = Admission::with_engine(
        ValidationCache::new(1 << 20, VALIDATION_TTL),
        Metrics::new(),
        engine.clone(),
    );
    let off_workers = |webhook| admission.may_run_policies(webhook);
    assert!(!off_workers(Webhook::Validate), "no policies");
    let defaults_only = policy(
        "defaults",
        json!({"defaults": {"teardownPolicy": {"triggers": [{"type": "timeout", "timeout": "72h"}]}}}),
    );
    engine.policies.replace(
        PolicySet::new(vec![Arc::clone(&defaults_only)]),
        BTreeMap::new(),
    );
    assert!(!off_workers(Webhook::Validate), "defaults only");
    let with_rule = policy(
        "rule",
        json!({"rules": [{"code": "NAMED_WEB", "level": "error",
                           "expression": "object.metadata.name == 'web'", "message": "m"}]}),
    );
    engine.policies.replace(
        PolicySet::new(vec![defaults_only, with_rule]),
        BTreeMap::new(),
    );
    assert!(off_workers(Webhook::Validate), "a custom rule in force");
    assert!(
        !off_workers(Webhook::Mutate),
        "the mutating webhook runs no rules"
    );
    assert!(!off_workers(Webhook::ValidatePolicy));
}
