//! The backends: the embedded GGUF model on its real weights and on a tiny seeded llama, the OpenAI-compatible backend
//! against a loopback server speaking the real protocol, scripted models.

// Test helpers live outside `#[test]` functions, where clippy's test allowance does not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod embedded;
mod openai;
mod scripted;
mod tiny;
