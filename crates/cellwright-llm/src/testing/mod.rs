//! Test support: a scripted chat-completions server on loopback, for tests at the HTTP
//! boundary, and a [`tiny_llama`] to run the embedded engine on without fetched weights.
//!
//! The server speaks the real wire protocol (JSON bodies, server-sent events, OpenAI error objects)
//! and answers the n-th request with the n-th [`Reply`] (the last one repeats), recording
//! every request body and `Authorization` header it receives.

pub mod tiny_llama;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

/// What the server answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this JSON body.
    Json(Value),
    /// This status with this body (e.g. an OpenAI error object).
    Status(u16, Value),
    /// 200 with this body verbatim (e.g. malformed JSON).
    Raw(String),
    /// Server-sent events: each value as a `data:` line, then `data: [DONE]`.
    Stream(Vec<Value>),
    /// Server-sent events that stop after these chunks by breaking the connection.
    StreamCut(Vec<Value>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Shared {
    replies: Vec<Reply>,
    received: Vec<Received>,
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Mutex<SharedDebug>>,
    task: tokio::task::JoinHandle<()>,
}

/// `Shared` behind a Debug-able name.
struct SharedDebug(Shared);

impl std::fmt::Debug for SharedDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} replies, {} received",
            self.0.replies.len(),
            self.0.received.len()
        )
    }
}

impl FakeOpenAi {
    pub async fn start(replies: Vec<Reply>) -> std::io::Result<Self> {
        let shared = Arc::new(Mutex::new(SharedDebug(Shared {
            replies,
            received: Vec::new(),
        })));
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The base URL to give a client: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared
            .lock()
            .map(|s| s.0.received.clone())
            .unwrap_or_default()
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Mutex<SharedDebug>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let Ok(mut guard) = shared.lock() else {
            return status(500, json!({"error": {"message": "poisoned"}}));
        };
        let s = &mut guard.0;
        s.received.push(Received {
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        let n = s.received.len() - 1;
        s.replies.get(n).or(s.replies.last()).cloned()
    };
    match reply {
        None => status(500, json!({"error": {"message": "no reply scripted"}})),
        Some(Reply::Json(v)) => status(200, v),
        Some(Reply::Status(code, v)) => status(code, v),
        Some(Reply::Raw(text)) => Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(text))
            .unwrap_or_default(),
        Some(Reply::Stream(chunks)) => sse(chunks, false),
        Some(Reply::StreamCut(chunks)) => sse(chunks, true),
    }
}

fn status(code: u16, body: Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

fn sse(chunks: Vec<Value>, cut: bool) -> Response {
    let mut items: Vec<Result<Bytes, std::io::Error>> = chunks
        .into_iter()
        .map(|c| Ok(Bytes::from(format!("data: {c}\n\n"))))
        .collect();
    if cut {
        items.push(Err(std::io::Error::other("connection cut on purpose")));
    } else {
        items.push(Ok(Bytes::from("data: [DONE]\n\n")));
    }
    // Pause before each event so the head and the first chunks are on the wire before a
    // scripted cut: the client must see a stream that breaks, not a refused request.
    let stream = futures::StreamExt::then(futures::stream::iter(items), |item| async move {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        item
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

/// A complete non-streamed reply with text.
pub fn text_completion(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    })
}

/// A complete non-streamed reply calling tools: `(name, arguments)` pairs.
pub fn tool_completion(calls: &[(&str, Value)]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"id": format!("call_{i}"), "type": "function",
                   "function": {"name": name, "arguments": args.to_string()}})
        })
        .collect();
    json!({
        "id": "chatcmpl-2", "object": "chat.completion", "created": 0, "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls},
                     "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
    })
}

/// Stream chunks spelling `text` in pieces of `piece` characters, then a finish chunk and a
/// usage chunk.
pub fn text_chunks(text: &str, piece: usize) -> Vec<Value> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<Value> = chars
        .chunks(piece.max(1))
        .map(|c| chunk(json!({"content": c.iter().collect::<String>()}), None))
        .collect();
    out.push(chunk(json!({}), Some("stop")));
    out.push(json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake-model",
                    "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}));
    out
}

/// Stream chunks of one tool call whose arguments arrive in two halves.
pub fn tool_chunks(name: &str, arguments: &Value) -> Vec<Value> {
    let args = arguments.to_string();
    let (a, b) = args.split_at(args.len() / 2);
    vec![
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_s", "type": "function",
                                     "function": {"name": name, "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": b}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
    ]
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake-model",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

/// The OpenAI error object a server sends with a 4xx/5xx status.
pub fn error_body(message: &str, kind: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}
