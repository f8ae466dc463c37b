//! `cellwright serve`: the embedded models behind the OpenAI protocol, driven by our own
//! OpenAI backend (the same agent run as against any endpoint) and by raw HTTP.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

/// Starts `cellwright serve` on a free port; returns the child and its base URL.
async fn serve(sb: &Sandbox) -> (tokio::process::Child, String) {
    let mut child = sb
        .command()
        .env("CELLWRIGHT_CACHE", cellwright_fetch::cache_dir())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(120), lines.next_line())
        .await
        .expect("the server starts")
        .unwrap()
        .expect("a first line");
    let url = line.strip_prefix("listening on ").expect(&line).to_owned();
    (child, url)
}

#[tokio::test]
async fn our_openai_backend_runs_an_agent_against_the_server() {
    let sb = Sandbox::new();
    let (_server, url) = serve(&sb).await;
    for stream in ["1", "0"] {
        let out = sb
            .command()
            .env("OPENAI_BASE_URL", &url)
            .env("OPENAI_API_KEY", "unused")
            .env("CELLWRIGHT_OPENAI_STREAM", stream)
            .args(["ask", "--json", "--model", "openai:embedded"])
            .arg("What protein does the DNA sequence ATGGCCAAATAA encode?")
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(outcome["status"], "completed", "{outcome}");
        assert!(outcome["tool_calls"].as_u64().unwrap() >= 1, "{outcome}");
        let claims = outcome["answer"]["claims"].as_array().unwrap();
        assert!(
            !claims.is_empty() && claims.iter().all(|c| c["supported"] == true),
            "{outcome}"
        );
    }
}

#[tokio::test]
async fn the_server_speaks_the_protocol_and_rejects_bad_requests() {
    let sb = Sandbox::new();
    let (_server, url) = serve(&sb).await;
    let http = reqwest::Client::new();
    let models: Value = http
        .get(format!("{url}/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["embedded", "all-MiniLM-L6-v2"]);

    let embedded: Value = http
        .post(format!("{url}/embeddings"))
        .json(&json!({"model": "all-MiniLM-L6-v2", "input": ["TP53", "a tumour suppressor"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = embedded["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 384);

    // A forced tool call comes back as OpenAI tool_calls with JSON arguments.
    let completion: Value = http
        .post(format!("{url}/chat/completions"))
        .json(&json!({
            "model": "embedded",
            "messages": [{"role": "user", "content": "Translate ATGGCC."}],
            "tools": [{"type": "function", "function": {
                "name": "translate_dna",
                "parameters": {"type": "object", "properties": {"sequence": {"type": "string"}}, "required": ["sequence"]}
            }}],
            "tool_choice": {"type": "function", "function": {"name": "translate_dna"}}
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{completion}");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "translate_dna");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["sequence"].is_string(), "{args}");

    let cases: [(&str, String, u16, &str); 5] = [
        ("/chat/completions", "{not json".into(), 400, "not valid JSON"),
        ("/chat/completions", json!({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}).to_string(), 404, "model_not_found"),
        ("/chat/completions", json!({"model": "embedded", "messages": []}).to_string(), 400, "non-empty array"),
        ("/chat/completions", json!({"model": "embedded", "messages": [{"role": "user", "content": "gene ".repeat(5000)}]}).to_string(), 400, "context_length_exceeded"),
        ("/embeddings", json!({"model": "all-MiniLM-L6-v2", "input": 7}).to_string(), 400, "`input` must be"),
    ];
    for (path, body, status, needle) in cases {
        let response = http
            .post(format!("{url}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].is_string(), "{error}");
        assert!(error.to_string().contains(needle), "{error}");
    }
}

#[tokio::test]
async fn the_official_openai_python_client_talks_to_the_server() {
    let python = python_venv(
        "openai-client",
        include_str!("../data/openai_client/requirements.txt"),
    );
    let sb = Sandbox::new();
    let (_server, url) = serve(&sb).await;
    let out = tokio::process::Command::new(python)
        .arg(workspace_root().join("tests/data/openai_client/client.py"))
        .arg(&url)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["models"],
        json!(["all-MiniLM-L6-v2", "embedded"]),
        "{report}"
    );
    for call in [&report["call"], &report["streamed_call"]] {
        assert_eq!(call["name"], "translate_dna", "{report}");
        let dna = call["arguments"]["dna"].as_str().unwrap();
        assert!((3..=60).contains(&dna.chars().count()), "{report}");
    }
    assert_eq!(report["call"]["finish_reason"], "tool_calls", "{report}");
    assert!(report["call"]["usage"].as_u64().unwrap() > 0, "{report}");
    assert!(
        !report["answer"].as_str().unwrap().trim().is_empty(),
        "{report}"
    );
    assert_eq!(report["embeddings"], json!([384, 384]), "{report}");
    assert!(
        (report["embedding_norm"].as_f64().unwrap() - 1.0).abs() < 1e-4,
        "{report}"
    );
    assert_eq!(
        report["unknown_model"],
        json!({"status": 404, "code": "model_not_found"}),
        "{report}"
    );
}
