//! Statelessness: two `hivesync server` processes share one database (and Redis / RabbitMQ when
//! their URLs are set), as instances behind a load balancer do. What is written through one is
//! visible through the other: a user registered on A logs in on B, a project created on A is
//! listed and renamed on B, a refresh token issued by A is rotated by B. With `AMQP_URL` set,
//! an event written through A arrives on an SSE stream opened on B.
//!
//! Without `DATABASE_URL` the two processes share one embedded SQLite file and JWT secret in a
//! common data directory (the embedded default is one instance, but its state is still all on
//! disk, so this holds too).
#![allow(clippy::unwrap_used)]

use hivesync_e2e::hivesync;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released; the server binds it right after).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A running `hivesync server`, killed on drop.
struct Instance {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(home: &Path, data_dir: &Path) -> Instance {
    let addr = free_addr();
    let mut cmd = hivesync(home);
    cmd.args(["server", "--bind", &addr.to_string(), "--preview-bind"])
        .arg(free_addr().to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .env(
            "HIVESYNC_SERVER_JWT_SECRET",
            "stateless-test-secret-".repeat(3),
        )
        .env("HIVESYNC_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for var in ["DATABASE_URL", "REDIS_URL", "AMQP_URL"] {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => cmd.env(var, v),
            _ => cmd.env_remove(var),
        };
    }
    if let Ok(prefix) = std::env::var("HIVESYNC_TEST_PREFIX") {
        cmd.env(
            "HIVESYNC_SERVER_REDIS_KEY_PREFIX",
            format!("{prefix}stateless-{}:", std::process::id()),
        );
    }
    let child = cmd.spawn().unwrap();
    let instance = Instance { child, addr };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = request(addr, "GET", "/readyz", None, None) {
            return instance;
        }
        assert!(
            Instant::now() < deadline,
            "server on {addr} not ready within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Raw request bytes for one HTTP/1.1 request.
fn request_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    extra: &str,
) -> Vec<u8> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}{extra}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One request; returns the status and the JSON body (`Null` when empty or not JSON).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(&request_bytes(addr, method, path, token, body, ""))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

fn ok(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    let (status, reply) = request(addr, method, path, token, body.as_ref()).unwrap();
    assert!(
        (200..300).contains(&status),
        "{method} {path} on {addr}: {status} {reply}"
    );
    reply
}

#[test]
fn two_instances_share_users_projects_tokens_and_events() {
    let home = tempfile::tempdir().unwrap();
    // One data dir: with the embedded default it holds the shared SQLite file; with
    // DATABASE_URL it only holds local blobs.
    let data = home.path().join("data");
    let a = start(home.path(), &data);
    let b = start(home.path(), &data);

    let email = format!("stateless-{}@example.com", std::process::id());
    let password = "correct horse battery staple";
    let (status, _) = request(
        a.addr,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(&json!({"email": email, "password": password, "name": "Ada"})),
    )
    .unwrap();
    assert!(status == 201, "register on A: {status}");

    // The user registered on A logs in on B; B's access token works on A.
    let login = ok(
        b.addr,
        "POST",
        "/api/v1/auth/login",
        None,
        json!({"email": email, "password": password}),
    );
    let token = login["access_token"].as_str().unwrap().to_string();
    let me = ok(a.addr, "GET", "/api/v1/me", Some(&token), Value::Null);
    assert_eq!(me["email"], email.as_str());

    // A project created on A is listed and changed on B.
    let project = ok(
        a.addr,
        "POST",
        "/api/v1/projects",
        Some(&token),
        json!({"name": "shared"}),
    );
    let pid = project["id"].as_str().unwrap().to_string();
    let listed = ok(b.addr, "GET", "/api/v1/projects", Some(&token), Value::Null);
    assert!(
        listed.to_string().contains(&pid),
        "project from A listed on B: {listed}"
    );

    // Events: the log is shared whatever the broker; with AMQP_URL, live delivery crosses
    // instances too.
    let live = std::env::var("AMQP_URL").is_ok_and(|v| !v.is_empty());
    let stream = live.then(|| open_stream(b.addr, &token));
    ok(
        a.addr,
        "PATCH",
        &format!("/api/v1/projects/{pid}"),
        Some(&token),
        json!({"name": "renamed on A"}),
    );
    let polled = ok(
        b.addr,
        "GET",
        &format!("/api/v1/projects/{pid}/events"),
        Some(&token),
        Value::Null,
    );
    assert!(
        polled.to_string().contains("project.updated"),
        "B's log has A's event: {polled}"
    );
    if let Some(mut stream) = stream {
        // Within 10 s: well before the stream's 30 s catch-up read of the log, so the frame
        // came through the broker.
        let got = read_until(&mut stream, "project.updated", Duration::from_secs(10));
        assert!(got.contains(&pid), "the SSE frame names the project: {got}");
    }

    // A refresh token issued by B rotates on A; the old one is then refused on B.
    let refresh = login["refresh_token"].as_str().unwrap().to_string();
    let rotated = ok(
        a.addr,
        "POST",
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    );
    assert!(rotated["access_token"].is_string());
    let (status, _) = request(
        b.addr,
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(&json!({"refresh_token": refresh})),
    )
    .unwrap();
    assert_eq!(
        status, 401,
        "a rotated refresh token is refused by the other instance"
    );
}

/// Opens `GET /api/v1/events` (SSE) and waits for the response head.
fn open_stream(addr: SocketAddr, token: &str) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(&request_bytes(
            addr,
            "GET",
            "/api/v1/events",
            Some(token),
            None,
            "accept: text/event-stream\r\n",
        ))
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.contains(" 200"), "SSE on {addr}: {status}");
    // Let the instance bind its broker queue before the event is written.
    std::thread::sleep(Duration::from_millis(500));
    reader
}

/// Reads the stream until `needle` appears; returns everything read.
fn read_until(reader: &mut BufReader<TcpStream>, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut seen = String::new();
    while Instant::now() < deadline {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                seen.push_str(&line);
                if seen.contains(needle) {
                    // The data line follows the event line.
                    let mut data = String::new();
                    let _ = reader.read_line(&mut data);
                    let _ = reader.read_line(&mut data);
                    seen.push_str(&data);
                    return seen;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("SSE stream broke: {e}"),
        }
    }
    panic!("`{needle}` did not arrive on the other instance's SSE stream: {seen}");
}
