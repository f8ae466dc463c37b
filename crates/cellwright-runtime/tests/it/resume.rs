//! Write-ahead and resume: a run cut off after any event resumes to the same result, and no
//! external action runs twice unless the trace says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cellwright_core::{CancelToken, RunId, RunStatus, TraceEvent, TraceStore};
use cellwright_llm::ScriptedModel;
use cellwright_runtime::{Agent, AgentConfig};
use serde_json::{Value, json};

use crate::support::*;

fn script() -> Vec<cellwright_llm::ScriptedResponse> {
    vec![
        tools_turn(vec![
            call("order_experiment", json!({"label": "knockout A"})),
            call("translate_dna", json!({"sequence": "ATGAAA", "frame": 1})),
        ]),
        tools_turn(vec![call(
            "order_experiment",
            json!({"label": "knockout B"}),
        )]),
        text_turn("Ordered A [1] and B [3]; the sequence has two codons [2]."),
    ]
}

/// Events with timing fields removed, for comparing runs. Concurrent calls of one step may
/// finish in any order, and each result is committed as soon as it is in, so the tool events
/// between two model events are put in call order.
fn normalised(events: &[TraceEvent]) -> Vec<Value> {
    let mut out: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap();
            let obj = v.as_object_mut().unwrap();
            obj.remove("latency_ms");
            obj.remove("duration_ms");
            v
        })
        .collect();
    let is_tool = |v: &Value| {
        v["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("tool_call"))
    };
    let mut i = 0;
    while i < out.len() {
        let run = out[i..].iter().take_while(|v| is_tool(v)).count();
        out[i..i + run].sort_by_key(|v| (v["call"].as_u64(), v["type"] != "tool_call_started"));
        i += run.max(1);
    }
    out
}

#[tokio::test]
async fn a_run_cut_after_any_event_resumes_without_repeating_external_calls() {
    // The uninterrupted run, for reference.
    let reference = fixture(1).await;
    let full = run(
        &agent(&reference, script(), AgentConfig::default()),
        "r",
        "order both",
    )
    .await;
    assert_eq!(full.status, RunStatus::Completed);
    assert_eq!(reference.runs.load(Ordering::SeqCst), 2);
    let total = events(&reference.store, "r").await.len();

    for limit in 1..total {
        let f = fixture(1).await;
        let crashing = Arc::new(CrashingStore {
            inner: Arc::clone(&f.store),
            limit,
            written: AtomicUsize::new(0),
        });
        let first = Agent::new(
            Arc::new(ScriptedModel::new("script:test", script())),
            Arc::clone(&f.tools),
            crashing as Arc<dyn TraceStore>,
            AgentConfig::default(),
        );
        let err = first
            .run(RunId::new("r"), "order both", CancelToken::new())
            .await;
        assert!(
            err.is_err(),
            "limit {limit}: the run must stop when it cannot record"
        );

        let out = agent(&f, script(), AgentConfig::default())
            .resume(RunId::new("r"), CancelToken::new())
            .await
            .unwrap();
        assert_eq!(out.status, RunStatus::Completed, "limit {limit}");
        assert_eq!(out.answer, full.answer, "limit {limit}");

        let evs = events(&f.store, "r").await;
        // Every execution of the external tool is in the trace, and only an unfinished call
        // is ever executed again, with a higher attempt number.
        let mut starts: Vec<(u32, u32)> = evs
            .iter()
            .filter_map(|e| match e {
                TraceEvent::ToolCallStarted {
                    call,
                    attempt,
                    tool,
                    ..
                } if tool == "order_experiment" => Some((call.0, *attempt)),
                _ => None,
            })
            .collect();
        let executions = f.runs.load(Ordering::SeqCst);
        assert_eq!(executions, starts.len(), "limit {limit}: {starts:?}");
        starts.sort_unstable();
        starts.dedup();
        assert_eq!(
            executions,
            starts.len(),
            "limit {limit}: an attempt number was reused"
        );
        let repeated = starts.iter().filter(|(_, a)| *a > 1).count();
        assert_eq!(
            executions - repeated,
            2,
            "limit {limit}: each call ran once, or was recorded as repeated"
        );
        // Exactly one finished result per call is used, and the run ends once.
        assert_eq!(evs.iter().filter(|e| e.kind() == "run_finished").count(), 1);
        assert!(
            evs.iter()
                .any(|e| matches!(e, TraceEvent::RunResumed { attempt: 1 }))
        );
    }
}

#[tokio::test]
async fn resuming_a_finished_run_changes_nothing() {
    let f = fixture(1).await;
    let out = run(&agent(&f, script(), AgentConfig::default()), "r", "q").await;
    let before = events(&f.store, "r").await.len();
    let again = agent(&f, vec![], AgentConfig::default())
        .resume(RunId::new("r"), CancelToken::new())
        .await
        .unwrap();
    assert_eq!(again, out);
    assert_eq!(events(&f.store, "r").await.len(), before);
    assert_eq!(f.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn replaying_recorded_responses_gives_an_identical_trace() {
    let f = fixture(1).await;
    run(
        &agent(&f, script(), AgentConfig::default()),
        "first",
        "order both",
    )
    .await;
    let recorded = f.store.events(&RunId::new("first")).await.unwrap();
    // A fresh world for the replay: the external tool's counter starts again at zero.
    let g = fixture(1).await;
    let replay = Agent::new(
        Arc::new(ScriptedModel::replay("first", &recorded)),
        Arc::clone(&g.tools),
        Arc::clone(&g.store) as Arc<dyn TraceStore>,
        AgentConfig::default(),
    );
    run(&replay, "first", "order both").await;
    let mut a = normalised(&events(&f.store, "first").await);
    let mut b = normalised(&events(&g.store, "first").await);
    // The model id differs by design (script vs replay); everything else must match.
    for evs in [&mut a, &mut b] {
        evs[0].as_object_mut().unwrap().remove("model");
    }
    assert_eq!(a, b);
}

#[tokio::test]
async fn resume_of_an_unknown_run_is_a_typed_error() {
    let f = fixture(1).await;
    let err = agent(&f, vec![], AgentConfig::default())
        .resume(RunId::new("nope"), CancelToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "run `nope` not found");
}
