//! Runtime tests against scripted models, real tools and a real SQLite store.

// Test helpers live outside `#[test]` functions, where clippy's test allowance does not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod budgets;
mod calls;
mod resume;
