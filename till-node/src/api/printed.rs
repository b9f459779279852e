//! The receipt answer upgraded to `printed`: with a register attached, a sale's handler waits
//! (up to `--print-wait-ms`) for the pipeline to record the fiscal document and then answers
//! `{"status": "printed", "receipt_id", "fiscal_doc"}`; otherwise the stored `buffered`
//! answer goes out unchanged — the sale is durable either way and will be fiscalised.

use std::time::Duration;

use till_api::session::{ReceiptAnswer, ReceiptStatus};
use tokio::time::Instant;

use super::{Answer, AppState};
use crate::store::OutboxStage;

/// Waits for the register and rewrites `answer` when the document is there.
pub async fn upgrade(state: &AppState, answer: Answer) -> Answer {
    let Some(link) = state.fiscal() else {
        return answer;
    };
    if answer.status != axum::http::StatusCode::OK {
        return answer;
    }
    let Ok(ReceiptAnswer { receipt_id, .. }) =
        serde_json::from_slice::<ReceiptAnswer>(&answer.body)
    else {
        return answer;
    };
    let deadline = Instant::now() + state.print_wait();
    let mut progress = link.progress.clone();
    loop {
        progress.mark_unchanged();
        let looked = state
            .node()
            .call(move |node| node.fiscal().fiscal_state(receipt_id))
            .await;
        if let Ok(Ok(Some((stage, Some(stamp))))) = looked {
            if matches!(stage, OutboxStage::Fiscalised | OutboxStage::Acknowledged) {
                let body = ReceiptAnswer {
                    status: ReceiptStatus::Printed,
                    receipt_id,
                    fiscal_doc: Some(stamp),
                };
                return match serde_json::to_vec(&body) {
                    Ok(body) => Answer { body, ..answer },
                    Err(error) => {
                        // The stored `buffered` answer is still true: send it.
                        tracing::error!(%error, "could not encode the printed answer");
                        answer
                    }
                };
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return answer;
        }
        // Woken by the next persisted transition, or re-checked after a short while.
        let _ =
            tokio::time::timeout(left.min(Duration::from_millis(500)), progress.changed()).await;
    }
}
