//! `cellwright serve`: the embedded models behind an OpenAI-compatible HTTP API.
//!
//! `POST /v1/chat/completions` (JSON or server-sent events, tools and `tool_choice`),
//! `POST /v1/embeddings`, `GET /v1/models`. Errors are OpenAI error objects with 4xx/5xx
//! statuses. A request whose client goes away stops its generation.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cellwright_core::{
    CancelToken, ChatEvent, ChatModel, ChatRequest, ChatResponse, Effects, Embedder, FinishReason,
    Message, ModelError, Role, ToolCallRequest, ToolChoice, ToolSpec,
};
use cellwright_llm::embedded::{EmbeddedChat, MiniLm};
use clap::Args;
use futures::StreamExt;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The chat model to serve: `embedded` or `gguf:<file.gguf>`.
    #[arg(long, default_value = "embedded")]
    pub model: String,
}

/// The names clients use for the two models.
const CHAT_NAME: &str = "embedded";
const EMBED_NAME: &str = "all-MiniLM-L6-v2";

struct Served {
    chat: EmbeddedChat,
    embedder: MiniLm,
}

pub async fn run(args: ServeArgs, cancel: CancelToken) -> anyhow::Result<u8> {
    let spec = args.model.clone();
    let load_cancel = cancel.clone();
    let (chat, embedder) = tokio::task::spawn_blocking(move || {
        let bar = crate::progress::FetchBar::new();
        let chat = cellwright_llm::embedded::chat_from_spec(&spec, &bar, &load_cancel);
        let embedder = MiniLm::fetch_default(&bar, &load_cancel);
        bar.0.finish_and_clear();
        (chat, embedder)
    })
    .await?;
    let chat = chat.with_context(|| {
        format!(
            "`{}` is not a model serve can run (embedded, gguf:<file>)",
            args.model
        )
    })??;
    let served = Arc::new(Served {
        chat: crate::vocabulary::with_catalogue(chat),
        embedder: embedder?,
    });
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port (`--addr 127.0.0.1:0`).
    println!("listening on http://{addr}/v1");
    axum::serve(listener, router(served))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await?;
    Ok(0)
}

fn router(served: Arc<Served>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .with_state(served)
}

/// An OpenAI error object with its status.
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    param: Option<String>,
    message: String,
}

impl ApiError {
    fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            param: param.map(str::to_owned),
            message: message.into(),
        }
    }

    fn unknown_model(name: &str, known: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            code: Some("model_not_found"),
            param: Some("model".into()),
            message: format!("the model `{name}` does not exist here; use `{known}`"),
        }
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        let (status, kind, code) = match &e {
            ModelError::ContextLength { .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("context_length_exceeded"),
            ),
            ModelError::Config { .. } => (StatusCode::BAD_REQUEST, "invalid_request_error", None),
            ModelError::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "server_error", None),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None),
        };
        Self {
            status,
            kind,
            code,
            param: None,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }});
        (self.status, axum::Json(body)).into_response()
    }
}

fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(None, format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid(None, "the body must be a JSON object"));
    }
    Ok(value)
}

fn model_name<'a>(body: &'a Value, known: &str) -> Result<&'a str, ApiError> {
    let name = body["model"]
        .as_str()
        .ok_or_else(|| ApiError::invalid(Some("model"), "`model` (a string) is required"))?;
    if name != known {
        return Err(ApiError::unknown_model(name, known));
    }
    Ok(name)
}

/// The chat request in a chat-completions body.
fn chat_request(body: &Value) -> Result<ChatRequest, ApiError> {
    let messages = body["messages"]
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::invalid(Some("messages"), "`messages` must be a non-empty array"))?
        .iter()
        .enumerate()
        .map(|(i, m)| wire_message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let tools = match &body["tools"] {
        Value::Null => Vec::new(),
        Value::Array(tools) => tools
            .iter()
            .enumerate()
            .map(|(i, t)| wire_tool(i, t))
            .collect::<Result<_, _>>()?,
        _ => return Err(ApiError::invalid(Some("tools"), "`tools` must be an array")),
    };
    let tool_choice = match &body["tool_choice"] {
        Value::Null => ToolChoice::Auto,
        Value::String(s) if s == "auto" => ToolChoice::Auto,
        Value::String(s) if s == "none" => ToolChoice::None,
        Value::String(s) if s == "required" => ToolChoice::Required,
        v => match v["function"]["name"].as_str() {
            Some(name) if tools.iter().any(|t: &ToolSpec| t.name == name) => {
                ToolChoice::Named(name.to_owned())
            }
            Some(name) => {
                return Err(ApiError::invalid(
                    Some("tool_choice"),
                    format!("`tool_choice` names `{name}`, which is not among `tools`"),
                ));
            }
            None => {
                return Err(ApiError::invalid(
                    Some("tool_choice"),
                    "`tool_choice` must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": …}}",
                ));
            }
        },
    };
    let number = |key: &str| body[key].as_f64();
    let max_tokens = body["max_completion_tokens"]
        .as_u64()
        .or_else(|| body["max_tokens"].as_u64())
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(ChatRequest {
        messages,
        tools,
        tool_choice,
        max_tokens,
        temperature: number("temperature").map(|t| t as f32),
        seed: body["seed"].as_u64(),
    })
}

fn wire_message(i: usize, m: &Value) -> Result<Message, ApiError> {
    let param = format!("messages[{i}]");
    let role = match m["role"].as_str() {
        Some("system" | "developer") => Role::System,
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some("tool") => Role::Tool,
        other => {
            return Err(ApiError::invalid(
                Some(&param),
                format!("{param}.role must be system, user, assistant or tool, not {other:?}"),
            ));
        }
    };
    // Content is a string, or a list of text parts.
    let content = match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => {
            return Err(ApiError::invalid(
                Some(&param),
                format!("{param}.content must be a string or a list of text parts"),
            ));
        }
    };
    let tool_calls = m["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| ToolCallRequest {
            id: c["id"].as_str().unwrap_or_default().to_owned(),
            name: c["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            arguments: c["function"]["arguments"]
                .as_str()
                .unwrap_or("{}")
                .to_owned(),
        })
        .collect();
    Ok(Message {
        role,
        content,
        tool_calls,
        tool_call_id: m["tool_call_id"].as_str().map(str::to_owned),
    })
}

fn wire_tool(i: usize, t: &Value) -> Result<ToolSpec, ApiError> {
    let function = &t["function"];
    let name = function["name"].as_str().ok_or_else(|| {
        ApiError::invalid(
            Some(&format!("tools[{i}]")),
            format!("tools[{i}].function.name is required"),
        )
    })?;
    Ok(ToolSpec {
        name: name.to_owned(),
        description: function["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        parameters: match &function["parameters"] {
            Value::Null => json!({"type": "object", "properties": {}}),
            p => p.clone(),
        },
        output: json!({}),
        effects: Effects::Pure,
        answer: None,
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::Length => "length",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Other => "stop",
    }
}

fn wire_tool_calls(calls: &[ToolCallRequest]) -> Value {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "index": i,
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            })
        })
        .collect()
}

fn usage(response: &ChatResponse) -> Value {
    json!({
        "prompt_tokens": response.usage.input_tokens,
        "completion_tokens": response.usage.output_tokens,
        "total_tokens": response.usage.total(),
    })
}

fn completion(id: &str, response: &ChatResponse) -> Value {
    let mut message = json!({"role": "assistant", "content": response.message.content});
    if !response.message.tool_calls.is_empty() {
        message["tool_calls"] = wire_tool_calls(&response.message.tool_calls);
        message["content"] = Value::Null;
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": now(),
        "model": CHAT_NAME,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(response.finish_reason),
        }],
        "usage": usage(response),
    })
}

fn chunk(id: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": now(),
        "model": CHAT_NAME,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
}

async fn chat_completions(
    State(served): State<Arc<Served>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = body_json(&body)?;
    model_name(&body, CHAT_NAME)?;
    let request = chat_request(&body)?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    if body["stream"].as_bool() != Some(true) {
        let response = served.chat.chat(&request).await?;
        return Ok(axum::Json(completion(&id, &response)).into_response());
    }
    let with_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    // Dropping the stream (the client left) stops generation.
    let events = async_stream(&served.chat, request, id, with_usage);
    Ok(Sse::new(events).into_response())
}

/// The SSE events of one streamed completion, ending with `[DONE]`.
fn async_stream(
    chat: &EmbeddedChat,
    request: ChatRequest,
    id: String,
    with_usage: bool,
) -> impl futures::Stream<Item = Result<Event, Infallible>> + use<> {
    let data = |v: Value| Ok(Event::default().data(v.to_string()));
    let first = chunk(&id, json!({"role": "assistant", "content": ""}), None);
    let body = chat.stream(request).flat_map(move |event| {
        let items: Vec<Value> = match event {
            Ok(ChatEvent::Delta(text)) => vec![chunk(&id, json!({"content": text}), None)],
            Ok(ChatEvent::Done(response)) => {
                let mut items = Vec::new();
                if !response.message.tool_calls.is_empty() {
                    let calls = wire_tool_calls(&response.message.tool_calls);
                    items.push(chunk(&id, json!({"tool_calls": calls}), None));
                }
                let reason = finish_reason(response.finish_reason);
                items.push(chunk(&id, json!({}), Some(reason)));
                if with_usage {
                    let mut last = chunk(&id, json!({}), None);
                    last["choices"] = json!([]);
                    last["usage"] = usage(&response);
                    items.push(last);
                }
                items
            }
            Err(e) => {
                let e = ApiError::from(e);
                vec![json!({"error": {"message": e.message, "type": e.kind, "code": e.code}})]
            }
        };
        futures::stream::iter(items.into_iter().map(data))
    });
    let done = Ok(Event::default().data("[DONE]"));
    futures::stream::iter([data(first)])
        .chain(body)
        .chain(futures::stream::iter([done]))
}

async fn embeddings(
    State(served): State<Arc<Served>>,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let body = body_json(&body)?;
    model_name(&body, EMBED_NAME)?;
    let texts: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::invalid(Some("input"), "`input` items must be strings"))?,
        _ => {
            return Err(ApiError::invalid(
                Some("input"),
                "`input` must be a string or an array of strings",
            ));
        }
    };
    let vectors = served.embedder.embed(&texts).await?;
    let tokens: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    Ok(axum::Json(json!({
        "object": "list",
        "data": data,
        "model": EMBED_NAME,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}

async fn models() -> axum::Json<Value> {
    let model =
        |id: &str| json!({"id": id, "object": "model", "created": 0, "owned_by": "cellwright"});
    axum::Json(json!({"object": "list", "data": [model(CHAT_NAME), model(EMBED_NAME)]}))
}
