//! `cellwright loop`: bad task files, a real kill and resume, the agent's model choosing.

use serde_json::Value;

use crate::support::*;

/// A sandbox command that reads the data and models from the shared cache.
fn with_cache(sb: &Sandbox) -> tokio::process::Command {
    let mut cmd = sb.command();
    cmd.env("CELLWRIGHT_CACHE", cellwright_fetch::cache_dir());
    cmd
}

const TASK: &str = r#"{"name": "myeloid: knockouts that lower PU1",
  "backend": {"kind": "simulator", "model": "krumsiek_myeloid", "node": "PU1", "cells": 32},
  "direction": "min", "rounds": 3, "batch": 3, "top_k": 3,
  "strategy": ["agent", "random", "greedy", "knowledge_prior"], "seed": 5}"#;

#[tokio::test]
async fn bad_task_files_are_refused_with_the_reason() {
    let sb = Sandbox::new();
    let good: Value = serde_json::from_str(TASK).unwrap();
    let with = |key: &str, value: Value| {
        let mut t = good.clone();
        t[key] = value;
        t.to_string()
    };
    let cases = [
        (
            with("backend", serde_json::json!({"kind": "crispr-screen"})),
            "unknown variant `crispr-screen`, expected `simulator` or `depmap`",
        ),
        (
            with("candidates", serde_json::json!([])),
            "the candidate set is empty",
        ),
        (
            with("rounds", serde_json::json!(0)),
            "rounds is 0: the loop would run no experiment",
        ),
        (
            with("batch", serde_json::json!(0)),
            "batch is 0: the loop would run no experiment",
        ),
        (
            with(
                "backend",
                serde_json::json!({"kind": "depmap", "screen": "lung"}),
            ),
            "no DepMap screen named lung; the screens are liver, melanoma, neuroblastoma",
        ),
        ("{\"name\": \"t\",".into(), "task.json:1:"),
    ];
    for (text, wanted) in cases {
        let path = sb.file("task.json", &text);
        let out = with_cache(&sb)
            .args(["loop", "--task", path.to_str().unwrap(), "--model", "none"])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(stderr(&out).contains(wanted), "{wanted}\n{}", stderr(&out));
    }
    let out = sb.run(&["loop", "--resume", "loop-nothere"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no loop loop-nothere"),
        "{}",
        stderr(&out)
    );
    let path = sb.file("task.json", TASK);
    let out = sb
        .run(&[
            "loop",
            "--task",
            path.to_str().unwrap(),
            "--strategy",
            "clever",
        ])
        .await;
    assert!(
        stderr(&out).contains("unknown strategy clever"),
        "{}",
        stderr(&out)
    );
    // Nothing ran: no loop was stored.
    let store = sb.store().await;
    assert!(store.ledger_loops().await.unwrap().is_empty());
}

/// (strategy, round, gene, hypothesis, result) of every pick of a `--json` report.
fn picks(report: &Value) -> Vec<(String, u64, String, String, f64)> {
    report["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["picks"].as_array().unwrap().iter().map(move |p| {
                (
                    s["strategy"].as_str().unwrap().to_owned(),
                    p["round"].as_u64().unwrap(),
                    p["gene"].as_str().unwrap().to_owned(),
                    p["hypothesis"].as_str().unwrap().to_owned(),
                    p["result"].as_f64().unwrap(),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn a_killed_loop_resumes_from_its_ledger_without_running_an_experiment_twice() {
    // The same task run through without interruption, for comparison.
    let whole = Sandbox::new();
    let task = whole.file("task.json", TASK);
    let report = whole.dir.path().join("whole.json");
    let out = with_cache(&whole)
        .args([
            "loop",
            "--task",
            task.to_str().unwrap(),
            "--model",
            "none",
            "--json",
        ])
        .arg(&report)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let whole: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(picks(&whole).len(), 4 * 9);

    let sb = Sandbox::new();
    let task = sb.file("task.json", TASK);
    let mut child = with_cache(&sb)
        .env("CELLWRIGHT_LOOP_PACE_MS", "150")
        .args(["loop", "--task", task.to_str().unwrap(), "--model", "none"])
        .spawn()
        .unwrap();
    // Kill once some results are on disk, mid-way through the second strategy.
    let mut loop_id = None;
    for _ in 0..400 {
        if sb.db().exists() {
            let store = sb.store().await;
            if let Some(id) = store.ledger_loops().await.unwrap().first() {
                let done = store
                    .ledger(id)
                    .await
                    .unwrap()
                    .iter()
                    .filter(|e| e.result.is_some())
                    .count();
                if done >= 13 {
                    loop_id = Some(id.clone());
                    store.close().await;
                    break;
                }
            }
            store.close().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let loop_id = loop_id.expect("the loop recorded results");
    child.kill().await.unwrap(); // SIGKILL
    assert!(!child.wait().await.unwrap().success());
    let store = sb.store().await;
    let before = store.ledger(&loop_id).await.unwrap();
    assert!(
        before.iter().any(|e| e.result.is_none()),
        "killed before the end"
    );
    store.close().await;

    let report = sb.dir.path().join("resumed.json");
    let plot = sb.dir.path().join("hits.svg");
    let out = with_cache(&sb)
        .args(["loop", "--resume", &loop_id, "--model", "none", "--json"])
        .arg(&report)
        .arg("--plot")
        .arg(&plot)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("true top 3 of 10 candidates found, by round"),
        "{}",
        stdout(&out)
    );
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
    let resumed: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(picks(&resumed), picks(&whole));

    // Every experiment ran once; only one caught mid-run by the kill may have started twice.
    let store = sb.store().await;
    let after = store.ledger(&loop_id).await.unwrap();
    let repeated = after.iter().filter(|e| e.attempts > 1).count();
    assert!(after.iter().all(|e| e.attempts >= 1 && e.attempts <= 2));
    assert!(repeated <= 1, "{after:?}");
    // What was recorded before the kill is unchanged.
    for e in before.iter().filter(|e| e.result.is_some()) {
        assert!(after.contains(e), "{e:?}");
    }
}

#[tokio::test]
async fn the_agent_takes_the_picks_its_model_chooses() {
    let sb = Sandbox::new();
    let task = TASK
        .replace(
            "\"rounds\": 3, \"batch\": 3",
            "\"candidates\": [\"GATA1\", \"GATA2\", \"CEBPA\", \"cJun\"], \"rounds\": 2, \"batch\": 2",
        )
        .replace("\"strategy\": [\"agent\", \"random\", \"greedy\", \"knowledge_prior\"]", "\"strategy\": \"agent\"");
    let task = sb.file("task.json", &task);
    let script = sb.file(
        "script.jsonl",
        concat!(
            r#"{"tool_calls": [{"name": "propose_experiments", "arguments": {"genes": ["cJun", "NOTACANDIDATE"]}}]}"#,
            "\n",
            r#"{"tool_calls": [{"name": "propose_experiments", "arguments": {"genes": ["GATA1", "GATA2"]}}]}"#,
            "\n"
        ),
    );
    let report = sb.dir.path().join("r.json");
    let out = with_cache(&sb)
        .args(["loop", "--task", task.to_str().unwrap(), "--json"])
        .arg(&report)
        .args(["--model", &format!("script:{}", script.display())])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let picks = picks(&report);
    let genes: Vec<&str> = picks.iter().map(|p| p.2.as_str()).collect();
    // Round 1: the model's one valid pick, then the evidence's best; round 2: the model's.
    assert_eq!(genes[0], "cJun");
    assert!(picks[0].3.contains("(chosen by script:"), "{}", picks[0].3);
    assert!(
        picks[1].3.ends_with("(ranked first by the evidence)"),
        "{}",
        picks[1].3
    );
    let mut round2 = genes[2..].to_vec();
    round2.sort();
    let mut rest: Vec<&str> = ["GATA1", "GATA2", "CEBPA", "cJun"]
        .into_iter()
        .filter(|g| !genes[..2].contains(g))
        .collect();
    rest.sort();
    assert_eq!(round2, rest);
}
