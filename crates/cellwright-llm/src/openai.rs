//! An OpenAI-compatible chat-completions backend.
//!
//! Requests and replies use our own wire types (async-openai's "bring your own types"), so
//! servers that omit optional fields still work and anything unreadable becomes
//! [`ModelError::Malformed`] with an excerpt of the body.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use cellwright_core::{
    ChatEvent, ChatModel, ChatRequest, ChatResponse, FinishReason, Message, ModelError, Role,
    ToolCallRequest, ToolChoice, Usage,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::Deserialize;
use serde_json::{Value, json};

/// Where and how to reach an OpenAI-compatible endpoint.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Never stored in traces and never printed (not even by `Debug`).
    pub api_key: Option<String>,
    pub model: String,
    /// Ask for server-sent events and pass text deltas on as they arrive.
    pub stream: bool,
    /// Limit on one whole request, streaming included. The HTTP layer itself retries 429,
    /// 5xx and connection errors three times (100 ms doubling, or the server's Retry-After);
    /// the runtime retries timeouts and cut streams.
    pub timeout: Duration,
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("stream", &self.stream)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The public OpenAI endpoint, used when `OPENAI_BASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

impl OpenAiConfig {
    /// `OPENAI_BASE_URL` (default: OpenAI's own), `OPENAI_API_KEY`, `CELLWRIGHT_OPENAI_STREAM`
    /// (`0` turns streaming off), `CELLWRIGHT_OPENAI_TIMEOUT_S`.
    pub fn from_env(model: &str) -> Result<Self, ModelError> {
        if model.trim().is_empty() {
            return Err(ModelError::Config {
                message: "give a model name: openai:<name>".into(),
            });
        }
        let timeout = match std::env::var("CELLWRIGHT_OPENAI_TIMEOUT_S") {
            Ok(s) => s.parse::<u64>().map_err(|_| ModelError::Config {
                message: format!("CELLWRIGHT_OPENAI_TIMEOUT_S=`{s}` is not a number of seconds"),
            })?,
            Err(_) => 300,
        };
        Ok(Self {
            base_url: std::env::var("OPENAI_BASE_URL")
                .unwrap_or_else(|_| DEFAULT_BASE_URL.to_owned()),
            api_key: std::env::var("OPENAI_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            model: model.to_owned(),
            stream: std::env::var("CELLWRIGHT_OPENAI_STREAM").map_or(true, |v| v != "0"),
            timeout: Duration::from_secs(timeout),
        })
    }
}

/// A chat model behind an OpenAI-compatible HTTP endpoint.
pub struct OpenAiChat {
    client: Client<OpenAIConfig>,
    config: OpenAiConfig,
}

impl fmt::Debug for OpenAiChat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiChat")
            .field("config", &self.config)
            .finish()
    }
}

impl OpenAiChat {
    pub fn new(config: OpenAiConfig) -> Result<Self, ModelError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ModelError::Config {
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        let mut openai = OpenAIConfig::new().with_api_base(config.base_url.trim_end_matches('/'));
        // Servers on loopback often need no key; send a placeholder rather than none.
        openai = openai.with_api_key(config.api_key.clone().unwrap_or_else(|| "none".into()));
        let client = Client::with_config(openai).with_http_client(http);
        Ok(Self { client, config })
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Value {
        let mut body = json!({
            "model": self.config.model,
            "messages": request.messages.iter().map(wire_message).collect::<Vec<_>>(),
        });
        let obj = body.as_object_mut().expect("json! object");
        if !request.tools.is_empty() {
            obj.insert(
                "tools".into(),
                request
                    .tools
                    .iter()
                    .map(|t| {
                        json!({"type": "function", "function": {
                            "name": t.name, "description": t.description, "parameters": t.parameters,
                        }})
                    })
                    .collect(),
            );
            obj.insert(
                "tool_choice".into(),
                match &request.tool_choice {
                    ToolChoice::Auto => json!("auto"),
                    ToolChoice::Required => json!("required"),
                    ToolChoice::None => json!("none"),
                    ToolChoice::Named(name) => {
                        json!({"type": "function", "function": {"name": name}})
                    }
                },
            );
        }
        if let Some(n) = request.max_tokens {
            obj.insert("max_tokens".into(), json!(n));
        }
        if let Some(t) = request.temperature {
            obj.insert("temperature".into(), json!(t));
        }
        if let Some(seed) = request.seed {
            obj.insert("seed".into(), json!(seed));
        }
        if stream {
            obj.insert("stream".into(), json!(true));
            obj.insert("stream_options".into(), json!({"include_usage": true}));
        }
        body
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = self.body(request, false);
        let reply: WireResponse = self
            .client
            .chat()
            .create_byot(body)
            .await
            .map_err(model_error)?;
        let choice = reply
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| ModelError::Malformed {
                message: "the reply has no choices".into(),
            })?;
        let tool_calls = choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, c)| ToolCallRequest {
                id: c.id.unwrap_or_else(|| format!("call_{}", i + 1)),
                name: c.function.name,
                arguments: arguments_text(c.function.arguments),
            })
            .collect();
        Ok(ChatResponse {
            message: Message {
                role: Role::Assistant,
                content: choice.message.content.unwrap_or_default(),
                tool_calls,
                tool_call_id: None,
            },
            usage: reply.usage.map(Usage::from).unwrap_or_default(),
            model: reply.model.unwrap_or_else(|| self.config.model.clone()),
            finish_reason: finish_reason(choice.finish_reason.as_deref()),
        })
    }
}

impl ChatModel for OpenAiChat {
    fn id(&self) -> String {
        format!("openai:{}", self.config.model)
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        if !self.config.stream {
            return Box::pin(self.complete(request));
        }
        Box::pin(async move {
            let mut stream = self.chat_stream(request);
            while let Some(event) = stream.next().await {
                if let ChatEvent::Done(response) = event? {
                    return Ok(response);
                }
            }
            Err(ModelError::Truncated {
                message: "no final response".into(),
            })
        })
    }

    fn chat_stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxStream<'a, Result<ChatEvent, ModelError>> {
        if !self.config.stream {
            return futures::stream::once(self.complete(request))
                .map(|r| r.map(ChatEvent::Done))
                .boxed();
        }
        let body = self.body(request, true);
        let fallback_model = self.config.model.clone();
        async_stream(self, body, fallback_model)
    }
}

/// Streams chunks, yielding text deltas, and assembles the final response.
fn async_stream<'a>(
    chat: &'a OpenAiChat,
    body: Value,
    fallback_model: String,
) -> BoxStream<'a, Result<ChatEvent, ModelError>> {
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<ChatEvent, ModelError>>();
    let task = async move {
        let result = async {
            let mut chunks = chat
                .client
                .chat()
                .create_stream_byot::<Value, WireChunk>(body)
                .await
                .map_err(model_error)?;
            let mut acc = StreamAccumulator::default();
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(stream_error)?;
                if let Some(text) = acc.push(chunk) {
                    let _ = tx.unbounded_send(Ok(ChatEvent::Delta(text)));
                }
            }
            acc.finish(fallback_model)
        }
        .await;
        let _ = tx.unbounded_send(result.map(ChatEvent::Done));
    };
    // The producer runs inside the stream: no task outlives the consumer.
    futures::stream::select(
        futures::stream::once(task).filter_map(|()| async { None }),
        rx,
    )
    .boxed()
}

#[derive(Default)]
struct StreamAccumulator {
    model: Option<String>,
    content: String,
    calls: BTreeMap<usize, PartialCall>,
    finish: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

impl StreamAccumulator {
    /// Folds a chunk in; returns its text delta, if any.
    fn push(&mut self, chunk: WireChunk) -> Option<String> {
        if chunk.model.is_some() {
            self.model = chunk.model;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let mut delta_text = None;
        for choice in chunk.choices {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                self.content.push_str(&text);
                delta_text = Some(text);
            }
            for call in choice.delta.tool_calls.unwrap_or_default() {
                let entry = self.calls.entry(call.index).or_default();
                if call.id.is_some() {
                    entry.id = call.id;
                }
                if let Some(f) = call.function {
                    if let Some(name) = f.name {
                        entry.name.push_str(&name);
                    }
                    if let Some(args) = f.arguments {
                        entry.arguments.push_str(&args);
                    }
                }
            }
            if choice.finish_reason.is_some() {
                self.finish = choice.finish_reason;
            }
        }
        delta_text
    }

    fn finish(self, fallback_model: String) -> Result<ChatResponse, ModelError> {
        let Some(finish) = self.finish else {
            return Err(ModelError::Truncated {
                message: format!(
                    "the stream ended before a finish_reason ({} characters of text received)",
                    self.content.len()
                ),
            });
        };
        let tool_calls = self
            .calls
            .into_iter()
            .map(|(i, c)| ToolCallRequest {
                id: c.id.unwrap_or_else(|| format!("call_{}", i + 1)),
                name: c.name,
                arguments: c.arguments,
            })
            .collect();
        Ok(ChatResponse {
            message: Message {
                role: Role::Assistant,
                content: self.content,
                tool_calls,
                tool_call_id: None,
            },
            usage: self.usage.map(Usage::from).unwrap_or_default(),
            model: self.model.unwrap_or(fallback_model),
            finish_reason: finish_reason(Some(&finish)),
        })
    }
}

fn wire_message(m: &Message) -> Value {
    match m.role {
        Role::System => json!({"role": "system", "content": m.content}),
        Role::User => json!({"role": "user", "content": m.content}),
        Role::Tool => json!({"role": "tool", "content": m.content, "tool_call_id": m.tool_call_id}),
        Role::Assistant if m.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": m.content})
        }
        Role::Assistant => json!({
            "role": "assistant",
            "content": if m.content.is_empty() { Value::Null } else { json!(m.content) },
            "tool_calls": m.tool_calls.iter().map(|c| json!({
                "id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            })).collect::<Vec<_>>(),
        }),
    }
}

fn arguments_text(arguments: Option<Value>) -> String {
    match arguments {
        // The protocol says a string of JSON; some servers send the object itself.
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => "{}".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("stop") | None => FinishReason::Stop,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some(_) => FinishReason::Other,
    }
}

fn model_error(e: OpenAIError) -> ModelError {
    match e {
        OpenAIError::ApiError(api) => ModelError::Http {
            status: api.status_code.as_u16(),
            message: excerpt(&api.api_error.message),
        },
        OpenAIError::Reqwest(e) => match e.status() {
            Some(status) => ModelError::Http {
                status: status.as_u16(),
                message: e.to_string(),
            },
            None => ModelError::Transport {
                message: if e.is_timeout() {
                    format!("timed out ({e})")
                } else {
                    e.to_string()
                },
            },
        },
        OpenAIError::JSONDeserialize(err, body) => ModelError::Malformed {
            message: format!("{err}; the body began with: {}", excerpt(&body)),
        },
        OpenAIError::StreamError(e) => ModelError::Truncated {
            message: e.to_string(),
        },
        other => ModelError::Malformed {
            message: other.to_string(),
        },
    }
}

fn stream_error(e: OpenAIError) -> ModelError {
    match e {
        OpenAIError::JSONDeserialize(err, body) => ModelError::Malformed {
            message: format!(
                "a stream chunk is not valid: {err}; it began with: {}",
                excerpt(&body)
            ),
        },
        other => match model_error(other) {
            ModelError::Transport { message } => ModelError::Truncated { message },
            e => e,
        },
    }
}

fn excerpt(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

#[derive(Deserialize)]
struct WireResponse {
    model: Option<String>,
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    arguments: Option<Value>,
}

#[derive(Deserialize, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

#[derive(Deserialize)]
struct WireChunk {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChunkChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    delta: WireDelta,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireDelta {
    content: Option<String>,
    tool_calls: Option<Vec<WireToolCallDelta>>,
}

#[derive(Deserialize)]
struct WireToolCallDelta {
    #[serde(default)]
    index: usize,
    id: Option<String>,
    function: Option<WireFunctionDelta>,
}

#[derive(Deserialize)]
struct WireFunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}
