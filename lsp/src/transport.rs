//! The wire: `Content-Length` framing between the editor and tower-lsp-server, with every
//! incoming message checked first.
//!
//! tower-lsp-server's codec ends the session on the first malformed message. So the server never
//! reads the editor's bytes itself: [`serve`] reads them, answers what is not a JSON-RPC message
//! (`-32700` Parse error for bad framing or JSON, `-32600` Invalid Request for JSON that is not a
//! message — with the request's id when it has one, else `null`) and passes well-formed messages
//! on, re-framed. The server's own output is copied to the editor a whole message at a time, so
//! the two never interleave; nothing else is ever written there.
//!
//! It also bounds the end of a session: once the editor sent `exit` (or closed its side), the
//! server gets [`EXIT_GRACE`] to finish; work still waiting then — say, on an answer the editor
//! will never send — is dropped with a warning rather than keeping the process alive.

use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};
use tower_lsp_server::jsonrpc::{Request, Response};

/// The largest message accepted (a `didOpen` of a very large file fits).
pub const MAX_MESSAGE: usize = 256 << 20;
/// Longest header line; longer ones are garbage.
const MAX_HEADER_LINE: u64 = 8 << 10;
/// How long the server may take to stop after the input ended.
pub const EXIT_GRACE: Duration = Duration::from_secs(2);

/// One unit read from a `Content-Length`-framed stream.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A body, exactly `Content-Length` bytes.
    Body(Vec<u8>),
    /// Bytes that are not a well-framed message (already skipped), and why.
    Garbage(String),
}

/// Reads the next frame; `None` at the end of the stream. Header names are matched
/// case-insensitively; `Content-Type` and unknown headers are ignored (bodies are checked for
/// UTF-8 separately). After garbage, reading resumes at the next header line.
pub async fn read_frame<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Option<Frame>> {
    let mut length: Option<Result<usize, String>> = None;
    let mut seen_header = false;
    loop {
        let mut line = Vec::new();
        let n = (&mut *r)
            .take(MAX_HEADER_LINE)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(if seen_header {
                Some(Frame::Garbage(
                    "the input ended inside a message header".into(),
                ))
            } else {
                None
            });
        }
        if !line.ends_with(b"\n") && n as u64 == MAX_HEADER_LINE {
            skip_line(r).await?;
            return Ok(Some(Frame::Garbage("a header line is too long".into())));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if !seen_header {
                continue; // stray line break between messages
            }
            break;
        }
        let Some((name, value)) = text.split_once(':') else {
            return Ok(Some(Frame::Garbage(format!(
                "expected a `Content-Length: N` header, got {:?}",
                shorten(text)
            ))));
        };
        seen_header = true;
        if name.trim().eq_ignore_ascii_case("content-length") {
            let value = value.trim();
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("invalid Content-Length {:?}", shorten(value))),
            );
        }
    }
    let length = match length {
        None => return Ok(Some(Frame::Garbage("missing Content-Length header".into()))),
        Some(Err(e)) => return Ok(Some(Frame::Garbage(e))),
        Some(Ok(n)) => n,
    };
    if length > MAX_MESSAGE {
        let skipped =
            tokio::io::copy(&mut (&mut *r).take(length as u64), &mut tokio::io::sink()).await?;
        if (skipped as usize) < length {
            return Ok(None);
        }
        return Ok(Some(Frame::Garbage(format!(
            "message of {length} bytes is larger than the limit of {MAX_MESSAGE}"
        ))));
    }
    let mut body = vec![0; length];
    match r.read_exact(&mut body).await {
        Ok(_) => Ok(Some(Frame::Body(body))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Some(Frame::Garbage(
            "the input ended inside a message body".into(),
        ))),
        Err(e) => Err(e),
    }
}

async fn skip_line<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<()> {
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// What an incoming body is.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// A JSON-RPC request, notification or response: pass it on. `method` is set for requests
    /// and notifications.
    Message { method: Option<String> },
    /// Not one: answer with this error response.
    Reject(Value),
}

/// Checks a body: UTF-8 JSON, shaped as a JSON-RPC 2.0 message.
pub fn classify(body: &[u8]) -> Incoming {
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => return Incoming::Reject(parse_error(&format!("the body is not UTF-8: {e}"))),
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Incoming::Reject(parse_error(&format!("the body is not JSON: {e}"))),
    };
    let is_request = serde_json::from_value::<Request>(value.clone()).is_ok();
    if is_request || serde_json::from_value::<Response>(value.clone()).is_ok() {
        let method = if is_request {
            value
                .get("method")
                .and_then(Value::as_str)
                .map(str::to_owned)
        } else {
            None
        };
        return Incoming::Message { method };
    }
    let id = value
        .get("id")
        .filter(|id| id.is_string() || id.is_i64() || id.is_u64())
        .cloned()
        .unwrap_or(Value::Null);
    let why = if value.get("jsonrpc") != Some(&json!("2.0")) {
        "not a JSON-RPC 2.0 message (\"jsonrpc\": \"2.0\" is missing)"
    } else {
        "not a JSON-RPC request, notification or response"
    };
    Incoming::Reject(error_response(
        id,
        -32600,
        &format!("Invalid Request: {why}"),
    ))
}

pub fn parse_error(detail: &str) -> Value {
    error_response(Value::Null, -32700, &format!("Parse error: {detail}"))
}

fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Writes one framed message.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> std::io::Result<()> {
    let mut framed = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    framed.extend_from_slice(body);
    w.write_all(&framed).await?;
    w.flush().await
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// `shutdown` was requested before `exit` (the protocol's clean exit: status 0).
    pub clean: bool,
}

/// Runs `server` (reading `server_in`, writing `server_out`) behind the checking layer on
/// `input`/`output`. `server_in`/`server_out` are the far ends of in-memory pipes whose near
/// ends are given here as `to_server`/`from_server`.
pub async fn pump<I, O, S>(
    input: I,
    output: O,
    mut to_server: tokio::io::DuplexStream,
    from_server: tokio::io::DuplexStream,
    server: S,
) -> Ending
where
    I: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
    S: std::future::Future<Output = ()>,
{
    let output = tokio::sync::Mutex::new(output);
    let input_ended = tokio::sync::Notify::new();
    let mut shutdown_requested = false;
    let mut exited = false;

    let read_input = async {
        let mut input = tokio::io::BufReader::new(input);
        // A run of garbage (say, a pasted body without a header) gets one answer, not one per line.
        let mut in_garbage = false;
        loop {
            let frame = match read_frame(&mut input).await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("reading the editor's messages failed: {e}");
                    break;
                }
            };
            let reply = match frame {
                Frame::Garbage(_) if in_garbage => continue,
                Frame::Garbage(why) => {
                    in_garbage = true;
                    tracing::warn!("malformed input from the editor: {why}");
                    parse_error(&why)
                }
                Frame::Body(body) => match classify(&body) {
                    Incoming::Message { method } => {
                        in_garbage = false;
                        if to_server.write_all(&frame_bytes(&body)).await.is_err() {
                            break; // the server stopped reading
                        }
                        match method.as_deref() {
                            Some("shutdown") => shutdown_requested = true,
                            Some("exit") => {
                                exited = true;
                                break;
                            }
                            _ => {}
                        }
                        continue;
                    }
                    Incoming::Reject(reply) => {
                        in_garbage = false;
                        tracing::warn!(
                            "malformed message from the editor: {}",
                            reply["error"]["message"]
                        );
                        reply
                    }
                },
            };
            let body = serde_json::to_vec(&reply).unwrap_or_default();
            let mut out = output.lock().await;
            if write_frame(&mut *out, &body).await.is_err() {
                break;
            }
        }
        drop(to_server);
        input_ended.notify_one();
    };

    let copy_output = async {
        let mut from_server = tokio::io::BufReader::new(from_server);
        while let Ok(Some(frame)) = read_frame(&mut from_server).await {
            let Frame::Body(body) = frame else {
                tracing::error!("the server wrote a malformed message; dropped");
                continue;
            };
            let mut out = output.lock().await;
            if let Err(e) = write_frame(&mut *out, &body).await {
                tracing::warn!("writing to the editor failed: {e}");
                break;
            }
        }
    };

    let run_server = async {
        tokio::pin!(server);
        tokio::select! {
            () = &mut server => {}
            () = async {
                input_ended.notified().await;
                tokio::time::sleep(EXIT_GRACE).await;
            } => {
                tracing::warn!(
                    "the server did not stop within {} s after the input ended; \
                     abandoning its unfinished work",
                    EXIT_GRACE.as_secs()
                );
            }
        }
    };

    // The server's end of the output pipe closes when `run_server` drops it, which ends
    // `copy_output`.
    tokio::join!(read_input, copy_output, run_server);
    Ending {
        clean: exited && shutdown_requested,
    }
}

fn frame_bytes(body: &[u8]) -> Vec<u8> {
    let mut framed = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    framed.extend_from_slice(body);
    framed
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(bytes: &[u8]) -> Vec<Frame> {
        let mut r = tokio::io::BufReader::new(bytes);
        let mut out = Vec::new();
        while let Some(f) = read_frame(&mut r).await.expect("read") {
            out.push(f);
        }
        out
    }

    #[tokio::test]
    async fn frames_resync_after_garbage() {
        let got = frames(
            b"Content-Length: 2\r\n\r\n{}\r\nhello there\r\ncontent-length: 4\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\nnull\
              Content-Length: x\r\n\r\nContent-Length: 2\r\n\r\n[]Content-Length: 9\r\n\r\n{}",
        )
        .await;
        assert_eq!(
            got,
            vec![
                Frame::Body(b"{}".to_vec()),
                Frame::Garbage("expected a `Content-Length: N` header, got \"hello there\"".into()),
                Frame::Body(b"null".to_vec()),
                Frame::Garbage("invalid Content-Length \"x\"".into()),
                Frame::Body(b"[]".to_vec()),
                Frame::Garbage("the input ended inside a message body".into()),
            ]
        );
    }

    #[test]
    fn bodies_are_classified() {
        let msg = |s: &str| classify(s.as_bytes());
        assert_eq!(
            msg(r#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#),
            Incoming::Message {
                method: Some("shutdown".into())
            }
        );
        assert_eq!(
            msg(r#"{"jsonrpc":"2.0","id":1,"result":null}"#),
            Incoming::Message { method: None }
        );
        let Incoming::Reject(r) = msg(r#"{"jsonrp"#) else {
            panic!("accepted")
        };
        assert_eq!(r["error"]["code"], -32700);
        assert_eq!(r["id"], Value::Null);
        let Incoming::Reject(r) = msg(r#"{"id":"a","method":"x"}"#) else {
            panic!("accepted")
        };
        assert_eq!(r["error"]["code"], -32600);
        assert_eq!(r["id"], "a");
        let Incoming::Reject(r) = msg("[1]") else {
            panic!("accepted")
        };
        assert_eq!(r["id"], Value::Null);
        let Incoming::Reject(r) = classify(b"\xff\xfe") else {
            panic!("accepted")
        };
        assert_eq!(r["error"]["code"], -32700);
    }
}
