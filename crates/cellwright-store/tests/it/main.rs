//! The SQLite store on real files.

// Test helpers live outside `#[test]` functions, where clippy's test allowance does not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cellwright_core::{
    Answer, ArtifactId, ArtifactStore, Budgets, CallId, Claim, Effects, Evidence, RunId, RunStatus,
    StoreError, ToolOutcome, TraceEvent, TraceSink, TraceStore, Usage,
};
use cellwright_store::SqliteStore;
use serde_json::json;

fn started(question: &str) -> TraceEvent {
    TraceEvent::RunStarted {
        question: question.into(),
        model: "script:test".into(),
        system_prompt: "be brief".into(),
        tools: vec!["translate_dna".into()],
        budgets: Budgets::default(),
        seed: 7,
    }
}

fn tool_started(call: u32) -> TraceEvent {
    TraceEvent::ToolCallStarted {
        step: 1,
        call: CallId(call),
        tool: "translate_dna".into(),
        arguments: json!({"sequence": "ATG"}),
        effects: Effects::Pure,
        attempt: 1,
    }
}

fn tool_finished(call: u32) -> TraceEvent {
    TraceEvent::ToolCallFinished {
        step: 1,
        call: CallId(call),
        tool: "translate_dna".into(),
        outcome: ToolOutcome::Ok(json!({"protein": "M"})),
        duration_ms: 3,
        attempt: 1,
    }
}

fn finished() -> TraceEvent {
    TraceEvent::RunFinished {
        status: RunStatus::Completed,
        answer: Some(Answer {
            text: "It is M [1].".into(),
            claims: vec![Claim {
                text: "It is M.".into(),
                evidence: vec![Evidence {
                    call: CallId(1),
                    tool: "translate_dna".into(),
                }],
                supported: true,
                note: None,
            }],
        }),
        usage: Usage {
            input_tokens: 10,
            output_tokens: 5,
        },
        steps: 1,
        tool_calls: 1,
        reason: None,
        budget: None,
    }
}

#[tokio::test]
async fn events_come_back_in_order_and_runs_track_status() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/runs.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let run = RunId::new("r1");
    assert_eq!(store.record(&run, &started("q1")).await.unwrap(), 1);
    store.record_deferred(&run, &tool_started(1)).await.unwrap();
    assert_eq!(store.record(&run, &tool_finished(1)).await.unwrap(), 3);
    let runs = store.runs(10).await.unwrap();
    assert_eq!(
        (runs[0].status, runs[0].tool_calls),
        (RunStatus::Running, 1)
    );
    store.record(&run, &finished()).await.unwrap();
    let events = store.events(&run).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "tool_call_started",
            "tool_call_finished",
            "run_finished"
        ]
    );
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(events[3].event, finished());
    let runs = store.runs(10).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert!(runs[0].finished_ms.is_some());
    store.close().await;

    // Reopened, the data is there and numbering continues.
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.events(&run).await.unwrap().len(), 4);
    assert_eq!(
        store
            .record(&run, &TraceEvent::RunResumed { attempt: 1 })
            .await
            .unwrap(),
        5
    );
    assert_eq!(store.runs(1).await.unwrap()[0].status, RunStatus::Running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_group_committed_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("runs.db")).await.unwrap());
    let run = RunId::new("r");
    store.record(&run, &started("q")).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8u32 {
        let store = Arc::clone(&store);
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let event = tool_finished(w * 100 + i);
                if i % 2 == 0 {
                    store.record_deferred(&run, &event).await.unwrap();
                } else {
                    store.record(&run, &event).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = store.events(&run).await.unwrap();
    assert_eq!(events.len(), 401);
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=401).collect::<Vec<_>>()
    );
    let mut calls: Vec<u32> = events
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::ToolCallFinished { call, .. } => Some(call.0),
            _ => None,
        })
        .collect();
    calls.sort_unstable();
    calls.dedup();
    assert_eq!(calls.len(), 400);
    // Deferred events ride along with durable ones, and concurrent writers share commits.
    let stats = store.write_stats().await;
    assert_eq!(stats.events, 401);
    assert!(stats.commits < 100, "{stats:?}");
}

#[tokio::test]
async fn views_answer_sql_questions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let run = RunId::new("r");
    for e in [started("q"), tool_started(1), tool_finished(1), finished()] {
        store.record(&run, &e).await.unwrap();
    }
    store.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let (tool, args, output, duration): (String, String, String, i64) = sqlx::query_as(
        "SELECT tool, arguments, output, duration_ms FROM tool_calls WHERE run_id = 'r'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((tool.as_str(), duration), ("translate_dna", 3));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&args).unwrap(),
        json!({"sequence": "ATG"})
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&output).unwrap(),
        json!({"protein": "M"})
    );
    let (text, supported): (String, i64) =
        sqlx::query_as("SELECT text, supported FROM claims WHERE run_id = 'r'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((text.as_str(), supported), ("It is M.", 1));
    let roles: Vec<(String,)> =
        sqlx::query_as("SELECT role FROM messages WHERE run_id = 'r' ORDER BY seq, role DESC")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        roles.into_iter().map(|r| r.0).collect::<Vec<_>>(),
        ["user", "system", "tool"]
    );
}

#[tokio::test]
async fn artifacts_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("runs.db")).await.unwrap();
    let run = RunId::new("r");
    let a = store
        .put(
            &run,
            Some(CallId(2)),
            "text/plain",
            "greeting",
            b"hello".to_vec(),
        )
        .await
        .unwrap();
    let b = store
        .put(&run, None, "application/json", "empty", b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!((a.id.0.as_str(), b.id.0.as_str()), ("r/a1", "r/a2"));
    assert_eq!(a.bytes, 5);
    assert_eq!(store.get(&a.id).await.unwrap(), b"hello");
    let err = store.get(&ArtifactId("r/a9".into())).await.unwrap_err();
    assert!(matches!(err, StoreError::ArtifactNotFound(_)), "{err}");
}

#[tokio::test]
async fn bad_runs_and_bad_rows_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let err = store.events(&RunId::new("nope")).await.unwrap_err();
    assert!(matches!(err, StoreError::RunNotFound(_)), "{err}");
    // An event for a run that was never started is refused, and the store keeps working.
    let err = store
        .record(&RunId::new("ghost"), &tool_finished(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("never started"), "{err}");
    let run = RunId::new("r");
    store.record(&run, &started("q")).await.unwrap();
    store.close().await;

    // A row damaged behind our back is reported with its position.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (run_id, seq, at_ms, kind, payload) VALUES ('r', 2, 0, 'x', '{oops')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    let err = store.events(&run).await.unwrap_err();
    assert!(err.to_string().contains("event 2 of run r"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_opened_by_many_at_once_is_migrated_once() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("runs{round}.db"));
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let path = path.clone();
                tokio::spawn(async move { SqliteStore::open(&path).await })
            })
            .collect();
        for open in opens {
            let store = open
                .await
                .unwrap()
                .expect("every opener gets a migrated store");
            store.close().await;
        }
    }
}

/// The experiment ledger: planned before run, one result each, kept across reopening.
#[tokio::test]
async fn the_ledger_plans_runs_and_keeps_each_experiment_once() {
    use cellwright_store::{Experiment, Planned};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let task = json!({"name": "t", "rounds": 2});
    assert_eq!(store.ledger_open("loop-1", &task).await.unwrap(), task);
    // Opening again keeps the first task.
    let other = json!({"name": "other"});
    assert_eq!(store.ledger_open("loop-1", &other).await.unwrap(), task);
    assert_eq!(store.ledger_task("loop-2").await.unwrap(), None);
    store.ledger_open("loop-2", &other).await.unwrap();
    assert_eq!(store.ledger_loops().await.unwrap(), ["loop-2", "loop-1"]);

    let plan = |genes: &[&str]| -> Vec<Planned> {
        genes
            .iter()
            .map(|g| Planned {
                gene: (*g).into(),
                hypothesis: format!("{g} looks essential"),
                design: json!({"knockout": g}),
            })
            .collect()
    };
    store
        .ledger_plan("loop-1", "random", 0, &plan(&["A", "B"]))
        .await
        .unwrap();
    // A gene planned before is refused, and nothing of that round is stored.
    let err = store
        .ledger_plan("loop-1", "random", 1, &plan(&["C", "A"]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("random planned A twice"), "{err}");
    assert_eq!(store.ledger("loop-1").await.unwrap().len(), 2);
    // Another strategy may test the same gene.
    store
        .ledger_plan("loop-1", "greedy", 0, &plan(&["A"]))
        .await
        .unwrap();

    // A result needs a started experiment, and there is only one result.
    let err = store
        .ledger_result("loop-1", "random", "A", -1.0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no open experiment on A"), "{err}");
    assert_eq!(
        store.ledger_start("loop-1", "random", "A").await.unwrap(),
        1
    );
    // A start that never finished (the process died) is counted when it starts again.
    assert_eq!(
        store.ledger_start("loop-1", "random", "A").await.unwrap(),
        2
    );
    store
        .ledger_result("loop-1", "random", "A", -1.5)
        .await
        .unwrap();
    assert!(
        store
            .ledger_result("loop-1", "random", "A", -9.0)
            .await
            .is_err()
    );
    assert!(store.ledger_start("loop-1", "random", "A").await.is_err());
    assert!(store.ledger_start("loop-1", "random", "Z").await.is_err());
    store.close().await;

    let store = SqliteStore::open(&path).await.unwrap();
    let ledger = store.ledger("loop-1").await.unwrap();
    assert_eq!(
        ledger[1],
        Experiment {
            strategy: "random".into(),
            round: 0,
            pick: 0,
            gene: "A".into(),
            hypothesis: "A looks essential".into(),
            design: json!({"knockout": "A"}),
            attempts: 2,
            result: Some(-1.5),
        }
    );
    let order: Vec<(&str, &str)> = ledger
        .iter()
        .map(|e| (e.strategy.as_str(), e.gene.as_str()))
        .collect();
    assert_eq!(order, [("greedy", "A"), ("random", "A"), ("random", "B")]);
    assert_eq!(ledger[2].result, None);
    assert_eq!(ledger[2].attempts, 0);
}
