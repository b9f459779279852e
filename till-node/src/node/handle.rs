//! [`NodeHandle`]: the node behind its one mutex. Callers queue on an async mutex (waiting
//! costs no thread), and the holder runs its work on a blocking thread, so SQLite and Automerge
//! never stall the async runtime and writers are serialized.
//!
//! A call whose future is dropped (the HTTP client went away) after the work started still
//! completes it: the guard lives in the blocking task. The answer is lost, but a write is durable
//! and a retry with the same idempotency key gets it back.
//!
//! If a call panics, memory may no longer match the store: the node is marked broken (it
//! refuses writes from then on) before anyone else gets the lock.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::Node;

/// The node behind its one mutex; every call runs on a blocking thread.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    inner: Arc<Mutex<Node>>,
}

/// The blocking task running a node call panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("node task failed: {0}")]
pub struct NodeTaskError(String);

impl NodeHandle {
    /// Wraps a node.
    pub fn new(node: Node) -> NodeHandle {
        NodeHandle {
            inner: Arc::new(Mutex::new(node)),
        }
    }

    /// Runs `f` with the node locked, on a blocking thread.
    pub async fn call<R, F>(&self, f: F) -> Result<R, NodeTaskError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Node) -> R + Send + 'static,
    {
        let mut guard = Arc::clone(&self.inner).lock_owned().await;
        let task = tokio::task::spawn_blocking(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut guard)));
            if outcome.is_err() {
                guard.mark_broken("a node operation panicked");
            }
            outcome
        });
        match task.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_panic)) => Err(NodeTaskError("the node operation panicked".to_owned())),
            Err(error) => Err(NodeTaskError(error.to_string())),
        }
    }
}
