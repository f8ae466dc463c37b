//! The tool contract: a typed [`Tool`] for authors, an erased [`DynTool`] for the registry.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use futures::future::BoxFuture;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::ToolCtx;
use crate::error::{ArgIssue, ToolError};

/// What calling a tool does to the world; governs what resume may replay or repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effects {
    /// Output depends only on the arguments and the seed; no side effects.
    Pure,
    /// Side effects, but repeating the call leaves the world as one call would.
    Idempotent,
    /// Side effects that add up when repeated (writing a notebook entry, ordering an experiment).
    External,
}

/// A typed tool. Implement this; the registry does the JSON, the schema and the validation.
///
/// ```
/// use cellwright_core::{Tool, ToolCtx, ToolError};
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
///
/// struct GcContent;
///
/// #[derive(Deserialize, JsonSchema)]
/// struct Args {
///     /// DNA sequence (A, C, G, T).
///     sequence: String,
/// }
///
/// #[derive(Serialize, JsonSchema)]
/// struct Output {
///     gc_fraction: f64,
/// }
///
/// impl Tool for GcContent {
///     const NAME: &'static str = "gc_content";
///     type Args = Args;
///     type Output = Output;
///
///     fn description(&self) -> String {
///         "Fraction of G and C bases in a DNA sequence.".into()
///     }
///
///     async fn call(&self, _ctx: &ToolCtx, args: Args) -> Result<Output, ToolError> {
///         if args.sequence.is_empty() {
///             return Err(ToolError::failed("empty sequence"));
///         }
///         let gc = args.sequence.chars().filter(|c| matches!(c, 'G' | 'C' | 'g' | 'c')).count();
///         Ok(Output { gc_fraction: gc as f64 / args.sequence.len() as f64 })
///     }
/// }
/// ```
pub trait Tool: Send + Sync + 'static {
    /// `verb_noun`, unique in a registry: `infer_grn`, `predict_perturbation`.
    const NAME: &'static str;
    type Args: DeserializeOwned + JsonSchema + Send;
    type Output: Serialize + JsonSchema + Send;

    /// Exactly what the model reads about this tool (kept in `prompts/tools/<name>.md`).
    fn description(&self) -> String;

    /// How a model that composes its answer instead of writing it (the embedded one) states
    /// this tool's result: a minijinja template over `arguments` and `output`, one cited claim
    /// per line (kept in `prompts/answers/<name>.jinja`). `None`: every field of the output.
    fn answer_template(&self) -> Option<String> {
        None
    }

    fn effects(&self) -> Effects {
        Effects::Pure
    }

    fn call(
        &self,
        ctx: &ToolCtx,
        args: Self::Args,
    ) -> impl Future<Output = Result<Self::Output, ToolError>> + Send;
}

/// What the model and the operator see of a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object, self-contained (no `$ref`).
    pub parameters: Value,
    /// JSON Schema of the output.
    pub output: Value,
    pub effects: Effects,
    /// See [`Tool::answer_template`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

/// An object-safe tool: JSON in, JSON out. Every [`Tool`] is one.
pub trait DynTool: Send + Sync {
    fn spec(&self) -> ToolSpec;

    /// Parses `args`, runs the tool and serialises its output. A panic inside the tool
    /// becomes [`ToolError::Failed`].
    fn call_json<'a>(
        &'a self,
        ctx: &'a ToolCtx,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>>;
}

impl<T: Tool> DynTool for T {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: T::NAME.to_owned(),
            description: self.description(),
            parameters: schema_of::<T::Args>(),
            output: schema_of::<T::Output>(),
            effects: self.effects(),
            answer: self.answer_template(),
        }
    }

    fn call_json<'a>(
        &'a self,
        ctx: &'a ToolCtx,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let args: T::Args = parse_args(T::NAME, args)?;
            let output = AssertUnwindSafe(self.call(ctx, args))
                .catch_unwind()
                .await
                .map_err(|panic| {
                    ToolError::failed(format!("the tool panicked: {}", panic_message(&panic)))
                })??;
            serde_json::to_value(output)
                .map_err(|e| ToolError::failed(format!("could not serialise the output: {e}")))
        })
    }
}

/// Deserialises arguments, reporting the JSON pointer of the first value that does not fit.
pub fn parse_args<A: DeserializeOwned>(tool: &str, args: Value) -> Result<A, ToolError> {
    serde_path_to_error::deserialize(args).map_err(|err| {
        let path = pointer_from_serde_path(&err.path().to_string());
        ToolError::InvalidArgs {
            tool: tool.to_owned(),
            issues: vec![ArgIssue {
                path,
                message: err.inner().to_string(),
            }],
        }
    })
}

/// `genes[2].name` → `/genes/2/name`; `.` (the root) → ``.
fn pointer_from_serde_path(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    let mut out = String::new();
    for part in path.split('.') {
        let mut rest = part;
        let head_end = rest.find('[').unwrap_or(rest.len());
        let (head, tail) = rest.split_at(head_end);
        if !head.is_empty() {
            out.push('/');
            out.push_str(head);
        }
        rest = tail;
        while let Some(stripped) = rest.strip_prefix('[') {
            let close = stripped.find(']').unwrap_or(stripped.len());
            out.push('/');
            out.push_str(&stripped[..close]);
            rest = stripped.get(close + 1..).unwrap_or("");
        }
    }
    out
}

/// The JSON Schema of `T`, with every subschema inlined so small models and validators
/// need no `$ref` resolution.
pub fn schema_of<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut value = generator.into_root_schema_for::<T>().to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("$schema");
    }
    value
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::pointer_from_serde_path;

    #[test]
    fn serde_paths_become_json_pointers() {
        for (path, pointer) in [
            (".", ""),
            ("frame", "/frame"),
            ("genes[2]", "/genes/2"),
            ("a.b[0][1].c", "/a/b/0/1/c"),
        ] {
            assert_eq!(pointer_from_serde_path(path), pointer, "{path}");
        }
    }
}
