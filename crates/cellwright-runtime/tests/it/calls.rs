//! Tool calls: concurrency, timeouts, failures, repair of invalid arguments, citations.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cellwright_core::{
    ChatRequest, ChatResponse, FinishReason, Message, Role, RunStatus, ToolCallRequest, TraceEvent,
    TraceStore, Usage,
};
use cellwright_llm::ScriptedModel;
use cellwright_runtime::{Agent, AgentConfig};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn calls_of_one_step_run_concurrently() {
    let f = fixture(3).await;
    let script = vec![
        tools_turn(vec![
            call("meet_others", json!({})),
            call("meet_others", json!({})),
            call("meet_others", json!({})),
        ]),
        text_turn("All three met [1, 2, 3]."),
    ];
    // With one call at a time the barrier never opens and every call times out.
    let config = AgentConfig {
        tool_timeout: Duration::from_secs(20),
        ..AgentConfig::default()
    };
    let out = run(&agent(&f, script, config), "r1", "meet").await;
    assert_eq!(out.status, RunStatus::Completed);
    let finished = finished_outcomes(&events(&f.store, "r1").await);
    assert_eq!(finished.len(), 3);
    assert!(finished.iter().all(|(_, _, o)| o.is_ok()), "{finished:?}");
    assert!(out.answer.claims[0].supported);
    assert_eq!(out.answer.claims[0].evidence.len(), 3);
}

#[tokio::test]
async fn timeouts_failures_and_panics_become_errors_for_the_model() {
    let f = fixture(1).await;
    let script = vec![
        tools_turn(vec![
            call("sleep_ms", json!({"ms": 30_000})),
            call("fail_now", json!({"panic": false})),
            call("fail_now", json!({"panic": true})),
            call("sleep_ms", json!({"ms": 1})),
        ]),
        text_turn("The short sleep worked [4]. The instrument answered [2]."),
    ];
    let config = AgentConfig {
        tool_timeout: Duration::from_millis(200),
        ..AgentConfig::default()
    };
    let out = run(&agent(&f, script, config), "r", "q").await;
    assert_eq!(out.status, RunStatus::Completed);
    let mut finished = finished_outcomes(&events(&f.store, "r").await);
    finished.sort_by_key(|(call, _, _)| *call);
    let kinds: Vec<_> = finished
        .iter()
        .map(|(c, _, o)| (c.0, o.clone().err()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, Some("timeout".to_owned())),
            (2, Some("failed".to_owned())),
            (3, Some("failed".to_owned())),
            (4, None),
        ]
    );
    let claims = &out.answer.claims;
    assert!(claims[0].supported);
    assert!(!claims[1].supported);
    assert_eq!(
        claims[1].note.as_deref(),
        Some("cites call 2 (fail_now), which failed")
    );
}

#[tokio::test]
async fn the_model_sees_errors_and_repairs_its_arguments() {
    let f = fixture(1).await;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen_by_model = Arc::clone(&seen);
    // A model that reads the tool error and fixes the frame.
    let model = ScriptedModel::from_fn("script:repair", move |req: &ChatRequest| {
        let turn = req
            .messages
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .count();
        if let Some(last) = req.messages.last().filter(|m| m.role == Role::Tool) {
            seen_by_model.lock().unwrap().push(last.content.clone());
        }
        let (content, calls) = match turn {
            0 => (
                "",
                vec![("translate_dna", r#"{"sequence": "ATGAAA", "frame": 7}"#)],
            ),
            1 => (
                "",
                vec![("translate_dna", r#"{"sequence": "ATGAAA", "frame": "one"}"#)],
            ),
            2 => (
                "",
                vec![("translate_dna", r#"{"sequence": "ATGAAA", "frame": 1"#)],
            ),
            3 => (
                "",
                vec![("translate_dna", r#"{"sequence": "ATGAAA", "frame": 1}"#)],
            ),
            _ => ("Two codons [4].", vec![]),
        };
        Ok(response(content, calls))
    });
    let agent = Agent::new(
        Arc::new(model),
        Arc::clone(&f.tools),
        Arc::clone(&f.store) as Arc<dyn TraceStore>,
        AgentConfig::default(),
    );
    let out = run(&agent, "r", "translate").await;
    assert_eq!(out.status, RunStatus::Completed, "{:?}", out.reason);
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].contains("`/frame`") && seen[0].contains("maximum"),
        "{}",
        seen[0]
    );
    assert!(
        seen[1].contains("`/frame`") && seen[1].contains("\\\"one\\\""),
        "{}",
        seen[1]
    );
    assert!(seen[2].contains("not valid JSON"), "{}", seen[2]);
    assert!(seen[3].contains("\"codons\":2"), "{}", seen[3]);
    assert!(out.answer.claims[0].supported);
}

#[tokio::test]
async fn repairs_are_bounded() {
    let f = fixture(1).await;
    let bad = || {
        tools_turn(vec![call(
            "translate_dna",
            json!({"sequence": "ATG", "frame": 9}),
        )])
    };
    let script = vec![
        bad(),
        bad(),
        bad(),
        bad(),
        bad(),
        text_turn("never reached"),
    ];
    let config = AgentConfig {
        max_repairs: 2,
        ..AgentConfig::default()
    };
    let out = run(&agent(&f, script, config), "r", "q").await;
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(
        out.steps, 3,
        "two repairs allowed, the third invalid round fails"
    );
    assert!(out.reason.unwrap().contains("invalid tool calls"));
}

#[tokio::test]
async fn unknown_tools_get_suggestions() {
    let f = fixture(1).await;
    let script = vec![
        tools_turn(vec![call(
            "translate_dan",
            json!({"sequence": "ATG", "frame": 1}),
        )]),
        text_turn("Done."),
    ];
    let out = run(&agent(&f, script, AgentConfig::default()), "r", "q").await;
    let evs = events(&f.store, "r").await;
    let finished = finished_outcomes(&evs);
    assert_eq!(finished[0].2, Err("not_found".to_owned()));
    let TraceEvent::ToolCallFinished { outcome, .. } = evs
        .iter()
        .find(|e| matches!(e, TraceEvent::ToolCallFinished { .. }))
        .unwrap()
    else {
        unreachable!()
    };
    let cellwright_core::ToolOutcome::Err(err) = outcome else {
        panic!()
    };
    assert!(
        err.for_model().contains("Did you mean `translate_dna`?"),
        "{}",
        err.for_model()
    );
    // An answer without citations is kept but every claim is unsupported.
    assert_eq!(out.status, RunStatus::Completed);
    assert_eq!(out.answer.unsupported().count(), 1);
}

#[tokio::test]
async fn large_outputs_travel_as_artifacts() {
    let f = fixture(1).await;
    let script = vec![
        tools_turn(vec![call("make_matrix", json!({}))]),
        text_turn("Made it [1]."),
    ];
    let out = run(&agent(&f, script, AgentConfig::default()), "r", "q").await;
    assert_eq!(out.status, RunStatus::Completed);
    let evs = events(&f.store, "r").await;
    let artifact = evs
        .iter()
        .find_map(|e| match e {
            TraceEvent::Artifact { artifact, .. } => Some(artifact.clone()),
            _ => None,
        })
        .expect("an artifact event");
    let finished = finished_outcomes(&evs);
    let shown = finished[0].2.as_ref().unwrap();
    assert_eq!(shown["truncated"], json!(true));
    assert!(shown.to_string().len() < 8_000);
    let full = cellwright_core::ArtifactStore::get(&*f.store, &artifact.id)
        .await
        .unwrap();
    let matrix: Vec<Vec<f32>> = serde_json::from_slice(&full).unwrap();
    assert_eq!((matrix.len(), matrix[0].len()), (100, 100));
}

fn response(content: &str, calls: Vec<(&str, &str)>) -> ChatResponse {
    let tool_calls: Vec<ToolCallRequest> = calls
        .into_iter()
        .enumerate()
        .map(|(i, (name, args))| ToolCallRequest {
            id: format!("c{i}"),
            name: name.into(),
            arguments: args.into(),
        })
        .collect();
    ChatResponse {
        finish_reason: if tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        },
        message: Message {
            role: Role::Assistant,
            content: content.into(),
            tool_calls,
            tool_call_id: None,
        },
        usage: Usage::default(),
        model: "fn".into(),
    }
}
