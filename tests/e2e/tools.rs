//! `cellwright tools list|prompt|call`: the schemas and the prompt the model reads, and typed
//! errors.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn tool_schemas_are_what_the_model_reads() {
    let sb = Sandbox::new();
    let out = sb.run(&["tools", "list", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let specs: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Each description is the tool's prompt file, verbatim.
    for spec in specs.as_array().unwrap() {
        let name = spec["name"].as_str().unwrap();
        let file = workspace_root()
            .join("prompts/tools")
            .join(format!("{name}.md"));
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|_| panic!("{} is missing", file.display()));
        assert_eq!(spec["description"].as_str().unwrap(), text.trim(), "{name}");
    }
    // Key order depends on serde_json's `preserve_order`, which other crates may switch on.
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_json_snapshot!("tools_list", specs);
    });
}

/// The prompt the embedded model reads for a question: the system prompt
/// (`prompts/system.md`) and the summary line of each tool the router lists, through the
/// model's own chat template.
#[tokio::test]
async fn the_rendered_prompt_is_what_the_embedded_model_reads() {
    let sb = Sandbox::new();
    let out = sb
        .command()
        .env("CELLWRIGHT_CACHE", cellwright_fetch::cache_dir())
        .args(["tools", "prompt", "Which chromosome is BRCA1 on?"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let prompt = stdout(&out);
    let system = std::fs::read_to_string(workspace_root().join("prompts/system.md")).unwrap();
    assert!(prompt.contains(system.trim()), "{prompt}");
    insta::assert_snapshot!("embedded_prompt", prompt);
}

#[tokio::test]
async fn tools_can_be_called_directly() {
    let sb = Sandbox::new();
    let out = sb
        .run(&[
            "tools",
            "call",
            "translate_dna",
            r#"{"sequence": "ATGGCCTAA", "to_stop": true}"#,
        ])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let output: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(output["protein"], "MA");
    let out = sb
        .run(&[
            "tools",
            "call",
            "reverse_complement",
            r#"{"sequence": "aacg"}"#,
        ])
        .await;
    let output: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        output,
        json!({"reverse_complement": "CGTT", "length": 4, "gc_fraction": 0.5})
    );
}

#[tokio::test]
async fn bad_calls_are_typed_errors_with_json_paths() {
    let sb = Sandbox::new();
    // (tool, arguments, error kind, JSON pointer, words in the message)
    let cases = [
        (
            "translate_dan",
            r#"{"sequence": "ATG"}"#,
            "not_found",
            None,
            "Did you mean `translate_dna`?",
        ),
        (
            "translate_dna",
            r#"{"sequence": 42}"#,
            "invalid_args",
            Some("/sequence"),
            "not of type",
        ),
        (
            "translate_dna",
            r#"{"sequence": "ATG", "frame": 4}"#,
            "invalid_args",
            Some("/frame"),
            "greater than the maximum of 3",
        ),
        (
            "translate_dna",
            r#"{"sequence": "ATG", "strand": "up"}"#,
            "invalid_args",
            Some("/strand"),
            "up",
        ),
        (
            "translate_dna",
            r#"{"sequence": "ATG", "colour": 1}"#,
            "invalid_args",
            Some(""),
            "colour",
        ),
        (
            "translate_dna",
            r#"{"frame": 1}"#,
            "invalid_args",
            Some(""),
            "sequence",
        ),
        (
            "translate_dna",
            r#"{"sequence": "AUG"}"#,
            "invalid_args",
            Some("/sequence"),
            "character 2 is `U`",
        ),
        (
            "translate_dna",
            r#"{"sequence": "ATG""#,
            "invalid_args",
            Some(""),
            "not valid JSON",
        ),
        (
            "predict_perturbation",
            r#"{"data": "krumsiek_myeloid", "genes": []}"#,
            "invalid_args",
            Some("/genes"),
            "less than 1 item",
        ),
        (
            "record_note",
            r#"{"title": "", "text": "x"}"#,
            "invalid_args",
            Some("/title"),
            "shorter than 1",
        ),
    ];
    for (tool, args, kind, path, words) in cases {
        let out = sb.run(&["tools", "call", tool, args]).await;
        assert_eq!(out.status.code(), Some(1), "{tool} {args}");
        let body: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{tool} {args}: {}", stdout(&out)));
        assert_eq!(body["error"]["kind"], kind, "{tool} {args}: {body}");
        if let Some(path) = path {
            assert_eq!(
                body["error"]["issues"][0]["path"], path,
                "{tool} {args}: {body}"
            );
        }
        assert!(
            body["message"].as_str().unwrap().contains(words),
            "{tool} {args}: {body}"
        );
        assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    }
}
