//! The backends: the embedded GGUF model on its real weights and on a tiny seeded llama, the OpenAI-compatible backend
//! against a loopback server speaking the real protocol, scripted models.

// Test helpers live outside `#[test]` functions, where clippy's test allowance does not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod embedded;
mod openai;
mod scripted;
mod tiny;

use cellwright_core::{ChatRequest, Message, ToolCallRequest, ToolSpec};

/// A conversation with one tool call and its result, as the runtime writes them: what the
/// chat-template snapshots render.
fn tool_conversation(tools: Vec<ToolSpec>) -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::system("You are a careful scientific assistant."),
            Message::user("Translate ATGGCC."),
            Message {
                tool_calls: vec![ToolCallRequest {
                    id: "call_1".into(),
                    name: "translate_dna".into(),
                    arguments: r#"{"dna":"ATGGCC"}"#.into(),
                }],
                ..Message::assistant("")
            },
            Message::tool(
                "call_1",
                r#"{"call": 1, "tool": "translate_dna", "output": "MA"}"#,
            ),
        ],
        tools,
        ..ChatRequest::default()
    }
}
