//! `cellwright eval`: a question set answered by recorded model responses (replayed, so the
//! test is fast and deterministic) and by the real embedded model, each answer checked; bad
//! question files refused with the line at fault.

use serde_json::Value;

use crate::support::*;

/// Recorded embedded-model runs, one per question id (`cellwright eval --record`).
const RECORDED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/eval/recorded"
);

async fn eval(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    sb.command()
        .env("CELLWRIGHT_CACHE", cellwright_fetch::cache_dir())
        .arg("eval")
        .args(args)
        .output()
        .await
        .unwrap()
}

/// The recorded question set answered from its recordings: the output and the JSON report.
async fn replay(sb: &Sandbox, name: &str) -> (std::process::Output, Value) {
    let json = sb.dir.path().join(name);
    let questions = format!("{RECORDED}/questions.jsonl");
    let model = format!("replay:{RECORDED}");
    let out = eval(
        sb,
        &[
            &questions,
            "--model",
            &model,
            "--json",
            json.to_str().unwrap(),
        ],
    )
    .await;
    let report =
        std::fs::read_to_string(&json).map_or(Value::Null, |t| serde_json::from_str(&t).unwrap());
    (out, report)
}

#[tokio::test]
async fn eval_replays_recorded_runs_and_reports_which_check_failed() {
    let sb = Sandbox::new();
    let (out, report) = replay(&sb, "eval.json").await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let items = report["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "sequence-translate",
            "gene-band",
            "gene-alias-listed",
            "network-regulators"
        ],
        "{report}"
    );
    let pass: Vec<bool> = items.iter().map(|i| i["pass"].as_bool().unwrap()).collect();
    assert_eq!(pass, [true, true, false, true], "{report}");
    assert_eq!(report["passed"], 3);
    assert_eq!(report["total"], 4);
    assert!((report["score"].as_f64().unwrap() - 0.75).abs() < 1e-9);
    // Each item names the tools that answered, with the answer and its citations.
    assert_eq!(items[0]["tools"], serde_json::json!(["translate_dna"]));
    assert!(
        items[0]["answer"]
            .as_str()
            .unwrap()
            .contains("protein: MAK* [1]")
    );
    assert_eq!(items[1]["tools"], serde_json::json!(["lookup_gene"]));
    // network_info's answer template states only the node's regulators.
    assert_eq!(items[3]["tools"], serde_json::json!(["network_info"]));
    assert!(
        items[3]["answer"]
            .as_str()
            .unwrap()
            .starts_with("In krumsiek_myeloid, GATA1 is regulated by"),
        "{report}"
    );
    assert!(items[0]["failed_check"].is_null());
    assert!(items.iter().all(|i| i["seconds"].as_f64().unwrap() >= 0.0));
    // The third question forbids what its (right) answer says: it fails, and says why.
    assert_eq!(
        items[2]["failed_check"], "must_not_include: found \"SPI1\"",
        "{report}"
    );
    let text = stdout(&out);
    assert!(text.contains("PASS sequence-translate"), "{text}");
    assert!(text.contains("FAIL gene-alias-listed"), "{text}");
    assert!(text.contains("must_not_include: found \"SPI1\""), "{text}");
    assert!(text.contains("score: 3/4"), "{text}");
    // A replay gives the recorded answers again, word for word.
    let (out, second) = replay(&sb, "again.json").await;
    assert!(out.status.success());
    for (a, b) in items.iter().zip(second["items"].as_array().unwrap()) {
        assert_eq!(a["answer"], b["answer"]);
    }
}

#[tokio::test]
async fn the_embedded_model_answers_two_questions_from_its_tools() {
    let sb = Sandbox::new();
    let questions = sb.file(
        "q.jsonl",
        concat!(
            r#"{"id": "translate", "question": "What peptide does the DNA sequence ATGTTTGGCTGA encode?", "check": {"must_include_all": ["MFG"]}}"#,
            "\n",
            r#"{"id": "band", "question": "On which cytoband of the human genome is the gene CDK1?", "check": {"must_include_all": ["10q21.2"], "must_not_include": ["17p13.1"]}}"#,
            "\n"
        ),
    );
    let json = sb.dir.path().join("eval.json");
    let out = eval(
        &sb,
        &[
            questions.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    )
    .await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["model"], "embedded");
    for item in report["items"].as_array().unwrap() {
        assert_eq!(item["pass"], true, "{item}");
        assert_eq!(item["status"], "completed", "{item}");
    }
}

#[tokio::test]
async fn bad_question_files_are_refused_with_the_line_at_fault() {
    let sb = Sandbox::new();
    let cases = [
        ("empty.jsonl", "\n// nothing\n", "no questions"),
        (
            "typo.jsonl",
            "{\"id\": \"a\", \"question\": \"q\"}\n{\"id\": \"b\", \"question\": \"q\", \"check\": {\"must_include\": [\"x\"]}}\n",
            "typo.jsonl:2: not a question",
        ),
        (
            "twice.jsonl",
            "{\"id\": \"a\", \"question\": \"q\"}\n{\"id\": \"a\", \"question\": \"r\"}\n",
            "typo.jsonl:2: id `a` appears twice",
        ),
    ];
    for (name, text, expected) in cases {
        let path = sb.file(name, text);
        let out = eval(
            &sb,
            &[path.to_str().unwrap(), "--model", "script:/dev/null"],
        )
        .await;
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        let expected = expected.replace("typo.jsonl", name);
        assert!(stderr(&out).contains(&expected), "{name}: {}", stderr(&out));
    }
    let missing = eval(&sb, &["/no/such/questions.jsonl"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("cannot read /no/such/questions.jsonl"));
    // No run was started for any of them.
    let runs = sb.run(&["trace", "list", "--json"]).await;
    assert_eq!(stdout(&runs).trim(), "[]");
}
