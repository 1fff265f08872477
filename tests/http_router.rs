//! The webhook routes in process (`tower::ServiceExt::oneshot`, no TLS, no
//! sockets), fed the JSON fixtures in `tests/fixtures/reviews/`. The same
//! routes over real HTTPS are covered by `admission_https.rs`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt;
use roost_keeper::admission::cache::ValidationCache;
use roost_keeper::admission::http::{HttpLimits, MAX_BODY_BYTES, WebhookState, router};
use roost_keeper::admission::{
    Admission, EXCEPTION_VALIDATE_PATH, MUTATE_PATH, POLICY_VALIDATE_PATH, VALIDATE_PATH,
};
use roost_keeper::api::crd::CONVERT_PATH;
use roost_keeper::metrics::Metrics;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/reviews/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn routes_with(limits: HttpLimits) -> Router {
    let metrics = Metrics::new();
    let admission = Arc::new(Admission::new(
        ValidationCache::default(),
        Arc::clone(&metrics),
    ));
    router(WebhookState::new(admission, metrics, limits))
}

fn routes() -> Router {
    routes_with(HttpLimits {
        max_concurrent_reviews: 4,
        body_budget_bytes: 1024 * 1024,
        read_timeout: Duration::from_secs(5),
    })
}

async fn send(routes: Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = routes
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {bytes:?}"));
    (status, json)
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

fn uid_of(fixture_bytes: &[u8]) -> String {
    let review: Value = serde_json::from_slice(fixture_bytes).unwrap();
    review["request"]["uid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_valid_roost_is_allowed_and_its_uid_echoed() {
    let body = fixture("create-valid.json");
    let (status, reply) = send(routes(), post(VALIDATE_PATH, body.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(reply["kind"], "AdmissionReview");
    assert_eq!(reply["response"]["uid"], uid_of(&body));
    assert_eq!(reply["response"]["allowed"], true, "{reply}");
    assert!(reply["response"].get("status").is_none(), "{reply}");
}

#[tokio::test]
async fn an_invalid_roost_is_a_verdict_with_every_error_as_a_cause() {
    let body = fixture("create-invalid.json");
    let (status, reply) = send(routes(), post(VALIDATE_PATH, body.clone())).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a denial is a verdict, not an HTTP error"
    );
    let response = &reply["response"];
    assert_eq!(response["uid"], uid_of(&body));
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 422);
    assert_eq!(response["status"]["reason"], "Invalid");
    assert_eq!(response["status"]["details"]["name"], "payments");
    let causes = response["status"]["details"]["causes"].as_array().unwrap();
    let codes: Vec<(&str, &str)> = causes
        .iter()
        .map(|c| (c["field"].as_str().unwrap(), c["message"].as_str().unwrap()))
        .collect();
    for (field, code) in [
        ("spec.chart.version", "[CHART_VERSION_INVALID]"),
        ("spec.healthChecks[1].name", "[HEALTH_CHECK_NAME_DUPLICATE]"),
        ("spec.healthChecks[0].interval", "[DURATION_INVALID]"),
        (
            "spec.teardownPolicy.triggers[0].schedule",
            "[SCHEDULE_INVALID]",
        ),
    ] {
        assert!(
            codes.iter().any(|(f, m)| *f == field && m.ends_with(code)),
            "no cause {code} at {field}: {codes:?}"
        );
    }
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "ManagedRoost default/payments has {} errors: ",
            causes.len()
        )),
        "{message}"
    );
    let text = reply.to_string();
    assert!(!text.contains("hunter2"), "the password leaked: {text}");
}

#[tokio::test]
async fn mutate_returns_the_defaults_as_a_json_patch() {
    let body = fixture("create-bare.json");
    let (status, reply) = send(routes(), post(MUTATE_PATH, body)).await;
    assert_eq!(status, StatusCode::OK);
    let response = &reply["response"];
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("a patch"))
        .unwrap();
    let operations: Vec<Value> = serde_json::from_slice(&patch).unwrap();
    let paths: Vec<&str> = operations
        .iter()
        .map(|op| op["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/spec/chart/repository/type"), "{paths:?}");
    assert!(
        paths.iter().any(|p| p.starts_with("/spec/healthChecks/0/")),
        "{paths:?}"
    );
}

#[tokio::test]
async fn mutating_a_defaulted_roost_changes_nothing() {
    let mut review: Value = serde_json::from_slice(&fixture("create-bare.json")).unwrap();
    let (_, first) = send(routes(), post(MUTATE_PATH, review.to_string())).await;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(first["response"]["patch"].as_str().expect("a patch"))
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    json_patch::patch(&mut review["request"]["object"], &patch).unwrap();
    let (status, second) = send(routes(), post(MUTATE_PATH, review.to_string())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["response"]["allowed"], true);
    assert!(second["response"].get("patch").is_none(), "{second}");
}

#[tokio::test]
async fn a_body_that_is_not_a_review_is_a_400_status() {
    let (status, reply) = send(routes(), post(VALIDATE_PATH, "{\"password\": \"hunter2\"")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reply["kind"], "Status");
    assert_eq!(reply["code"], 400);
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.starts_with("body is not a JSON AdmissionReview"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn an_unknown_path_is_a_404_naming_every_webhook() {
    let long_path = format!("/{}", "x".repeat(500));
    let (status, reply) = send(routes(), post(&long_path, "{}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reply["reason"], "NotFound");
    let message = reply["message"].as_str().unwrap();
    for path in [
        VALIDATE_PATH,
        MUTATE_PATH,
        POLICY_VALIDATE_PATH,
        EXCEPTION_VALIDATE_PATH,
        CONVERT_PATH,
    ] {
        assert!(message.contains(path), "{message}");
    }
    assert!(message.len() < 400, "the path is quoted whole: {message}");
}

#[tokio::test]
async fn only_post_is_routed_to_a_webhook() {
    let request = Request::get(VALIDATE_PATH).body(Body::empty()).unwrap();
    let response = routes().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_unread() {
    let request = Request::post(VALIDATE_PATH)
        .header(header::CONTENT_LENGTH, (MAX_BODY_BYTES + 1).to_string())
        // The body is never read: a stream that would fail if polled.
        .body(Body::from_stream(futures::stream::once(async {
            Err::<axum::body::Bytes, _>(std::io::Error::other("the body was read"))
        })))
        .unwrap();
    let (status, reply) = send(routes(), request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply["reason"], "RequestEntityTooLarge");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_a_408() {
    let routes = routes_with(HttpLimits {
        max_concurrent_reviews: 4,
        body_budget_bytes: 1024 * 1024,
        read_timeout: Duration::from_millis(200),
    });
    let first = futures::stream::once(async {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"apiVersion\""))
    });
    let request = Request::post(VALIDATE_PATH)
        .body(Body::from_stream(futures::StreamExt::chain(
            first,
            futures::stream::pending(),
        )))
        .unwrap();
    let (status, reply) = send(routes, request).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(reply["reason"], "Timeout");
}

#[tokio::test]
async fn a_large_body_beyond_the_budget_is_a_503() {
    let routes = routes_with(HttpLimits {
        max_concurrent_reviews: 4,
        body_budget_bytes: 16 * 1024,
        read_timeout: Duration::from_millis(400),
    });
    // 64 KiB read free, then 200 KiB that the 16 KiB budget cannot hold.
    let request = Request::post(VALIDATE_PATH)
        .header(header::CONTENT_LENGTH, (264 * 1024).to_string())
        .body(Body::from(vec![b' '; 264 * 1024]))
        .unwrap();
    let (status, reply) = send(routes, request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply["reason"], "ServiceUnavailable");
}

/// An embedder's own rule: every roost must be named in lower case `web*`.
struct NamedWeb;

/// The embedder's code, declared as the built-in ones are.
const CHART_NOT_WEB: roost_keeper::validation::Code = roost_keeper::validation::Code::new(
    "CHART_NOT_WEB",
    roost_keeper::validation::Level::Error,
    "the chart is not called web",
);

impl roost_keeper::validation::Rule for NamedWeb {
    fn name(&self) -> &'static str {
        "embedder/chart-named-web"
    }
    fn codes(&self) -> &'static [roost_keeper::validation::Code] {
        &[CHART_NOT_WEB]
    }
    fn check(
        &self,
        input: roost_keeper::validation::Input<'_>,
        out: &mut roost_keeper::validation::Findings,
    ) {
        let name = input.spec.chart.as_ref().and_then(|c| c.name.as_deref());
        if name != Some("web") {
            out.report(
                CHART_NOT_WEB,
                "spec.chart.name",
                "charts here are called web",
            );
        }
    }
}

#[tokio::test]
async fn an_embedders_registry_judges_beside_the_builtin_rules() {
    use roost_keeper::engine::Engine;
    use roost_keeper::validation::Registry;
    let metrics = Metrics::new();
    let registry = Arc::new(Registry::builtin().with_rule(NamedWeb));
    assert_ne!(registry.fingerprint(), Registry::global().fingerprint());
    let admission = Arc::new(Admission::with_engine(
        ValidationCache::default(),
        Arc::clone(&metrics),
        Engine::new(registry),
    ));
    let routes = router(WebhookState::new(
        admission,
        metrics,
        HttpLimits {
            max_concurrent_reviews: 4,
            body_budget_bytes: 1024 * 1024,
            read_timeout: Duration::from_secs(5),
        },
    ));
    let (status, reply) = send(routes, post(VALIDATE_PATH, fixture("create-valid.json"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["response"]["allowed"], false, "{reply}");
    let causes = reply["response"]["status"]["details"]["causes"].to_string();
    assert!(causes.contains("[CHART_NOT_WEB]"), "{causes}");
}

#[tokio::test]
async fn a_mistyped_enum_value_gets_a_suggestion() {
    let mut review: Value = serde_json::from_slice(&fixture("create-valid.json")).unwrap();
    review["request"]["object"]["spec"]["healthChecks"][0]["type"] = "htpp".into();
    review["request"]["object"]["spec"]["observability"] = json!({"logging": {"level": "warnng"}});
    let (_, reply) = send(routes(), post(VALIDATE_PATH, review.to_string())).await;
    let causes = reply["response"]["status"]["details"]["causes"].to_string();
    for hint in [
        r#"type \"htpp\" must be one of http, tcp, udp, grpc, prometheus, kubernetes; did you mean \"http\"? [HEALTH_CHECK_TYPE_INVALID]"#,
        r#"did you mean \"warn\"? [LOG_LEVEL_INVALID]"#,
    ] {
        assert!(causes.contains(hint), "{hint} not in {causes}");
    }
}

fn conversion_review(desired: &str, objects: Vec<Value>) -> String {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "c-1", "desiredAPIVersion": desired, "objects": objects}
    })
    .to_string()
}

fn alpha_roost() -> Value {
    let review: Value = serde_json::from_slice(&fixture("create-valid.json")).unwrap();
    review["request"]["object"].clone()
}

#[tokio::test]
async fn the_conversion_route_converts_and_keeps_the_uid() {
    let body = conversion_review("roost.birb.party/v1beta1", vec![alpha_roost()]);
    let (status, reply) = send(routes(), post(CONVERT_PATH, body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["kind"], "ConversionReview");
    assert_eq!(reply["response"]["uid"], "c-1");
    assert_eq!(reply["response"]["result"]["status"], "Success", "{reply}");
    let converted = &reply["response"]["convertedObjects"];
    assert_eq!(converted.as_array().map(Vec::len), Some(1));
    assert_eq!(converted[0]["apiVersion"], "roost.birb.party/v1beta1");
}

#[tokio::test]
async fn a_conversion_of_an_unserved_version_is_a_failure_not_an_error() {
    let body = conversion_review("roost.birb.party/v1", vec![alpha_roost()]);
    let (status, reply) = send(routes(), post(CONVERT_PATH, body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["response"]["uid"], "c-1");
    assert_eq!(reply["response"]["result"]["status"], "Failure", "{reply}");
    assert_eq!(reply["response"]["convertedObjects"], json!([]));
}

#[tokio::test]
async fn a_body_that_is_not_a_conversion_review_is_a_400_and_a_large_one_a_413() {
    let (status, reply) = send(routes(), post(CONVERT_PATH, "{\"objects\": [")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reply["kind"], "Status");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.starts_with("body is not a JSON ConversionReview apiextensions.k8s.io/v1"),
        "{message}"
    );
    let request = Request::post(CONVERT_PATH)
        .header(header::CONTENT_LENGTH, (MAX_BODY_BYTES + 1).to_string())
        .body(Body::empty())
        .unwrap();
    let (status, reply) = send(routes(), request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply["message"], "ConversionReview larger than 7 MiB");
}

/// A RoostPolicyException review at its own path: refused with every
/// problem by field and the codes in `auditAnnotations`, counted under
/// `webhook="validate_exception"`.
#[tokio::test]
async fn an_invalid_exception_is_refused_at_its_path_and_counted() {
    let metrics = Metrics::new();
    let admission = Arc::new(Admission::new(
        ValidationCache::default(),
        Arc::clone(&metrics),
    ));
    let routes = router(WebhookState::new(
        admission,
        Arc::clone(&metrics),
        HttpLimits {
            max_concurrent_reviews: 4,
            body_budget_bytes: 1024 * 1024,
            read_timeout: Duration::from_secs(5),
        },
    ));
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "e1", "operation": "CREATE", "namespace": "team",
            "kind": {"group": "roost.birb.party", "version": "v1alpha1", "kind": "RoostPolicyException"},
            "resource": {"group": "roost.birb.party", "version": "v1alpha1", "resource": "roostpolicyexceptions"},
            "object": {"apiVersion": "roost.birb.party/v1alpha1", "kind": "RoostPolicyException",
                       "metadata": {"name": "ex", "namespace": "team"},
                       "spec": {"codes": ["CHART_VERSION_MISSING"], "roosts": ["web"],
                                "justification": ""}}
        }
    });
    let (status, reply) = send(routes, post(EXCEPTION_VALIDATE_PATH, review.to_string())).await;
    assert_eq!(status, StatusCode::OK);
    let response = &reply["response"];
    assert_eq!(response["uid"], "e1");
    assert_eq!(response["allowed"], false, "{reply}");
    let fields: Vec<&str> = response["status"]["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["spec.codes[0]", "spec.justification"], "{reply}");
    assert_eq!(
        response["auditAnnotations"],
        json!({"error-codes": "EXCEPTION_INVALID"})
    );
    let exposition = metrics.encode();
    assert!(
        exposition.lines().any(
            |l| l.contains("webhook=\"validate_exception\"") && l.contains("allowed=\"false\"")
        ),
        "{exposition}"
    );
}
