//! The OpenAI-compatible backend against a loopback server speaking the real protocol.

// Test helpers live outside `#[test]` functions, where clippy's test allowance does not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod openai;
mod scripted;
