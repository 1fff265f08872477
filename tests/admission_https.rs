//! The admission webhooks over real HTTPS: verdicts, patches, bad input,
//! certificate swaps, shutdown and metrics.

mod common;

use base64::Engine;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn response(body: &Value) -> &Value {
    &body["response"]
}

#[tokio::test]
async fn valid_object_is_allowed_with_the_request_uid() {
    let server = TestServer::start().await;
    let body = review("uid-valid-1", "CREATE", roost("web", valid_spec()), None);
    let (status, reply) = post(&server.client(), &server.url(VALIDATE), body.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(reply["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(reply["kind"], "AdmissionReview");
    assert_eq!(response(&reply)["uid"], "uid-valid-1");
    assert_eq!(response(&reply)["allowed"], true);
    assert!(response(&reply).get("warnings").is_none());
    assert!(response(&reply).get("patch").is_none());
}

#[tokio::test]
async fn every_error_is_listed_in_one_denial() {
    let server = TestServer::start().await;
    let mut spec = valid_spec();
    spec["chart"]["version"] = json!("");
    spec["healthChecks"] =
        json!([{"name": "db", "type": "tcp", "tcp": {"host": "db", "port": 70000}}]);
    let (status, reply) = post(
        &server.client(),
        &server.url(VALIDATE),
        review("u2", "CREATE", roost("web", spec), None).to_string(),
    )
    .await;
    assert_eq!(status, 200, "a denial is a verdict, not a transport error");
    let r = response(&reply);
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 422);
    assert_eq!(r["status"]["reason"], "Invalid");
    assert_eq!(
        r["status"]["message"],
        "ManagedRoost team-a/web has 2 errors: spec.chart.version: chart version is required; set spec.chart.version, e.g. 1.2.3 [CHART_VERSION_MISSING]; spec.healthChecks[0].tcp.port: port must be 1-65535, got 70000 [TCP_PORT_INVALID]"
    );
    let causes = r["status"]["details"]["causes"].as_array().unwrap();
    let fields: Vec<&str> = causes
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["spec.chart.version", "spec.healthChecks[0].tcp.port"]
    );
    assert!(
        causes[1]["message"]
            .as_str()
            .unwrap()
            .contains("[TCP_PORT_INVALID]")
    );
}

#[tokio::test]
async fn warnings_come_back_as_admission_warnings_and_info_stays_hidden() {
    let server = TestServer::start().await;
    let mut spec = valid_spec();
    spec["chart"]["version"] = json!("^15.4");
    spec["chart"]["repository"]["url"] = json!("http://charts.example.com");
    spec.as_object_mut().unwrap().remove("teardownPolicy"); // NO_TEARDOWN_POLICY is info
    let (_, reply) = post(
        &server.client(),
        &server.url(VALIDATE),
        review("u3", "CREATE", roost("web", spec), None).to_string(),
    )
    .await;
    let r = response(&reply);
    assert_eq!(r["allowed"], true);
    assert_eq!(
        r["warnings"],
        json!([
            "spec.chart.version: \"^15.4\" is a range; pin one version, e.g. 1.2.3 [CHART_VERSION_UNPINNED]",
            "spec.chart.repository.url: plain http repository; use https [CHART_REPO_INSECURE]"
        ])
    );
    assert!(!reply.to_string().contains("NO_TEARDOWN_POLICY"));
}

#[tokio::test]
async fn a_silence_annotation_drops_its_warning_codes_but_never_errors() {
    let server = TestServer::start().await;
    let mut spec = valid_spec();
    spec["chart"]["version"] = json!("^15.4");
    spec["chart"]["repository"]["url"] = json!("http://charts.example.com");
    let mut object = roost("web", spec.clone());
    object["metadata"]["annotations"] =
        json!({"roost.birb.party/silence-warnings": "CHART_REPO_INSECURE"});
    let (_, reply) = post(
        &server.client(),
        &server.url(VALIDATE),
        review("s1", "CREATE", object.clone(), None).to_string(),
    )
    .await;
    let warnings = response(&reply)["warnings"].to_string();
    assert!(warnings.contains("[CHART_VERSION_UNPINNED]"), "{warnings}");
    assert!(!warnings.contains("CHART_REPO_INSECURE"), "{warnings}");

    object["spec"]["chart"]["version"] = json!("not-a-version");
    object["metadata"]["annotations"] =
        json!({"roost.birb.party/silence-warnings": "CHART_VERSION_INVALID"});
    let (_, reply) = post(
        &server.client(),
        &server.url(VALIDATE),
        review("s2", "CREATE", object, None).to_string(),
    )
    .await;
    let r = response(&reply);
    assert_eq!(r["allowed"], false);
    assert!(r.to_string().contains("[CHART_VERSION_INVALID]"), "{r}");
}

#[tokio::test]
async fn mutate_patch_yields_the_defaulted_object_and_is_idempotent() {
    let server = TestServer::start().await;
    let client = server.client();
    let object = roost(
        "web",
        json!({"chart": {"name": "nginx", "version": "1.0.0", "repository": {"url": "oci://r.example.com/charts"}},
               "healthChecks": [{"name": "u", "type": "udp", "udp": {"host": "dns", "port": 53}}],
               "tenancy": {"tenantId": "team-a", "rbac": {"enabled": true}}}),
    );
    let (status, reply) = post(
        &client,
        &server.url(MUTATE),
        review("m1", "CREATE", object.clone(), None).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let r = response(&reply);
    assert_eq!(
        (r["allowed"].as_bool(), r["patchType"].as_str()),
        (Some(true), Some("JSONPatch"))
    );
    let patch_bytes = base64::engine::general_purpose::STANDARD
        .decode(r["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch_bytes).unwrap();
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(
        patched,
        roost_keeper::defaults::apply_defaults(&object).object
    );
    assert_eq!(patched["spec"]["chart"]["repository"]["type"], "oci");
    assert_eq!(patched["spec"]["healthChecks"][0]["udp"]["retries"], 3);
    assert_eq!(patched["spec"]["tenancy"]["rbac"]["tenantId"], "team-a");
    assert_eq!(
        patched["metadata"]["labels"]["roost.birb.party/tenant"],
        "team-a"
    );

    let (_, again) = post(
        &client,
        &server.url(MUTATE),
        review("m2", "CREATE", patched, None).to_string(),
    )
    .await;
    assert_eq!(response(&again)["allowed"], true);
    assert!(
        response(&again).get("patch").is_none(),
        "second mutate yields no patch: {again}"
    );
    assert!(response(&again).get("patchType").is_none());
}

#[tokio::test]
async fn mutate_never_denies_an_undecodable_object() {
    let server = TestServer::start().await;
    let object = roost(
        "web",
        json!({"chart": "not an object", "healthChecks": {"a": 1}}),
    );
    let (status, reply) = post(
        &server.client(),
        &server.url(MUTATE),
        review("m3", "CREATE", object, None).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(response(&reply)["allowed"], true);
}

#[tokio::test]
async fn update_compares_with_the_old_object() {
    let server = TestServer::start().await;
    let client = server.client();
    let mut old_spec = valid_spec();
    old_spec["tenancy"] = json!({"tenantId": "team-a"});
    let mut new_spec = old_spec.clone();
    new_spec["tenancy"]["tenantId"] = json!("team-b");
    let body = review(
        "u4",
        "UPDATE",
        roost("web", new_spec),
        Some(roost("web", old_spec.clone())),
    );
    let (_, reply) = post(&client, &server.url(VALIDATE), body.to_string()).await;
    assert_eq!(response(&reply)["allowed"], false);
    assert!(
        response(&reply)["status"]["message"]
            .as_str()
            .unwrap()
            .contains("[TENANT_ID_IMMUTABLE]")
    );
    // The same spec on CREATE is fine: the verdict depends on the old object.
    let (_, create) = post(
        &client,
        &server.url(VALIDATE),
        review("u5", "CREATE", roost("web", old_spec.clone()), None).to_string(),
    )
    .await;
    assert_eq!(response(&create)["allowed"], true);
    let unchanged = review(
        "u6",
        "UPDATE",
        roost("web", old_spec.clone()),
        Some(roost("web", old_spec)),
    );
    let (_, reply) = post(&client, &server.url(VALIDATE), unchanged.to_string()).await;
    assert_eq!(response(&reply)["allowed"], true);
}

#[tokio::test]
async fn delete_connect_foreign_kinds_and_status_are_allowed_without_work() {
    let server = TestServer::start().await;
    let client = server.client();
    let mut delete = review("d1", "DELETE", json!(null), Some(roost("web", json!({}))));
    delete["request"]["object"] = Value::Null;
    let (_, reply) = post(&client, &server.url(VALIDATE), delete.to_string()).await;
    assert_eq!(
        (
            response(&reply)["uid"].as_str(),
            response(&reply)["allowed"].as_bool()
        ),
        (Some("d1"), Some(true))
    );

    let mut foreign = review(
        "f1",
        "CREATE",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        None,
    );
    foreign["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    let (_, reply) = post(&client, &server.url(VALIDATE), foreign.to_string()).await;
    assert_eq!(response(&reply)["allowed"], true);

    let mut status_update = review(
        "s1",
        "UPDATE",
        roost("web", json!({})),
        Some(roost("web", json!({}))),
    );
    status_update["request"]["subResource"] = json!("status");
    let (_, reply) = post(&client, &server.url(VALIDATE), status_update.to_string()).await;
    assert_eq!(
        response(&reply)["allowed"],
        true,
        "status writes are not judged on spec"
    );
}

#[tokio::test]
async fn dry_run_gets_the_same_verdict() {
    let server = TestServer::start().await;
    let mut spec = valid_spec();
    spec["chart"]["name"] = json!("Bad_Name");
    let mut body = review("dr1", "CREATE", roost("web", spec.clone()), None);
    let (_, real) = post(&server.client(), &server.url(VALIDATE), body.to_string()).await;
    body["request"]["dryRun"] = json!(true);
    body["request"]["uid"] = json!("dr2");
    let (_, dry) = post(&server.client(), &server.url(VALIDATE), body.to_string()).await;
    assert_eq!(response(&real)["status"], response(&dry)["status"]);
    assert_eq!(response(&dry)["allowed"], false);
}

#[tokio::test]
async fn bad_input_gets_a_precise_answer_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let client = server.client();
    let url = server.url(VALIDATE);

    let (status, reply) = post(&client, &url, "this is not json").await;
    assert_eq!(status, 400);
    assert_eq!(reply["kind"], "Status");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON AdmissionReview")
    );

    let mut wrong = review("w1", "CREATE", roost("web", valid_spec()), None);
    wrong["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (status, reply) = post(&client, &url, wrong.to_string()).await;
    assert_eq!(
        (
            status,
            response(&reply)["uid"].as_str(),
            response(&reply)["allowed"].as_bool()
        ),
        (400, Some("w1"), Some(false))
    );
    assert!(
        response(&reply)["status"]["message"]
            .as_str()
            .unwrap()
            .contains("admission.k8s.io/v1beta1")
    );

    let (status, reply) = post(
        &client,
        &url,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).to_string(),
    )
    .await;
    assert_eq!(
        (status, reply["message"].as_str()),
        (400, Some("AdmissionReview has no request"))
    );

    let mut no_uid = review("", "CREATE", roost("web", valid_spec()), None);
    no_uid["request"]["uid"] = json!("");
    let (status, reply) = post(&client, &url, no_uid.to_string()).await;
    assert_eq!(
        (status, reply["message"].as_str()),
        (
            400,
            Some(
                "request.uid is missing, empty or not a UID (at most 128 printable ASCII characters)"
            )
        )
    );

    let (status, reply) = post(
        &client,
        &url,
        review("o1", "CREATE", json!("a string"), None).to_string(),
    )
    .await;
    assert_eq!(
        (status, response(&reply)["uid"].as_str()),
        (400, Some("o1"))
    );
    assert_eq!(
        response(&reply)["status"]["message"],
        "request.object is not a JSON object"
    );

    let deep = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"deep-1","object":{}{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (status, reply) = post(&client, &url, deep).await;
    assert_eq!(
        (status, response(&reply)["uid"].as_str()),
        (400, Some("deep-1"))
    );
    assert!(
        response(&reply)["status"]["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit"),
        "{reply}"
    );

    let huge_name = "a".repeat(7 * 1024 * 1024);
    let huge = review("big-1", "CREATE", roost(&huge_name, valid_spec()), None).to_string();
    let (status, reply) = post(&client, &url, huge).await;
    assert_eq!(status, 413);
    assert_eq!(reply["reason"], "RequestEntityTooLarge");

    let (status, _) = post(&client, &server.url("/nope"), "{}").await;
    assert_eq!(status, 404);

    // Still answering.
    let (status, reply) = post(
        &client,
        &url,
        review("after", "CREATE", roost("web", valid_spec()), None).to_string(),
    )
    .await;
    assert_eq!(
        (status, response(&reply)["allowed"].as_bool()),
        (200, Some(true))
    );
}

#[tokio::test]
async fn a_stalled_client_is_timed_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(server.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    use rustls_pki_types::pem::PemObject;
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.webhook)
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    // Promise 1000 bytes, send 10, then stall.
    tls.write_all(format!("POST {VALIDATE} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 1000\r\n\r\n{{\"apiVersi").as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn plaintext_on_the_webhook_port_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    // Something listens (the connection is accepted), reads the request as a
    // TLS record, answers with a TLS alert and closes at once: no HTTP.
    let mut tcp = tokio::net::TcpStream::connect(server.webhook)
        .await
        .expect("the webhook port accepts connections");
    tcp.write_all(
        format!("POST {VALIDATE} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\r\n{{}}")
            .as_bytes(),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(read, Ok(Ok(_))),
        "the server closes the connection: {read:?}"
    );
    // Well before the 2 s handshake timeout: refused on reading, not timed out.
    assert!(elapsed < Duration::from_secs(1), "closed after {elapsed:?}");
    // One TLS record: content type 21 (alert), level 2 (fatal).
    assert!(
        answer.len() == 7 && answer[0] == 21 && answer[5] == 2,
        "a fatal TLS alert, not {:?} ({answer:?})",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn metrics_and_health_endpoints() {
    let server = TestServer::start().await;
    let client = server.client();
    let body = review("mx1", "CREATE", roost("web", valid_spec()), None).to_string();
    post(&client, &server.url(VALIDATE), body.clone()).await;
    post(&client, &server.url(VALIDATE), body).await;
    let plain = reqwest::Client::new();
    assert_eq!(
        plain
            .get(format!("http://{}/healthz", server.metrics))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let text = server.metrics_text().await;
    let served = std::fs::read_to_string(server.cert_dir().join("tls.crt")).unwrap();
    let (_, not_after) = roost_keeper::tls::generate::validity(&served).unwrap();
    let expiry = format!(
        "roost_keeper_serving_certificate_expiry_timestamp_seconds {}",
        not_after.unix_timestamp()
    );
    for line in [
        expiry.as_str(),
        "roost_keeper_certificate_errors_total 0",
        "roost_keeper_api_validation_operations_total 2",
        "roost_keeper_api_cache_hits_total{cache=\"validation\"} 1",
        "roost_keeper_api_cache_misses_total{cache=\"validation\"} 1",
        "roost_keeper_api_cache_size{cache=\"validation\"} 1",
        "roost_keeper_admission_requests_total{webhook=\"validate\",operation=\"CREATE\",allowed=\"true\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    for name in [
        "roost_keeper_api_validation_failures_total",
        "roost_keeper_api_validation_duration_seconds_bucket",
        "roost_keeper_admission_duration_seconds_bucket{le=\"0.0001\",webhook=\"validate\"}",
        "roost_keeper_api_operation_duration_seconds_count{operation=\"validate\"}",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    assert!(
        !text.contains("mx1") && !text.contains("team-a"),
        "no uids or names as labels"
    );
}

fn conversion_review(uid: &str, desired: &str, objects: Vec<Value>) -> String {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects}
    })
    .to_string()
}

#[tokio::test]
async fn conversion_reviews_are_answered_within_bounds_and_counted() {
    let server = TestServer::start().await;
    let client = server.client();
    let url = server.url("/convert");
    let alpha = roost("web", valid_spec());

    let (status, up) = post(
        &client,
        &url,
        conversion_review("cv1", "roost.birb.party/v1beta1", vec![alpha.clone(); 3]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(response(&up)["uid"], "cv1");
    assert_eq!(response(&up)["result"]["status"], "Success", "{up}");
    let beta = response(&up)["convertedObjects"][0].clone();
    assert_eq!(beta["apiVersion"], "roost.birb.party/v1beta1");
    let (_, down) = post(
        &client,
        &url,
        conversion_review("cv2", "roost.birb.party/v1alpha1", vec![beta]),
    )
    .await;
    assert_eq!(response(&down)["convertedObjects"][0], alpha);

    // Too many objects: a Failure the apiserver passes on, not a transport error.
    let (status, many) = post(
        &client,
        &url,
        conversion_review("cv3", "roost.birb.party/v1beta1", vec![json!({}); 1001]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(response(&many)["uid"], "cv3");
    assert_eq!(response(&many)["result"]["status"], "Failure");
    assert!(
        response(&many)["result"]["message"]
            .as_str()
            .unwrap()
            .starts_with(
                "1001 objects in one ConversionReview; roost-keeper converts at most 1000"
            ),
        "{many}"
    );

    let (status, reply) = post(&client, &url, "{\"kind\": \"ConversionReview\"").await;
    assert_eq!(status, 400);
    assert_eq!(reply["kind"], "Status");
    let huge = conversion_review(
        "cv4",
        "roost.birb.party/v1beta1",
        vec![roost(&"a".repeat(7 * 1024 * 1024), valid_spec())],
    );
    let (status, reply) = post(&client, &url, huge).await;
    assert_eq!(status, 413);
    assert_eq!(reply["message"], "ConversionReview larger than 7 MiB");

    let text = server.metrics_text().await;
    for line in [
        "roost_keeper_conversions_total{direction=\"v1alpha1_to_v1beta1\",result=\"ok\"} 3",
        "roost_keeper_conversions_total{direction=\"v1beta1_to_v1alpha1\",result=\"ok\"} 1",
        "roost_keeper_conversions_total{direction=\"unknown\",result=\"error\"} 1001",
        "roost_keeper_conversion_duration_seconds_count 5",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

/// Writes a kubelet-style Secret volume: files behind a `..data` symlink that is swapped atomically.
fn write_secret_volume(
    dir: &std::path::Path,
    generation: u32,
    bundle: &roost_keeper::tls::generate::CertBundle,
) {
    let target = dir.join(format!("..gen{generation}"));
    roost_keeper::tls::generate::write_bundle(bundle, &target).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..gen{generation}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        let link = dir.join(file);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), &link).unwrap();
        }
    }
}

fn peer_certificate(resp: &reqwest::Response) -> Vec<u8> {
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn certificate_swap_under_load_fails_no_request() {
    let volume = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let sans = ["localhost".to_string()];
    let first =
        roost_keeper::tls::generate::generate("roost-keeper", "roost-system", &sans, now).unwrap();
    let second =
        roost_keeper::tls::generate::generate("roost-keeper", "roost-system", &sans, now).unwrap();
    write_secret_volume(volume.path(), 1, &first);
    let dir = volume.path().to_path_buf();
    let mut server = TestServer::start_with(|c| roost_keeper::server::ServeConfig {
        tls: roost_keeper::server::TlsSource::Files {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        },
        ..c
    })
    .await;
    // Clients trust both CAs, as a caBundle does during a rotation.
    let body = review("load", "CREATE", roost("web", valid_spec()), None).to_string();
    let url = server.url(VALIDATE);
    let before = client_trusting(&[&first.ca_pem])
        .post(&url)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let first_cert = peer_certificate(&before);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (stop, url, body) = (stop.clone(), url.clone(), body.clone());
        let (a, b) = (first.ca_pem.clone(), second.ca_pem.clone());
        workers.push(tokio::spawn(async move {
            let mut results = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // A fresh client each round forces new TLS handshakes during the swap.
                let client = client_trusting(&[&a, &b]);
                match client.post(&url).body(body.clone()).send().await {
                    Ok(r) if r.status() == 200 => results.0 += 1,
                    _ => results.1 += 1,
                }
            }
            results
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_secret_volume(volume.path(), 2, &second);
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut ok = 0;
    for worker in workers {
        let (good, bad) = worker.await.unwrap();
        assert_eq!(bad, 0, "failed requests during the swap");
        ok += good;
    }
    assert!(ok > 20, "too few requests to prove anything: {ok}");
    let after = client_trusting(&[&second.ca_pem])
        .post(&url)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
    assert_ne!(
        peer_certificate(&after),
        first_cert,
        "the new certificate is served"
    );
    server.shutdown();
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_then_stops_accepting() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let delay = Duration::from_millis(500);
    let mut server = TestServer::start_with(|c| roost_keeper::server::ServeConfig {
        shutdown_delay: delay,
        ..c
    })
    .await;
    // A request whose body is half sent stays in flight until the rest comes.
    let body = review("inflight", "CREATE", roost("web", valid_spec()), None).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut held = tls_connect(&server, &[b"http/1.1"]).await;
    held.write_all(
        format!(
            "POST {VALIDATE} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{head}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    held.flush().await.unwrap();

    let shutdown = std::time::Instant::now();
    server.shutdown();
    let ready = reqwest::Client::new()
        .get(format!("http://{}/readyz", server.metrics))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "not ready once shutdown starts");

    // Once the delay is over the listener is closed: a new connection is refused.
    loop {
        match tokio::net::TcpStream::connect(server.webhook).await {
            Ok(still_accepting) => drop(still_accepting),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => break,
            // A connection queued while the listener closes is reset; the next one is refused.
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(err) => panic!("connecting during shutdown: {err}"),
        }
        assert!(
            shutdown.elapsed() < Duration::from_secs(5),
            "still accepting connections 5s after shutdown began"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        shutdown.elapsed() >= delay,
        "stopped accepting after {:?}, before the shutdown delay",
        shutdown.elapsed()
    );
    assert!(
        !server.task.as_ref().unwrap().is_finished(),
        "the server waits for the request in flight"
    );

    // The rest of the body, sent while the server drains: the request still gets its verdict.
    held.write_all(tail.as_bytes()).await.unwrap();
    held.flush().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), held.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let reply: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1)
        .unwrap_or_else(|err| panic!("{err}: {answer}"));
    assert_eq!(
        (
            response(&reply)["uid"].as_str(),
            response(&reply)["allowed"].as_bool()
        ),
        (Some("inflight"), Some(true)),
        "{answer}"
    );

    let result = tokio::time::timeout(Duration::from_secs(15), server.task.take().unwrap()).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "server stops cleanly");
    let refused = tokio::net::TcpStream::connect(server.webhook).await;
    assert_eq!(
        refused.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "no longer accepting"
    );
}
