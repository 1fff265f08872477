//! The lifecycle API end to end: the real kube-apiserver with RBAC, real
//! ServiceAccount tokens from `kubectl create token`, the API over HTTPS.
//! Who sees what is the cluster's decision: TokenReview for the token,
//! SubjectAccessReview (list and watch on managedroosts) per namespace.

mod common;

use common::cluster::{Env, manifest_in, ok, repo, text};
use roost_keeper::admission::registration::FailurePolicy;
use roost_keeper::lifecycle_api::LifecycleApiConfig;
use roost_keeper::lifecycle_api::openapi::conforms;
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;

/// Streams one user may hold in this test's server.
const STREAMS_PER_USER: usize = 2;

struct Setup {
    env: Env,
    /// Namespaces: `a` (readable by reader-a), `b` (not).
    a: String,
    b: String,
    /// Tokens by ServiceAccount name.
    tokens: std::collections::BTreeMap<&'static str, String>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let api = LifecycleApiConfig {
            max_streams_per_identity: STREAMS_PER_USER,
            ..LifecycleApiConfig::new("127.0.0.1:0".parse().unwrap())
        };
        // Started on a thread of its own: the tests run inside a runtime,
        // and the server's runtime may not start within another.
        let env = std::thread::spawn(move || {
            Env::start_with(FailurePolicy::Fail, FailurePolicy::Ignore, Some(api))
        })
        .join()
        .expect("the cluster and server start");
        let (a, b) = (env.namespace("lc-a"), env.namespace("lc-b"));
        for ns in [&a, &b] {
            ok(&env.kubectl_stdin(
                &["apply", "-f", "-"],
                &manifest_in(&repo().join("examples/web-valid.yaml"), ns),
            ));
        }
        let pid = std::process::id();
        let rbac = format!(
            r#"
apiVersion: v1
kind: List
items:
- {{apiVersion: v1, kind: ServiceAccount, metadata: {{name: reader-all, namespace: {a}}}}}
- {{apiVersion: v1, kind: ServiceAccount, metadata: {{name: reader-a, namespace: {a}}}}}
- {{apiVersion: v1, kind: ServiceAccount, metadata: {{name: list-only, namespace: {a}}}}}
- {{apiVersion: v1, kind: ServiceAccount, metadata: {{name: nobody, namespace: {a}}}}}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {{name: roost-reader-{pid}}}
  rules: [{{apiGroups: [roost.birb.party], resources: [managedroosts], verbs: [get, list, watch]}}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {{name: roost-reader-all-{pid}}}
  roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: roost-reader-{pid}}}
  subjects: [{{kind: ServiceAccount, name: reader-all, namespace: {a}}}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {{name: reader-a, namespace: {a}}}
  roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: roost-reader-{pid}}}
  subjects: [{{kind: ServiceAccount, name: reader-a, namespace: {a}}}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {{name: list-only, namespace: {a}}}
  rules: [{{apiGroups: [roost.birb.party], resources: [managedroosts], verbs: [list]}}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {{name: list-only, namespace: {a}}}
  roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: list-only}}
  subjects: [{{kind: ServiceAccount, name: list-only, namespace: {a}}}]
"#
        );
        ok(&env.kubectl_stdin(&["apply", "-f", "-"], &rbac));
        let mut tokens = std::collections::BTreeMap::new();
        for sa in ["reader-all", "reader-a", "list-only", "nobody"] {
            let out = env.kubectl(&["create", "token", sa, "-n", &a]);
            ok(&out);
            tokens.insert(sa, text(&out.stdout).trim().to_owned());
        }
        for ns in [&a, &b] {
            env.wait_for(ns, "web", Duration::from_secs(30), "a status", |o| {
                !o["status"]["phase"].is_null()
            });
        }
        Setup { env, a, b, tokens }
    })
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(setup().env.ca_pem.as_bytes()).unwrap(),
        )
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn url(path: &str) -> String {
    let addr = setup()
        .env
        .lifecycle_api
        .expect("the lifecycle API is served");
    format!("https://127.0.0.1:{}{path}", addr.port())
}

fn token(sa: &str) -> &'static str {
    &setup().tokens[sa]
}

/// GET `path` as `sa` (no token for `None`): status and JSON body.
async fn get(sa: Option<&str>, path: &str) -> (u16, Value) {
    let mut request = client().get(url(path));
    if let Some(sa) = sa {
        request = request.bearer_auth(token(sa));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {list}"))
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["namespace"].as_str().unwrap(),
                i["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn without_a_valid_token_nothing_is_readable() {
    let s = setup();
    for path in [
        "/api/v1/roosts".to_owned(),
        format!("/api/v1/namespaces/{}/roosts/web", s.a),
        "/api/v1/stream".to_owned(),
    ] {
        let response = client().get(url(&path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{path}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated");
        conforms(&body, "Error").unwrap();
    }
    for bad in ["not-a-token", &format!("{}x", token("reader-all"))] {
        let response = client()
            .get(url("/api/v1/roosts"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let body = response.text().await.unwrap();
        assert!(!body.contains(bad), "the token is never repeated");
    }
    // A header past the HTTP server's limit is refused before any review.
    let response = client()
        .get(url("/api/v1/roosts"))
        .bearer_auth("x".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 431);
}

#[tokio::test]
async fn each_caller_sees_the_namespaces_the_cluster_lets_it_read() {
    let s = setup();
    let (a_web, b_web) = (format!("{}/web", s.a), format!("{}/web", s.b));
    let (status, all) = get(Some("reader-all"), "/api/v1/roosts").await;
    assert_eq!(status, 200, "{all}");
    conforms(&all, "RoostList").unwrap();
    let seen = names(&all);
    assert!(seen.contains(&a_web) && seen.contains(&b_web), "{seen:?}");

    // Bound in one namespace: a filtered view, and 403 for the other by name.
    let (status, mine) = get(Some("reader-a"), "/api/v1/roosts").await;
    assert_eq!(status, 200);
    assert_eq!(names(&mine), [a_web]);
    let (status, denied) = get(
        Some("reader-a"),
        &format!("/api/v1/roosts?namespace={}", s.b),
    )
    .await;
    assert_eq!(
        (status, denied["error"].as_str()),
        (403, Some("forbidden")),
        "{denied}"
    );
    let (status, _) = get(
        Some("reader-a"),
        &format!("/api/v1/namespaces/{}/roosts/web", s.b),
    )
    .await;
    assert_eq!(status, 403);
    // A missing roost in a namespace one may not read is 403 too: no existence leaks.
    let (status, _) = get(
        Some("reader-a"),
        &format!("/api/v1/namespaces/{}/roosts/nope", s.b),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = get(
        Some("reader-a"),
        &format!("/api/v1/namespaces/{}/roosts/nope", s.a),
    )
    .await;
    assert_eq!(status, 404);

    // list without watch is not enough; no binding sees nothing.
    for sa in ["list-only", "nobody"] {
        let (status, list) = get(Some(sa), "/api/v1/roosts").await;
        assert_eq!(status, 200);
        assert!(names(&list).is_empty(), "{sa}: {list}");
        let (status, _) = get(Some(sa), &format!("/api/v1/namespaces/{}/roosts/web", s.a)).await;
        assert_eq!(status, 403, "{sa}");
    }
}

#[tokio::test]
async fn lifecycle_and_findings_answer_the_designs_queries() {
    let s = setup();
    let base = format!("/api/v1/namespaces/{}/roosts/web", s.a);
    let (status, summary) = get(Some("reader-a"), &base).await;
    assert_eq!(status, 200, "{summary}");
    conforms(&summary, "RoostSummary").unwrap();
    assert_eq!(summary["validated"]["status"], "True");
    assert_eq!(summary["chart"]["name"], "nginx");

    let (status, lifecycle) = get(
        Some("reader-a"),
        &format!("{base}/lifecycle?last=5&type=Created&within=10m"),
    )
    .await;
    assert_eq!(status, 200, "{lifecycle}");
    conforms(&lifecycle, "Lifecycle").unwrap();
    assert_eq!(lifecycle["counts"]["Created"], 1);
    assert_eq!(lifecycle["occurred"]["occurred"], true);
    assert_eq!(lifecycle["records"][0]["type"], "Created");
    let (status, error) = get(Some("reader-a"), &format!("{base}/lifecycle?last=500")).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, _) = get(Some("reader-a"), &format!("{base}/lifecycle?within=5m")).await;
    assert_eq!(status, 400);

    let (status, findings) = get(Some("reader-a"), &format!("{base}/findings")).await;
    assert_eq!(status, 200, "{findings}");
    conforms(&findings, "Findings").unwrap();
    assert_eq!(findings["valid"], true);
    let described: Value = client()
        .get(url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(described["openapi"], "3.0.3");
    assert!(described["paths"][roost_keeper::lifecycle_api::http::FINDINGS].is_object());
}

#[tokio::test]
async fn findings_carry_each_codes_explanation() {
    let s = setup();
    ok(&s.env.kubectl_stdin(
        &["apply", "-f", "-"],
        &manifest_in(&repo().join("examples/warnings.yaml"), &s.a),
    ));
    // The roost examples/warnings.yaml declares.
    let name = "dashboards";
    let path = format!("/api/v1/namespaces/{}/roosts/{name}/findings", s.a);
    let mut last = Value::Null;
    for _ in 0..100 {
        let (status, findings) = get(Some("reader-all"), &path).await;
        if status == 200 {
            last = findings;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conforms(&last, "Findings").unwrap();
    let warning = last["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["level"] == "warning"))
        .unwrap_or_else(|| panic!("no warning: {last}"));
    let code = warning["code"].as_str().unwrap();
    let explained = roost_keeper::explain::explanation(code).unwrap();
    assert_eq!(warning["summary"], explained.summary());
    assert_eq!(warning["fix"], explained.fix);
}

#[tokio::test]
async fn another_origin_is_refused() {
    let response = client()
        .get(url("/api/v1/roosts"))
        .bearer_auth(token("reader-all"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let own = format!(
        "https://127.0.0.1:{}",
        setup().env.lifecycle_api.unwrap().port()
    );
    let response = client()
        .get(url("/api/v1/roosts"))
        .bearer_auth(token("reader-all"))
        .header("origin", own)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_content_security_policy() {
    let response = client().get(url("/")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(page.contains("/assets/dashboard.js"));
    for asset in ["/assets/dashboard.js", "/assets/dashboard.css"] {
        assert_eq!(
            client()
                .get(url(asset))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
    }
}

/// Reads SSE frames from `response` until `until` holds for one (or the time is up).
async fn read_events(
    response: &mut reqwest::Response,
    within: Duration,
    mut until: impl FnMut(&str, &Value) -> bool,
) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let event = frame
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default()
                .to_owned();
            let data = frame
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(|d| serde_json::from_str(d).unwrap())
                .unwrap_or(Value::Null);
            let done = !event.is_empty() && until(&event, &data);
            if !event.is_empty() {
                seen.push((event, data));
            }
            if done {
                return seen;
            }
        }
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("stream ended or timed out ({other:?}); events so far: {seen:?}"),
        }
    }
}

async fn open_stream(sa: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = client()
        .get(url("/api/v1/stream"))
        .bearer_auth(token(sa))
        .timeout(Duration::from_secs(120));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response
}

fn touch(ns: &str, value: &str) {
    ok(&setup().env.kubectl(&[
        "label",
        "roost",
        "web",
        "-n",
        ns,
        &format!("touched={value}"),
        "--overwrite",
    ]));
    setup()
        .env
        .patch_status(ns, "web", json!({"health": value}));
}

#[tokio::test]
async fn a_stream_carries_only_the_namespaces_its_caller_may_read() {
    let s = setup();
    let (_, listed) = get(Some("reader-a"), "/api/v1/roosts").await;
    let mut stream = open_stream("reader-a", listed["lastEventId"].as_str()).await;
    // The other namespace changes first: had it leaked, it would come first.
    touch(&s.b, "degraded");
    touch(&s.a, "unhealthy");
    let events = read_events(&mut stream, Duration::from_secs(30), |event, data| {
        event == "health" && data["roost"]["namespace"] == s.a.as_str() && data["to"] == "unhealthy"
    })
    .await;
    for (event, data) in &events {
        assert_ne!(data["roost"]["namespace"], s.b.as_str(), "{event}: {data}");
    }
    let (_, data) = events.last().unwrap();
    assert_eq!(data["roost"]["health"], "unhealthy", "{data}");
    conforms(&data["roost"], "RoostSummary").unwrap();
}

#[tokio::test]
async fn a_stream_resumes_from_its_last_event_or_says_resync() {
    let s = setup();
    let mut first = open_stream("reader-all", None).await;
    // Namespace b: the filtering test changes a's roost meanwhile.
    touch(&s.b, "unknown");
    let events = read_events(&mut first, Duration::from_secs(30), |event, data| {
        event == "health" && data["to"] == "unknown"
    })
    .await;
    assert!(!events.is_empty());
    drop(first);
    // An id from another process: told to list again, never a silent gap.
    let mut foreign = open_stream("reader-all", Some("0000000000000000-5")).await;
    let events = read_events(&mut foreign, Duration::from_secs(10), |_, _| true).await;
    assert_eq!(events[0].0, "resync");
    assert_eq!(events[0].1["reason"], "unknown_event_id");
}

#[tokio::test]
async fn streams_per_user_are_limited() {
    let mut held = Vec::new();
    for _ in 0..STREAMS_PER_USER {
        held.push(open_stream("nobody", None).await);
    }
    let response = client()
        .get(url("/api/v1/stream"))
        .bearer_auth(token("nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_streams");
    // Another user is not affected; a closed stream gives its place back.
    drop(open_stream("list-only", None).await);
    drop(held.pop());
    let mut reopened = None;
    for _ in 0..50 {
        let response = client()
            .get(url("/api/v1/stream"))
            .bearer_auth(token("nobody"))
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 200 {
            reopened = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "the closed stream's place came back");
}
