//! A small JSON-RPC client for end-to-end tests of `hivesync lsp`: starts the real binary,
//! frames messages with `Content-Length` headers over its stdin/stdout, answers the server's
//! own requests (registrations, progress tokens, `workspace/applyEdit`) and keeps every
//! notification it receives for later assertions. Anything on stdout that is not a well-framed
//! JSON-RPC message is recorded as a protocol violation.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to exit after `exit` (it gives itself 2 s at most).
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `hivesync lsp` and what it sent.
pub struct LspClient {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    next_id: i64,
    /// Every message from the server that was not a response, in order.
    pub received: Vec<Value>,
    /// Responses that arrived while waiting for another one.
    responses: Vec<Value>,
    /// Stdout content that was not a framed JSON-RPC message.
    pub violations: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<String>>,
    /// The result given to the server's `workspace/applyEdit` requests.
    pub applied_edits: Vec<Value>,
    /// Whether requests from the server get answers (an editor that never answers: `false`).
    pub answer_server_requests: bool,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
}

/// A `file://` URI for a path.
pub fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

impl LspClient {
    /// Starts `hivesync lsp` isolated in `home` (see [`crate::hivesync`]).
    pub fn start(home: &Path) -> LspClient {
        LspClient::start_with(home, &crate::hivesync_bin())
    }

    /// Like [`LspClient::start`], running the binary at `bin`.
    pub fn start_with(home: &Path, bin: &Path) -> LspClient {
        let mut child = crate::hivesync_at(bin, home)
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hivesync lsp starts");
        let stdout = child.stdout.take().expect("stdout");
        let stderr_pipe = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        let violations = Arc::new(Mutex::new(Vec::new()));
        let v = violations.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length: Option<usize> = None;
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let trimmed = line.trim_end();
                    if trimmed.is_empty() {
                        break;
                    }
                    match trimmed.strip_prefix("Content-Length: ") {
                        Some(n) => length = n.parse().ok(),
                        None if trimmed.starts_with("Content-Type:") => {}
                        None => v.lock().expect("lock").push(line.clone()),
                    }
                }
                let Some(length) = length else {
                    v.lock()
                        .expect("lock")
                        .push("header without Content-Length".into());
                    continue;
                };
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                match serde_json::from_slice::<Value>(&body) {
                    Ok(msg) => {
                        if tx.send(msg).is_err() {
                            return;
                        }
                    }
                    Err(e) => v.lock().expect("lock").push(format!(
                        "not JSON ({e}): {}",
                        String::from_utf8_lossy(&body)
                    )),
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let s = stderr.clone();
        let stderr_thread = std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr_pipe);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                s.lock().expect("lock").push_str(&line);
                line.clear();
            }
        });
        LspClient {
            stdin: child.stdin.take(),
            child,
            rx,
            next_id: 1,
            received: Vec::new(),
            responses: Vec::new(),
            violations,
            stderr,
            applied_edits: Vec::new(),
            answer_server_requests: true,
            stderr_thread: Some(stderr_thread),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes raw bytes to the server (for malformed-input tests).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write");
        stdin.flush().expect("flush");
    }

    fn send(&mut self, msg: &Value) {
        let body = serde_json::to_vec(msg).expect("serialize");
        let mut framed = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        framed.extend(body);
        self.send_raw(&framed);
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns its id without waiting.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Sends a request and waits for its response (the whole message: `result` or `error`).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.response(id)
    }

    /// The `result` of a request; panics on an error response.
    pub fn result(&mut self, method: &str, params: Value) -> Value {
        let response = self.request(method, params);
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    /// Waits for the response to request `id`.
    pub fn response(&mut self, id: i64) -> Value {
        if let Some(i) = self.responses.iter().position(|r| r["id"] == json!(id)) {
            return self.responses.remove(i);
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let msg = self.next_message(deadline);
            if msg.get("method").is_none() {
                if msg["id"] == json!(id) {
                    return msg;
                }
                self.responses.push(msg);
            }
        }
    }

    /// Waits for an error response with a `null` id (the answer to a message so malformed that
    /// its id could not be read).
    pub fn error_without_id(&mut self) -> Value {
        let null = |r: &Value| r.get("id") == Some(&Value::Null) && r.get("error").is_some();
        if let Some(i) = self.responses.iter().position(null) {
            return self.responses.remove(i);
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let msg = self.next_message_or(deadline, "an error response without id");
            if msg.get("method").is_none() {
                if null(&msg) {
                    return msg;
                }
                self.responses.push(msg);
            }
        }
    }

    /// Waits for a notification or server request matching `pred` (also searching those
    /// already received) and returns it.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(m) = self.received.iter().find(|m| pred(m)) {
            return m.clone();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let msg = self.next_message_or(deadline, what);
            if msg.get("method").is_some() && pred(&msg) {
                return msg;
            }
            if msg.get("method").is_none() {
                self.responses.push(msg);
            }
        }
    }

    /// Forgets the notifications received so far.
    pub fn clear_received(&mut self) {
        self.received.clear();
    }

    fn next_message(&mut self, deadline: Instant) -> Value {
        self.next_message_or(deadline, "a message")
    }

    fn next_message_or(&mut self, deadline: Instant, what: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match self.rx.recv_timeout(left) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => panic!(
                "timed out waiting for {what}; server stderr:\n{}",
                self.stderr.lock().expect("lock")
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "the server closed stdout while waiting for {what}; stderr:\n{}",
                self.stderr.lock().expect("lock")
            ),
        };
        if msg.get("method").is_some() {
            if let Some(id) = msg
                .get("id")
                .cloned()
                .filter(|_| self.answer_server_requests)
            {
                // A request from the server: answer it as an editor would.
                let result = match msg["method"].as_str() {
                    Some("workspace/applyEdit") => {
                        self.applied_edits.push(msg["params"].clone());
                        json!({"applied": true})
                    }
                    Some("workspace/configuration") => json!([]),
                    Some("window/showDocument") => json!({"success": true}),
                    _ => Value::Null,
                };
                self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
            }
            self.received.push(msg.clone());
        }
        msg
    }

    /// `initialize` (with the given capabilities and options) + `initialized`; returns the
    /// initialize result.
    pub fn initialize(&mut self, root: &Path, capabilities: Value, options: Value) -> Value {
        let result = self.result(
            "initialize",
            json!({
                "processId": null,
                "rootUri": uri(root),
                "workspaceFolders": [{"uri": uri(root), "name": "root"}],
                "capabilities": capabilities,
                "initializationOptions": options,
            }),
        );
        self.notify("initialized", json!({}));
        result
    }

    /// Waits until the first indexing finished (its progress `end`).
    pub fn wait_indexed(&mut self) {
        self.wait_for("the end of indexing", |m| {
            m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
        });
    }

    pub fn open(&mut self, path: &Path, language: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri(path), "languageId": language, "version": 1, "text": text}}),
        );
    }

    /// `shutdown` then `exit`; returns the exit status and any non-protocol output. The pipe
    /// stays open, as some editors leave it: the server must exit on `exit` alone.
    pub fn shutdown(mut self) -> (ExitStatus, Vec<String>) {
        let r = self.request("shutdown", Value::Null);
        assert!(r.get("error").is_none(), "shutdown failed: {r}");
        self.exit()
    }

    /// Sends `exit` (without `shutdown` first, unless [`LspClient::shutdown`] did) and waits
    /// for the process to end.
    pub fn exit(mut self) -> (ExitStatus, Vec<String>) {
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The log is complete once the process is gone (see `log`).
                if let Some(t) = self.stderr_thread.take() {
                    let _ = t.join();
                }
                let violations = self.violations.lock().expect("lock").clone();
                return (status, violations);
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {EXIT_TIMEOUT:?} of `exit`; stderr:\n{}",
                self.stderr.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
