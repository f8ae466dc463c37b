//! Models that answer from a script: tests, examples, benchmarks and replays.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cellwright_core::{
    ChatModel, ChatRequest, ChatResponse, FinishReason, Message, ModelError, Role, StoredEvent,
    ToolCallRequest, TraceEvent, Usage,
};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One scripted tool call. `arguments` may be any JSON value; a JSON *string* is sent
/// verbatim as the argument text, so a script can send malformed arguments on purpose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptedToolCall {
    pub name: String,
    #[serde(default)]
    pub arguments: Value,
}

/// One scripted turn of the model (a line of a script file).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScriptedResponse {
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub tool_calls: Vec<ScriptedToolCall>,
    /// Simulated latency before answering.
    #[serde(default)]
    pub delay_ms: u64,
    /// Fail this turn instead of answering.
    #[serde(default)]
    pub error: Option<ModelError>,
}

type ResponderFn = dyn Fn(&ChatRequest) -> Result<ChatResponse, ModelError> + Send + Sync;

enum Script {
    /// The n-th assistant turn of a conversation gets the n-th response: the choice depends
    /// only on the request, so a resumed run gets the same answers as the first try.
    Turns(Vec<ScriptedTurn>),
    Function(Arc<ResponderFn>),
}

#[derive(Clone)]
struct ScriptedTurn {
    response: Result<ChatResponse, ModelError>,
    delay: Duration,
    /// Scripts estimate prompt tokens from the request; replays keep what was recorded.
    estimate_input: bool,
}

/// A chat model that follows a script.
pub struct ScriptedModel {
    id: String,
    script: Script,
}

impl fmt::Debug for ScriptedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedModel")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ScriptedModel {
    /// A model whose n-th turn is `responses[n]`.
    pub fn new(id: impl Into<String>, responses: Vec<ScriptedResponse>) -> Self {
        let turns = responses
            .into_iter()
            .enumerate()
            .map(|(turn, r)| ScriptedTurn {
                delay: Duration::from_millis(r.delay_ms),
                estimate_input: true,
                response: match r.error {
                    Some(e) => Err(e),
                    None => Ok(chat_response(turn + 1, r.content, r.tool_calls)),
                },
            })
            .collect();
        Self {
            id: id.into(),
            script: Script::Turns(turns),
        }
    }

    /// A model computed by a function of the request.
    pub fn from_fn(
        id: impl Into<String>,
        f: impl Fn(&ChatRequest) -> Result<ChatResponse, ModelError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            id: id.into(),
            script: Script::Function(Arc::new(f)),
        }
    }

    /// Reads a script: one JSON [`ScriptedResponse`] per line; blank lines and lines starting
    /// with `//` are skipped.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Config {
            message: format!("cannot read the script {}: {e}", path.display()),
        })?;
        let mut responses = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with("//") {
                continue;
            }
            let response = serde_json::from_str(line).map_err(|e| ModelError::Config {
                message: format!("{}:{}: not a scripted response: {e}", path.display(), i + 1),
            })?;
            responses.push(response);
        }
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Self::new(format!("script:{}", abs.display()), responses))
    }

    /// A model that answers with the model responses recorded in a run's trace.
    pub fn replay(run: &str, events: &[StoredEvent]) -> Self {
        let mut turns: Vec<(u32, ChatResponse)> = events
            .iter()
            .filter_map(|e| match &e.event {
                TraceEvent::ModelResponse {
                    step,
                    message,
                    usage,
                    model,
                    finish_reason,
                    ..
                } => Some((
                    *step,
                    ChatResponse {
                        message: message.clone(),
                        usage: *usage,
                        model: model.clone(),
                        finish_reason: *finish_reason,
                    },
                )),
                _ => None,
            })
            .collect();
        turns.sort_by_key(|(step, _)| *step);
        Self {
            id: format!("replay:{run}"),
            script: Script::Turns(
                turns
                    .into_iter()
                    .map(|(_, r)| ScriptedTurn {
                        response: Ok(r),
                        delay: Duration::ZERO,
                        estimate_input: false,
                    })
                    .collect(),
            ),
        }
    }
}

/// Builds a response as a backend would: provider ids `call_<turn>_<i>`.
fn chat_response(turn: usize, content: String, calls: Vec<ScriptedToolCall>) -> ChatResponse {
    let tool_calls: Vec<ToolCallRequest> = calls
        .into_iter()
        .enumerate()
        .map(|(i, c)| ToolCallRequest {
            id: format!("call_{turn}_{}", i + 1),
            name: c.name,
            arguments: match c.arguments {
                Value::String(raw) => raw,
                Value::Null => "{}".to_owned(),
                other => other.to_string(),
            },
        })
        .collect();
    let finish_reason = if tool_calls.is_empty() {
        FinishReason::Stop
    } else {
        FinishReason::ToolCalls
    };
    let output_tokens = (content.len() / 4 + tool_calls.len() * 8) as u64;
    ChatResponse {
        message: Message {
            role: Role::Assistant,
            content,
            tool_calls,
            tool_call_id: None,
        },
        usage: Usage {
            input_tokens: 0,
            output_tokens,
        },
        model: "scripted".to_owned(),
        finish_reason,
    }
}

impl ChatModel for ScriptedModel {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        Box::pin(async move {
            match &self.script {
                Script::Function(f) => f(request),
                Script::Turns(turns) => {
                    let turn = request
                        .messages
                        .iter()
                        .filter(|m| m.role == Role::Assistant)
                        .count();
                    let Some(t) = turns.get(turn) else {
                        return Err(ModelError::Exhausted {
                            message: format!(
                                "{} has {} responses; turn {} was asked for",
                                self.id,
                                turns.len(),
                                turn + 1
                            ),
                        });
                    };
                    if !t.delay.is_zero() {
                        tokio::time::sleep(t.delay).await;
                    }
                    let mut response = t.response.clone()?;
                    if t.estimate_input {
                        // Count the prompt as a backend would, roughly: 1 token per 4 bytes.
                        response.usage.input_tokens = request
                            .messages
                            .iter()
                            .map(|m| (m.content.len() / 4) as u64 + 4)
                            .sum();
                    }
                    Ok(response)
                }
            }
        })
    }
}
