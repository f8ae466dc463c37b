//! A real crash: the process is SIGKILLed mid-run, `resume` completes the run, no external
//! action is repeated and no recorded event is lost.

use cellwright_core::{RunStatus, TraceEvent};
use cellwright_tools_notebook::read_entries;

use crate::run::wait_for;
use crate::support::*;

const SCRIPT: &str = r#"{"tool_calls": [{"name": "record_note", "arguments": {"title": "first", "text": "before the crash"}}, {"name": "translate_dna", "arguments": {"sequence": "ATGAAA"}}]}
{"delay_ms": 60000, "tool_calls": [{"name": "record_note", "arguments": {"title": "second", "text": "after the crash"}}]}
{"content": "Two notes were written [1, 3]; the sequence has two codons [2]."}
"#;

#[tokio::test]
async fn a_killed_run_resumes_without_repeating_external_calls() {
    let sb = Sandbox::new();
    let script = sb.file("script.jsonl", SCRIPT);
    let model = format!("script:{}", script.display());
    let mut child = sb
        .command()
        .args(["ask", "--model", &model, "note twice"])
        .spawn()
        .unwrap();

    // Kill once the first external call's result is on disk, while the model "thinks".
    let before = wait_for(&sb, |events| {
        events
            .iter()
            .filter(|e| matches!(e.event, TraceEvent::ToolCallFinished { .. }))
            .count()
            == 2
    })
    .await;
    child.kill().await.unwrap(); // SIGKILL
    let status = child.wait().await.unwrap();
    assert!(!status.success());
    assert_eq!(read_entries(&sb.notebook()).unwrap().len(), 1);

    let id = sb.only_run_id().await;
    let unfinished = stdout(&sb.run(&["trace", "show", &id]).await);
    assert!(unfinished.contains("cellwright resume"), "{unfinished}");

    // The fast path on resume: the slow turn is scripted with a delay, so give the resumed
    // run a script without it (same turns, as a user would with a fixed endpoint).
    let fast = sb.file("fast.jsonl", &SCRIPT.replace("\"delay_ms\": 60000, ", ""));
    let out = sb
        .run(&[
            "resume",
            &id,
            "--model",
            &format!("script:{}", fast.display()),
        ])
        .await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("(evidence: [1] record_note, [3] record_note, [2] translate_dna)"),
        "{}",
        stdout(&out)
    );

    // Each external call ran exactly once: two notes, in order.
    let notes = read_entries(&sb.notebook()).unwrap();
    let titles: Vec<&str> = notes.iter().map(|n| n.title.as_str()).collect();
    assert_eq!(titles, ["first", "second"]);

    // Nothing recorded before the kill was lost or rewritten.
    let after = sb.events(&id).await;
    for e in &before {
        let same = after.iter().find(|a| a.seq == e.seq).expect("event lost");
        assert_eq!(same.event, e.event);
    }
    let starts = after
        .iter()
        .filter(|e| matches!(&e.event, TraceEvent::ToolCallStarted { tool, .. } if tool == "record_note"))
        .count();
    assert_eq!(starts, 2, "one start per note: none repeated");
    assert!(
        after
            .iter()
            .any(|e| matches!(e.event, TraceEvent::RunResumed { attempt: 1 }))
    );
    assert!(matches!(
        after.last().map(|e| &e.event),
        Some(TraceEvent::RunFinished {
            status: RunStatus::Completed,
            ..
        })
    ));
}
