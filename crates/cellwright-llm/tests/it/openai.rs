use std::sync::Arc;
use std::time::Duration;

use cellwright_core::{
    CancelToken, ChatEvent, ChatModel, ChatRequest, Message, ModelError, RunId, RunStatus, Tool,
    ToolChoice, ToolCtx, ToolError, ToolRegistry, TraceStore,
};
use cellwright_llm::testing::{
    FakeOpenAi, Reply, error_body, text_chunks, text_completion, tool_chunks, tool_completion,
};
use cellwright_llm::{OpenAiChat, OpenAiConfig};
use cellwright_runtime::{Agent, AgentConfig};
use futures::StreamExt;
use serde_json::{Value, json};

fn config(server: &FakeOpenAi, stream: bool) -> OpenAiConfig {
    OpenAiConfig {
        base_url: server.base_url(),
        api_key: Some("sk-test-secret".into()),
        model: "fake-model".into(),
        stream,
        timeout: Duration::from_secs(20),
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::system("be brief"), Message::user("hi")],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_plain_reply_is_parsed_and_the_key_is_sent_but_never_shown() {
    let server = FakeOpenAi::start(vec![Reply::Json(text_completion("Hello."))])
        .await
        .unwrap();
    let chat = OpenAiChat::new(config(&server, false)).unwrap();
    let reply = chat.chat(&request()).await.unwrap();
    assert_eq!(reply.message.content, "Hello.");
    assert_eq!(
        (reply.usage.input_tokens, reply.usage.output_tokens),
        (11, 7)
    );
    let got = server.received();
    assert_eq!(
        got[0].authorization.as_deref(),
        Some("Bearer sk-test-secret")
    );
    assert_eq!(
        got[0].body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert!(!format!("{chat:?}").contains("sk-test-secret"));
}

#[tokio::test]
async fn tools_and_tool_choice_go_over_the_wire_and_calls_come_back() {
    let server = FakeOpenAi::start(vec![Reply::Json(tool_completion(&[(
        "translate_dna",
        json!({"sequence": "ATG", "frame": 1}),
    )]))])
    .await
    .unwrap();
    let chat = OpenAiChat::new(config(&server, false)).unwrap();
    let mut req = request();
    req.tools = vec![cellwright_core::DynTool::spec(&Noop)];
    req.tool_choice = ToolChoice::Named("noop_tool".into());
    let reply = chat.chat(&req).await.unwrap();
    assert_eq!(reply.message.tool_calls[0].name, "translate_dna");
    assert_eq!(
        serde_json::from_str::<Value>(&reply.message.tool_calls[0].arguments).unwrap(),
        json!({"sequence": "ATG", "frame": 1})
    );
    let body = &server.received()[0].body;
    assert_eq!(body["tools"][0]["function"]["name"], "noop_tool");
    assert_eq!(body["tools"][0]["function"]["parameters"]["type"], "object");
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "noop_tool"}})
    );
}

#[tokio::test]
async fn rate_limits_are_retried() {
    let server = FakeOpenAi::start(vec![
        Reply::Status(429, error_body("slow down", "rate_limit_exceeded")),
        Reply::Json(text_completion("after the wait")),
    ])
    .await
    .unwrap();
    let chat = OpenAiChat::new(config(&server, false)).unwrap();
    assert_eq!(
        chat.chat(&request()).await.unwrap().message.content,
        "after the wait"
    );
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_with_their_status() {
    let server = FakeOpenAi::start(vec![Reply::Status(
        500,
        error_body("it broke", "server_error"),
    )])
    .await
    .unwrap();
    let chat = OpenAiChat::new(config(&server, false)).unwrap();
    let err = chat.chat(&request()).await.unwrap_err();
    assert!(
        matches!(&err, ModelError::Http { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(server.received().len(), 4, "one request and three retries");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = FakeOpenAi::start(vec![Reply::Status(
        400,
        error_body("bad tools", "invalid_request_error"),
    )])
    .await
    .unwrap();
    let chat = OpenAiChat::new(config(&server, false)).unwrap();
    let err = chat.chat(&request()).await.unwrap_err();
    assert_eq!(
        err,
        ModelError::Http {
            status: 400,
            message: "bad tools".into()
        }
    );
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn malformed_replies_are_typed_errors() {
    for (reply, expect) in [
        (
            Reply::Raw("{not json".into()),
            "the body began with: {not json",
        ),
        (Reply::Json(json!({"choices": []})), "no choices"),
        (
            Reply::Json(json!({"choices": [{"message": {"content": 5}}]})),
            "invalid type",
        ),
    ] {
        let server = FakeOpenAi::start(vec![reply]).await.unwrap();
        let chat = OpenAiChat::new(config(&server, false)).unwrap();
        let err = chat.chat(&request()).await.unwrap_err();
        assert!(matches!(err, ModelError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains(expect), "{err}");
    }
}

#[tokio::test]
async fn streamed_text_arrives_in_deltas_and_assembles() {
    let server = FakeOpenAi::start(vec![Reply::Stream(text_chunks("Streaming works.", 4))])
        .await
        .unwrap();
    let chat = OpenAiChat::new(config(&server, true)).unwrap();
    let req = request();
    let events: Vec<_> = chat.chat_stream(&req).collect().await;
    let deltas: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Ok(ChatEvent::Delta(t)) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, ["Stre", "amin", "g wo", "rks."]);
    let Some(Ok(ChatEvent::Done(done))) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(done.message.content, "Streaming works.");
    assert_eq!(done.usage.output_tokens, 3);
    assert_eq!(server.received()[0].body["stream"], json!(true));
}

#[tokio::test]
async fn streamed_tool_calls_are_reassembled() {
    let args = json!({"sequence": "ATGGCC", "frame": 2});
    let server = FakeOpenAi::start(vec![Reply::Stream(tool_chunks("translate_dna", &args))])
        .await
        .unwrap();
    let chat = OpenAiChat::new(config(&server, true)).unwrap();
    let reply = chat.chat(&request()).await.unwrap();
    assert_eq!(reply.message.tool_calls.len(), 1);
    assert_eq!(reply.message.tool_calls[0].id, "call_s");
    assert_eq!(
        serde_json::from_str::<Value>(&reply.message.tool_calls[0].arguments).unwrap(),
        args
    );
}

#[tokio::test]
async fn a_stream_cut_mid_way_is_a_retryable_truncation() {
    let mut chunks = text_chunks("This answer never ends", 5);
    chunks.truncate(2);
    for reply in [Reply::StreamCut(chunks.clone()), Reply::Stream(chunks)] {
        let server = FakeOpenAi::start(vec![reply]).await.unwrap();
        let chat = OpenAiChat::new(config(&server, true)).unwrap();
        let err = chat.chat(&request()).await.unwrap_err();
        assert!(matches!(err, ModelError::Truncated { .. }), "{err:?}");
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let chat = OpenAiChat::new(OpenAiConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: None,
        model: "m".into(),
        stream: false,
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let err = chat.chat(&request()).await.unwrap_err();
    assert!(matches!(err, ModelError::Transport { .. }), "{err:?}");
}

/// The whole loop over HTTP: the model calls a tool, reads the result and answers with a
/// citation; a 503 on the way is absorbed.
#[tokio::test]
async fn an_agent_runs_against_the_endpoint_streaming_or_not() {
    for stream in [false, true] {
        let replies = if stream {
            vec![
                Reply::Stream(tool_chunks("noop_tool", &json!({"note": "hi"}))),
                Reply::Status(503, error_body("busy", "server_error")),
                Reply::Stream(text_chunks("The tool echoed hi [1].", 6)),
            ]
        } else {
            vec![
                Reply::Json(tool_completion(&[("noop_tool", json!({"note": "hi"}))])),
                Reply::Status(503, error_body("busy", "server_error")),
                Reply::Json(text_completion("The tool echoed hi [1].")),
            ]
        };
        let server = FakeOpenAi::start(replies).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            cellwright_store::SqliteStore::open(dir.path().join("t.db"))
                .await
                .unwrap(),
        );
        let mut tools = ToolRegistry::new();
        tools.register(Noop).unwrap();
        let agent = Agent::new(
            Arc::new(OpenAiChat::new(config(&server, stream)).unwrap()),
            Arc::new(tools),
            Arc::clone(&store) as Arc<dyn TraceStore>,
            AgentConfig::default(),
        );
        let out = agent
            .run(RunId::new("r"), "echo hi", CancelToken::new())
            .await
            .unwrap();
        assert_eq!(
            out.status,
            RunStatus::Completed,
            "stream={stream}: {:?}",
            out.reason
        );
        assert!(out.answer.claims[0].supported);
        // The second request carries the tool result, answering the provider's call id.
        let second = &server.received()[1].body;
        let tool_msg = &second["messages"][3];
        assert_eq!(tool_msg["role"], "tool");
        assert!(
            tool_msg["tool_call_id"]
                .as_str()
                .unwrap()
                .starts_with("call_")
        );
        assert!(tool_msg["content"].as_str().unwrap().contains("\"call\":1"));
        // The key is in no stored event.
        let events = store.events(&RunId::new("r")).await.unwrap();
        assert!(
            !serde_json::to_string(&events)
                .unwrap()
                .contains("sk-test-secret")
        );
    }
}

/// Echoes its note.
struct Noop;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoopArgs {
    note: String,
}

impl Tool for Noop {
    const NAME: &'static str = "noop_tool";
    type Args = NoopArgs;
    type Output = Value;

    fn description(&self) -> String {
        "Echoes a note.".into()
    }

    async fn call(&self, _ctx: &ToolCtx, args: NoopArgs) -> Result<Value, ToolError> {
        Ok(json!({ "note": args.note }))
    }
}
