//! What a small model is better off copying than writing.
//!
//! - **Arguments**: a free-text argument (a gene, a model name, a GO term) is nearly always
//!   a span of the question or a value an earlier tool returned. A 135M model spells such
//!   values badly (`gene_TP53` for `TP53`) but ranks given ones well, so a call's free strings
//!   are constrained to those candidates ([`copy_candidates`], [`copying`]).
//! - **Answers**: its prose invents facts. The answer is composed instead from what the tools
//!   returned, one line per fact, each citing its call ([`compose_answer`]): every claim is a
//!   tool's, and the citations are exact.

use cellwright_core::{ChatRequest, Message, Role};
use serde_json::{Value, json};

use super::chat::map_subschemas;

/// Longest span of the question, in words, offered as an argument.
const SPAN_WORDS: usize = 6;
/// Words no argument starts or ends with: function words, and the words questions wrap
/// around the value they ask about ("the *gene* TP53", "in the *model* krumsiek_myeloid").
/// Left in, a small model copies them first: they are the likeliest tokens.
const STOP: &str = "a about after all also an and any are as at be by can contain contains do does each \
     encode encodes for from has have how if in into is it its known many me most much of \
     on or than that the their them then there these this those to was were what when \
     where which who why will with would you your gene genes human genome called name \
     full official symbol model published boolean node nodes regulate regulates annotated \
     cytoband sequence peptide protein proteins tell give list show find";
/// Longest string from a tool's output offered as an argument, and how many.
const OUTPUT_STRING_CHARS: usize = 80;
const OUTPUT_STRINGS: usize = 400;
/// A composed line's longest value list, and its longest length in characters.
const LIST_ITEMS: usize = 25;
const LINE_CHARS: usize = 600;

/// Characters trimmed from a question's words (`TP53?` → `TP53`, `"PU.1",` → `PU.1`).
fn trim_word(w: &str) -> &str {
    w.trim_matches(|c: char| "?!,;:\"'()[]{}`“”‘’".contains(c))
        .trim_end_matches('.')
        .trim_end_matches("'s")
}

/// The strings a call's free-text arguments may take: the latest question whole and its
/// spans of up to four words, then short strings from the tool results since it, in order,
/// each once.
pub fn copy_candidates(request: &ChatRequest) -> Vec<String> {
    let recent = since_question(request);
    let question = recent.first().map_or("", |m| m.content.as_str());
    let mut out: Vec<String> = Vec::new();
    let push = |s: &str, out: &mut Vec<String>| {
        let s = s.trim();
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    };
    let words: Vec<&str> = question
        .split_whitespace()
        .map(trim_word)
        .filter(|w| !w.is_empty())
        .collect();
    let stop = |w: &str| STOP.split_whitespace().any(|s| s == w.to_lowercase());
    for n in 1..=SPAN_WORDS {
        for span in words.windows(n) {
            if !stop(span[0]) && !stop(span[n - 1]) {
                push(&span.join(" "), &mut out);
            }
        }
    }
    push(question, &mut out);
    let mut from_outputs = Vec::new();
    for m in recent {
        if m.role != Role::Tool {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&m.content)
            && let Some(output) = v.get("output")
        {
            strings(output, &mut from_outputs);
        }
    }
    for s in from_outputs.iter().take(OUTPUT_STRINGS) {
        push(s, &mut out);
    }
    out
}

/// The latest question and the messages after it.
pub fn since_question(request: &ChatRequest) -> &[Message] {
    let last_user = request
        .messages
        .iter()
        .rposition(|m| m.role == Role::User)
        .unwrap_or(0);
    &request.messages[last_user..]
}

/// Short strings anywhere in `value`, in document order.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.chars().count() <= OUTPUT_STRING_CHARS => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(m) => m.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// `schema` with every free string (type `string`, no `enum`, `const`, `pattern` or `format`)
/// narrowed to the `candidates` it accepts by length, and every choice of strings (`enum`,
/// or `oneOf` alternatives with a `const`) narrowed to the values a candidate names (e.g.
/// "biological processes" names `biological_process`), when it names some. A string with no
/// such candidate keeps its schema. Every value the result admits is valid against `schema`.
pub fn copying(schema: &Value, candidates: &[String]) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    // Not inside `not` or `contains`, where narrowing would widen what the schema admits.
    let mut out = map_subschemas(
        map,
        &[
            "properties",
            "$defs",
            "definitions",
            "patternProperties",
            "items",
            "additionalProperties",
            "anyOf",
            "oneOf",
            "prefixItems",
        ],
        &|v| copying(v, candidates),
    );
    let free = map.get("type") == Some(&json!("string"))
        && !["enum", "const", "pattern", "format"]
            .iter()
            .any(|k| map.contains_key(*k));
    if let Some(Value::Array(values)) = map.get("enum") {
        let named: Vec<Value> = values
            .iter()
            .filter(|v| v.as_str().is_some_and(|v| named(candidates, v)))
            .cloned()
            .collect();
        if !named.is_empty() {
            out.insert("enum".into(), Value::Array(named));
        }
    }
    if let Some(Value::Array(alternatives)) = out.get("oneOf") {
        let named: Vec<Value> = alternatives
            .iter()
            .filter(|a| a["const"].as_str().is_some_and(|v| named(candidates, v)))
            .cloned()
            .collect();
        if !named.is_empty() {
            out.insert("oneOf".into(), Value::Array(named));
        }
    }
    if free {
        let min = map.get("minLength").and_then(Value::as_u64).unwrap_or(0);
        let max = map
            .get("maxLength")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        let fitting: Vec<Value> = candidates
            .iter()
            .filter(|c| (min..=max).contains(&(c.chars().count() as u64)))
            .map(|c| json!(c))
            .collect();
        if !fitting.is_empty() {
            out.insert("enum".into(), Value::Array(fitting));
        }
    }
    Value::Object(out)
}

/// Whether one of `candidates` names `value`: the same words, ignoring case, `_` read as a
/// space, and a plural `s` or `es`.
fn named(candidates: &[String], value: &str) -> bool {
    let words = value.replace('_', " ").to_lowercase();
    candidates.iter().any(|c| {
        let c = c.to_lowercase();
        c == words
            || c.strip_suffix('s')
                .is_some_and(|c| c == words || c.strip_suffix('e') == Some(&words))
    })
}

/// The answer composed from the tool results since the latest question: for each call that
/// returned, one line per field of its output, each ending with the call's citation `[n]`.
/// `None` when no call returned.
pub fn compose_answer(request: &ChatRequest) -> Option<String> {
    let mut lines = Vec::new();
    for m in since_question(request) {
        if m.role != Role::Tool {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(&m.content) else {
            continue;
        };
        let (Some(output), Some(call)) = (v.get("output"), v.get("call").and_then(Value::as_u64))
        else {
            continue;
        };
        let tool = v.get("tool").and_then(Value::as_str).unwrap_or("tool");
        if let Some(text) = templated(request, m, tool, output) {
            lines.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| line(l, call)),
            );
            continue;
        }
        match output {
            Value::Object(fields) => {
                for (key, value) in fields {
                    if let Some(text) = render(value) {
                        lines.push(line(&format!("{tool} {}: {text}", words(key)), call));
                    }
                }
            }
            other => {
                if let Some(text) = render(other) {
                    lines.push(line(&format!("{tool}: {text}"), call));
                }
            }
        }
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The tool's answer template rendered over the call's arguments and `output`, when it has
/// one and it renders to something.
fn templated(
    request: &ChatRequest,
    result: &Message,
    tool: &str,
    output: &Value,
) -> Option<String> {
    let template = request
        .tools
        .iter()
        .find(|t| t.name == tool)?
        .answer
        .as_deref()?;
    let arguments: Value = result
        .tool_call_id
        .as_deref()
        .and_then(|id| {
            request
                .messages
                .iter()
                .flat_map(|m| &m.tool_calls)
                .find(|c| c.id == id)
        })
        .and_then(|c| serde_json::from_str(&c.arguments).ok())
        .unwrap_or_else(|| json!({}));
    let env = minijinja::Environment::new();
    match env.render_str(template, minijinja::context! { arguments, output }) {
        Ok(text) if !text.trim().is_empty() => Some(text),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(tool, error = %e, "answer template failed; stating every field");
            None
        }
    }
}

/// What the failed calls since the latest question said, one line each, when none returned:
/// an answer that claims nothing. `None` when there were no calls.
pub fn compose_failures(request: &ChatRequest) -> Option<String> {
    let lines: Vec<String> = since_question(request)
        .iter()
        .filter(|m| m.role == Role::Tool)
        .filter_map(|m| serde_json::from_str::<Value>(&m.content).ok())
        .filter_map(|v| {
            let tool = v.get("tool")?.as_str()?.to_owned();
            let error = render(v.get("error")?)?;
            Some(format!("- {tool}: {error}"))
        })
        .collect();
    (!lines.is_empty()).then(|| {
        format!(
            "No tool answered this question, so there is no answer to give.\n{}",
            lines.join("\n")
        )
    })
}

/// `key_name` → `key name`.
fn words(key: &str) -> String {
    key.replace('_', " ")
}

/// One line, cut to [`LINE_CHARS`], without sentence ends that would split it from its
/// citation, then the citation.
fn line(text: &str, call: u64) -> String {
    let mut text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > LINE_CHARS {
        text = format!("{}…", text.chars().take(LINE_CHARS).collect::<String>());
    }
    // `. ` ends a claim; inside one line it would leave the first part uncited.
    let text = text
        .replace(". ", "; ")
        .replace("? ", "; ")
        .replace("! ", "; ");
    format!("{} [{call}]", text.trim_end_matches(['.', '?', '!']))
}

/// A value as words: strings as they are, lists joined (the first [`LIST_ITEMS`], then how
/// many in all), objects as `key value` pairs; nothing for null and empty values.
fn render(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) if a.is_empty() => None,
        Value::Array(a) => {
            let shown: Vec<String> = a.iter().take(LIST_ITEMS).filter_map(render).collect();
            let more = if a.len() > LIST_ITEMS {
                format!(" … ({} in all)", a.len())
            } else {
                String::new()
            };
            Some(format!("{}{more}", shown.join(", ")))
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .filter_map(|(k, v)| render(v).map(|t| format!("{} {t}", words(k))))
                .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use cellwright_core::{Effects, ToolCallRequest, ToolSpec};

    use super::*;

    fn request(question: &str, results: &[Value]) -> ChatRequest {
        let mut messages = vec![Message::system("s"), Message::user(question)];
        for (i, r) in results.iter().enumerate() {
            messages.push(Message {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![ToolCallRequest {
                    id: format!("c{i}"),
                    name: "t".into(),
                    arguments: "{}".into(),
                }],
                tool_call_id: None,
            });
            messages.push(Message::tool(format!("c{i}"), r.to_string()));
        }
        ChatRequest {
            messages,
            ..ChatRequest::default()
        }
    }

    #[test]
    fn candidates_are_question_spans_then_output_strings() {
        let req = request(
            "Where is the gene \"PU.1\"?",
            &[json!({"call": 1, "tool": "lookup_gene", "output": {"symbol": "SPI1", "n": 3}})],
        );
        let terms = copy_candidates(&request(
            "Which genes have the GO term T cell receptor signaling pathway?",
            &[],
        ));
        assert_eq!(terms[0], "GO");
        assert!(
            terms.contains(&"T cell receptor signaling pathway".to_owned()),
            "{terms:?}"
        );
        let c = copy_candidates(&req);
        // Spans that start or end with a stop word are left out.
        assert_eq!(c, ["PU.1", "Where is the gene \"PU.1\"?", "SPI1"]);
    }

    #[test]
    fn free_strings_become_enums_and_the_rest_stays() {
        let schema = json!({
            "type": "object",
            "properties": {
                "gene": {"type": "string", "description": "a symbol"},
                "genes": {"type": "array", "items": {"type": "string", "maxLength": 4}},
                "aspect": {"type": "string", "enum": ["all", "process"]},
                "top": {"type": "integer"}
            }
        });
        let out = copying(&schema, &["TP53".into(), "the TP53".into()]);
        assert_eq!(
            out["properties"]["gene"]["enum"],
            json!(["TP53", "the TP53"])
        );
        assert_eq!(out["properties"]["genes"]["items"]["enum"], json!(["TP53"]));
        assert_eq!(out["properties"]["aspect"], schema["properties"]["aspect"]);
        assert_eq!(out["properties"]["top"], schema["properties"]["top"]);
        // No candidate fits: the string stays free.
        let none = copying(&json!({"type": "string", "minLength": 9}), &["TP53".into()]);
        assert_eq!(none, json!({"type": "string", "minLength": 9}));
    }

    #[test]
    fn choices_the_question_names_are_the_only_choices() {
        let aspect =
            json!({"type": "string", "enum": ["biological_process", "molecular_function", "all"]});
        let spans = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            copying(&aspect, &spans(&["which", "Biological processes", "GAPDH"]))["enum"],
            json!(["biological_process"])
        );
        // Named nowhere: every choice stays.
        assert_eq!(copying(&aspect, &spans(&["GAPDH", "process"])), aspect);
        let collection = json!({"anyOf": [{"oneOf": [
            {"type": "string", "const": "pathways"},
            {"type": "string", "const": "complexes"}
        ]}, {"type": "null"}]});
        assert_eq!(
            copying(&collection, &spans(&["protein complexes", "complexes"]))["anyOf"][0]["oneOf"],
            json!([{"type": "string", "const": "complexes"}])
        );
    }

    #[test]
    fn a_tool_template_states_its_result_one_claim_per_line() {
        let mut req = request(
            "Which nodes regulate B?",
            &[json!({"call": 1, "tool": "t", "output": {"edges": [
                {"from": "A", "sign": "activation"}, {"from": "C", "sign": "inhibition"}]}})],
        );
        req.messages[2].tool_calls[0].arguments = r#"{"node": "B"}"#.into();
        let spec = |answer: &str| ToolSpec {
            name: "t".into(),
            description: String::new(),
            parameters: json!({}),
            output: json!({}),
            effects: Effects::Pure,
            answer: Some(answer.into()),
        };
        req.tools = vec![spec(
            "{% for e in output.edges %}{{ e.from }} regulates {{ arguments.node }} ({{ e.sign }}).\n{% endfor %}",
        )];
        assert_eq!(
            compose_answer(&req).unwrap(),
            "A regulates B (activation) [1]\nC regulates B (inhibition) [1]"
        );
        // A template that fails or says nothing falls back to every field.
        for broken in [
            "{{ output.edges | nosuchfilter }}",
            "{% if false %}x{% endif %}",
        ] {
            req.tools = vec![spec(broken)];
            assert!(compose_answer(&req).unwrap().starts_with("t edges: from A"));
        }
    }

    #[test]
    fn answers_cite_every_line_and_keep_values_whole() {
        let req = request(
            "Where is TP53?",
            &[
                json!({"call": 1, "tool": "lookup_gene", "output": {
                    "symbol": "TP53", "cytobands": ["17p13.1"], "note": null,
                    "go_terms": {"biological_process": 127}, "name": "tumor protein p53. A TF"}}),
                json!({"call": 2, "tool": "go_terms", "error": {"kind": "not_found"}}),
                json!({"call": 3, "tool": "list", "output": (0..30).collect::<Vec<_>>()}),
            ],
        );
        let text = compose_answer(&req).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "lookup_gene symbol: TP53 [1]",
                "lookup_gene cytobands: 17p13.1 [1]",
                "lookup_gene go terms: biological process 127 [1]",
                "lookup_gene name: tumor protein p53; A TF [1]",
                "list: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24 … (30 in all) [3]",
            ]
        );
        assert_eq!(compose_answer(&request("q", &[])), None);
        let failed = request(
            "q",
            &[
                json!({"call": 1, "tool": "go_terms", "error": {"kind": "not_found", "message": "no gene `x`"}}),
            ],
        );
        assert_eq!(compose_answer(&failed), None);
        assert_eq!(
            compose_failures(&failed).unwrap(),
            "No tool answered this question, so there is no answer to give.\n- go_terms: kind not_found, message no gene `x`"
        );
    }
}
