//! `roost-keeper serve` as a process: SIGTERM exits 0, and no secret reaches
//! a response or a log line.

mod common;

use common::*;
use roost_testcluster::{ServeCommand, ServeProcess};
use serde_json::json;
use std::io::Read;
use std::time::{Duration, Instant};

/// `serve` configured the way a Deployment's `env:` does it, output piped.
fn spawn_serve(rust_log: &str) -> ServeProcess {
    ServeCommand::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .global_arg("--log-format")
        .global_arg("json")
        .generated_certs("localhost")
        .settings_in_env()
        .env("ROOST_KEEPER_SHUTDOWN_DELAY", "200ms")
        .rust_log(rust_log)
        .piped()
        .spawn()
        .unwrap()
}

/// Reads a pipe to the end on a thread, so a chatty child never blocks on a full pipe.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = pipe.read_to_string(&mut out);
        out
    })
}

/// Waits without blocking the runtime, so the client's connections can see the server go.
async fn wait_exit(serve: &mut ServeProcess, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = serve.exited() {
            return status;
        }
        assert!(Instant::now() < deadline, "serve did not exit in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sigterm_exits_zero_and_no_secret_reaches_responses_or_logs() {
    let mut serve = spawn_serve("debug");
    let stderr = drain(serve.child().stderr.take().unwrap());
    let stdout = drain(serve.child().stdout.take().unwrap());
    let client = client_trusting(&[&serve.ca_pem()]);
    let secrets = [
        "pw-Zq8hunter2",
        "tok-9f8e7d6c5b4a",
        "bearer-abc123xyz",
        "urlpass-77",
        "slashpw-55",
        "hashpw-66",
    ];
    let mut spec = valid_spec();
    spec["chart"]["repository"] = json!({"url": format!("http://user:{}@charts.example.com?token={}", secrets[3], secrets[1]),
        "auth": {"username": "bob", "password": secrets[0], "token": secrets[1]}});
    spec["healthChecks"] = json!([{"name": "p", "type": "prometheus",
        "prometheus": {"query": "up", "threshold": "x", "auth": {"bearerToken": secrets[2]}, "endpoint": format!("nohost?token={}", secrets[2])}}]);
    spec["healthChecks"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "h", "type": "http",
        "http": {"url": format!("https://u:a/{}@web/h", secrets[4])}}));
    spec["teardownPolicy"] = json!({"triggers": [{"type": "webhook",
        "webhook": {"url": format!("https://u:{}?#x@ hook", secrets[5])}}]});
    spec["observability"] = json!({"tracing": {"enabled": true, "endpoint": {"url": format!("u:{}/x@collector", secrets[4])}}});
    spec["chart"]["version"] = json!(12345);
    let object = roost("leaky", spec);
    let mut bodies = Vec::new();
    for (path, uid) in [(VALIDATE, "s1"), (MUTATE, "s2")] {
        let url = format!("https://localhost:{}{path}", serve.webhook.port());
        let (status, reply) = post(
            &client,
            &url,
            review(uid, "CREATE", object.clone(), None).to_string(),
        )
        .await;
        assert_eq!(status, 200);
        bodies.push(reply.to_string());
        if let Some(patch) = reply["response"]["patch"].as_str() {
            use base64::Engine;
            let patch = base64::engine::general_purpose::STANDARD
                .decode(patch)
                .unwrap();
            bodies.push(String::from_utf8(patch).unwrap());
        }
    }
    assert_eq!(
        bodies.len(),
        3,
        "the mutate reply carries a patch to search"
    );
    assert!(bodies[0].contains("\"allowed\":false"), "{}", bodies[0]);
    serve.signal("-TERM");
    let status = wait_exit(&mut serve, Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean exit");
    let logs = stderr.join().unwrap() + &stdout.join().unwrap();
    assert!(logs.contains("admission review answered"), "{logs}");
    assert!(logs.contains("shutdown complete"), "{logs}");
    for secret in secrets {
        for body in &bodies {
            assert!(!body.contains(secret), "a reply leaks {secret}: {body}");
        }
        assert!(!logs.contains(secret), "logs leak {secret}");
    }
}

/// An object with `spec.observability.logging.level: debug` gets debug logs
/// of its handling even when `RUST_LOG` says warn; other objects do not.
#[tokio::test]
async fn per_object_debug_logs_pass_a_warn_filter() {
    let mut serve = spawn_serve("warn");
    let stderr = drain(serve.child().stderr.take().unwrap());
    let client = client_trusting(&[&serve.ca_pem()]);
    let url = format!("https://localhost:{}{VALIDATE}", serve.webhook.port());
    let mut debug_spec = valid_spec();
    debug_spec["observability"] = json!({"logging": {"level": "debug"}});
    let (status, _) = post(
        &client,
        &url,
        review("debug-uid-1", "CREATE", roost("chatty", debug_spec), None).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &client,
        &url,
        review("quiet-uid-2", "CREATE", roost("quiet", valid_spec()), None).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    drop(client);
    serve.signal("-TERM");
    assert_eq!(
        wait_exit(&mut serve, Duration::from_secs(20)).await.code(),
        Some(0)
    );
    let logs = stderr.join().unwrap();
    let validated: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("\"validated\""))
        .collect();
    assert_eq!(
        validated.len(),
        1,
        "one debug line, for the object that asked: {logs}"
    );
    assert!(
        validated[0].contains("debug-uid-1") && validated[0].contains("DEBUG"),
        "{}",
        validated[0]
    );
    assert!(
        !logs.contains("admission review answered"),
        "info lines stay filtered: {logs}"
    );
}
