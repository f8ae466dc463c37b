//! What a small model is better off copying than writing.
//!
//! - **Arguments**: a free-text argument (a gene, a model name, a GO term) is nearly always
//!   a span of the question or a value an earlier tool returned. A 135M model spells such
//!   values badly (`gene_TP53` for `TP53`) but ranks given ones well, so a call's free strings
//!   are constrained to those candidates ([`copy_candidates`], [`copying`]).
//! - **Answers**: its prose invents facts. The answer is composed instead from what the tools
//!   returned, one line per fact, each citing its call ([`compose_answer`]): every claim is a
//!   tool's, and the citations are exact.

use cellwright_core::{
    CUES_KEYWORD, ChatRequest, DOMAIN_KEYWORD, Message, Role, ToolSpec, Vocabulary, domains,
    domains_of,
};
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
     full official symbol model published boolean node nodes regulate regulates annotated cell cells \
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

/// `question` with each word a vocabulary places in a domain replaced by the domain's generic
/// name ("pbmc68k_reduced" → "a data set", "TP53" → "a gene"): tools are routed by what is
/// asked, not by which gene or data set it is asked of. Only words that cannot be plain
/// English are looked up (with an upper-case letter, a digit or `_`), and none shorter than
/// three letters ("GO" and "T" are gene aliases too).
pub fn generic(question: &str, vocabulary: &dyn Vocabulary) -> String {
    question
        .split_whitespace()
        .map(|word| {
            let name = trim_word(word);
            match domain_of(name, vocabulary) {
                Some((_, generic)) => word.replacen(name, generic, 1),
                None => word.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The domain a vocabulary places a (trimmed) word of a question in, and the domain's generic
/// name, as [`generic`] reads words.
fn domain_of(name: &str, vocabulary: &dyn Vocabulary) -> Option<(&'static str, &'static str)> {
    const NAMES: [(&str, &str); 4] = [
        (domains::DATASET, "a data set"),
        (domains::BOOLEAN_MODEL, "a Boolean model"),
        (domains::GENE, "a gene"),
        (domains::MODEL_NODE, "a node"),
    ];
    let special = name.chars().count() > 2
        && name
            .chars()
            .any(|c| c.is_uppercase() || c.is_ascii_digit() || c == '_');
    if !special {
        return None;
    }
    NAMES
        .iter()
        .find(|(d, _)| vocabulary.admits(d, name) == Some(true))
        .copied()
}

/// `tools` without those that take one value of a domain the question names several of
/// ("among MCM2, MCM3 and MCM4" are genes), when others take a list of it: the question is
/// about the list. The order is kept; nothing is dropped when no tool takes such a list.
pub fn by_shape<'t>(
    question: &str,
    vocabulary: &dyn Vocabulary,
    tools: Vec<&'t ToolSpec>,
) -> Vec<&'t ToolSpec> {
    let mut named: Vec<(&str, &str)> = question
        .split_whitespace()
        .map(trim_word)
        .filter_map(|w| domain_of(w, vocabulary).map(|(d, _)| (d, w)))
        .collect();
    named.sort_unstable();
    named.dedup();
    // Each argument's domains, and whether it is a list.
    let arguments = |t: &'t ToolSpec| -> Vec<(Vec<&'t str>, bool)> {
        let Some(Value::Object(properties)) = t.parameters.get("properties") else {
            return Vec::new();
        };
        properties
            .values()
            .map(|p| (argument_domains(p), p.get("items").is_some()))
            .collect()
    };
    let takes = |t: &'t ToolSpec, domain: &str, list: bool| {
        arguments(t)
            .iter()
            .any(|(ds, is_list)| *is_list == list && ds.contains(&domain))
    };
    let mut kept = tools;
    for domain in [
        domains::GENE,
        domains::MODEL_NODE,
        domains::DATASET,
        domains::BOOLEAN_MODEL,
    ] {
        if named.iter().filter(|(d, _)| *d == domain).count() < 2
            || !kept.iter().any(|t| takes(t, domain, true))
        {
            continue;
        }
        kept.retain(|t| takes(t, domain, true) || !takes(t, domain, false));
    }
    kept
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

/// What a call's arguments may be copied from.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The request's spans and earlier results' strings ([`copy_candidates`]).
    pub candidates: &'a [String],
    /// The latest request, whole.
    pub question: &'a str,
    /// Which strings are in an argument's domain, if known.
    pub vocabulary: Option<&'a dyn Vocabulary>,
}

/// `schema` narrowed to what the `sources` give, so that every value it admits is valid
/// against `schema`:
///
/// - every free string (type `string`, or string or null; no `enum`, `const`, `pattern` or
///   `format`) to the candidates it accepts by length; one that names domains
///   ([`DOMAIN_KEYWORD`], on it or on the list that holds it) to the candidates the
///   vocabulary admits to one of them, when it admits some (otherwise every candidate stays,
///   and the tool's error names close values);
/// - every choice of strings (`enum`, or `oneOf` alternatives with a `const`) to the values a
///   candidate names (e.g. "biological processes" names `biological_process`), when it names
///   some;
/// - an argument with a `default` keeps it unless the request speaks to it: a choice it does
///   not name, a number it does not give, a domain none of its candidates is in, or cues
///   ([`CUES_KEYWORD`]) it does not use.
///
/// A string with no fitting candidate keeps its schema.
pub fn copying(schema: &Value, sources: Sources) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let candidates = sources.candidates;
    // A list's domains are its items'.
    let inherited;
    let map = match (map.get(DOMAIN_KEYWORD), map.get("items")) {
        (Some(domain), Some(Value::Object(items))) if !items.contains_key(DOMAIN_KEYWORD) => {
            let mut items = items.clone();
            items.insert(DOMAIN_KEYWORD.into(), domain.clone());
            let mut with_items = map.clone();
            with_items.insert("items".into(), Value::Object(items));
            inherited = with_items;
            &inherited
        }
        _ => map,
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
        &|v| copying(v, sources),
    );
    reserve_for_domains(map, &mut out, sources);
    require_cued(map, &mut out, sources.question);
    pin_named_together(map, &mut out, sources.question);
    drop_null_when_named(map, &mut out);
    let default = map.get("default");
    // The request does not use the argument's cues: it stays at its default.
    if let (Some(default), Some(used)) = (default, cues_used(map, sources.question)) {
        if !used {
            return at_default(out, default);
        }
        // A flag the request cues is on.
        if default == &json!(false) {
            return at_default(out, &json!(true));
        }
    }
    let types = match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let nullable = types.contains(&"null");
    let plain = |t: &str| types.iter().all(|u| *u == t || *u == "null") && types.contains(&t);
    let free = plain("string")
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
        } else if let Some(default) = default.filter(|d| values.contains(d)) {
            out.insert("enum".into(), json!([default]));
        }
    }
    if let Some(Value::Array(alternatives)) = out.get("oneOf") {
        let named: Vec<Value> = alternatives
            .iter()
            .filter(|a| a["const"].as_str().is_some_and(|v| named(candidates, v)))
            .cloned()
            .collect();
        let defaulted: Vec<Value> = alternatives
            .iter()
            .filter(|a| default.is_some_and(|d| &a["const"] == d))
            .cloned()
            .collect();
        if !named.is_empty() {
            out.insert("oneOf".into(), Value::Array(named));
        } else if !defaulted.is_empty() {
            out.insert("oneOf".into(), Value::Array(defaulted));
        }
    }
    if let Some(default) = default
        && (plain("integer") || plain("number"))
    {
        // The numbers the request gives that fit, and the default.
        let min = map
            .get("minimum")
            .and_then(Value::as_f64)
            .unwrap_or(f64::MIN);
        let max = map
            .get("maximum")
            .and_then(Value::as_f64)
            .unwrap_or(f64::MAX);
        let mut given: Vec<Value> = candidates
            .iter()
            .filter_map(|c| c.parse::<f64>().ok())
            .filter(|n| (min..=max).contains(n) && (plain("number") || n.fract() == 0.0))
            .map(|n| {
                if n.fract() == 0.0 {
                    json!(n as i64)
                } else {
                    json!(n)
                }
            })
            .collect();
        if !given.contains(default) {
            given.push(default.clone());
        }
        out.insert("enum".into(), Value::Array(given));
    }
    let domains = domains_of(map);
    let admits = |c: &String| match sources.vocabulary {
        Some(vocabulary) => domains
            .iter()
            .any(|d| vocabulary.admits(d, c) != Some(false)),
        None => true,
    };
    // A list in domains none of the candidates is in stays at its default.
    if let (Some(default), true) = (default, plain("array") && !domains.is_empty())
        && !candidates.iter().any(admits)
    {
        return at_default(out, default);
    }
    if free {
        let min = map.get("minLength").and_then(Value::as_u64).unwrap_or(0);
        let max = map
            .get("maxLength")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        // A cue says the argument is wanted, never what it is: "markers of CD14+ Monocyte"
        // asks for a group, not for one named "markers".
        let cues = cues_of(map);
        let cued = |c: &String| {
            let first = c.split_whitespace().next().unwrap_or("").to_lowercase();
            cues.iter().any(|cue| first.starts_with(cue))
        };
        let fitting: Vec<&String> = candidates
            .iter()
            .filter(|c| (min..=max).contains(&(c.chars().count() as u64)))
            .collect();
        let fitting = if fitting.iter().all(|c| cued(c)) {
            fitting
        } else {
            fitting.into_iter().filter(|c| !cued(c)).collect()
        };
        let admitted: Vec<&String> = if domains.is_empty() {
            Vec::new()
        } else {
            fitting.iter().copied().filter(|c| admits(c)).collect()
        };
        if admitted.is_empty()
            && !domains.is_empty()
            && let Some(default) = default
        {
            return at_default(out, default);
        }
        let chosen = if admitted.is_empty() {
            fitting
        } else {
            admitted
        };
        let mut fitting: Vec<Value> = chosen.into_iter().map(|c| json!(c)).collect();
        if nullable && !fitting.is_empty() {
            fitting.push(Value::Null);
        }
        if !fitting.is_empty() {
            out.insert("enum".into(), Value::Array(fitting));
        }
    }
    Value::Object(out)
}

/// Makes the optional properties whose cues the request uses, or whose choice it names,
/// required (a list, not empty), unless their narrowed schema admits only the default: "with
/// PU1 knocked out" asks for knockouts, "complexes" for that collection, and a small model
/// would leave them out.
fn require_cued(
    map: &serde_json::Map<String, Value>,
    out: &mut serde_json::Map<String, Value>,
    question: &str,
) {
    let Some(Value::Object(properties)) = map.get("properties") else {
        return;
    };
    let narrowed_anyof = |name: &str, p: &Value| {
        let alternatives = |v: Option<&Value>| {
            v.and_then(|v| v.get("anyOf"))
                .and_then(Value::as_array)
                .map(Vec::len)
        };
        let after = out.get("properties").and_then(|o| o.get(name));
        matches!((alternatives(Some(p)), alternatives(after)), (Some(b), Some(a)) if a < b)
    };
    // Cued, or a choice the request names (its `null` dropped).
    let cued_names: Vec<String> = properties
        .iter()
        .filter(|(name, p)| {
            narrowed_anyof(name, p)
                || p.as_object()
                    .and_then(|p| cues_used(p, question))
                    .unwrap_or(false)
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in cued_names {
        let Some(Value::Object(narrowed)) =
            out.get_mut("properties").and_then(|p| p.get_mut(&name))
        else {
            continue;
        };
        let pinned = narrowed.get("maxItems") == Some(&json!(0))
            || narrowed
                .get("enum")
                .is_some_and(|e| Some(e) == narrowed.get("default").map(|d| json!([d])).as_ref());
        if pinned {
            continue;
        }
        if narrowed.get("type") == Some(&json!("array")) {
            let min = narrowed
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            narrowed.insert("minItems".into(), json!(min.max(1)));
        }
        let required = out.entry("required").or_insert_with(|| json!([]));
        if let Value::Array(required) = required
            && !required.contains(&json!(name))
        {
            required.push(json!(name));
        }
    }
}

/// Pins a list of domain values to those the request names together: "knocking out GATA2 and
/// FOG1" asks for both and only them, "among MCM2, MCM3 and MCM4" for the three, and a small
/// model would name one, or one several times. A list with cues takes only a run next to one
/// of them; a list whose cues the request does not use is left at its default, and a list of
/// no domain is left alone (any words may be named together).
fn pin_named_together(
    map: &serde_json::Map<String, Value>,
    out: &mut serde_json::Map<String, Value>,
    question: &str,
) {
    let Some(Value::Object(properties)) = map.get("properties") else {
        return;
    };
    let Some(Value::Object(narrowed)) = out.get_mut("properties") else {
        return;
    };
    for (name, p) in properties {
        let Some(Value::Object(list)) = narrowed.get_mut(name) else {
            continue;
        };
        let Some(choices) = list
            .get("items")
            .and_then(|i| i.get("enum"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        // Of no domain, or held at its default (no items, or one value).
        if argument_domains(p).is_empty()
            || list.get("maxItems") == Some(&json!(0))
            || list.contains_key("enum")
        {
            continue;
        }
        let cues = p.as_object().map(cues_of).unwrap_or_default();
        let together = named_together(question, choices, &cues);
        let fits = |key: &str, ok: &dyn Fn(u64) -> bool| {
            list.get(key).and_then(Value::as_u64).is_none_or(ok)
        };
        let n = together.len() as u64;
        if n > 1 && fits("maxItems", &|max| n <= max) && fits("minItems", &|min| n >= min) {
            let pinned: Vec<Value> = together.iter().map(|g| json!({"const": g})).collect();
            list.insert("prefixItems".into(), Value::Array(pinned));
            list.insert("minItems".into(), json!(n));
            list.insert("maxItems".into(), json!(n));
        }
    }
}

/// The longest run of `choices` the request names one after another, joined by a comma,
/// `and`, `&`, `+` or `/`, next to one of `cues` (lower-case; up to two words before it, or
/// the word after it) when there are cues: "knocking out GATA2 and FOG1", "with SPI1, GATA1
/// and GATA2 knocked out".
fn named_together(question: &str, choices: &[Value], cues: &[String]) -> Vec<String> {
    let is_choice = |w: &str| choices.iter().any(|c| c.as_str() == Some(w));
    let cue = |w: &str| {
        let w = trim_word(w).to_lowercase();
        cues.iter().any(|c| w.starts_with(c))
    };
    let tokens: Vec<&str> = question.split_whitespace().collect();
    // Runs as (first token, last token, names).
    let mut runs: Vec<(usize, usize, Vec<String>)> = Vec::new();
    let mut current: Option<(usize, usize, Vec<String>)> = None;
    let mut joined = false;
    for (i, token) in tokens.iter().enumerate() {
        let parts: Vec<&str> = token.split('/').map(trim_word).collect();
        let connector = ["and", "&", "+"].contains(&trim_word(token).to_lowercase().as_str());
        if parts.iter().all(|p| is_choice(p)) {
            let names = parts.iter().map(|p| (*p).to_owned());
            current = match current.take() {
                Some((first, _, mut run)) if joined => {
                    run.extend(names);
                    Some((first, i, run))
                }
                other => {
                    runs.extend(other);
                    Some((i, i, names.collect()))
                }
            };
            joined = token.trim_end_matches(['"', '\'', ')']).ends_with(',');
        } else if connector && current.is_some() {
            joined = true;
        } else {
            runs.extend(current.take());
            joined = false;
        }
    }
    runs.extend(current);
    runs.into_iter()
        .filter(|(first, last, _)| {
            cues.is_empty()
                || tokens[first.saturating_sub(2)..*first]
                    .iter()
                    .any(|w| cue(w))
                || tokens.get(last + 1).is_some_and(|w| cue(w))
        })
        .map(|(_, _, names)| names)
        .max_by_key(Vec::len)
        .unwrap_or_default()
}

/// The spans a vocabulary places in an argument's domain are that argument's: a sibling with
/// no domain of its own (a group, a label) copies from the other spans, so that "the
/// Dendritic cells in pbmc68k_reduced" gives the data set to `dataset` and leaves
/// "Dendritic cells" to `group_by`. Nothing is reserved when nothing would be left, nor from
/// numbers.
fn reserve_for_domains(
    map: &serde_json::Map<String, Value>,
    out: &mut serde_json::Map<String, Value>,
    sources: Sources,
) {
    let (Some(vocabulary), Some(Value::Object(properties))) =
        (sources.vocabulary, map.get("properties"))
    else {
        return;
    };
    let taken: Vec<&str> = properties.values().flat_map(argument_domains).collect();
    let rest: Vec<String> = sources
        .candidates
        .iter()
        .filter(|c| !taken.iter().any(|d| vocabulary.admits(d, c) == Some(true)))
        .cloned()
        .collect();
    if taken.is_empty() || rest.is_empty() || rest.len() == sources.candidates.len() {
        return;
    }
    let Some(Value::Object(narrowed)) = out.get_mut("properties") else {
        return;
    };
    // Text, or lists of it: numbers and choices are not copied from spans.
    let text = |p: &Value| {
        let p = p.get("items").unwrap_or(p);
        match p.get("type") {
            Some(Value::String(t)) => t == "string",
            Some(Value::Array(ts)) => ts.contains(&json!("string")),
            _ => false,
        }
    };
    for (name, p) in properties {
        if argument_domains(p).is_empty() && text(p) {
            let sources = Sources {
                candidates: &rest,
                ..sources
            };
            narrowed.insert(name.clone(), copying(p, sources));
        }
    }
}

/// Drops the `null` alternative of an `anyOf` whose choice the request names: "complexes"
/// asks for that collection, not for none in particular.
fn drop_null_when_named(
    map: &serde_json::Map<String, Value>,
    out: &mut serde_json::Map<String, Value>,
) {
    let (Some(Value::Array(before)), Some(Value::Array(after))) =
        (map.get("anyOf"), out.get("anyOf"))
    else {
        return;
    };
    let choices = |v: &Value| {
        ["enum", "oneOf"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_array).map(Vec::len))
    };
    let named = before
        .iter()
        .zip(after)
        .any(|(b, a)| matches!((choices(b), choices(a)), (Some(b), Some(a)) if a < b));
    if named {
        let kept: Vec<Value> = after
            .iter()
            .filter(|a| a.get("type") != Some(&json!("null")))
            .cloned()
            .collect();
        out.insert("anyOf".into(), Value::Array(kept));
    }
}

/// `schema` admitting only `default`: an empty list, or the one value.
fn at_default(mut schema: serde_json::Map<String, Value>, default: &Value) -> Value {
    match default {
        Value::Array(items) if items.is_empty() => {
            schema.insert("maxItems".into(), json!(0));
        }
        _ => {
            schema.insert("enum".into(), json!([default]));
        }
    }
    Value::Object(schema)
}

/// Whether `question` uses one of the schema's cues (a word of it starts with one, ignoring
/// case); `None` when the schema names none.
fn cues_used(schema: &serde_json::Map<String, Value>, question: &str) -> Option<bool> {
    schema.get(CUES_KEYWORD)?.as_array()?;
    let words: Vec<String> = question
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    Some(
        cues_of(schema)
            .iter()
            .any(|cue| words.iter().any(|w| w.starts_with(cue))),
    )
}

/// The schema's cues ([`CUES_KEYWORD`]), lower-case.
fn cues_of(schema: &serde_json::Map<String, Value>) -> Vec<String> {
    schema
        .get(CUES_KEYWORD)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_lowercase)
        .collect()
}

/// An argument's domains: its own and, for a list, its items'.
pub(super) fn argument_domains(argument: &Value) -> Vec<&str> {
    let Value::Object(argument) = argument else {
        return Vec::new();
    };
    let mut domains = domains_of(argument);
    if let Some(Value::Object(items)) = argument.get("items") {
        domains.extend(domains_of(items));
    }
    domains
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
    use cellwright_core::{Effects, ToolCallRequest};

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
                "node": {"type": ["string", "null"]},
                "genes": {"type": "array", "items": {"type": "string", "maxLength": 4}},
                "aspect": {"type": "string", "enum": ["all", "process"]},
                "top": {"type": "integer"}
            }
        });
        let out = copying(&schema, from(&["TP53".into(), "the TP53".into()], None));
        assert_eq!(
            out["properties"]["gene"]["enum"],
            json!(["TP53", "the TP53"])
        );
        assert_eq!(out["properties"]["genes"]["items"]["enum"], json!(["TP53"]));
        // An optional string may still be left out.
        assert_eq!(
            out["properties"]["node"]["enum"],
            json!(["TP53", "the TP53", null])
        );
        assert_eq!(out["properties"]["aspect"], schema["properties"]["aspect"]);
        assert_eq!(out["properties"]["top"], schema["properties"]["top"]);
        // No candidate fits: the string stays free.
        let none = copying(
            &json!({"type": "string", "minLength": 9}),
            from(&["TP53".into()], None),
        );
        assert_eq!(none, json!({"type": "string", "minLength": 9}));
    }

    /// Sources with these candidates and no request beyond them.
    fn from<'a>(candidates: &'a [String], vocabulary: Option<&'a dyn Vocabulary>) -> Sources<'a> {
        Sources {
            candidates,
            question: "",
            vocabulary,
        }
    }

    /// Genes are upper-case words here; nothing is known of models.
    #[derive(Debug)]
    struct Genes;

    impl Vocabulary for Genes {
        fn admits(&self, domain: &str, value: &str) -> Option<bool> {
            (domain == "gene").then(|| {
                value
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            })
        }
    }

    #[test]
    fn a_domain_keeps_the_candidates_its_vocabulary_admits() {
        let schema = json!({
            "type": "object",
            "properties": {
                "gene": {"type": "string", "x-domain": "gene"},
                "knockouts": {"type": "array", "x-domain": ["model_node", "gene"], "items": {"type": "string"}},
                "model": {"type": "string", "x-domain": "model"},
                "note": {"type": "string"}
            }
        });
        let candidates: Vec<String> = ["knocked", "TP53", "CORUM complexes"]
            .map(String::from)
            .into();
        let out = copying(&schema, from(&candidates, Some(&Genes)));
        let all = json!(["knocked", "TP53", "CORUM complexes"]);
        assert_eq!(out["properties"]["gene"]["enum"], json!(["TP53"]));
        // A list's domains are its items'; a domain the vocabulary cannot tell admits all.
        assert_eq!(out["properties"]["knockouts"]["items"]["enum"], all);
        assert_eq!(out["properties"]["model"]["enum"], all);
        // A span in a sibling's domain is the sibling's.
        assert_eq!(
            out["properties"]["note"]["enum"],
            json!(["knocked", "CORUM complexes"])
        );
        // No candidate in the domain: all stay, and the tool names close values.
        let lower: Vec<String> = vec!["knocked".into()];
        let out = copying(
            &json!({"type": "string", "x-domain": "gene"}),
            from(&lower, Some(&Genes)),
        );
        assert_eq!(out["enum"], json!(["knocked"]));
        // Without a vocabulary, domains change nothing.
        assert_eq!(
            copying(&schema, from(&candidates, None))["properties"]["gene"]["enum"],
            all
        );
        let only_genes = json!({"type": "array", "x-domain": "gene", "items": {"type": "string"}});
        assert_eq!(
            copying(&only_genes, from(&candidates, Some(&Genes)))["items"]["enum"],
            json!(["TP53"])
        );
    }

    #[test]
    fn genes_named_together_are_asked_for_together() {
        let schema = json!({
            "type": "object",
            "properties": {
                "knockouts": {"type": "array", "items": {"type": "string"}, "default": [],
                              "x-domain": "gene", "x-cues": ["knock"], "maxItems": 3},
                "group": {"type": ["string", "null"], "default": null}
            }
        });
        let candidates: Vec<String> = ["GATA2", "FOG1", "PU1", "SPI1", "Dendritic cells"]
            .map(String::from)
            .into();
        let pinned = |question| {
            let sources = Sources {
                candidates: &candidates,
                question,
                vocabulary: Some(&Genes),
            };
            let list = &copying(&schema, sources)["properties"]["knockouts"];
            let consts: Vec<&str> = list["prefixItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["const"].as_str())
                .collect();
            if !consts.is_empty() {
                assert_eq!(list["minItems"], json!(consts.len()));
                assert_eq!(list["maxItems"], json!(consts.len()));
            }
            consts.join(" ")
        };
        assert_eq!(pinned("Knock out GATA2 and FOG1 together."), "GATA2 FOG1");
        assert_eq!(pinned("Knock out GATA2, FOG1 and PU1"), "GATA2 FOG1 PU1");
        assert_eq!(pinned("knocking out GATA2/FOG1"), "GATA2 FOG1");
        assert_eq!(pinned("with GATA2 and PU1 knocked out?"), "GATA2 PU1");
        // Never more than the list holds.
        assert_eq!(pinned("Knock out GATA2, FOG1, PU1 and SPI1"), "");
        // Named apart, or away from the cue, each may be asked of the other.
        assert_eq!(pinned("What happens to PU1 with GATA2 knocked out?"), "");
        assert_eq!(pinned("GATA2 knocked out, and PU1?"), "");
        assert_eq!(pinned("Knock out SPI1 and see GATA2 and FOG1"), "");
        // A list with no cues takes the longest run anywhere; one of no domain is left alone.
        let genes = json!({"type": "object", "properties": {
            "genes": {"type": "array", "items": {"type": "string"}, "x-domain": "gene", "minItems": 2},
            "words": {"type": "array", "items": {"type": "string"}}
        }});
        let sources = Sources {
            candidates: &candidates,
            question: "Is PU1 enriched? Among GATA2, FOG1 and SPI1?",
            vocabulary: Some(&Genes),
        };
        let out = copying(&genes, sources);
        assert_eq!(
            out["properties"]["genes"]["prefixItems"]
                .as_array()
                .map(Vec::len),
            Some(3)
        );
        assert!(out["properties"]["words"].get("prefixItems").is_none());
        // The genes are the list's; the group copies from the other spans.
        let sources = Sources {
            candidates: &candidates,
            question: "Knock out GATA2 in Dendritic cells",
            vocabulary: Some(&Genes),
        };
        let out = copying(&schema, sources);
        assert_eq!(
            out["properties"]["group"]["enum"],
            json!(["Dendritic cells", null])
        );
    }

    #[test]
    fn a_cue_is_never_the_value_it_asks_for() {
        let schema = json!({"type": ["string", "null"], "default": null, "x-cues": ["mark"]});
        let candidates: Vec<String> = ["markers", "markers of CD14+", "CD14+ Monocyte", "CD14+"]
            .map(String::from)
            .into();
        let sources = Sources {
            candidates: &candidates,
            question: "markers of CD14+ Monocyte",
            vocabulary: None,
        };
        assert_eq!(
            copying(&schema, sources)["enum"],
            json!(["CD14+ Monocyte", "CD14+", null])
        );
        // Only cue words to copy: they stay, and the tool names close values.
        let only: Vec<String> = vec!["markers".into()];
        let sources = Sources {
            candidates: &only,
            ..sources
        };
        assert_eq!(copying(&schema, sources)["enum"], json!(["markers", null]));
    }

    #[test]
    fn several_genes_go_to_the_tools_that_take_a_list_of_them() {
        let tool = |name: &str, parameters: Value| ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters,
            output: json!({}),
            effects: Effects::Pure,
            answer: None,
        };
        let one = tool(
            "one",
            json!({"properties": {"gene": {"type": "string", "x-domain": "gene"}}}),
        );
        let list = tool(
            "list",
            json!({"properties": {"genes": {"type": "array", "items": {"type": "string"}, "x-domain": "gene"}}}),
        );
        let neither = tool(
            "neither",
            json!({"properties": {"text": {"type": "string"}}}),
        );
        let names = |question| {
            by_shape(question, &Genes, vec![&one, &neither, &list])
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            names("Is anything enriched among MCM2, MCM3 and MCM4?"),
            "neither list"
        );
        // One gene, named twice or once: every tool stays.
        assert_eq!(names("What is TP53? Is TP53 a gene?"), "one neither list");
        // No tool takes a list of them: every tool stays.
        let only = by_shape("MCM2 and MCM3", &Genes, vec![&one, &neither]);
        assert_eq!(only.len(), 2);
    }

    #[test]
    fn routing_reads_domain_words_as_their_domain() {
        assert_eq!(
            generic("Which complexes contain PSMA1? Is TP53, in CORUM?", &Genes),
            "Which complexes contain a gene? Is a gene, in a gene?"
        );
        // Plain words are not looked up, even when the vocabulary would admit them.
        assert_eq!(generic("the genes", &Genes), "the genes");
    }

    #[test]
    fn an_argument_the_request_does_not_speak_to_keeps_its_default() {
        let schema = json!({
            "type": "object",
            "properties": {
                "model": {"oneOf": [
                    {"type": "string", "const": "ensemble"},
                    {"type": "string", "const": "no_change"}
                ], "default": "ensemble"},
                "direction": {"type": "string", "enum": ["knockout", "overexpression"], "default": "knockout"},
                "top": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                "seed": {"type": ["integer", "null"], "default": null},
                "node": {"type": ["string", "null"], "default": null, "x-cues": ["regulat"], "x-domain": "model_node"},
                "tfs": {"type": "boolean", "default": false, "x-cues": ["transcription"]},
                "knockouts": {"type": "array", "items": {"type": "string"}, "default": [], "x-cues": ["knock", "ko"], "x-domain": "gene"},
                "genes": {"type": "array", "items": {"type": "string"}, "default": [], "x-domain": "gene"},
                "reference": {"type": ["string", "null"], "default": null, "x-domain": "gene"}
            }
        });
        let candidates: Vec<String> = ["PU1", "3", "100", "2.5"].map(String::from).into();
        let sources = |question| Sources {
            candidates: &candidates,
            question,
            vocabulary: Some(&Genes),
        };
        let out = copying(&schema, sources("Knock out PU1: the top 3?"));
        let p = &out["properties"];
        assert_eq!(
            p["model"]["oneOf"],
            json!([{"type": "string", "const": "ensemble"}])
        );
        assert_eq!(p["direction"]["enum"], json!(["knockout"]));
        // Numbers the request gives (that fit), and the default.
        assert_eq!(p["top"]["enum"], json!([3, 10]));
        assert_eq!(p["seed"]["enum"], json!([3, 100, null]));
        // Cues: "Knock" is a knockout's, nothing in it asks for a node's regulators.
        assert_eq!(p["node"]["enum"], json!([null]));
        assert_eq!(p["tfs"]["enum"], json!([false]));
        assert_eq!(p["knockouts"]["items"]["enum"], json!(["PU1", "3", "100"]));
        assert!(p["knockouts"].get("maxItems").is_none());
        // Cued, so asked for: required, and not empty.
        assert_eq!(p["knockouts"]["minItems"], json!(1));
        assert_eq!(out["required"], json!(["knockouts"]));
        let out = copying(&schema, sources("Which nodes regulate PU1?"));
        assert_eq!(out["properties"]["knockouts"]["maxItems"], json!(0));
        assert_eq!(
            out["properties"]["node"]["enum"],
            json!(["PU1", "3", "100", "2.5", null])
        );
        assert_eq!(out["required"], json!(["node"]));
        let tfs = copying(
            &schema,
            sources("Which transcription factors regulate PU1?"),
        );
        assert_eq!(tfs["properties"]["tfs"]["enum"], json!([true]));
        // Genes are upper-case words: "PU1", "3", "100" are; an optional gene takes them.
        assert_eq!(
            out["properties"]["reference"]["enum"],
            json!(["PU1", "3", "100", null])
        );
        let lower: Vec<String> = vec!["pu".into()];
        let out = copying(
            &schema,
            Sources {
                candidates: &lower,
                ..sources("")
            },
        );
        assert_eq!(out["properties"]["genes"]["maxItems"], json!(0));
        assert_eq!(out["properties"]["reference"]["enum"], json!([null]));
    }

    #[test]
    fn choices_the_question_names_are_the_only_choices() {
        let aspect =
            json!({"type": "string", "enum": ["biological_process", "molecular_function", "all"]});
        let spans = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            copying(
                &aspect,
                from(&spans(&["which", "Biological processes", "GAPDH"]), None)
            )["enum"],
            json!(["biological_process"])
        );
        // Named nowhere: every choice stays.
        assert_eq!(
            copying(&aspect, from(&spans(&["GAPDH", "process"]), None)),
            aspect
        );
        let collection = json!({"anyOf": [{"oneOf": [
            {"type": "string", "const": "pathways"},
            {"type": "string", "const": "complexes"}
        ]}, {"type": "null"}]});
        let named = copying(
            &collection,
            from(&spans(&["protein complexes", "complexes"]), None),
        );
        // Named, so chosen: no longer left open.
        assert_eq!(
            named["anyOf"],
            json!([{"oneOf": [{"type": "string", "const": "complexes"}]}])
        );
        assert_eq!(
            copying(&collection, from(&spans(&["GAPDH"]), None)),
            collection
        );
        let call = json!({"type": "object", "properties": {"collection": collection}});
        let named = copying(&call, from(&spans(&["complexes"]), None));
        assert_eq!(named["required"], json!(["collection"]));
        assert!(
            copying(&call, from(&spans(&["GAPDH"]), None))
                .get("required")
                .is_none()
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
