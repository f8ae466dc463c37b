//! Token generation: sampling with a seed, stop tokens, and grammar masks.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use cellwright_core::{CancelToken, FinishReason, ModelError};
use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use tokenizers::Tokenizer;

use super::gguf::{GgufModel, token_bytes};

/// The grammar engine's view of our vocabulary.
struct Vocabulary {
    trie: TokTrie,
    tokenizer: Tokenizer,
}

impl TokenizerEnv for Vocabulary {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.tokenize_with_greedy_fallback(s, |text| {
            self.tokenizer
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default()
        })
    }
}

/// How to pick each token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 picks the most likely token (greedy).
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
    /// Above 1, tokens among the last [`REPEAT_WINDOW`] generated are made less likely (small
    /// models otherwise fall into loops). 1 turns it off.
    pub repeat_penalty: f32,
}

/// How many recent tokens the repeat penalty looks at.
pub const REPEAT_WINDOW: usize = 64;

impl SamplingParams {
    fn sampling(&self) -> Sampling {
        if self.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            Sampling::TopP {
                p: self.top_p,
                temperature: self.temperature,
            }
        }
    }
}

/// What one generation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub text: String,
    pub prompt_tokens: usize,
    pub tokens: Vec<u32>,
    pub finish: FinishReason,
    /// Time spent reading the prompt (only its new part, when a previous prompt is reused).
    pub prefill: std::time::Duration,
    /// How many prompt tokens were actually read (the rest came from the reused state).
    pub prefill_tokens: usize,
    /// Time spent producing the output tokens after the first.
    pub decode: std::time::Duration,
}

/// `log softmax(logits)[token]`.
fn log_softmax_at(logits: &[f32], token: u32) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    logits
        .get(token as usize)
        .map_or(f32::NEG_INFINITY, |l| l - max - sum.ln())
}

fn penalise_repeats(logits: &mut [f32], tokens: &[u32], penalty: f32) {
    let recent = &tokens[tokens.len().saturating_sub(REPEAT_WINDOW)..];
    let mut seen = std::collections::HashSet::with_capacity(recent.len());
    for &t in recent {
        if seen.insert(t)
            && let Some(logit) = logits.get_mut(t as usize)
        {
            *logit = if *logit >= 0.0 {
                *logit / penalty
            } else {
                *logit * penalty
            };
        }
    }
}

/// A prompt read into the KV cache.
struct Prefix {
    tokens: Vec<u32>,
    state: candle_transformers::models::quantized_llama::ModelWeights,
    /// The logits of the token after it.
    logits: Vec<f32>,
}

/// A loaded model and the grammar machinery built once for its vocabulary.
pub struct Engine {
    pub model: GgufModel,
    factory: Arc<ParserFactory>,
    /// The last prompt and the model state (KV cache) right after reading it: a next prompt
    /// that extends it (the next turn of the same conversation) reads only what is new.
    prefix: Option<Prefix>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(model: GgufModel) -> Result<Self, String> {
        let words = token_bytes(&model.tokens, &model.token_types);
        // The grammar allows `tok_eos` once its output is complete; it is one of our stops.
        let mut info = TokRxInfo::new(words.len() as u32, model.specials.eos);
        info.tok_bos = model.specials.bos;
        let env: TokEnv = Arc::new(Vocabulary {
            trie: TokTrie::from(&info, &words),
            tokenizer: model.tokenizer.clone(),
        });
        let mut factory = ParserFactory::new_simple(&env).map_err(|e| e.to_string())?;
        factory.quiet();
        Ok(Self {
            model,
            factory: Arc::new(factory),
            prefix: None,
        })
    }

    /// Runs the model once on a few tokens, so the first request does not pay for first-use
    /// work (weight repacking, allocations).
    pub fn warm_up(&mut self) -> Result<(), ModelError> {
        let tokens: Vec<u32> = (0..4).collect();
        self.model
            .forward(&tokens, 0)
            .map_err(|e| ModelError::Backend {
                message: format!("the model failed its warm-up: {e}"),
            })?;
        Ok(())
    }

    /// A matcher that admits exactly the strings of `grammar`.
    pub fn matcher(&self, grammar: TopLevelGrammar) -> Result<Matcher, ModelError> {
        let parser = self.factory.create_parser(grammar);
        let matcher = Matcher::new(parser);
        if let Some(error) = matcher.get_error() {
            return Err(ModelError::Config {
                message: format!("cannot build the output grammar: {error}"),
            });
        }
        Ok(matcher)
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.model
            .tokenizer
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Backend {
                message: format!("cannot tokenize the prompt: {e}"),
            })
    }

    /// How many leading tokens of `prompt` the saved state already holds.
    fn reusable(&self, prompt: &[u32]) -> usize {
        match &self.prefix {
            Some(p) if prompt.starts_with(&p.tokens) => p.tokens.len(),
            _ => 0,
        }
    }

    /// Forgets the saved prompt state, so the next prompt is read whole.
    pub fn forget_prefix(&mut self) {
        self.prefix = None;
    }

    /// Reads `prompt` into the KV cache and returns the logits of the next token, reusing the
    /// state after the previous prompt when this one extends it.
    pub fn prefill(&mut self, prompt: &[u32]) -> candle_core::Result<Vec<f32>> {
        let start = self.reusable(prompt);
        if start > 0
            && let Some(saved) = &self.prefix
        {
            self.model.weights = saved.state.clone();
            if start == prompt.len() {
                return Ok(saved.logits.clone());
            }
        }
        let logits = self.model.forward(&prompt[start..], start)?;
        // Tensors are shared, not copied: the snapshot costs only the KV cache's handles.
        self.prefix = Some(Prefix {
            tokens: prompt.to_vec(),
            state: self.model.weights.clone(),
            logits: logits.clone(),
        });
        Ok(logits)
    }

    /// The log-probability of each continuation's tokens after `prompt`: how likely the
    /// model finds each of a few given answers. The prompt is read once (or not at all, when
    /// it is the saved one), and stays saved for a generation after it.
    pub fn score_continuations(
        &mut self,
        prompt: &[u32],
        continuations: &[Vec<u32>],
    ) -> Result<Vec<f32>, ModelError> {
        let failed = |e: candle_core::Error| ModelError::Backend {
            message: format!("scoring failed: {e}"),
        };
        let longest = continuations.iter().map(Vec::len).max().unwrap_or(0);
        if prompt.len() + longest >= self.model.context_length {
            return Err(ModelError::ContextLength {
                tokens: prompt.len() + longest,
                limit: self.model.context_length,
            });
        }
        let first = self.prefill(prompt).map_err(failed)?;
        let state = self.model.weights.clone();
        let mut scores = Vec::with_capacity(continuations.len());
        for continuation in continuations {
            self.model.weights = state.clone();
            let mut logits = first.clone();
            let mut total = 0.0f32;
            for (i, &token) in continuation.iter().enumerate() {
                total += log_softmax_at(&logits, token);
                if i + 1 < continuation.len() {
                    logits = self
                        .model
                        .forward(&[token], prompt.len() + i)
                        .map_err(failed)?;
                }
            }
            scores.push(total);
        }
        self.model.weights = state;
        Ok(scores)
    }

    /// Hands `emit` the text the tokens add after the first `emitted` bytes, once it is whole
    /// UTF-8 (a character may span tokens); returns the new count of bytes emitted.
    fn emit_new_text(&self, tokens: &[u32], emitted: usize, emit: &mut dyn FnMut(&str)) -> usize {
        match self.model.tokenizer.decode(tokens, true) {
            Ok(text) if !text.ends_with('\u{FFFD}') && text.len() > emitted => {
                if let Some(new) = text.get(emitted..) {
                    emit(new);
                }
                text.len()
            }
            _ => emitted,
        }
    }

    /// Generates after `prompt` until a stop token, the grammar's end, `max_tokens`, the
    /// context limit or cancellation, handing `on_text` the text as it grows.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        max_tokens: usize,
        params: SamplingParams,
        mut grammar: Option<&mut Matcher>,
        cancel: &CancelToken,
        mut on_text: Option<&mut dyn FnMut(&str)>,
    ) -> Result<Generated, ModelError> {
        let limit = self.model.context_length;
        if prompt.len() >= limit {
            return Err(ModelError::ContextLength {
                tokens: prompt.len(),
                limit,
            });
        }
        let max_tokens = max_tokens.min(limit - prompt.len());
        let failed = |e: candle_core::Error| ModelError::Backend {
            message: format!("generation failed: {e}"),
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, params.sampling());
        let started = std::time::Instant::now();
        let reused = self.reusable(prompt);
        let prefill_tokens = prompt.len() - reused;
        let mut logits = self.prefill(prompt).map_err(failed)?;
        let prefilled = started.elapsed();
        let (mut masking, mut forward) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        let mut tokens = Vec::new();
        let mut emitted = 0;
        let mut finish = FinishReason::Length;
        while tokens.len() < max_tokens {
            if cancel.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            let step = std::time::Instant::now();
            if let Some(matcher) = grammar.as_deref_mut() {
                let mask = matcher.compute_mask().map_err(|e| ModelError::Backend {
                    message: format!("the output grammar failed: {e}"),
                })?;
                for (i, logit) in logits.iter_mut().enumerate() {
                    if !mask.is_allowed(i as u32) {
                        *logit = f32::NEG_INFINITY;
                    }
                }
            }
            masking += step.elapsed();
            if params.repeat_penalty != 1.0 {
                penalise_repeats(&mut logits, &tokens, params.repeat_penalty);
            }
            let next = sampler
                .sample(&Tensor::new(logits.as_slice(), &Device::Cpu).map_err(failed)?)
                .map_err(failed)?;
            if self.model.specials.stop.contains(&next) {
                finish = FinishReason::Stop;
                break;
            }
            tokens.push(next);
            if let Some(emit) = on_text.as_deref_mut() {
                emitted = self.emit_new_text(&tokens, emitted, emit);
            }
            if let Some(matcher) = grammar.as_deref_mut() {
                matcher
                    .consume_token(next)
                    .map_err(|e| ModelError::Backend {
                        message: format!("the output grammar failed: {e}"),
                    })?;
                if matcher.is_stopped() {
                    finish = FinishReason::Stop;
                    break;
                }
            }
            let step = std::time::Instant::now();
            logits = self
                .model
                .forward(&[next], prompt.len() + tokens.len() - 1)
                .map_err(failed)?;
            forward += step.elapsed();
        }
        tracing::debug!(
            prompt_tokens = prompt.len(),
            output_tokens = tokens.len(),
            ?prefilled,
            ?masking,
            ?forward,
            "generated"
        );
        let text = self
            .model
            .tokenizer
            .decode(&tokens, true)
            .map_err(|e| ModelError::Backend {
                message: format!("cannot decode the output: {e}"),
            })?;
        Ok(Generated {
            text,
            prompt_tokens: prompt.len(),
            tokens,
            finish,
            prefill: prefilled,
            prefill_tokens,
            decode: forward,
        })
    }
}
