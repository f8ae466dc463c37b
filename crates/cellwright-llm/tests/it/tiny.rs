//! The embedded engine on a tiny llama with seeded random weights, built in the test: the KV
//! cache, prompt reuse, sampling, stops, and constrained decoding over generated schemas.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::quantized::GgmlDType;
use cellwright_core::{
    CancelToken, ChatRequest, Effects, FinishReason, Message, ModelError, ToolChoice, ToolSpec,
};
use cellwright_llm::embedded::{EmbeddedChat, Engine, GgufModel, SamplingParams};
use cellwright_llm::testing::tiny_llama::{self, Shape};
use llguidance::api::TopLevelGrammar;
use proptest::prelude::*;
use serde_json::{Value, json};

/// The tiny model's file (written once per test process).
fn tiny() -> &'static Path {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = FILE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        tiny_llama::write(&path, 7, Shape::default(), GgmlDType::Q8_0).unwrap();
        (dir, path)
    });
    path
}

fn engine() -> Engine {
    let mut engine = Engine::new(GgufModel::load(tiny()).unwrap()).unwrap();
    engine.warm_up().unwrap();
    engine
}

const GREEDY: SamplingParams = SamplingParams {
    temperature: 0.0,
    top_p: 1.0,
    seed: 0,
    repeat_penalty: 1.0,
};

fn sampled(seed: u64) -> SamplingParams {
    SamplingParams {
        temperature: 1.0,
        seed,
        ..GREEDY
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, l) in logits.iter().enumerate() {
        if *l > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn prompt(engine: &Engine, text: &str) -> Vec<u32> {
    engine
        .encode(&format!(
            "<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"
        ))
        .unwrap()
}

#[test]
fn the_vocabulary_and_template_come_from_the_file() {
    let engine = engine();
    let model = &engine.model;
    assert_eq!(model.tokens.len(), tiny_llama::vocabulary().0.len());
    assert_eq!(model.chat_template, tiny_llama::CHATML);
    assert_eq!(model.context_length, 4096);
    // Merges apply, and control tokens are single ids.
    let ids = engine.encode("<|im_start|> the").unwrap();
    let the = model.tokens.iter().position(|t| t == "Ġthe").unwrap() as u32;
    assert_eq!(ids, vec![model.specials.bos.unwrap(), the]);
    let im_end = model.tokens.iter().position(|t| t == "<|im_end|>").unwrap() as u32;
    assert_eq!(model.specials.eos, im_end);
    assert!(model.specials.stop.contains(&im_end));
}

#[test]
fn decoding_with_the_kv_cache_gives_the_logits_of_a_full_pass() {
    let mut engine = engine();
    let prompt = prompt(&engine, "the cell");
    let mut tokens = prompt.clone();
    let mut cached = vec![engine.model.forward(&prompt, 0).unwrap()];
    for _ in 0..12 {
        let next = argmax(cached.last().unwrap());
        tokens.push(next);
        cached.push(engine.model.forward(&[next], tokens.len() - 1).unwrap());
    }
    for (step, logits) in cached.iter().enumerate() {
        let full = engine
            .model
            .forward(&tokens[..prompt.len() + step], 0)
            .unwrap();
        let gap = full
            .iter()
            .zip(logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(gap < 1e-3, "step {step}: logits differ by {gap}");
    }
    // `generate` decodes greedily through the same cache.
    let generated = engine
        .generate(&prompt, 12, GREEDY, None, &CancelToken::new(), None)
        .unwrap();
    let stop = generated.tokens.len();
    assert_eq!(generated.tokens, tokens[prompt.len()..prompt.len() + stop]);
}

#[test]
fn a_prompt_that_extends_the_last_reads_only_what_is_new() {
    let mut engine = engine();
    let first = prompt(&engine, "the cell");
    engine
        .generate(&first, 4, GREEDY, None, &CancelToken::new(), None)
        .unwrap();
    let mut second = first.clone();
    second.extend(engine.encode("more text about the cell").unwrap());
    let reused = engine
        .generate(&second, 16, GREEDY, None, &CancelToken::new(), None)
        .unwrap();
    assert_eq!(reused.prefill_tokens, second.len() - first.len());
    engine.forget_prefix();
    let fresh = engine
        .generate(&second, 16, GREEDY, None, &CancelToken::new(), None)
        .unwrap();
    assert_eq!(fresh.prefill_tokens, second.len());
    assert_eq!(reused.tokens, fresh.tokens);
}

#[test]
fn sampling_is_repeatable_by_seed_and_top_p_narrows_it() {
    let mut engine = engine();
    let prompt = prompt(&engine, "the cell");
    let mut run = |params| {
        engine
            .generate(&prompt, 24, params, None, &CancelToken::new(), None)
            .unwrap()
            .tokens
    };
    assert_eq!(run(sampled(3)), run(sampled(3)));
    let outputs: std::collections::HashSet<Vec<u32>> = (0..6).map(|s| run(sampled(s))).collect();
    assert!(outputs.len() > 1, "six seeds gave one output");
    let greedy = run(GREEDY);
    assert_eq!(run(GREEDY), greedy);
    // With top-p near 0 only the likeliest token survives: greedy, whatever the seed.
    for seed in 0..3 {
        let narrow = SamplingParams {
            top_p: 1e-9,
            ..sampled(seed)
        };
        assert_eq!(run(narrow), greedy);
    }
}

#[test]
fn generation_stops_at_the_limit_the_grammar_cancellation_and_the_context() {
    let mut engine = engine();
    let prompt = prompt(&engine, "the cell");
    let cancel = CancelToken::new();
    let long = engine
        .generate(&prompt, 5, sampled(1), None, &cancel, None)
        .unwrap();
    assert!(long.tokens.len() <= 5);
    if long.tokens.len() == 5 {
        assert_eq!(long.finish, FinishReason::Length);
    }

    let mut matcher = engine
        .matcher(TopLevelGrammar::from_lark(
            r#"start: "yes" | "no, " NUMBER
               NUMBER: /[0-9]{1,3}/"#
                .into(),
        ))
        .unwrap();
    let mut streamed = String::new();
    let mut on_text = |t: &str| streamed.push_str(t);
    let said = engine
        .generate(
            &prompt,
            50,
            sampled(2),
            Some(&mut matcher),
            &cancel,
            Some(&mut on_text),
        )
        .unwrap();
    assert_eq!(said.finish, FinishReason::Stop);
    assert!(
        said.text == "yes" || regex_like_no(&said.text),
        "{:?}",
        said.text
    );
    assert_eq!(streamed, said.text);

    cancel.cancel();
    let err = engine
        .generate(&prompt, 5, GREEDY, None, &cancel, None)
        .unwrap_err();
    assert!(matches!(err, ModelError::Cancelled), "{err}");

    let huge = vec![prompt[0]; 4096];
    let err = engine
        .generate(&huge, 5, GREEDY, None, &CancelToken::new(), None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::ContextLength {
                tokens: 4096,
                limit: 4096
            }
        ),
        "{err}"
    );
}

fn regex_like_no(text: &str) -> bool {
    text.strip_prefix("no, ")
        .is_some_and(|n| (1..=3).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn a_file_in_a_slow_format_is_read_through_a_q8_0_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.gguf");
    tiny_llama::write(&path, 7, Shape::default(), GgmlDType::Q4_1).unwrap();
    let mut model = GgufModel::load(&path).unwrap();
    let copy = dir.path().join("slow.q8_0.gguf");
    let made = std::fs::metadata(&copy).unwrap().modified().unwrap();
    let logits = model.forward(&[1, 2, 3], 0).unwrap();
    assert!(logits.iter().all(|l| l.is_finite()));
    // Loaded again, the copy is reused, not rewritten.
    GgufModel::load(&path).unwrap();
    assert_eq!(std::fs::metadata(&copy).unwrap().modified().unwrap(), made);
}

// Constrained tool calls over generated schemas: whatever the (random) model prefers, the
// call parses and validates.

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..4, 0u64..12).prop_map(
            |(min, extra)| json!({"type": "string", "minLength": min, "maxLength": min + extra})
        ),
        Just(json!({"type": "string"})),
        prop::collection::btree_set("[a-z_]{1,8}", 1..5)
            .prop_map(|v| json!({"enum": v.into_iter().collect::<Vec<_>>()})),
        (-50i64..50, 0i64..100).prop_map(
            |(min, span)| json!({"type": "integer", "minimum": min, "maximum": min + span})
        ),
        Just(json!({"type": "integer"})),
        (-10i64..10, 1i64..20).prop_map(
            |(min, span)| json!({"type": "number", "minimum": min, "maximum": min + span})
        ),
        Just(json!({"type": "number"})),
        Just(json!({"type": "boolean"})),
    ]
}

fn object_of(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map("[a-z]{1,6}", inner, 1..4),
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_map(|(properties, all_required, closed)| {
            let names: Vec<&String> = properties.keys().collect();
            let required: Vec<&String> = if all_required {
                names
            } else {
                names.into_iter().take(1).collect()
            };
            let mut schema =
                json!({"type": "object", "properties": properties, "required": required});
            if closed {
                schema["additionalProperties"] = json!(false);
            }
            schema
        })
}

fn schema() -> impl Strategy<Value = Value> {
    let value = leaf().prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            (inner.clone(), 0u64..3, prop::option::of(0u64..5)).prop_map(|(items, min, extra)| {
                let mut schema = json!({"type": "array", "items": items, "minItems": min});
                if let Some(extra) = extra {
                    schema["maxItems"] = json!(min + extra);
                }
                schema
            }),
            object_of(inner),
        ]
    });
    object_of(value)
}

fn tiny_chat() -> &'static EmbeddedChat {
    static CHAT: OnceLock<EmbeddedChat> = OnceLock::new();
    CHAT.get_or_init(|| EmbeddedChat::new(engine(), "gguf:tiny"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn constrained_calls_always_validate(parameters in schema(), seed in 0u64..1000) {
        let validator = jsonschema::validator_for(&parameters).unwrap();
        let request = ChatRequest {
            messages: vec![Message::user("the cell")],
            tools: vec![ToolSpec {
                name: "probe".into(),
                description: "A tool.".into(),
                parameters: parameters.clone(),
                output: json!({}),
                effects: Effects::Pure,
                answer: None,
            }],
            tool_choice: ToolChoice::Required,
            temperature: Some(1.0),
            seed: Some(seed),
            ..ChatRequest::default()
        };
        let response = tiny_chat()
            .respond(&request, &CancelToken::new(), None)
            .unwrap_or_else(|e| panic!("{e}\nfor {parameters}"));
        let call = &response.message.tool_calls[0];
        prop_assert_eq!(&call.name, "probe");
        let args: Value = serde_json::from_str(&call.arguments).unwrap();
        prop_assert!(validator.is_valid(&args), "{} against {}", args, parameters);
    }
}

#[test]
fn prompts_render_through_the_files_template() {
    let request = crate::tool_conversation(vec![ToolSpec {
        name: "translate_dna".into(),
        description: "Translate DNA into protein.\nStandard code.".into(),
        parameters: json!({"type": "object"}),
        output: json!({}),
        effects: Effects::Pure,
        answer: None,
    }]);
    insta::assert_snapshot!(tiny_chat().prompt(&request).unwrap());
}

#[test]
fn continuations_are_scored_by_their_log_probability() {
    let mut engine = engine();
    let prompt = prompt(&engine, "the cell");
    let options = vec![
        engine.encode("the").unwrap(),
        engine.encode("cell, the").unwrap(),
    ];
    let scores = engine.score_continuations(&prompt, &options).unwrap();
    for (option, score) in options.iter().zip(&scores) {
        let mut expected = 0.0f32;
        for i in 0..option.len() {
            let mut seen = prompt.clone();
            seen.extend(&option[..i]);
            let logits = engine.model.forward(&seen, 0).unwrap();
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
            expected += logits[option[i] as usize] - max - sum.ln();
        }
        assert!((score - expected).abs() < 1e-3, "{score} vs {expected}");
    }
    // The prompt stays read: a generation after it reads nothing again.
    let generated = engine
        .generate(&prompt, 3, GREEDY, None, &CancelToken::new(), None)
        .unwrap();
    assert_eq!(generated.prefill_tokens, 0);
}
