//! What a tool may use from its surroundings: run id, cancellation, progress, artifacts,
//! a seed and a clock. Tools read no globals, wall time or randomness directly.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cancel::CancelToken;
use crate::error::StoreError;
use crate::ids::{ArtifactId, CallId, RunId};

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// Source of time, injected so runs and tests can be reproduced.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> UnixMillis;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> UnixMillis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// Receives progress of long work: `done` of `total` units (if known), with a short message.
pub trait Progress: Send + Sync {
    fn report(&self, done: u64, total: Option<u64>, message: &str);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _done: u64, _total: Option<u64>, _message: &str) {}
}

/// A large value kept in the store; the model sees only `summary` and the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ArtifactRef {
    pub id: ArtifactId,
    /// IANA media type, e.g. `application/json`, `text/tab-separated-values`.
    pub media_type: String,
    pub bytes: u64,
    /// One or two sentences for the model: what it is, its shape.
    pub summary: String,
}

/// Where tools put large outputs.
pub trait ArtifactStore: Send + Sync {
    fn put<'a>(
        &'a self,
        run: &'a RunId,
        call: Option<CallId>,
        media_type: &'a str,
        summary: &'a str,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<ArtifactRef, StoreError>>;

    fn get<'a>(&'a self, id: &'a ArtifactId) -> BoxFuture<'a, Result<Vec<u8>, StoreError>>;
}

/// Artifacts kept in memory, for tools called outside a stored run.
#[derive(Debug, Default)]
pub struct MemoryArtifacts {
    items: Mutex<HashMap<String, Vec<u8>>>,
}

impl ArtifactStore for MemoryArtifacts {
    fn put<'a>(
        &'a self,
        _run: &'a RunId,
        _call: Option<CallId>,
        media_type: &'a str,
        summary: &'a str,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<ArtifactRef, StoreError>> {
        Box::pin(async move {
            let mut items = self
                .items
                .lock()
                .map_err(|_| StoreError::Database("artifact map poisoned".into()))?;
            let id = ArtifactId(format!("mem-{}", items.len() + 1));
            let bytes = data.len() as u64;
            items.insert(id.0.clone(), data);
            Ok(ArtifactRef {
                id,
                media_type: media_type.to_owned(),
                bytes,
                summary: summary.to_owned(),
            })
        })
    }

    fn get<'a>(&'a self, id: &'a ArtifactId) -> BoxFuture<'a, Result<Vec<u8>, StoreError>> {
        Box::pin(async move {
            let items = self
                .items
                .lock()
                .map_err(|_| StoreError::Database("artifact map poisoned".into()))?;
            items
                .get(&id.0)
                .cloned()
                .ok_or_else(|| StoreError::ArtifactNotFound(id.0.clone()))
        })
    }
}

/// Everything a tool call may touch besides its arguments.
#[derive(Clone)]
pub struct ToolCtx {
    pub run_id: RunId,
    pub call_id: CallId,
    pub cancel: CancelToken,
    pub progress: Arc<dyn Progress>,
    pub artifacts: Arc<dyn ArtifactStore>,
    /// Seed for any randomness of this call, derived from the run's seed and the call number.
    pub seed: u64,
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for ToolCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolCtx")
            .field("run_id", &self.run_id)
            .field("call_id", &self.call_id)
            .field("seed", &self.seed)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl ToolCtx {
    /// Stores `data` as an artifact of this call; a storage failure is a retryable tool error
    /// naming `what` was being stored.
    pub async fn store_artifact(
        &self,
        what: &str,
        media_type: &str,
        summary: &str,
        data: Vec<u8>,
    ) -> Result<ArtifactRef, crate::ToolError> {
        self.artifacts
            .put(&self.run_id, Some(self.call_id), media_type, summary, data)
            .await
            .map_err(|e| crate::ToolError::Failed {
                message: format!("storing the {what}: {e}"),
                retryable: true,
            })
    }

    /// A context for a call made outside any agent run (`cellwright tools call`, tests):
    /// in-memory artifacts, the system clock, no progress display.
    pub fn detached(seed: u64) -> Self {
        Self {
            run_id: RunId::new("detached"),
            call_id: CallId(1),
            cancel: CancelToken::new(),
            progress: Arc::new(NoProgress),
            artifacts: Arc::new(MemoryArtifacts::default()),
            seed,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Derives the seed of one call from the run's seed, so concurrent calls stay reproducible.
pub fn call_seed(run_seed: u64, call: CallId) -> u64 {
    // SplitMix64 finaliser over the pair: cheap, well mixed, stable across versions.
    let mut z = run_seed ^ (u64::from(call.0)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
