//! The server over real TCP: it listens, answers, and on the shutdown signal lets an in-flight
//! request finish before it stops.
#![allow(clippy::unwrap_used)]

use hivesync_backend::{Config, Server, Services};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn send(stream: &mut TcpStream, method: &str, path: &str, body: &str) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
}

async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn serves_over_tcp_and_finishes_in_flight_requests_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        preview_bind: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let server = Server::bind(&config, Services::default()).await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let mut s = TcpStream::connect(addr).await.unwrap();
    send(&mut s, "GET", "/healthz", "").await;
    let reply = read_all(&mut s).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("x-request-id:"),
        "{reply}"
    );

    // Registration hashes a password (tens of milliseconds): still running when the signal
    // comes, so it must complete.
    let mut s = TcpStream::connect(addr).await.unwrap();
    send(
        &mut s,
        "POST",
        "/api/v1/auth/register",
        r#"{"email":"ada@example.com","password":"correct horse battery","name":"Ada"}"#,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    stop.send(()).unwrap();
    let reply = read_all(&mut s).await;
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");

    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
    // The embedded parts are in the data directory.
    assert!(dir.path().join("hivesync.db").is_file());
    assert!(dir.path().join("jwt_secret").is_file());
}

#[tokio::test]
async fn refuses_to_start_on_postgres_without_a_secret() {
    let config = Config {
        database_url: Some("postgres://postgres@127.0.0.1:1/none".into()),
        ..Config::default()
    };
    let err = Server::bind(&config, Services::default())
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("jwt_secret"), "{err}");
}
