//! `cellwright ask`, `trace` and Ctrl-C, with scripted models and a loopback
//! OpenAI-compatible server.

use cellwright_core::{RunStatus, TraceEvent};
use cellwright_llm::testing::{FakeOpenAi, Reply, text_chunks, tool_chunks};
use serde_json::{Value, json};

use crate::support::*;

const SCRIPT: &str = r#"{"tool_calls": [{"name": "translate_dna", "arguments": {"sequence": "ATGGCCTAA"}}, {"name": "record_note", "arguments": {"title": "ORF", "text": "MA then stop"}}]}
{"content": "ATGGCCTAA encodes MA and a stop codon [1]. It was noted [2]. It is surely expressed."}
"#;

#[tokio::test]
async fn ask_prints_cited_claims_and_trace_show_renders_the_run() {
    let sb = Sandbox::new();
    let script = sb.file("script.jsonl", SCRIPT);
    let model = format!("script:{}", script.display());
    let out = sb
        .run(&["ask", "--model", &model, "What does ATGGCCTAA encode?"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("1. ATGGCCTAA encodes MA and a stop codon. (evidence: [1] translate_dna)"),
        "{text}"
    );
    assert!(
        text.contains("3. It is surely expressed. (UNSUPPORTED: no tool call cited)"),
        "{text}"
    );
    assert!(
        text.contains("[1] translate_dna {\"sequence\":\"ATGGCCTAA\"} → ok"),
        "{text}"
    );

    let id = sb.only_run_id().await;
    let show = stdout(&sb.run(&["trace", "show", &id]).await);
    for part in [
        "question What does ATGGCCTAA encode?",
        "step 1",
        "[1] translate_dna (step 1) → ok",
        "[2] record_note (step 1) → ok",
        "finished · completed",
        "Claims",
    ] {
        assert!(show.contains(part), "missing {part:?} in\n{show}");
    }
    let export = stdout(&sb.run(&["trace", "export", &id, "--format", "jsonl"]).await);
    let lines: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), sb.events(&id).await.len());
    assert_eq!(lines[0]["event"]["type"], "run_started");
    assert_eq!(lines.last().unwrap()["event"]["type"], "run_finished");
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=lines.len() as u64).collect::<Vec<_>>());

    // --json gives the Answer.
    let out = sb.run(&["ask", "--json", "--model", &model, "again"]).await;
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["status"], "completed");
    assert_eq!(body["answer"]["claims"][2]["supported"], json!(false));
    assert_eq!(
        body["answer"]["claims"][0]["evidence"][0],
        json!({"call": 1, "tool": "translate_dna"})
    );
}

/// The first command of the README: the embedded model, nothing configured (the model comes
/// from the user's cache, which `.ci/run` fills with `cellwright models fetch`).
#[tokio::test]
async fn ask_works_on_the_embedded_default_model() {
    let sb = Sandbox::new();
    let out = sb
        .command()
        .env("CELLWRIGHT_CACHE", cellwright_fetch::cache_dir())
        .args([
            "ask",
            "--json",
            "What protein does the DNA sequence ATGGCCAAATAA encode?",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["status"], "completed", "{outcome}");
    let id = sb.only_run_id().await;
    let events = sb.events(&id).await;
    assert!(events.iter().any(|e| matches!(
        &e.event,
        TraceEvent::RunStarted { model, .. } if model == "embedded"
    )));
    // The call was schema-valid (it ran), and the answer cites it.
    assert!(
        events.iter().any(|e| matches!(
            &e.event,
            TraceEvent::ToolCallFinished {
                outcome: cellwright_core::ToolOutcome::Ok(_),
                ..
            }
        )),
        "{events:?}"
    );
    let claims = outcome["answer"]["claims"].as_array().unwrap();
    assert!(!claims.is_empty());
    assert!(claims.iter().all(|c| c["supported"] == true), "{outcome}");
    let shown = stdout(&sb.run(&["trace", "show", &id]).await);
    assert!(shown.contains("model    embedded"), "{shown}");
}

#[tokio::test]
async fn the_embedded_model_routes_questions_to_the_tool_that_answers_them() {
    // With every tool registered, each question reaches the one tool that answers it.
    for (question, tool) in [
        ("Which chromosome is BRCA1 on?", "lookup_gene"),
        (
            "What are the attractors of the faure_cellcycle model?",
            "network_info",
        ),
    ] {
        let sb = Sandbox::new();
        let out = sb
            .command()
            .env("CELLWRIGHT_CACHE", cellwright_fetch::cache_dir())
            .args(["ask", "--json", question])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        let id = sb.only_run_id().await;
        let called: Vec<String> = sb
            .events(&id)
            .await
            .into_iter()
            .filter_map(|e| match e.event {
                TraceEvent::ToolCallStarted { tool, .. } => Some(tool),
                _ => None,
            })
            .collect();
        assert_eq!(
            called.first().map(String::as_str),
            Some(tool),
            "{question}: {called:?}"
        );
    }
}

#[tokio::test]
async fn ask_works_against_an_openai_compatible_server() {
    let server = FakeOpenAi::start(vec![
        Reply::Stream(tool_chunks("translate_dna", &json!({"sequence": "ATGTGG"}))),
        Reply::Stream(text_chunks("ATGTGG encodes MW [1].", 5)),
    ])
    .await
    .unwrap();
    let sb = Sandbox::new();
    let out = sb
        .command()
        .env("OPENAI_BASE_URL", server.base_url())
        .env("OPENAI_API_KEY", "sk-e2e-very-secret")
        .args([
            "ask",
            "--model",
            "openai:fake-model",
            "What does ATGTGG encode?",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("ATGTGG encodes MW. (evidence: [1] translate_dna)"),
        "{}",
        stdout(&out)
    );
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].authorization.as_deref(),
        Some("Bearer sk-e2e-very-secret")
    );
    assert_eq!(received[0].body["model"], "fake-model");

    let id = sb.only_run_id().await;
    let show = stdout(&sb.run(&["trace", "show", &id]).await);
    assert!(show.contains("model    openai:fake-model"), "{show}");
    assert!(show.contains("[1] translate_dna (step 1) → ok"), "{show}");
    // The key is in no file the store wrote, and in no output.
    let store = sb.store().await;
    store.checkpoint().await.unwrap();
    store.close().await;
    for entry in std::fs::read_dir(sb.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("very-secret"),
                "{}",
                path.display()
            );
        }
    }
    assert!(!show.contains("very-secret") && !stderr(&out).contains("very-secret"));
}

#[tokio::test]
async fn ctrl_c_cancels_cleanly() {
    let sb = Sandbox::new();
    let script = sb.file(
        "slow.jsonl",
        "{\"tool_calls\": [{\"name\": \"translate_dna\", \"arguments\": {\"sequence\": \"ATG\"}}]}\n{\"delay_ms\": 60000, \"content\": \"too late\"}\n",
    );
    let child = sb
        .command()
        .args([
            "ask",
            "--model",
            &format!("script:{}", script.display()),
            "slow",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the tool result is stored, then interrupt during the slow model turn.
    wait_for(&sb, |events| {
        events
            .iter()
            .any(|e| matches!(e.event, TraceEvent::ToolCallFinished { .. }))
    })
    .await;
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let id = sb.only_run_id().await;
    let events = sb.events(&id).await;
    let Some(TraceEvent::RunFinished { status, answer, .. }) = events.last().map(|e| &e.event)
    else {
        panic!("no run_finished: {events:?}")
    };
    assert_eq!(*status, RunStatus::Cancelled);
    // The partial answer keeps what the tool returned, cited.
    assert!(answer.as_ref().unwrap().claims[0].supported);
}

/// Polls the sandbox's database until `done` holds for its only run.
pub async fn wait_for(
    sb: &Sandbox,
    done: impl Fn(&[cellwright_core::StoredEvent]) -> bool,
) -> Vec<cellwright_core::StoredEvent> {
    for _ in 0..600 {
        if sb.db().exists() {
            let store = sb.store().await;
            let runs = cellwright_core::TraceStore::runs(&store, 1).await.unwrap();
            if let Some(run) = runs.first() {
                let events = cellwright_core::TraceStore::events(&store, &run.run_id)
                    .await
                    .unwrap();
                store.close().await;
                if done(&events) {
                    return events;
                }
            } else {
                store.close().await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for the run to reach the expected point");
}
