//! Budgets and cancellation end runs cleanly, with a status and a partial answer.

use std::time::Duration;

use cellwright_core::{BudgetKind, Budgets, CancelToken, RunId, RunStatus, ToolError, TraceEvent};
use cellwright_runtime::AgentConfig;
use serde_json::json;

use crate::support::*;

fn with_budgets(budgets: Budgets) -> AgentConfig {
    AgentConfig {
        budgets,
        ..AgentConfig::default()
    }
}

fn looping(n: usize) -> Vec<cellwright_llm::ScriptedResponse> {
    (0..n)
        .map(|i| {
            tools_turn(vec![call(
                "translate_dna",
                json!({"sequence": "ATGAAA", "frame": 1 + i % 3}),
            )])
        })
        .collect()
}

#[tokio::test]
async fn each_budget_ends_the_run_with_a_partial_answer() {
    let cases = [
        (
            Budgets {
                max_steps: 3,
                ..Budgets::default()
            },
            BudgetKind::Steps,
            3,
            3,
        ),
        (
            Budgets {
                max_tool_calls: 2,
                ..Budgets::default()
            },
            BudgetKind::ToolCalls,
            3,
            2,
        ),
        (
            Budgets {
                max_tokens: 150,
                ..Budgets::default()
            },
            BudgetKind::Tokens,
            2,
            1,
        ),
    ];
    for (budgets, kind, steps, calls) in cases {
        let f = fixture(1).await;
        let out = run(
            &agent(&f, looping(10), with_budgets(budgets)),
            "r",
            "loop forever",
        )
        .await;
        assert_eq!(out.status, RunStatus::BudgetExhausted, "{kind:?}");
        assert_eq!(out.budget, Some(kind));
        assert_eq!((out.steps, out.tool_calls), (steps, calls), "{kind:?}");
        // The partial answer reports what the tools returned, each claim citing its call.
        assert!(!out.answer.claims.is_empty(), "{kind:?}");
        assert!(
            out.answer
                .claims
                .iter()
                .all(|c| c.supported && c.evidence.len() == 1)
        );
        let evs = events(&f.store, "r").await;
        assert!(matches!(
            evs.last(),
            Some(TraceEvent::RunFinished {
                status: RunStatus::BudgetExhausted,
                ..
            })
        ));
    }
}

#[tokio::test]
async fn wall_time_budget_interrupts_a_slow_tool() {
    let f = fixture(1).await;
    let script = vec![
        tools_turn(vec![call("sleep_ms", json!({"ms": 60_000}))]),
        text_turn("late"),
    ];
    let config = with_budgets(Budgets {
        max_wall_ms: 300,
        ..Budgets::default()
    });
    let out = run(&agent(&f, script, config), "r", "q").await;
    assert_eq!(out.status, RunStatus::BudgetExhausted);
    assert_eq!(out.budget, Some(BudgetKind::WallTime));
    let finished = finished_outcomes(&events(&f.store, "r").await);
    assert_eq!(finished[0].2, Err("cancelled".to_owned()));
}

#[tokio::test]
async fn cancelling_leaves_a_complete_trace() {
    let f = fixture(1).await;
    let script = vec![
        tools_turn(vec![call("sleep_ms", json!({"ms": 60_000}))]),
        text_turn("late"),
    ];
    let agent = agent(&f, script, AgentConfig::default());
    let cancel = CancelToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        canceller.cancel();
    });
    let out = agent.run(RunId::new("r"), "q", cancel).await.unwrap();
    assert_eq!(out.status, RunStatus::Cancelled);
    let evs = events(&f.store, "r").await;
    let kinds: Vec<&str> = evs.iter().map(TraceEvent::kind).collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "model_request",
            "model_response",
            "tool_call_started",
            "tool_call_finished",
            "run_finished"
        ]
    );
    assert!(matches!(
        &evs[4],
        TraceEvent::ToolCallFinished {
            outcome: cellwright_core::ToolOutcome::Err(ToolError::Cancelled),
            ..
        }
    ));
}

#[tokio::test]
async fn model_failures_are_retried_then_end_the_run() {
    let f = fixture(1).await;
    let fail = |status| cellwright_llm::ScriptedResponse {
        error: Some(cellwright_core::ModelError::Http {
            status,
            message: "boom".into(),
        }),
        ..Default::default()
    };
    // Turn-indexed scripts answer the same turn the same way, so a 503 stays a 503.
    let out = run(
        &agent(
            &f,
            vec![fail(503)],
            AgentConfig {
                model_retries: 1,
                ..AgentConfig::default()
            },
        ),
        "r",
        "q",
    )
    .await;
    assert_eq!(out.status, RunStatus::Failed);
    assert!(out.reason.unwrap().contains("HTTP 503"));
    let evs = events(&f.store, "r").await;
    let retries: Vec<bool> = evs
        .iter()
        .filter_map(|e| match e {
            TraceEvent::ModelFailed { will_retry, .. } => Some(*will_retry),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [true, false]);

    let f = fixture(1).await;
    let out = run(
        &agent(&f, vec![fail(400)], AgentConfig::default()),
        "r",
        "q",
    )
    .await;
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(
        events(&f.store, "r")
            .await
            .iter()
            .filter(|e| e.kind() == "model_failed")
            .count(),
        1
    );
}
