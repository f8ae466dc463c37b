//! The embedded chat model as a [`ChatModel`]: constrained tool calls, cited answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cellwright_core::{
    CancelToken, ChatEvent, ChatModel, ChatRequest, ChatResponse, FinishReason, Message,
    ModelError, Role, ToolCallRequest, ToolChoice, ToolSpec, Usage, Vocabulary,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use llguidance::api::TopLevelGrammar;
use serde_json::{Value, json};

use super::compose::{
    Sources, argument_domains, by_shape, compose_answer, compose_failures, copy_candidates,
    copying, generic, since_question,
};
use super::engine::{Engine, Generated, SamplingParams};
use super::minilm::{MiniLm, cosine};

/// How the model is told to call a tool when its output is not constrained.
const CALL_FORMAT: &str =
    "To use a tool, reply with one JSON object: {\"name\": \"<tool>\", \"arguments\": {…}}\n";

/// Tokens a tool call may take at least, and (unless its schema needs more) at most.
const TOOL_CALL_TOKENS: usize = 256;
const TOOL_CALL_MAX_TOKENS: usize = 2048;
/// The longest arrays and strings a constrained call may write when its schema allows longer
/// (or sets no bound), tried in turn until every call the schema admits fits in
/// [`TOOL_CALL_MAX_TOKENS`]. A small model that repeats itself fills any budget; under these
/// bounds every call the grammar admits fits, and still validates against the schema as given.
const CALL_BOUNDS: [Bounds; 5] = [
    Bounds {
        items: 16,
        chars: 200,
    },
    Bounds {
        items: 8,
        chars: 100,
    },
    Bounds {
        items: 4,
        chars: 50,
    },
    Bounds {
        items: 2,
        chars: 24,
    },
    Bounds {
        items: 1,
        chars: 12,
    },
];
/// The largest magnitude of a number in a constrained call whose schema sets no bound
/// (integers up to it are exact in a double).
const CALL_MAX_MAGNITUDE: i64 = 1 << 53;
/// The most tokens one character of a JSON string can take: a control character escaped as
/// `\u00XX`, one byte per token.
const TOKENS_PER_CHAR: usize = 6;

/// Tokens an answer may take when the request sets no limit.
const ANSWER_TOKENS: usize = 200;

/// A GGUF chat model running in this process.
///
/// Small models do not plan tool use reliably on their own, so the turn structure is fixed:
/// while the latest user message has no tool results after it, the model writes a tool call,
/// decoded under a grammar that admits only a registered tool name with arguments valid
/// against that tool's JSON schema; once results are in, it writes the answer, decoded under
/// a grammar in which every sentence cites a successful call as `[n]`. Without tools it writes
/// free text.
#[derive(Clone)]
pub struct EmbeddedChat {
    engine: Arc<Mutex<Engine>>,
    /// The engine's model's chat template (read without waiting for the engine).
    chat_template: Arc<str>,
    id: String,
    cancel: CancelToken,
    router: Option<Arc<ToolRouter>>,
    /// Whether tool calls are decoded under their schemas' grammar (always, but in
    /// comparisons that measure what the grammar buys).
    constrained: bool,
    /// Whether a call's free strings are copied from the question and earlier results
    /// instead of spelled (see [`super::compose`]).
    copy_arguments: bool,
    /// Which copied strings are in an argument's domain, if known.
    vocabulary: Option<Arc<dyn Vocabulary>>,
    /// Whether the answer is composed from the tool results instead of written.
    compose_answers: bool,
}

/// Narrows the tools a call may name to those whose descriptions are nearest the request.
pub struct ToolRouter {
    embedder: MiniLm,
    top_k: usize,
    /// Keep only tools whose similarity is within this of the nearest's, if set.
    margin: Option<f32>,
    /// Embeddings of each tool's routing texts ([`routing_texts`]), by tool name and
    /// description.
    known: Mutex<HashMap<(String, String), Vec<Vector>>>,
}

type Vector = Vec<f32>;

impl std::fmt::Debug for ToolRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRouter")
            .field("embedder", &self.embedder)
            .field("top_k", &self.top_k)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl ToolRouter {
    pub fn new(embedder: MiniLm, top_k: usize) -> Self {
        Self {
            embedder,
            top_k: top_k.max(1),
            margin: None,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Also drops tools whose cosine similarity to the request is more than `margin` below
    /// the nearest tool's: the model then chooses only among near-ties, and a clear winner is
    /// the only choice.
    pub fn with_margin(mut self, margin: f32) -> Self {
        self.margin = Some(margin);
        self
    }

    /// The names of the `top_k` tools nearest `query` (and within the margin of the nearest,
    /// if one is set), nearest first; all of them if there are no more than `top_k` and no
    /// margin is set.
    pub fn route(&self, query: &str, tools: &[&ToolSpec]) -> Result<Vec<String>, ModelError> {
        if tools.len() <= 1 || (tools.len() <= self.top_k && self.margin.is_none()) {
            return Ok(tools.iter().map(|t| t.name.clone()).collect());
        }
        let key = |t: &ToolSpec| (t.name.clone(), t.description.clone());
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let missing: Vec<&ToolSpec> = tools
            .iter()
            .copied()
            .filter(|t| !known.contains_key(&key(t)))
            .collect();
        let texts_of: Vec<Vec<String>> = missing.iter().map(|t| routing_texts(t)).collect();
        let mut texts: Vec<String> = texts_of.iter().flatten().cloned().collect();
        texts.push(query.to_owned());
        let mut vectors = self.embedder.embed_blocking(&texts)?.into_iter();
        for (t, own) in missing.iter().zip(&texts_of) {
            known.insert(key(t), vectors.by_ref().take(own.len()).collect());
        }
        let query = vectors.next().unwrap_or_default();
        // A tool is as near as the nearest of its texts.
        let mut scored: Vec<(f32, String)> = tools
            .iter()
            .map(|t| {
                let near = known.get(&key(t)).into_iter().flatten();
                let best = near.map(|v| cosine(v, &query)).fold(f32::MIN, f32::max);
                (best, t.name.clone())
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        tracing::debug!(?scored, "tool routing");
        let floor = scored.first().map_or(f32::MIN, |(best, _)| {
            self.margin.map_or(f32::MIN, |margin| best - margin)
        });
        Ok(scored
            .into_iter()
            .take(self.top_k)
            .filter(|(score, _)| *score >= floor)
            .map(|(_, n)| n)
            .collect())
    }
}

/// What a tool is routed by: its name with the summary line (as the prompt lists it), and
/// each `Asked:` line of its description, a generic phrasing of a question it answers.
fn routing_texts(tool: &ToolSpec) -> Vec<String> {
    let summary = tool.description.lines().next().unwrap_or_default();
    std::iter::once(format!("{}: {summary}", tool.name.replace('_', " ")))
        .chain(
            tool.description
                .lines()
                .filter_map(|l| l.strip_prefix("Asked:"))
                .map(|q| q.trim().to_owned()),
        )
        .collect()
}

impl std::fmt::Debug for EmbeddedChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedChat")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The callback again, for one more call (a plain `as_deref_mut` would keep it borrowed for
/// the trait object's whole lifetime).
fn reborrow<'a>(f: &'a mut Option<&mut dyn FnMut(&str)>) -> Option<&'a mut dyn FnMut(&str)> {
    match f {
        Some(f) => Some(&mut **f),
        None => None,
    }
}

/// Cancels its token when dropped (a request whose caller went away).
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// How one request will be answered.
struct Plan<'r> {
    turn: Turn,
    callable: Vec<&'r ToolSpec>,
    prompt: String,
}

/// What the next turn must be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Turn {
    Call(Vec<String>),
    CitedAnswer(Vec<u32>),
    Text,
}

impl EmbeddedChat {
    /// `id` is the model spec that loads this model again (`embedded`, `gguf:<path>`): runs
    /// record it, and `resume` rebuilds the model from it.
    pub fn new(engine: Engine, id: impl Into<String>) -> Self {
        let id = id.into();
        Self {
            chat_template: engine.model.chat_template.as_str().into(),
            engine: Arc::new(Mutex::new(engine)),
            id,
            cancel: CancelToken::new(),
            router: None,
            constrained: true,
            copy_arguments: true,
            vocabulary: None,
            compose_answers: true,
        }
    }

    /// Lets the model spell its calls' free-text arguments (under the schema's grammar)
    /// instead of copying them from the question and earlier results.
    pub fn spelling_arguments(mut self) -> Self {
        self.copy_arguments = false;
        self
    }

    /// Copies into a domain argument (a gene, a model, a data set) only the strings
    /// `vocabulary` admits to the domain, when it admits some.
    pub fn with_vocabulary(mut self, vocabulary: Arc<dyn Vocabulary>) -> Self {
        self.vocabulary = Some(vocabulary);
        self
    }

    /// Lets the model write its answer (citing calls, under a grammar) instead of composing
    /// it from the tool results.
    pub fn writing_answers(mut self) -> Self {
        self.compose_answers = false;
        self
    }

    /// Offers a tool call only the tools `router` finds nearest the request (the model picks
    /// among them), so a small model is not lost among many.
    pub fn with_router(mut self, router: ToolRouter) -> Self {
        self.router = Some(Arc::new(router));
        self
    }

    /// The router that narrows tool calls, if this model has one.
    pub fn router(&self) -> Option<&ToolRouter> {
        self.router.as_deref()
    }

    /// This model without its tool router: every tool is offered to every call.
    pub fn without_router(mut self) -> Self {
        self.router = None;
        self
    }

    /// This model with tool calls decoded freely and parsed afterwards, to measure what the
    /// grammar buys (`cellwright bench tools`); calls may then fail to parse or validate.
    pub fn unconstrained(mut self) -> Self {
        self.constrained = false;
        self
    }

    /// Answers `request` as a stream: an answer's text as it grows, then the whole response.
    /// Dropping the stream stops generation (at the next token of an answer).
    pub fn stream(
        &self,
        request: ChatRequest,
    ) -> BoxStream<'static, Result<ChatEvent, ModelError>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let this = self.clone();
        let cancel = self.cancel.child();
        tokio::task::spawn_blocking(move || {
            let mut on_text = |text: &str| {
                // Nobody is listening any more: stop generating.
                if tx.send(Ok(ChatEvent::Delta(text.to_owned()))).is_err() {
                    cancel.cancel();
                }
            };
            let result = this.respond(&request, &cancel, Some(&mut on_text));
            let _ = tx.send(result.map(ChatEvent::Done));
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
            .boxed()
    }

    /// Stops generation (at the next token) when `cancel` fires.
    pub fn with_cancel(mut self, cancel: CancelToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// The prompt the model reads for `request`, as its chat template renders it: what to
    /// look at first when the model misbehaves.
    pub fn prompt(&self, request: &ChatRequest) -> Result<String, ModelError> {
        Ok(self.plan(request)?.prompt)
    }

    /// What the next turn is, which tools a call may name, and the prompt.
    fn plan<'r>(&self, request: &'r ChatRequest) -> Result<Plan<'r>, ModelError> {
        let retries = if self.compose_answers {
            CALL_RETRIES
        } else {
            0
        };
        let turn = next_turn(request, retries);
        // The tools a call may name: those the turn allows, narrowed by the router to the
        // nearest the latest request, nearest first. The prompt lists them (all tools when
        // the turn is not a call).
        let pool: Vec<&ToolSpec> = match &turn {
            Turn::Call(names) => request
                .tools
                .iter()
                .filter(|t| names.contains(&t.name))
                .collect(),
            _ => request.tools.iter().collect(),
        };
        let mut listed = pool.clone();
        if let Some(router) = &self.router
            && !listed.is_empty()
        {
            let query = request
                .messages
                .iter()
                .rfind(|m| m.role == Role::User)
                .map_or("", |m| m.content.as_str());
            let routed = match &self.vocabulary {
                Some(vocabulary) => generic(query, vocabulary.as_ref()),
                None => query.to_owned(),
            };
            let chosen = router.route(&routed, &listed)?;
            listed = chosen
                .iter()
                .filter_map(|n| pool.iter().copied().find(|t| &t.name == n))
                .collect();
            if let Some(vocabulary) = &self.vocabulary {
                listed = by_shape(query, vocabulary.as_ref(), listed);
            }
        }
        // Free decoding must be told the call format; under the grammar, saying it made this
        // model's arguments worse (the grammar already holds it to the format).
        let format = (!self.constrained).then_some(CALL_FORMAT);
        let prompt = render(
            &self.chat_template,
            &prompt_messages(request, &listed, format),
        )?;
        Ok(Plan {
            turn,
            callable: listed,
            prompt,
        })
    }

    /// Answers one request on this thread (heavy compute: call it off the async workers),
    /// stopping at the next token once `cancel` fires and handing `on_text` an answer's text
    /// as it grows (tool calls come whole, in the response).
    pub fn respond(
        &self,
        request: &ChatRequest,
        cancel: &CancelToken,
        mut on_text: Option<&mut dyn FnMut(&str)>,
    ) -> Result<ChatResponse, ModelError> {
        let Plan {
            turn,
            callable,
            prompt: prompt_text,
        } = self.plan(request)?;
        let mut engine = self
            .engine
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let prompt = engine.encode(&prompt_text)?;
        let params = SamplingParams {
            temperature: f64::from(request.temperature.unwrap_or(0.0)),
            top_p: 0.9,
            seed: request.seed.unwrap_or(0),
            repeat_penalty: 1.0,
        };
        let prose = SamplingParams {
            repeat_penalty: 1.2,
            ..params
        };
        let limit = request.max_tokens.map(|n| n as usize);
        let composed = match &turn {
            Turn::CitedAnswer(_) if self.compose_answers => compose_answer(request),
            Turn::Text if self.compose_answers => compose_failures(request),
            _ => None,
        };
        let (message, generated) = match &turn {
            Turn::Call(_) => {
                let (mut matcher, budget) = if self.constrained {
                    let chosen = choose_tool(&mut engine, &prompt, &callable)?;
                    let copied: Vec<ToolSpec>;
                    let chosen = if self.copy_arguments {
                        let candidates = copy_candidates(request);
                        let question = since_question(request)
                            .first()
                            .map_or("", |m| m.content.as_str());
                        let sources = Sources {
                            candidates: &candidates,
                            question,
                            vocabulary: self.vocabulary.as_deref(),
                        };
                        copied = chosen
                            .iter()
                            .map(|t| ToolSpec {
                                parameters: copying(&t.parameters, sources),
                                ..(*t).clone()
                            })
                            .collect();
                        copied.iter().collect()
                    } else {
                        chosen
                    };
                    let (schema, budget) = call_schema(&chosen);
                    let grammar = TopLevelGrammar::from_json_schema(schema);
                    (Some(engine.matcher(grammar)?), budget)
                } else {
                    (None, TOOL_CALL_TOKENS)
                };
                let budget = budget.max(limit.unwrap_or(0));
                let generated =
                    engine.generate(&prompt, budget, params, matcher.as_mut(), cancel, None)?;
                (tool_call_message(&generated, request)?, generated)
            }
            _ if composed.is_some() => {
                let text = composed.unwrap_or_default();
                if let Some(f) = on_text.as_mut() {
                    f(&text);
                }
                let generated = Generated {
                    text: text.clone(),
                    prompt_tokens: prompt.len(),
                    tokens: Vec::new(),
                    finish: FinishReason::Stop,
                    prefill: std::time::Duration::ZERO,
                    prefill_tokens: 0,
                    decode: std::time::Duration::ZERO,
                };
                (Message::assistant(text), generated)
            }
            Turn::CitedAnswer(calls) => {
                let mut matcher =
                    engine.matcher(TopLevelGrammar::from_lark(cited_answer_grammar(calls)))?;
                let generated = engine.generate(
                    &prompt,
                    limit.unwrap_or(ANSWER_TOKENS),
                    prose,
                    Some(&mut matcher),
                    cancel,
                    reborrow(&mut on_text),
                )?;
                let text = whole_claims(&generated);
                (Message::assistant(text), generated)
            }
            Turn::Text => {
                let generated = engine.generate(
                    &prompt,
                    limit.unwrap_or(ANSWER_TOKENS),
                    prose,
                    None,
                    cancel,
                    reborrow(&mut on_text),
                )?;
                (Message::assistant(generated.text.trim()), generated)
            }
        };
        let finish = if message.tool_calls.is_empty() {
            generated.finish
        } else {
            FinishReason::ToolCalls
        };
        Ok(ChatResponse {
            message,
            usage: Usage {
                input_tokens: generated.prompt_tokens as u64,
                output_tokens: generated.tokens.len() as u64,
            },
            model: self.id.clone(),
            finish_reason: finish,
        })
    }
}

impl ChatModel for EmbeddedChat {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        let this = self.clone();
        let request = request.clone();
        // A dropped request stops its generation.
        let cancel = CancelOnDrop(self.cancel.child());
        Box::pin(async move {
            let token = cancel.0.clone();
            // Generation is heavy compute: keep it off the async worker threads.
            let result = tokio::task::spawn_blocking(move || this.respond(&request, &token, None))
                .await
                .map_err(|e| ModelError::Backend {
                    message: format!("generation stopped: {e}"),
                })?;
            drop(cancel);
            result
        })
    }

    fn chat_stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxStream<'a, Result<ChatEvent, ModelError>> {
        self.stream(request.clone())
    }
}

/// Calls again after every call of a question failed, before answering without results.
const CALL_RETRIES: usize = 2;

/// The next turn: a call while the latest question has no results; the answer once it has;
/// after failed calls only, another call to a tool not yet tried (up to `retries` times),
/// then text.
fn next_turn(request: &ChatRequest, retries: usize) -> Turn {
    let names = |only: Option<&str>| -> Vec<String> {
        request
            .tools
            .iter()
            .filter(|t| only.is_none_or(|n| n == t.name))
            .map(|t| t.name.clone())
            .collect()
    };
    let recent = since_question(request);
    let results: Vec<u32> = recent
        .iter()
        .filter(|m| m.role == Role::Tool)
        .filter_map(|m| {
            let v: Value = serde_json::from_str(&m.content).ok()?;
            v.get("output")?;
            v.get("call")?.as_u64().and_then(|n| u32::try_from(n).ok())
        })
        .collect();
    match &request.tool_choice {
        _ if request.tools.is_empty() => Turn::Text,
        ToolChoice::None => Turn::Text,
        ToolChoice::Named(name) => Turn::Call(names(Some(name))),
        ToolChoice::Required => Turn::Call(names(None)),
        ToolChoice::Auto if !results.is_empty() => Turn::CitedAnswer(results),
        ToolChoice::Auto if recent.iter().any(|m| m.role == Role::Tool) => {
            // Every call failed: try a tool not tried yet, then answer without citations
            // rather than loop.
            // (Results in another format than the runtime's, e.g. from a client of
            // `cellwright serve`, are not read as failures: the model answers from them.)
            let failed: Vec<String> = recent
                .iter()
                .filter(|m| m.role == Role::Tool)
                .filter_map(|m| {
                    let v: Value = serde_json::from_str(&m.content).ok()?;
                    v.get("error")?;
                    Some(v.get("tool")?.as_str()?.to_owned())
                })
                .collect();
            let untried: Vec<String> = names(None)
                .into_iter()
                .filter(|n| !failed.contains(n))
                .collect();
            if !failed.is_empty() && failed.len() <= retries && !untried.is_empty() {
                Turn::Call(untried)
            } else {
                Turn::Text
            }
        }
        ToolChoice::Auto => Turn::Call(names(None)),
    }
}

/// The conversation as the chat template sees it: tool calls as JSON, the tool list in the
/// system message.
fn prompt_messages(
    request: &ChatRequest,
    tools: &[&ToolSpec],
    call_format: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(request.messages.len() + 1);
    let tools: String = tools
        .iter()
        .map(|t| {
            let summary = t.description.lines().next().unwrap_or_default();
            format!("- {}: {summary}\n", t.name)
        })
        .collect();
    let mut system_seen = false;
    for m in &request.messages {
        let role = match m.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        };
        let mut content = m.content.clone();
        if m.role == Role::System && !system_seen && !tools.is_empty() {
            content = format!("{content}\n\nTools:\n{tools}{}", call_format.unwrap_or(""));
            system_seen = true;
        }
        for call in &m.tool_calls {
            content.push_str(&format!(
                "{{\"name\": \"{}\", \"arguments\": {}}}",
                call.name, call.arguments
            ));
        }
        out.push(json!({"role": role, "content": content}));
    }
    out
}

fn render(template: &str, messages: &[Value]) -> Result<String, ModelError> {
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                message,
            ))
        },
    );
    env.render_str(
        template,
        minijinja::context! { messages => messages, add_generation_prompt => true },
    )
    .map_err(|e| ModelError::Config {
        message: format!("the model's chat template failed: {e}"),
    })
}

/// The tool among `tools` whose name the model finds likeliest to start its call after
/// `prompt` (all of `tools` when there is only one); the grammar then holds the call to it.
///
/// Scoring whole names is the model's own choice, made on every token of each name, where
/// greedy decoding under a grammar of all names would commit on the first token alone.
fn choose_tool<'t>(
    engine: &mut Engine,
    prompt: &[u32],
    tools: &[&'t ToolSpec],
) -> Result<Vec<&'t ToolSpec>, ModelError> {
    if tools.len() <= 1 {
        return Ok(tools.to_vec());
    }
    let starts: Vec<Vec<u32>> = tools
        .iter()
        .map(|t| engine.encode(&format!("{{\"name\": \"{}\"", t.name)))
        .collect::<Result<_, _>>()?;
    let scores = engine.score_continuations(prompt, &starts)?;
    tracing::debug!(?scores, "tool choice");
    let best = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    Ok(vec![tools[best]])
}

/// One object `{"name": <tool>, "arguments": <its arguments>}` for any of `tools`, with each
/// tool's arguments [`bounded`] so that a call fits in [`TOOL_CALL_MAX_TOKENS`]; and the
/// tokens to allow for it.
fn call_schema(tools: &[&ToolSpec]) -> (Value, usize) {
    let mut budget = TOOL_CALL_TOKENS;
    let options: Vec<Value> = tools
        .iter()
        .map(|t| {
            let make = |bounds: &Bounds| {
                json!({
                    "type": "object",
                    "properties": {
                        "name": {"const": t.name},
                        "arguments": bounded(&t.parameters, bounds),
                    },
                    "required": ["name", "arguments"],
                    "additionalProperties": false,
                })
            };
            // The loosest bounds that fit, else the tightest (the budget then grows to fit).
            let mut option = make(&CALL_BOUNDS[0]);
            let mut tokens = most_tokens(&option);
            for bounds in &CALL_BOUNDS[1..] {
                if tokens <= TOOL_CALL_MAX_TOKENS {
                    break;
                }
                option = make(bounds);
                tokens = most_tokens(&option);
            }
            budget = budget.max(tokens);
            option
        })
        .collect();
    let schema = json!({
        "x-guidance": {
            "whitespace_flexible": false,
            "item_separator": ", ",
            "key_separator": ": ",
            "lenient": true,
        },
        "anyOf": options,
    });
    (schema, budget)
}

/// A schema object's keywords, with `f` applied to the subschemas under those of `keys` it
/// enters: each value of a map of schemas (`properties`, `$defs`, …), each item of a list of
/// schemas (`anyOf`, `prefixItems`, …), or the one schema (`items`, `not`, …). Other keywords,
/// and values of an unexpected shape, stay as they are.
pub(super) fn map_subschemas(
    map: &serde_json::Map<String, Value>,
    keys: &[&str],
    f: &dyn Fn(&Value) -> Value,
) -> serde_json::Map<String, Value> {
    map.iter()
        .map(|(key, value)| {
            let value = match key.as_str() {
                k if !keys.contains(&k) => value.clone(),
                "properties" | "$defs" | "definitions" | "patternProperties" => match value {
                    Value::Object(m) => {
                        Value::Object(m.iter().map(|(k, v)| (k.clone(), f(v))).collect())
                    }
                    other => other.clone(),
                },
                "anyOf" | "oneOf" | "allOf" | "prefixItems" => match value {
                    Value::Array(a) => Value::Array(a.iter().map(f).collect()),
                    other => other.clone(),
                },
                _ => f(value),
            };
            (key.clone(), value)
        })
        .collect()
}

/// Caps on a call's arrays and strings.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    items: u64,
    chars: u64,
}

/// `schema` narrowed so whatever it admits is short: arrays and strings within `bounds`
/// (unless `minItems`/`minLength` need more), numbers within ±[`CALL_MAX_MAGNITUDE`] unless
/// bounded already, objects without properties beyond those named. Every value it admits is
/// valid against `schema`.
fn bounded(schema: &Value, bounds: &Bounds) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = map_subschemas(
        map,
        &[
            "properties",
            "$defs",
            "definitions",
            "patternProperties",
            "items",
            "additionalProperties",
            "not",
            "contains",
            "anyOf",
            "oneOf",
            "allOf",
            "prefixItems",
        ],
        &|v| bounded(v, bounds),
    );
    let clamp = |out: &mut serde_json::Map<String, Value>, max: &str, min: &str, cap: u64| {
        let floor = out.get(min).and_then(Value::as_u64).unwrap_or(0);
        let limit = out.get(max).and_then(Value::as_u64).unwrap_or(u64::MAX);
        out.insert(max.into(), json!(limit.min(cap).max(floor)));
    };
    let types = |t: &str| match map.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(a)) => a.iter().any(|v| v == t),
        _ => false,
    };
    if types("array") {
        clamp(&mut out, "maxItems", "minItems", bounds.items);
    }
    if types("string") && !map.contains_key("enum") && !map.contains_key("const") {
        clamp(&mut out, "maxLength", "minLength", bounds.chars);
    }
    if types("number") || types("integer") {
        // Unbounded, the grammar admits `5e9215`: JSON, but no reader takes it as a number.
        out.entry("minimum").or_insert(json!(-CALL_MAX_MAGNITUDE));
        out.entry("maximum").or_insert(json!(CALL_MAX_MAGNITUDE));
    }
    if types("object")
        && map.contains_key("properties")
        && matches!(
            map.get("additionalProperties"),
            None | Some(Value::Bool(true))
        )
    {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// The most tokens a value valid against a [`bounded`] schema can take as JSON, one byte a
/// token (an estimate where the schema is beyond a quick reading: references, patterns).
fn most_tokens(schema: &Value) -> usize {
    const UNKNOWN: usize = 64;
    let Value::Object(map) = schema else {
        return UNKNOWN;
    };
    let json_len = |v: &Value| v.to_string().len();
    if let Some(Value::Array(options)) = map.get("enum") {
        return options.iter().map(json_len).max().unwrap_or(0);
    }
    if let Some(c) = map.get("const") {
        return json_len(c);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(options)) = map.get(key) {
            return options.iter().map(most_tokens).max().unwrap_or(0);
        }
    }
    let bound = |key: &str| map.get(key).and_then(Value::as_u64).map(|n| n as usize);
    match map.get("type").and_then(Value::as_str) {
        Some("string") => bound("maxLength").map_or(UNKNOWN, |n| 2 + n * TOKENS_PER_CHAR),
        Some("integer") => 20,
        Some("number") => 32,
        Some("boolean") => 5,
        Some("null") => 4,
        Some("array") => {
            let item = map.get("items").map_or(UNKNOWN, most_tokens);
            2 + bound("maxItems").unwrap_or(UNKNOWN) * (item + 2)
        }
        Some("object") => {
            let properties = map.get("properties").and_then(Value::as_object);
            2 + properties.map_or(UNKNOWN, |p| {
                p.iter().map(|(k, v)| k.len() + 6 + most_tokens(v)).sum()
            })
        }
        _ => UNKNOWN,
    }
}

fn tool_call_message(generated: &Generated, request: &ChatRequest) -> Result<Message, ModelError> {
    // Constrained output is exactly the object; free output may wrap it in prose.
    let text = generated.text.trim();
    let object = match (text.find('{'), text.rfind('}')) {
        (Some(start), Some(end)) if start < end => &text[start..=end],
        _ => text,
    };
    let call: Value = serde_json::from_str(object).map_err(|e| {
        if generated.finish == FinishReason::Length {
            ModelError::Backend {
                message: format!(
                    "the tool call did not fit in {} tokens: {}",
                    generated.tokens.len(),
                    generated.text
                ),
            }
        } else {
            ModelError::Backend {
                message: format!("the tool call is not JSON ({e}): {}", generated.text),
            }
        }
    })?;
    let name = call["name"].as_str().unwrap_or_default().to_owned();
    let mut arguments = call["arguments"].clone();
    if let Some(tool) = request.tools.iter().find(|t| t.name == name) {
        without_repeats(&mut arguments, &tool.parameters);
    }
    let id = format!(
        "call_{}",
        request
            .messages
            .iter()
            .map(|m| m.tool_calls.len())
            .sum::<usize>()
            + 1
    );
    Ok(Message {
        role: Role::Assistant,
        content: String::new(),
        tool_calls: vec![ToolCallRequest {
            id,
            name,
            arguments: arguments.to_string(),
        }],
        tool_call_id: None,
    })
}

/// Drops the repeats of a string from every list of domain values in `value` (a list whose
/// `schema` names a domain, and keeps its `minItems`): a small model may copy one value until
/// a list is full (`["SHR", "SHR", …]`), and a gene listed twice means it once.
fn without_repeats(value: &mut Value, schema: &Value) {
    match value {
        Value::Array(items) => {
            let item_schema = schema.get("items").unwrap_or(&Value::Null);
            if !argument_domains(schema).is_empty() {
                let mut seen = std::collections::HashSet::new();
                let kept: Vec<Value> = items
                    .iter()
                    .filter(|v| v.as_str().is_none_or(|s| seen.insert(s.to_owned())))
                    .cloned()
                    .collect();
                let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
                if kept.len() as u64 >= min {
                    *items = kept;
                }
            }
            items
                .iter_mut()
                .for_each(|v| without_repeats(v, item_schema));
        }
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let property = schema
                    .get("properties")
                    .and_then(|p| p.get(key))
                    .unwrap_or(&Value::Null);
                without_repeats(v, property);
            }
        }
        _ => {}
    }
}

/// Sentences, each ending in a citation of one of `calls`. A sentence holds no `.`, `!` or
/// `?` (but decimals), so the citation parser sees each claim with its own citation.
fn cited_answer_grammar(calls: &[u32]) -> String {
    let ids: Vec<String> = calls.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "start: claim+\n\
         claim: TEXT \"[\" CALL \"]\" END\n\
         TEXT: /[A-Za-z(]([^\\[\\]\\n<>{{}}.!?0-9]|[0-9]+(\\.[0-9]+)?){{2,160}}/\n\
         CALL: {}\n\
         END: /\\.? ?/\n",
        ids.join(" | ")
    )
}

/// The answer up to its last complete claim (an answer cut by the token limit ends mid-way).
fn whole_claims(generated: &Generated) -> String {
    let text = generated.text.trim();
    match text.rfind(']') {
        Some(end) if generated.finish == FinishReason::Length => text[..=end].to_owned(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: format!("Does {name}.\nMore."),
            parameters: json!({"type": "object", "properties": {"x": {"type": "integer"}}}),
            output: json!({}),
            effects: cellwright_core::Effects::Pure,
            answer: None,
        }
    }

    fn request(messages: Vec<Message>, choice: ToolChoice) -> ChatRequest {
        ChatRequest {
            messages,
            tools: vec![spec("count_codons"), spec("translate_dna")],
            tool_choice: choice,
            ..ChatRequest::default()
        }
    }

    fn next_turn_of(request: &ChatRequest) -> Turn {
        next_turn(request, 0)
    }

    #[test]
    fn tools_are_routed_by_their_summary_and_asked_lines() {
        let tool = ToolSpec {
            name: "go_terms".into(),
            description: "GO terms of a gene.\nExample: {}\nAsked: Which processes is a gene in?\nAsked:  Which GO terms?".into(),
            parameters: json!({}),
            output: json!({}),
            effects: cellwright_core::Effects::Pure,
            answer: None,
        };
        assert_eq!(
            routing_texts(&tool),
            [
                "go terms: GO terms of a gene.",
                "Which processes is a gene in?",
                "Which GO terms?"
            ]
        );
    }

    #[test]
    fn after_failed_calls_another_tool_is_tried_then_text() {
        let mut failed = vec![Message::system("s"), Message::user("q")];
        failed.push(Message::tool(
            "call_1",
            r#"{"call": 1, "tool": "count_codons", "error": "x"}"#,
        ));
        let req = request(failed.clone(), ToolChoice::Auto);
        assert_eq!(next_turn(&req, 1), Turn::Call(vec!["translate_dna".into()]));
        assert_eq!(next_turn(&req, 0), Turn::Text);
        failed.push(Message::tool(
            "call_2",
            r#"{"call": 2, "tool": "translate_dna", "error": "x"}"#,
        ));
        // Every tool failed once: nothing left to try.
        assert_eq!(next_turn(&request(failed, ToolChoice::Auto), 2), Turn::Text);
    }

    #[test]
    fn the_turn_follows_the_conversation() {
        let q = || vec![Message::system("be brief"), Message::user("q")];
        assert_eq!(
            next_turn_of(&request(q(), ToolChoice::Auto)),
            Turn::Call(vec!["count_codons".into(), "translate_dna".into()])
        );
        assert_eq!(
            next_turn_of(&request(q(), ToolChoice::Named("translate_dna".into()))),
            Turn::Call(vec!["translate_dna".into()])
        );
        assert_eq!(next_turn_of(&request(q(), ToolChoice::None)), Turn::Text);
        let mut answered = q();
        answered.push(Message::tool(
            "call_1",
            r#"{"call": 4, "tool": "t", "output": 1}"#,
        ));
        answered.push(Message::tool(
            "call_2",
            r#"{"call": 5, "tool": "t", "error": "x"}"#,
        ));
        assert_eq!(
            next_turn_of(&request(answered.clone(), ToolChoice::Auto)),
            Turn::CitedAnswer(vec![4])
        );
        answered.push(Message::user("again"));
        assert_eq!(
            next_turn_of(&request(answered, ToolChoice::Auto)),
            Turn::Call(vec!["count_codons".into(), "translate_dna".into()])
        );
    }

    fn generated(text: &str, finish: FinishReason) -> Generated {
        Generated {
            text: text.into(),
            prompt_tokens: 10,
            tokens: vec![1; 5],
            finish,
            prefill: std::time::Duration::ZERO,
            prefill_tokens: 10,
            decode: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn calls_are_read_from_the_output_and_bad_ones_are_errors() {
        let req = request(vec![Message::user("q")], ToolChoice::Auto);
        let free = generated(
            r#"Sure: {"name": "translate_dna", "arguments": {"x": 1}} is the call."#,
            FinishReason::Stop,
        );
        let message = tool_call_message(&free, &req).unwrap();
        assert_eq!(message.tool_calls[0].name, "translate_dna");
        assert_eq!(message.tool_calls[0].arguments, r#"{"x":1}"#);
        assert_eq!(message.tool_calls[0].id, "call_1");
        let cut = tool_call_message(
            &generated(r#"{"name": "transl"#, FinishReason::Length),
            &req,
        )
        .unwrap_err();
        assert!(cut.to_string().contains("did not fit in 5 tokens"), "{cut}");
        let prose =
            tool_call_message(&generated("I cannot.", FinishReason::Stop), &req).unwrap_err();
        assert!(prose.to_string().contains("not JSON"), "{prose}");
        // A domain value copied again and again is named once; other lists stay, and so does
        // a list that needs its repeats.
        let mut req = req;
        req.tools[0].name = "network_info".into();
        req.tools[0].parameters = json!({"type": "object", "properties": {
            "knockouts": {"type": "array", "items": {"type": "string"}, "x-domain": "model_node"},
            "a": {"type": "object", "properties": {
                "genes": {"type": "array", "items": {"type": "string", "x-domain": "gene"}},
                "pair": {"type": "array", "items": {"type": "string"}, "x-domain": "gene", "minItems": 2},
                "n": {"type": "array", "items": {"type": "string"}}
            }}
        }});
        let looped = generated(
            r#"{"name": "network_info", "arguments": {"knockouts": ["SHR", "SHR", "SCR", "SHR"], "a": {"genes": ["X", "X"], "pair": ["Y", "Y"], "n": ["Z", "Z"]}}}"#,
            FinishReason::Stop,
        );
        let message = tool_call_message(&looped, &req).unwrap();
        assert_eq!(
            message.tool_calls[0].arguments,
            r#"{"knockouts":["SHR","SCR"],"a":{"genes":["X"],"pair":["Y","Y"],"n":["Z","Z"]}}"#
        );
    }

    #[test]
    fn prompts_list_tools_and_render_through_the_template() {
        let template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
        let req = request(
            vec![Message::system("be brief"), Message::user("q")],
            ToolChoice::Auto,
        );
        let listed: Vec<&ToolSpec> = req.tools.iter().collect();
        let text = render(template, &prompt_messages(&req, &listed, Some(CALL_FORMAT))).unwrap();
        assert_eq!(
            text,
            "<system>be brief\n\nTools:\n- count_codons: Does count_codons.\n- translate_dna: Does translate_dna.\nTo use a tool, reply with one JSON object: {\"name\": \"<tool>\", \"arguments\": {…}}\n\n<user>q\n<assistant>"
        );
        let err = render("{{ raise_exception('no tools here') }}", &[]).unwrap_err();
        assert!(err.to_string().contains("no tools here"), "{err}");
    }
}
