//! End-to-end tests of the `cellwright` binary, and the architecture test.

// Test helpers live outside `#[test]` functions, where clippy's test allowance does not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod bad_input;
mod crash;
mod data;
mod embed;
mod eval;
mod grn;
mod loops;
mod perturb;
mod run;
mod serve;
mod simulate;
mod support;
mod tools;
