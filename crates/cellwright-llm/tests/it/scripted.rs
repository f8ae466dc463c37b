use cellwright_core::{ChatModel, ChatRequest, Message, ModelError};
use cellwright_llm::ScriptedModel;

#[tokio::test]
async fn script_files_are_read_with_line_numbers_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    std::fs::write(
        &good,
        "// a comment\n{\"tool_calls\": [{\"name\": \"translate_dna\", \"arguments\": {\"sequence\": \"ATG\"}}]}\n\n{\"content\": \"done [1]\"}\n",
    )
    .unwrap();
    let model = ScriptedModel::from_file(&good).unwrap();
    let mut request = ChatRequest {
        messages: vec![Message::user("q")],
        ..Default::default()
    };
    let first = model.chat(&request).await.unwrap();
    assert_eq!(
        first.message.tool_calls[0].arguments,
        r#"{"sequence":"ATG"}"#
    );
    request.messages.push(first.message);
    assert_eq!(
        model.chat(&request).await.unwrap().message.content,
        "done [1]"
    );
    request.messages.push(Message::assistant("x"));
    assert!(matches!(
        model.chat(&request).await,
        Err(ModelError::Exhausted { .. })
    ));

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"content\": \"ok\"}\n{\"content\": 3}\n").unwrap();
    let err = ScriptedModel::from_file(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.jsonl:2:"), "{err}");
}
