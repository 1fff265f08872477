//! Headless Chromium driven over the Chrome DevTools Protocol, for tests of
//! the pages roost-keeper serves: one page target, JavaScript evaluated in
//! it, screenshots. A blocking websocket with a read timeout, so a hung
//! browser fails the test instead of hanging it; the browser is killed on
//! drop (and by a watchdog if the test process dies first).
//!
//! `tests/browser/install.sh` (`make chromium`) installs Debian's `chromium`.

use crate::watchdog;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// How long one protocol command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the browser may take to start and print its DevTools address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The last console lines, exceptions and browser log entries kept.
const MAX_LOGS: usize = 200;

/// A headless Chromium with one page, attached (flattened session).
pub struct Browser {
    child: Child,
    watchdog: Option<Child>,
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Events of our page not yet looked at (bounded).
    events: VecDeque<Value>,
    logs: VecDeque<String>,
    _profile: tempfile::TempDir,
}

/// `chromium` on PATH, else /usr/bin/chromium.
pub fn chromium_binary() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("chromium"))
            .find(|candidate| candidate.is_file())
    });
    let fallback = PathBuf::from("/usr/bin/chromium");
    on_path
        .or_else(|| fallback.is_file().then_some(fallback))
        .ok_or_else(|| "no chromium on PATH or at /usr/bin/chromium: run `make chromium` (tests/browser/install.sh)".to_owned())
}

/// True when this process runs as root (Chromium's sandbox refuses root).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

fn protocol_error(what: &str, err: impl std::fmt::Display) -> String {
    format!("devtools {what}: {err}")
}

impl Browser {
    /// Starts Chromium headless with a fresh profile, a 1280x800 window and
    /// certificate errors ignored (the servers under test sign their own).
    pub fn launch() -> Result<Browser, String> {
        let profile = tempfile::Builder::new()
            .prefix("roost-chromium-")
            .tempdir()
            .map_err(|e| format!("profile directory: {e}"))?;
        let mut command = Command::new(chromium_binary()?);
        command
            .args([
                "--headless=new",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--ignore-certificate-errors",
                "--window-size=1280,800",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-breakpad",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()));
        if is_root() {
            command.arg("--no-sandbox");
        }
        let mut child = command
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start chromium: {e}"))?;
        let mut watchdog = watchdog(&[child.id()], None).ok();
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, address) = mpsc::channel();
        // Reads stderr to its end (a full pipe would stall the browser),
        // sending the DevTools address, or the lines so far when it exits first.
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sent {
                    continue;
                }
                if let Some(at) = line.find("DevTools listening on ") {
                    let url = line[at + "DevTools listening on ".len()..].trim();
                    sent = found.send(Ok(url.to_owned())).is_ok();
                } else if seen.len() < 20 {
                    seen.push(line);
                }
            }
            if !sent {
                let _ = found.send(Err(seen.join("\n")));
            }
        });
        let mut fail = |mut child: Child, message: String| {
            for child in [Some(&mut child), watchdog.as_mut()].into_iter().flatten() {
                let _ = child.kill();
                let _ = child.wait();
            }
            Err(message)
        };
        let url = match address.recv_timeout(START_TIMEOUT) {
            Ok(Ok(url)) => url,
            Ok(Err(output)) => return fail(child, format!("chromium exited:\n{output}")),
            Err(_) => {
                return fail(
                    child,
                    format!("chromium printed no DevTools address within {START_TIMEOUT:?}"),
                );
            }
        };
        let socket = match connect(&url) {
            Ok(socket) => socket,
            Err(err) => return fail(child, err),
        };
        let mut browser = Browser {
            child,
            watchdog,
            socket,
            session: String::new(),
            next_id: 0,
            events: VecDeque::new(),
            logs: VecDeque::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"].as_str().unwrap_or_default().to_owned();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        browser.session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {attached}"))?
            .to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({}))?;
        }
        // The viewport of a 1280x800 laptop screen (the window's is smaller).
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        Ok(browser)
    }

    /// Sends a command (to our page once attached) and waits for its result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = self.session.clone().into();
        }
        self.socket
            .send(Message::text(message.to_string()))
            .map_err(|e| protocol_error(method, e))?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let Some(message) = self.receive(deadline)? else {
                return Err(format!(
                    "devtools {method}: no answer within {COMMAND_TIMEOUT:?}"
                ));
            };
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    return Err(protocol_error(method, error));
                }
                return Ok(message["result"].clone());
            }
        }
    }

    /// The next message before `deadline` (`None` after it); events of our
    /// page are queued (and log lines kept) on the way.
    fn receive(&mut self, deadline: Instant) -> Result<Option<Value>, String> {
        loop {
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let text = match self.socket.read() {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(_)) => {
                    return Err("devtools: the browser closed the connection".into());
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        return Err(format!("chromium exited ({status})"));
                    }
                    continue;
                }
                Err(e) => return Err(protocol_error("read", e)),
            };
            let message: Value =
                serde_json::from_str(&text).map_err(|e| protocol_error("message", e))?;
            if message.get("method").is_some() {
                self.note_event(&message);
            }
            return Ok(Some(message));
        }
    }

    fn note_event(&mut self, event: &Value) {
        let params = &event["params"];
        let line = match event["method"].as_str().unwrap_or_default() {
            "Runtime.consoleAPICalled" => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|arg| match &arg["value"] {
                        Value::String(text) => text.clone(),
                        Value::Null => arg["description"].as_str().unwrap_or_default().to_owned(),
                        other => other.to_string(),
                    })
                    .collect();
                Some(format!(
                    "console.{}: {}",
                    params["type"].as_str().unwrap_or("log"),
                    args.join(" ")
                ))
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                let description = details["exception"]["description"].as_str();
                Some(format!(
                    "exception: {}",
                    description.unwrap_or(details["text"].as_str().unwrap_or_default())
                ))
            }
            "Log.entryAdded" => {
                let entry = &params["entry"];
                Some(format!(
                    "{} {}: {}",
                    entry["source"].as_str().unwrap_or_default(),
                    entry["level"].as_str().unwrap_or_default(),
                    entry["text"].as_str().unwrap_or_default()
                ))
            }
            _ => None,
        };
        if let Some(line) = line {
            if self.logs.len() == MAX_LOGS {
                self.logs.pop_front();
            }
            self.logs.push_back(line);
        }
        if event["sessionId"].as_str() == Some(self.session.as_str()) {
            if self.events.len() == MAX_LOGS {
                self.events.pop_front();
            }
            self.events.push_back(event.clone());
        }
    }

    /// Console messages, uncaught exceptions and the browser's log entries
    /// (Content Security Policy violations among them), oldest first.
    pub fn logs(&self) -> Vec<String> {
        self.logs.iter().cloned().collect()
    }

    /// Opens `url` and waits for its load event.
    pub fn navigate(&mut self, url: &str) -> Result<(), String> {
        self.events.clear();
        let result = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(error) = result["errorText"].as_str() {
            return Err(format!("navigate to {url}: {error}"));
        }
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            if self
                .events
                .iter()
                .any(|e| e["method"] == "Page.loadEventFired")
            {
                return Ok(());
            }
            if self.receive(deadline)?.is_none() {
                return Err(format!("{url}: no load event within {COMMAND_TIMEOUT:?}"));
            }
        }
    }

    /// The value of a JavaScript expression in the page (a promise is
    /// awaited), as JSON; a thrown exception is an error.
    pub fn evaluate(&mut self, expression: &str) -> Result<Value, String> {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true, "userGesture": true}),
        )?;
        if let Some(details) = result.get("exceptionDetails") {
            let description = details["exception"]["description"].as_str();
            return Err(format!(
                "{expression}: {}",
                description.unwrap_or(details["text"].as_str().unwrap_or("exception"))
            ));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Evaluates `predicate` every 100 ms until it is `true`; the error
    /// names its last value (or exception) and the page's logs.
    pub fn wait_for(&mut self, predicate: &str, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let last = self.evaluate(predicate);
            if matches!(last, Ok(Value::Bool(true))) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "`{predicate}` not true within {within:?} (last: {last:?}); page logs:\n{}",
                    self.logs().join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes a PNG of the page's viewport to `path`.
    pub fn screenshot_png(&mut self, path: &Path) -> Result<(), String> {
        use base64::Engine as _;
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| protocol_error("screenshot", e))?;
        std::fs::write(path, png).map_err(|e| format!("write {}: {e}", path.display()))
    }
}

/// The websocket to `ws://127.0.0.1:PORT/devtools/browser/ID`, with a
/// short read timeout (reads are retried until each command's deadline).
fn connect(url: &str) -> Result<WebSocket<TcpStream>, String> {
    let authority = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| format!("unexpected DevTools address {url}"))?;
    let addr: SocketAddr = authority
        .parse()
        .map_err(|e| format!("DevTools address {url}: {e}"))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| protocol_error("connect", e))?;
    let timeouts = |stream: &TcpStream, read: Duration| {
        stream
            .set_read_timeout(Some(read))
            .and_then(|()| stream.set_write_timeout(Some(COMMAND_TIMEOUT)))
            .map_err(|e| protocol_error("socket", e))
    };
    // The handshake in one go (a timed-out read fails it), then short reads.
    timeouts(&stream, Duration::from_secs(10))?;
    let (socket, _) =
        tungstenite::client(url, stream).map_err(|e| protocol_error("handshake", e))?;
    timeouts(socket.get_ref(), Duration::from_millis(200))?;
    Ok(socket)
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Politely first (the browser ends its helper processes), then SIGKILL.
        self.session.clear();
        self.next_id += 1;
        let close = json!({"id": self.next_id, "method": "Browser.close"});
        let _ = self.socket.send(Message::text(close.to_string()));
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        for child in [Some(&mut self.child), self.watchdog.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
