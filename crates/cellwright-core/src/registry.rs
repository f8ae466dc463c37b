//! The tool registry: unique names, cached specs, schema validation with JSON paths.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::context::ToolCtx;
use crate::error::{ArgIssue, ToolError};
use crate::tool::{DynTool, Effects, Tool, ToolSpec};

/// How many schema violations are reported for one call; more only confuse a small model.
const MAX_ISSUES: usize = 5;

/// Why a tool could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("a tool named `{0}` is already registered")]
    Duplicate(String),
    #[error("tool name `{name}` is not valid: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("the argument schema of `{name}` does not compile: {message}")]
    BadSchema { name: String, message: String },
}

struct Entry {
    tool: Arc<dyn DynTool>,
    spec: ToolSpec,
    validator: jsonschema::Validator,
}

/// The tools an agent (or a script) may call, in registration order.
#[derive(Default)]
pub struct ToolRegistry {
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

impl fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl ToolRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a typed tool.
    pub fn register<T: Tool>(&mut self, tool: T) -> Result<&mut Self, RegistryError> {
        self.register_dyn(Arc::new(tool))
    }

    /// Registers an erased tool (for tools built at run time).
    pub fn register_dyn(&mut self, tool: Arc<dyn DynTool>) -> Result<&mut Self, RegistryError> {
        let spec = tool.spec();
        check_name(&spec.name)?;
        if self.by_name.contains_key(&spec.name) {
            return Err(RegistryError::Duplicate(spec.name));
        }
        let validator =
            jsonschema::validator_for(&spec.parameters).map_err(|e| RegistryError::BadSchema {
                name: spec.name.clone(),
                message: e.to_string(),
            })?;
        self.by_name.insert(spec.name.clone(), self.entries.len());
        self.entries.push(Entry {
            tool,
            spec,
            validator,
        });
        Ok(self)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Specs in registration order.
    pub fn specs(&self) -> impl Iterator<Item = &ToolSpec> {
        self.entries.iter().map(|e| &e.spec)
    }

    pub fn spec(&self, name: &str) -> Option<&ToolSpec> {
        self.entry(name).map(|e| &e.spec)
    }

    pub fn effects(&self, name: &str) -> Option<Effects> {
        self.spec(name).map(|s| s.effects)
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    fn lookup(&self, name: &str) -> Result<&Entry, ToolError> {
        self.entry(name).ok_or_else(|| ToolError::NotFound {
            what: "tool".into(),
            name: name.into(),
            suggestions: self.suggest(name),
        })
    }

    /// Registered names close to `name`, best first.
    pub fn suggest(&self, name: &str) -> Vec<String> {
        let mut scored: Vec<(f64, &str)> = self
            .entries
            .iter()
            .map(|e| {
                (
                    strsim::jaro_winkler(name, &e.spec.name),
                    e.spec.name.as_str(),
                )
            })
            .filter(|(score, _)| *score >= 0.75)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        scored
            .into_iter()
            .take(3)
            .map(|(_, n)| n.to_owned())
            .collect()
    }

    /// Parses the argument text a model wrote. An empty string means `{}`.
    pub fn parse_arguments(&self, name: &str, raw: &str) -> Result<Value, ToolError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_str(raw).map_err(|e| ToolError::InvalidArgs {
            tool: name.to_owned(),
            issues: vec![ArgIssue {
                path: String::new(),
                message: format!("not valid JSON ({e})"),
            }],
        })
    }

    /// Checks `args` against the tool's schema; every issue names its JSON pointer.
    pub fn validate(&self, name: &str, args: &Value) -> Result<(), ToolError> {
        let entry = self.lookup(name)?;
        let issues: Vec<ArgIssue> = entry
            .validator
            .iter_errors(args)
            .take(MAX_ISSUES)
            .map(|e| ArgIssue {
                path: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect();
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ToolError::InvalidArgs {
                tool: name.to_owned(),
                issues,
            })
        }
    }

    /// Validates and runs one call.
    pub async fn call(&self, ctx: &ToolCtx, name: &str, args: Value) -> Result<Value, ToolError> {
        self.validate(name, &args)?;
        let tool = Arc::clone(&self.lookup(name)?.tool);
        tool.call_json(ctx, args).await
    }
}

fn check_name(name: &str) -> Result<(), RegistryError> {
    let invalid = |reason| {
        Err(RegistryError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 64 {
        return invalid("must be 1 to 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return invalid("use lowercase letters, digits and `_` (verb_noun)");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) || !name.contains('_') {
        return invalid("use the verb_noun form, e.g. `infer_grn`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // reason: fields exist for the schema under test
    struct PanelArgs {
        genes: Vec<Gene>,
        #[schemars(range(min = 1, max = 100))]
        top: u32,
        #[serde(default)]
        mode: Mode,
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)] // reason: fields exist for the schema under test
    struct Gene {
        #[schemars(length(min = 1))]
        symbol: String,
        weight: f64,
    }

    #[derive(Deserialize, JsonSchema, Default)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        #[default]
        Knockout,
        Overexpression,
    }

    #[derive(Serialize, JsonSchema)]
    struct Out {
        n: usize,
    }

    struct Panel;

    impl Tool for Panel {
        const NAME: &'static str = "score_panel";
        type Args = PanelArgs;
        type Output = Out;

        fn description(&self) -> String {
            "Scores a gene panel.".into()
        }

        async fn call(&self, _ctx: &ToolCtx, args: PanelArgs) -> Result<Out, ToolError> {
            Ok(Out {
                n: args.genes.len(),
            })
        }
    }

    struct Named(&'static str);

    impl DynTool for Named {
        fn spec(&self) -> ToolSpec {
            ToolSpec {
                name: self.0.into(),
                description: String::new(),
                parameters: json!({"type": "object"}),
                output: json!({}),
                effects: Effects::Pure,
                answer: None,
            }
        }

        fn call_json<'a>(
            &'a self,
            _ctx: &'a ToolCtx,
            args: Value,
        ) -> futures::future::BoxFuture<'a, Result<Value, ToolError>> {
            Box::pin(async move { Ok(args) })
        }
    }

    #[test]
    fn arguments_are_validated_with_json_pointers() {
        let mut registry = ToolRegistry::new();
        registry.register(Panel).unwrap();
        let ok = json!({"genes": [{"symbol": "TP53", "weight": 1.0}], "top": 5});
        assert_eq!(registry.validate("score_panel", &ok), Ok(()));
        // (arguments, expected JSON pointers of the issues)
        let cases = [
            (json!({"genes": [], "top": 0}), vec!["/top"]),
            (
                json!({"genes": [{"symbol": "", "weight": 1}], "top": 5}),
                vec!["/genes/0/symbol"],
            ),
            (
                json!({"genes": [{"symbol": "A", "weight": "x"}, {"weight": 1}], "top": 5}),
                vec!["/genes/0/weight", "/genes/1"],
            ),
            (
                json!({"genes": [], "top": 5, "mode": "silence"}),
                vec!["/mode"],
            ),
            (json!({"genes": [], "top": 5, "extra": true}), vec![""]),
            (json!({"top": 5}), vec![""]),
            (json!([1, 2]), vec![""]),
        ];
        for (args, paths) in cases {
            let Err(ToolError::InvalidArgs { tool, issues }) =
                registry.validate("score_panel", &args)
            else {
                panic!("{args} should be invalid");
            };
            assert_eq!(tool, "score_panel");
            let got: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
            assert_eq!(got, paths, "{args}: {issues:?}");
        }
    }

    #[test]
    fn names_are_unique_and_verb_noun() {
        let mut registry = ToolRegistry::new();
        registry.register(Panel).unwrap();
        assert_eq!(
            registry.register(Panel).unwrap_err(),
            RegistryError::Duplicate("score_panel".into())
        );
        for bad in [
            "",
            "Score_Panel",
            "score",
            "score-panel",
            "1_score",
            &"a_".repeat(40),
        ] {
            let err = registry
                .register_dyn(Arc::new(Named(Box::leak(bad.to_owned().into_boxed_str()))))
                .unwrap_err();
            assert!(
                matches!(err, RegistryError::InvalidName { .. }),
                "{bad}: {err}"
            );
        }
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn unknown_tools_suggest_close_names() {
        let mut registry = ToolRegistry::new();
        registry.register(Panel).unwrap();
        let Err(ToolError::NotFound { suggestions, .. }) =
            registry.validate("score_panels", &json!({}))
        else {
            panic!()
        };
        assert_eq!(suggestions, ["score_panel"]);
        assert!(registry.suggest("translate_dna").is_empty());
    }

    #[test]
    fn schemas_are_inlined_and_snapshotted() {
        let spec = DynTool::spec(&Panel);
        assert!(!spec.parameters.to_string().contains("$ref"));
        // Key order depends on serde_json's `preserve_order`, which other crates may switch on.
        insta::with_settings!({ sort_maps => true }, {
            insta::assert_json_snapshot!("score_panel_parameters", spec.parameters);
        });
    }

    #[test]
    fn a_panicking_tool_is_a_failure_not_a_crash() {
        struct Boom;
        impl Tool for Boom {
            const NAME: &'static str = "explode_now";
            type Args = serde_json::Value;
            type Output = Out;
            fn description(&self) -> String {
                String::new()
            }
            async fn call(&self, _ctx: &ToolCtx, _args: Value) -> Result<Out, ToolError> {
                panic!("kaboom")
            }
        }
        let mut registry = ToolRegistry::new();
        registry.register(Boom).unwrap();
        let err = futures::executor::block_on(registry.call(
            &ToolCtx::detached(0),
            "explode_now",
            json!({}),
        ))
        .unwrap_err();
        assert_eq!(err, ToolError::failed("the tool panicked: kaboom"));
    }
}
