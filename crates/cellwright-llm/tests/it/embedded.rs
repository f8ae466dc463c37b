//! The embedded chat model on its real weights (fetched into the cache on first use).

use std::path::PathBuf;
use std::sync::OnceLock;

use cellwright_core::{
    CancelToken, ChatModel, ChatRequest, Effects, Embedder, FinishReason, Message, ModelError,
    NoProgress, Role, ToolChoice, ToolSpec,
};
use cellwright_llm::embedded::{self, EmbeddedChat, LoadError, MiniLm, ToolRouter, cosine};
use serde_json::{Value, json};

fn gguf() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        embedded::default_chat_path(&NoProgress, &CancelToken::new())
            .expect("fetch the embedded model")
    })
    .clone()
}

fn chat() -> EmbeddedChat {
    embedded::load_chat(&gguf(), "embedded").expect("load the embedded model")
}

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
}

#[test]
fn the_tokenizer_gives_llama_cpp_ids() {
    let fixture: Fixture = serde_json::from_str(include_str!(
        "../../../../tests/data/tokenizer/smollm2_llamacpp.json"
    ))
    .unwrap();
    assert!(fixture.cases.len() >= 50);
    let mut file = std::fs::File::open(gguf()).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    let tokenizer = embedded::tokenizer(&content).unwrap();
    let mut wrong = Vec::new();
    for case in &fixture.cases {
        let ids = tokenizer.encode_fast(case.text.as_str(), false).unwrap();
        if ids.get_ids() != case.ids.as_slice() {
            wrong.push(format!(
                "{:?}\n  llama.cpp {:?}\n  ours      {:?}",
                case.text,
                case.ids,
                ids.get_ids()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        fixture.cases.len(),
        wrong.join("\n")
    );

    // The fixture can tell: candle's stock GGUF builder (prefix space, digits grouped) fails it.
    use candle_core::quantized::tokenizer::TokenizerFromGguf;
    let stock = tokenizers::Tokenizer::from_gguf(&content).unwrap();
    let stock_wrong = fixture
        .cases
        .iter()
        .filter(|c| {
            stock.encode_fast(c.text.as_str(), false).unwrap().get_ids() != c.ids.as_slice()
        })
        .count();
    assert!(stock_wrong > 10, "{stock_wrong}");
}

fn translate_spec() -> ToolSpec {
    ToolSpec {
        name: "translate_dna".into(),
        description: "Translate a DNA sequence into protein.".into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "sequence": {"type": "string", "pattern": "^[ACGTN]+$"},
                "frame": {"type": "integer", "minimum": 1, "maximum": 3},
            },
            "required": ["sequence", "frame"],
            "additionalProperties": false,
        }),
        output: json!({}),
        effects: Effects::Pure,
        answer: None,
    }
}

fn lookup_spec() -> ToolSpec {
    ToolSpec {
        name: "lookup_gene".into(),
        description: "Look up a human gene by its symbol.".into(),
        parameters: json!({
            "type": "object",
            "properties": {"symbol": {"type": "string", "minLength": 1, "maxLength": 20}},
            "required": ["symbol"],
            "additionalProperties": false,
        }),
        output: json!({}),
        effects: Effects::Pure,
        answer: None,
    }
}

#[tokio::test]
async fn tool_calls_are_schema_valid_and_answers_cite_them() {
    let model = chat();
    let mut request = ChatRequest {
        messages: vec![
            Message::system("You answer questions about biology with the tools."),
            Message::user("What protein does the DNA sequence ATGGCCAAATAA encode?"),
        ],
        tools: vec![lookup_spec(), translate_spec()],
        tool_choice: ToolChoice::Auto,
        ..ChatRequest::default()
    };
    let response = model.chat(&request).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    let call = &response.message.tool_calls[0];
    let spec = request
        .tools
        .iter()
        .find(|t| t.name == call.name)
        .expect("a known tool");
    let args: Value = serde_json::from_str(&call.arguments).unwrap();
    let validator = jsonschema::validator_for(&spec.parameters).unwrap();
    assert!(
        validator.is_valid(&args),
        "{args} against {}",
        spec.parameters
    );
    assert!(response.usage.input_tokens > 0 && response.usage.output_tokens > 0);

    // With the result in, the answer cites it.
    request.messages.push(response.message.clone());
    request.messages.push(Message::tool(
        call.id.clone(),
        json!({"call": 1, "tool": "translate_dna", "output": {"protein": "MAK*"}}).to_string(),
    ));
    let answer = model.chat(&request).await.unwrap();
    assert_eq!(answer.message.role, Role::Assistant);
    assert!(answer.message.tool_calls.is_empty());
    assert!(
        answer.message.content.contains("[1]"),
        "{}",
        answer.message.content
    );
}

#[tokio::test]
async fn every_schema_constrains_the_call() {
    let model = chat();
    let schemas = [
        json!({"type": "object", "properties": {"kind": {"enum": ["knockout", "overexpression"]}, "genes": {"type": "array", "items": {"type": "string", "minLength": 2, "maxLength": 10}, "minItems": 1, "maxItems": 3}}, "required": ["kind", "genes"], "additionalProperties": false}),
        json!({"type": "object", "properties": {"threshold": {"type": "number", "minimum": 0, "maximum": 1}, "top": {"type": "integer", "minimum": 1, "maximum": 50}}, "required": ["threshold", "top"], "additionalProperties": false}),
        json!({"type": "object", "properties": {"cell": {"type": "object", "properties": {"type": {"type": "string", "maxLength": 30}, "count": {"type": "integer", "minimum": 0}}, "required": ["type", "count"], "additionalProperties": false}}, "required": ["cell"], "additionalProperties": false}),
    ];
    for (i, schema) in schemas.iter().enumerate() {
        let request = ChatRequest {
            messages: vec![Message::user(
                "Predict the effect of knocking out TP53 and MYC in T cells.",
            )],
            tools: vec![ToolSpec {
                name: format!("tool_{i}"),
                description: "A tool.".into(),
                parameters: schema.clone(),
                output: json!({}),
                effects: Effects::Pure,
                answer: None,
            }],
            tool_choice: ToolChoice::Required,
            seed: Some(i as u64),
            temperature: Some(0.8),
            ..ChatRequest::default()
        };
        let response = model.chat(&request).await.unwrap();
        let call = &response.message.tool_calls[0];
        let args: Value = serde_json::from_str(&call.arguments).unwrap();
        let validator = jsonschema::validator_for(schema).unwrap();
        assert!(validator.is_valid(&args), "{args} against {schema}");
    }
}

#[tokio::test]
async fn over_long_prompts_and_bad_files_are_typed_errors() {
    let model = chat();
    let request = ChatRequest {
        messages: vec![Message::user("gene ".repeat(5000))],
        ..ChatRequest::default()
    };
    let err = model.chat(&request).await.unwrap_err();
    assert!(
        matches!(err, ModelError::ContextLength { limit: 4096, .. }),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.gguf");
    let bytes = std::fs::read(gguf()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let err = embedded::load_chat(&truncated, "gguf:x").unwrap_err();
    assert!(matches!(err, LoadError::Model { .. }), "{err}");

    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, "not a model").unwrap();
    let err = embedded::load_chat(&text, "gguf:x").unwrap_err();
    assert!(
        err.to_string().contains("not a readable GGUF file"),
        "{err}"
    );

    let err = embedded::load_chat(&dir.path().join("absent.gguf"), "gguf:x").unwrap_err();
    assert!(err.to_string().contains("absent.gguf"), "{err}");
}

fn minilm() -> MiniLm {
    static MODEL: OnceLock<MiniLm> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            MiniLm::fetch_default(&NoProgress, &CancelToken::new()).expect("fetch the embedder")
        })
        .clone()
}

#[tokio::test]
async fn sentence_embeddings_are_unit_length_and_independent_of_batching() {
    let embedder = minilm();
    assert_eq!(embedder.dimension(), 384);
    let texts: Vec<String> = [
        "Knocking out TP53 removes a tumour suppressor.",
        "TP53 gene deletion",
        "The weather is sunny today.",
        "a",
    ]
    .map(String::from)
    .to_vec();
    let batch = embedder.embed(&texts).await.unwrap();
    assert_eq!(batch.len(), 4);
    for (text, v) in texts.iter().zip(&batch) {
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        // Padding to the batch's longest text must not change a text's embedding.
        let alone = embedder.embed(std::slice::from_ref(text)).await.unwrap();
        assert!(cosine(v, &alone[0]) > 0.9999, "{text}");
    }
    assert!(cosine(&batch[0], &batch[1]) > cosine(&batch[0], &batch[2]) + 0.2);
    assert!(embedder.embed(&[]).await.unwrap().is_empty());
}

#[test]
fn routing_keeps_the_tools_nearest_the_request() {
    let router = ToolRouter::new(minilm(), 2);
    let spec = |name: &str, description: &str| ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters: json!({"type": "object"}),
        output: json!({}),
        effects: Effects::Pure,
        answer: None,
    };
    let tools = [
        spec(
            "translate_dna",
            "Translate a DNA sequence into protein with the genetic code.",
        ),
        spec(
            "reverse_complement",
            "The reverse complement of a DNA sequence.",
        ),
        spec("record_note", "Write a note into the lab notebook."),
        spec(
            "simulate_network",
            "Simulate a Boolean gene regulatory network over time.",
        ),
        spec(
            "annotate_cells",
            "Assign cell types to single cells from their expression.",
        ),
    ];
    let refs: Vec<&ToolSpec> = tools.iter().collect();
    let chosen = router
        .route("Which cell types are in my single-cell data set?", &refs)
        .unwrap();
    assert_eq!(chosen.len(), 2);
    assert_eq!(chosen[0], "annotate_cells", "{chosen:?}");
    let chosen = router
        .route("Please write this down in my notebook.", &refs)
        .unwrap();
    assert_eq!(chosen[0], "record_note", "{chosen:?}");
    // Few tools: nothing to narrow.
    assert_eq!(router.route("anything", &refs[..2]).unwrap().len(), 2);
    // With a margin, a clear winner is the only choice, however few the tools.
    let router = ToolRouter::new(minilm(), 2).with_margin(0.05);
    let chosen = router
        .route("Please write this down in my notebook.", &refs[1..3])
        .unwrap();
    assert_eq!(chosen, ["record_note"]);
}

#[derive(serde::Deserialize)]
struct Vectors {
    cases: Vec<VectorCase>,
}

#[derive(serde::Deserialize)]
struct VectorCase {
    text: String,
    vector: Vec<f32>,
}

#[tokio::test]
async fn embeddings_agree_with_sentence_transformers() {
    let fixture: Vectors = serde_json::from_str(include_str!(
        "../../../../tests/data/embeddings/minilm_sentence_transformers.json"
    ))
    .unwrap();
    assert!(fixture.cases.len() >= 30);
    let texts: Vec<String> = fixture.cases.iter().map(|c| c.text.clone()).collect();
    // In batches of 8, as the reference was made, and of 32: padding must not matter.
    for batch in [8, 32] {
        let mut ours = Vec::new();
        for chunk in texts.chunks(batch) {
            ours.extend(minilm().embed(chunk).await.unwrap());
        }
        for (case, v) in fixture.cases.iter().zip(&ours) {
            let agreement = cosine(&case.vector, v);
            assert!(agreement >= 0.999, "{agreement} for {:?}", case.text);
        }
    }
}

#[test]
fn the_models_own_template_renders_a_tool_conversation() {
    let request = crate::tool_conversation(vec![translate_spec(), lookup_spec()]);
    insta::assert_snapshot!(chat().prompt(&request).unwrap());
}
