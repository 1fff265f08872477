//! Attacks on the webhook server over real TLS (issues 10 and 21): idle and
//! stalled sockets, amplification, body memory, the metrics port, leaks and
//! odd requests. Each test fails without the defence it names.

mod common;

use common::*;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads until the server closes the connection; how long that took, or `None` within `limit`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_all)
        .await
        .ok()
        .map(|()| started.elapsed())
}

const H2_PREFACE_PART: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n"; // 23 of its 24 bytes

#[tokio::test]
async fn silent_and_partial_connections_are_closed_after_the_read_timeout() {
    let server = TestServer::start_with(|c| ServeConfigExt::with_timeouts(c, 1, 60)).await;
    for (what, sent) in [
        ("nothing", &b""[..]),
        ("one byte", &b"P"[..]),
        ("a partial h2 preface", H2_PREFACE_PART),
        ("a partial request line", &b"POST /validate-roost"[..]),
    ] {
        let mut tls = tls_connect(&server, &[b"h2", b"http/1.1"]).await;
        tls.write_all(sent).await.unwrap();
        tls.flush().await.unwrap();
        let closed = closed_within(&mut tls, Duration::from_secs(8)).await;
        assert!(
            closed.is_some(),
            "a connection that sent {what} was never closed"
        );
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_http1_and_http2() {
    let server = TestServer::start_with(|c| ServeConfigExt::with_timeouts(c, 2, 1)).await;
    let body = review("idle-1", "CREATE", roost("web", valid_spec()), None).to_string();

    let mut h1 = tls_connect(&server, &[b"http/1.1"]).await;
    let request = format!(
        "POST {VALIDATE} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    h1.write_all(request.as_bytes()).await.unwrap();
    let mut first = vec![0u8; 64];
    let n = h1.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut h1, Duration::from_secs(8))
            .await
            .is_some(),
        "an idle HTTP/1.1 keep-alive connection stayed open"
    );

    // An h2 client answers the server's PINGs for as long as its connection runs.
    let tls = tls_connect(&server, &[b"h2"]).await;
    let (mut client, connection) = h2::client::handshake(tls).await.unwrap();
    let driver = tokio::spawn(connection);
    let request = http::Request::post(format!("https://localhost{VALIDATE}"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut stream) = client.send_request(request, false).unwrap();
    stream.send_data(body.into(), true).unwrap();
    assert_eq!(response.await.unwrap().status(), 200);
    let ended = tokio::time::timeout(Duration::from_secs(8), driver).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection stayed open");
}

#[tokio::test]
async fn idle_sockets_filling_every_slot_do_not_keep_reviews_or_readiness_out() {
    let server = TestServer::start_with(|c| roost_keeper::server::ServeConfig {
        max_connections: 16,
        max_connections_per_peer: 16,
        ..ServeConfigExt::with_timeouts(c, 30, 60)
    })
    .await;
    let mut idle = Vec::new();
    for i in 0..16 {
        let mut tls = tls_connect(&server, &[b"h2", b"http/1.1"]).await;
        let sent: &[u8] = match i % 3 {
            0 => b"",
            1 => b"P",
            _ => H2_PREFACE_PART,
        };
        tls.write_all(sent).await.unwrap();
        idle.push(tls);
    }
    // The read timeout (30 s) is far away: only making room lets these through.
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(server.ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for i in 0..3 {
        let body = review(
            &format!("full-{i}"),
            "CREATE",
            roost("web", valid_spec()),
            None,
        );
        let resp = client
            .post(server.url(VALIDATE))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("a review gets through while idle sockets hold every slot");
        assert_eq!(resp.status(), 200);
    }
    let ready = reqwest::get(format!("http://{}/readyz", server.metrics))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    drop(idle);
}

#[tokio::test]
async fn one_peer_cannot_take_more_than_its_share() {
    let server = TestServer::start_with(|c| roost_keeper::server::ServeConfig {
        max_connections: 16,
        max_connections_per_peer: 4,
        ..ServeConfigExt::with_timeouts(c, 30, 60)
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        // A request in flight (a body that never comes) is not idle: it cannot be closed to make room.
        let mut tls = tls_connect(&server, &[b"http/1.1"]).await;
        tls.write_all(
            format!("POST {VALIDATE} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{{")
                .as_bytes(),
        )
        .await
        .unwrap();
        held.push(tls);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tcp = tokio::net::TcpStream::connect(server.webhook)
        .await
        .unwrap();
    let mut tcp = tcp;
    assert!(
        closed_within(&mut tcp, Duration::from_secs(5))
            .await
            .is_some(),
        "a fifth connection from the same peer was kept"
    );
}

#[tokio::test]
async fn the_metrics_port_closes_silent_connections_and_keeps_answering() {
    let server = TestServer::start_with(|c| ServeConfigExt::with_timeouts(c, 1, 60)).await;
    let mut silent = Vec::new();
    for _ in 0..48 {
        silent.push(
            tokio::net::TcpStream::connect(server.metrics)
                .await
                .unwrap(),
        );
    }
    let health = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("http://{}/healthz", server.metrics))
        .send()
        .await
        .expect("/healthz answers while silent connections are open");
    assert_eq!(health.status(), 200);
    let mut last = silent.pop().unwrap();
    assert!(
        closed_within(&mut last, Duration::from_secs(8))
            .await
            .is_some(),
        "a silent metrics connection stayed open"
    );
}

#[tokio::test]
async fn large_bodies_share_a_budget_and_small_reviews_never_wait_for_it() {
    let server = TestServer::start_with(|c| roost_keeper::server::ServeConfig {
        body_budget_bytes: 1024 * 1024,
        ..ServeConfigExt::with_timeouts(c, 8, 60)
    })
    .await;
    // Declares 900 KiB and stalls: takes 836 KiB of the 1 MiB budget until its read times out.
    let mut staller = tls_connect(&server, &[b"http/1.1"]).await;
    staller
        .write_all(
            format!(
                "POST {VALIDATE} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{{",
                900 * 1024
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = server.client();
    let mut object = roost("big", valid_spec());
    object["metadata"]["annotations"] = json!({"filler": "x".repeat(800 * 1024)});
    let (status, reply) = post(
        &client,
        &server.url(VALIDATE),
        review("big-1", "CREATE", object, None).to_string(),
    )
    .await;
    assert_eq!(status, 503, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("too many large request bodies"),
        "{reply}"
    );
    let (status, reply) = post(
        &client,
        &server.url(VALIDATE),
        review("small-1", "CREATE", roost("web", valid_spec()), None).to_string(),
    )
    .await;
    assert_eq!((status, &reply["response"]["allowed"]), (200, &json!(true)));
    drop(staller);
}

fn reply_bytes(reply: &Value) -> usize {
    reply.to_string().len()
}

#[tokio::test]
async fn findings_replies_and_patches_stay_small_whatever_the_object() {
    let server = TestServer::start().await;
    let client = server.client();

    // 100 health checks, each with 100 bad status codes: 10,000 findings before the cap.
    let mut spec = valid_spec();
    let check = json!({"name": "h", "type": "http", "http": {"url": "http://web/h", "expectedCodes": vec![0; 100]}});
    spec["healthChecks"] = json!(vec![check; 100]);
    let (status, reply) = post(
        &client,
        &server.url(VALIDATE),
        review("amp-1", "CREATE", roost("web", spec), None).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let causes = reply["response"]["status"]["details"]["causes"]
        .as_array()
        .unwrap();
    assert_eq!(
        causes.len(),
        roost_keeper::validation::MAX_FINDINGS_PER_LEVEL + 1
    );
    assert!(
        causes.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("[TOO_MANY_FINDINGS]")
    );
    assert!(
        reply_bytes(&reply) < 256 * 1024,
        "{} bytes",
        reply_bytes(&reply)
    );

    // Beyond the CRD's limits: one finding for the whole list or map.
    let custom: serde_json::Map<String, Value> = (0..100_000)
        .map(|i| (format!("k{i}"), json!("x")))
        .collect();
    let mut spec = valid_spec();
    spec["teardownPolicy"] = json!({"triggers": [{"type": "resource_threshold", "resourceThreshold": {"custom": custom}}]});
    let (_, reply) = post(
        &client,
        &server.url(VALIDATE),
        review("amp-2", "CREATE", roost("web", spec), None).to_string(),
    )
    .await;
    assert_eq!(reply["response"]["allowed"], false);
    assert!(
        reply_bytes(&reply) < 16 * 1024,
        "{} bytes",
        reply_bytes(&reply)
    );

    let mut spec = valid_spec();
    spec["healthChecks"] = json!(vec![json!({}); 300_000]);
    let (status, reply) = post(
        &client,
        &server.url(MUTATE),
        review("amp-3", "CREATE", roost("web", spec), None).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["response"]["allowed"], true);
    assert!(
        reply["response"].get("patch").is_none(),
        "an object beyond the limits is not defaulted"
    );
    assert!(
        reply_bytes(&reply) < 4 * 1024,
        "{} bytes",
        reply_bytes(&reply)
    );
}

#[tokio::test]
async fn passwords_in_urls_never_come_back() {
    let server = TestServer::start().await;
    let client = server.client();
    let secret = "S3cr3tPw";
    let urls = [
        format!("https://user:{secret}/x@"),
        format!("https://user:a/{secret}@charts.example.com/x"),
        format!("https://user:{secret}?x@charts.example.com"),
        format!("https://user:{secret}#x@charts.example.com"),
        format!("https://user:p@{secret}@"),
        format!("user:{secret}/x@host"),
        format!("https://user: {secret}@ host"),
        format!("host/tokens/{secret}"),
    ];
    for url in &urls {
        let mut spec = valid_spec();
        spec["chart"]["repository"]["url"] = json!(url);
        spec["healthChecks"][0]["http"]["url"] = json!(url);
        spec["teardownPolicy"]["triggers"] = json!([{"type": "webhook", "webhook": {"url": url}}]);
        spec["observability"] = json!({"tracing": {"enabled": true, "endpoint": {"url": url}}, "logging": {"level": "debug"}});
        for path in [VALIDATE, MUTATE] {
            let (status, reply) = post(
                &client,
                &server.url(path),
                review("leak", "CREATE", roost("web", spec.clone()), None).to_string(),
            )
            .await;
            assert_eq!(status, 200);
            let text = reply.to_string();
            assert!(!text.contains(secret), "{path} leaked {url:?}: {text}");
            if let Some(patch) = reply["response"]["patch"].as_str() {
                use base64::Engine;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(patch)
                    .unwrap();
                let decoded = String::from_utf8(decoded).unwrap();
                // The patch carries the object's own values only where defaults were added.
                assert!(
                    !decoded.contains(secret),
                    "{path} patch carries {url:?}: {decoded}"
                );
            }
        }
    }
}

#[tokio::test]
async fn odd_requests_get_short_precise_answers() {
    let server = TestServer::start().await;
    let client = server.client();
    let long_path = format!("/{}", "p".repeat(4_000));
    let resp = client.get(server.url(&long_path)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let text = resp.text().await.unwrap();
    assert!(text.len() < 1024, "{} bytes", text.len());

    let mut body = review("x", "CREATE", roost("web", valid_spec()), None);
    body["request"].as_object_mut().unwrap().remove("kind");
    let (status, reply) = post(&client, &server.url(VALIDATE), body.to_string()).await;
    assert_eq!(status, 400, "{reply}");

    let body = review(
        &"u".repeat(1_000_000),
        "CREATE",
        roost("web", valid_spec()),
        None,
    );
    let (status, reply) = post(&client, &server.url(VALIDATE), body.to_string()).await;
    assert_eq!(status, 400);
    assert!(reply_bytes(&reply) < 1024, "{} bytes", reply_bytes(&reply));

    let mut object = roost("web", valid_spec());
    object["metadata"]["name"] = json!(format!("forged\nlevel=ERROR {}", "n".repeat(100_000)));
    object["spec"]["chart"]["version"] = json!("");
    let (_, reply) = post(
        &client,
        &server.url(VALIDATE),
        review("long-name", "CREATE", object, None).to_string(),
    )
    .await;
    assert_eq!(reply["response"]["allowed"], false);
    assert!(reply_bytes(&reply) < 4096, "{} bytes", reply_bytes(&reply));
    assert!(
        !reply["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains('\n')
    );
}

/// 127.0.0.n: Linux routes all of 127/8 to the loopback interface, so each is
/// another client address for the per-peer share.
fn source(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A TLS connection to `to` from the address `from`.
async fn tls_connect_from(
    to: SocketAddr,
    from: IpAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(to).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

fn stalled_request() -> http::Request<()> {
    http::Request::post(format!("https://localhost{VALIDATE}"))
        .header("content-type", "application/json")
        .body(())
        .unwrap()
}

/// An HTTP/2 connection that always has a request in flight: a stream whose
/// body never ends, another as soon as one is answered. Returns the streams
/// answered once the server ends the connection.
async fn h2_staller(
    to: SocketAddr,
    from: IpAddr,
    config: Arc<rustls::ClientConfig>,
) -> Vec<http::StatusCode> {
    let mut answered = Vec::new();
    let Ok(tls) = tls_connect_from(to, from, config).await else {
        return answered;
    };
    let Ok((client, connection)) = h2::client::handshake(tls).await else {
        return answered;
    };
    let driver = tokio::spawn(connection);
    loop {
        let Ok(mut client) = client.clone().ready().await else {
            break;
        };
        let Ok((response, mut body)) = client.send_request(stalled_request(), false) else {
            break;
        };
        let _ = body.send_data("{".into(), false);
        match response.await {
            Ok(response) => answered.push(response.status()),
            Err(_) => break,
        }
    }
    driver.abort();
    answered
}

/// An HTTP/1.1 connection sending its body one byte every 300 ms, never
/// finishing; returns when the server closes it.
async fn h1_trickler(to: SocketAddr, from: IpAddr, config: Arc<rustls::ClientConfig>) {
    let Ok(tls) = tls_connect_from(to, from, config).await else {
        return;
    };
    let (mut read, mut write) = tokio::io::split(tls);
    let trickle = async move {
        let head = format!(
            "POST {VALIDATE} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n"
        );
        if write.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        loop {
            if write.write_all(b" ").await.is_err() || write.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let mut sink = [0u8; 1024];
    let closed = async move { while let Ok(1..) = read.read(&mut sink).await {} };
    tokio::select! {
        () = trickle => {}
        () = closed => {}
    }
}

/// Keeps a connection made by `connect` open from `from`, another as soon as one ends.
fn hold<F, Fut>(from: IpAddr, connect: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(IpAddr) -> Fut + Send + 'static,
    Fut: std::future::Future + Send,
{
    tokio::spawn(async move {
        loop {
            connect(from).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// `name{labels}` in a Prometheus exposition, 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_requests_filling_every_slot_do_not_keep_reviews_or_readiness_out() {
    let server = TestServer::start_with(|c| roost_keeper::server::ServeConfig {
        max_connections: 8,
        max_connections_per_peer: 4,
        ..ServeConfigExt::with_timeouts(c, 1, 60)
    })
    .await;
    let to = server.webhook;
    let h2 = tls_client_config(&server, &[b"h2"]);
    let h1 = tls_client_config(&server, &[b"http/1.1"]);
    let mut attack = Vec::new();
    // Three addresses, each trying to hold its share (4) of the 8 slots:
    // two HTTP/2 connections with a never-finished stream always open, two
    // HTTP/1.1 connections trickling a body; each replaced as soon as it ends.
    for n in 2..=4 {
        for _ in 0..2 {
            let config = Arc::clone(&h2);
            attack.push(hold(source(n), move |from| {
                h2_staller(to, from, Arc::clone(&config))
            }));
            let config = Arc::clone(&h1);
            attack.push(hold(source(n), move |from| {
                h1_trickler(to, from, Arc::clone(&config))
            }));
        }
    }
    // And a new staller every 100 ms from two more addresses.
    let churn = {
        let config = Arc::clone(&h2);
        tokio::spawn(async move {
            for i in 0u32.. {
                tokio::spawn(h2_staller(
                    to,
                    source(5 + (i % 2) as u8),
                    Arc::clone(&config),
                ));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The apiserver's connection is indistinguishable: a fresh one, from another address.
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .local_address(source(20))
        .add_root_certificate(reqwest::Certificate::from_pem(server.ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut answered = Vec::new();
    for i in 0..5 {
        let body = review(
            &format!("busy-{i}"),
            "CREATE",
            roost("web", valid_spec()),
            None,
        );
        let reply = client
            .post(server.url(VALIDATE))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        answered.push(match reply {
            Ok(reply) => reply.status().as_u16().to_string(),
            Err(err) => format!("{err:?}"),
        });
    }
    let probes = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut ready = Vec::new();
    for _ in 0..3 {
        let probe = probes
            .get(format!("http://{}/readyz", server.metrics))
            .send()
            .await
            .unwrap();
        ready.push(probe.status().as_u16());
    }
    let metrics = server.metrics_text().await;
    churn.abort();
    attack.iter().for_each(|a| a.abort());
    assert_eq!(answered, vec!["200"; 5], "reviews during the attack");
    assert_eq!(ready, vec![200; 3], "/readyz during the attack");
    let closed = |reason: &str| {
        metric(
            &metrics,
            &format!(
                "roost_keeper_connections_closed_total{{listener=\"webhook\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert!(closed("evicted_stalled") > 0.0, "{metrics}");
}

#[tokio::test]
async fn a_request_whose_body_times_out_closes_its_connection() {
    let server = TestServer::start_with(|c| ServeConfigExt::with_timeouts(c, 1, 60)).await;
    // HTTP/2: each stream answered 408 is followed at once by another; the
    // connection must still end, after its first 408.
    let h2 = tls_client_config(&server, &[b"h2"]);
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        h2_staller(server.webhook, source(1), h2),
    )
    .await
    .expect("an HTTP/2 connection re-opening stalled streams was kept open");
    assert!(
        !answered.is_empty() && answered.iter().all(|s| *s == 408),
        "{answered:?}"
    );
    // HTTP/1.1: the 408 closes the connection (its framing is lost anyway).
    let mut h1 = tls_connect(&server, &[b"http/1.1"]).await;
    h1.write_all(
        format!("POST {VALIDATE} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{{").as_bytes(),
    )
    .await
    .unwrap();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), h1.read_to_end(&mut reply)).await;
    assert!(
        read.is_ok(),
        "an HTTP/1.1 connection was kept after its 408"
    );
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 408"));
    drop(h1);
    // Both are counted once their sockets are closed.
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = server.metrics_text().await;
        let body_timeouts = metric(
            &metrics,
            "roost_keeper_connections_closed_total{listener=\"webhook\",reason=\"body_timeout\"}",
        );
        if body_timeouts == 2.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("two connections closed for body_timeout expected: {metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_an_oversized_body_reads_its_413() {
    let server = TestServer::start().await;
    // A real HTTP/1.1 client: it sends the whole body it declared (8 MiB, over
    // the 7 MiB limit) and gives up on a failed write, as hyper, curl and
    // others do; the server answers 413 after the headers.
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .http1_only()
        .add_root_certificate(reqwest::Certificate::from_pem(server.ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let body = vec![b' '; 8 * 1024 * 1024];
    let mut answers = Vec::new();
    for _ in 0..20 {
        let reply = client
            .post(server.url(VALIDATE))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        answers.push(match reply {
            Ok(reply) => reply.status().as_u16().to_string(),
            Err(err) => format!("{err:?}"),
        });
    }
    assert_eq!(answers, vec!["413"; 20]);
}
