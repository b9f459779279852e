//! Refunds as a saga (brief §5): a refund of a receipt the register has not fiscalised yet
//! cannot be fiscalised before it, so the request is kept (`refund_saga`) and answered 409 with
//! a retry delay; as soon as the pipeline records the original as fiscalised the saga makes the
//! refund itself, under the client's own `Idempotency-Key`, so the client's retry gets the
//! refund's answer and a refund is never made twice.

use crdt_model::receipt::{ItemDraft, PaymentDraft, ReceiptDraft, ReceiptKind};
use crdt_model::{Receipt, ReceiptId};
use till_api::RefundRequest;

use super::error::NodeError;
use super::shift::{replay, IdempotencyRequest, Recorded, Shifts};
use crate::store::{OutboxStage, RefundSaga, SagaState, WriteBatch};
use crate::time::now_ms;

/// Seconds a client is told to wait before retrying a refund whose original is not fiscalised.
pub const REFUND_RETRY_SECONDS: u64 = 5;
/// Most pending sagas looked at after one fiscalisation.
const SAGAS_PER_ROUND: usize = 100;

/// What a refund request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The refund receipt is durable (or this is the stored answer of an earlier request).
    Done(Recorded),
    /// The original is not fiscalised yet: kept, retried automatically.
    Pending {
        /// When to ask again.
        retry_after_seconds: u64,
    },
}

/// The refund receipt's draft of `body` for `original`.
fn refund_draft(body: RefundRequest, original: &Receipt) -> Result<ReceiptDraft, NodeError> {
    let (items, payments) = match (body.items, body.payments) {
        (None, None) => (
            original
                .lines
                .iter()
                .map(|line| ItemDraft {
                    sku: line.sku.clone(),
                    name: line.name.clone(),
                    qty: line.qty,
                    price: line.price,
                    vat: line.vat,
                    discount: Some(line.discount),
                    payment_method: Some(line.payment_method),
                    payment_object: Some(line.payment_object),
                })
                .collect(),
            original
                .payments
                .iter()
                .map(|payment| PaymentDraft {
                    method: payment.method,
                    amount: payment.amount,
                })
                .collect(),
        ),
        (Some(items), Some(payments)) => (items, payments),
        (None, Some(_)) => return Err(NodeError::RefundField("items")),
        (Some(_), None) => return Err(NodeError::RefundField("payments")),
    };
    Ok(ReceiptDraft {
        pos_id: body.pos_id.unwrap_or_else(|| original.pos_id.clone()),
        kind: ReceiptKind::Refund,
        items,
        payments,
        discount: None,
        buyer_contact: body.buyer_contact,
        refund_of: Some(original.id),
    })
}

impl Shifts<'_> {
    /// Refunds (part of) a sale of this till; see the module doc.
    pub fn refund(
        &mut self,
        body: RefundRequest,
        idem: &IdempotencyRequest,
    ) -> Result<RefundOutcome, NodeError> {
        if let Some(answer) = replay(self.core, Some(idem))? {
            return Ok(RefundOutcome::Done(answer));
        }
        self.core.ensure_writable()?;
        let original_id = body.original_receipt_id;
        let original = self
            .find_receipt(original_id)
            .ok_or(NodeError::OriginalNotFound(original_id))?;
        if original.kind != ReceiptKind::Sale {
            return Err(NodeError::NotRefundable(original_id));
        }
        let saga = self.core.store.refund_saga(&idem.key)?;
        if let Some(saga) = &saga {
            if saga.request_sha256 != idem.request_sha256 {
                return Err(NodeError::IdempotencyConflict);
            }
        }
        if !self.is_fiscalised(original_id)? {
            if saga.is_none() {
                let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
                let request = serde_json::to_vec(&body)
                    .map_err(|e| NodeError::encode("a refund request", &e))?;
                let mut batch = WriteBatch::new();
                batch.put_refund_saga(RefundSaga {
                    idem_key: idem.key.clone(),
                    request_sha256: idem.request_sha256,
                    original_receipt_id: original_id.to_string(),
                    request,
                    state: SagaState::Pending,
                    attempts: 0,
                    last_error: None,
                    created_at_ms: now,
                    updated_at_ms: now,
                });
                self.core.store.commit(batch)?;
                tracing::info!(original = %original_id, "refund waits for its original");
            }
            return Ok(RefundOutcome::Pending {
                retry_after_seconds: REFUND_RETRY_SECONDS,
            });
        }
        let draft = refund_draft(body, &original)?;
        let mut also = WriteBatch::new();
        if let Some(saga) = saga {
            let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
            also.update_refund_saga(saga.idem_key, SagaState::Done, saga.attempts, None, now);
        }
        self.sell_with(draft, Some(idem), also)
            .map(RefundOutcome::Done)
    }

    /// Whether the register has made the document of receipt `id`. A receipt with no outbox
    /// row was made before a register was attached or purged after acknowledgement.
    fn is_fiscalised(&self, id: ReceiptId) -> Result<bool, NodeError> {
        if !self.fiscal.enabled {
            return Ok(true);
        }
        Ok(self
            .core
            .store
            .outbox_entry(&id.to_string())?
            .is_none_or(|row| {
                matches!(
                    row.stage,
                    OutboxStage::Fiscalised | OutboxStage::Acknowledged
                )
            }))
    }

    /// Runs the sagas waiting for `original` (just fiscalised). A saga that cannot run yet (no
    /// open session, buffer full) stays pending with its error, for the next fiscalisation or
    /// the client's retry.
    pub(super) fn run_refund_sagas(&mut self, original: &str) -> Result<(), NodeError> {
        let sagas = self.core.store.refund_sagas_pending(SAGAS_PER_ROUND)?;
        for saga in sagas
            .into_iter()
            .filter(|saga| saga.original_receipt_id == original)
        {
            let idem = IdempotencyRequest {
                key: saga.idem_key.clone(),
                request_sha256: saga.request_sha256,
            };
            let result = serde_json::from_slice::<RefundRequest>(&saga.request)
                .map_err(|error| NodeError::RefundStored(error.to_string()))
                .and_then(|body| self.refund(body, &idem));
            match result {
                Ok(RefundOutcome::Done(_)) => {
                    tracing::info!(key = %saga.idem_key, %original, "pending refund made")
                }
                Ok(RefundOutcome::Pending { .. }) => {}
                Err(error) => {
                    let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
                    let mut batch = WriteBatch::new();
                    batch.update_refund_saga(
                        saga.idem_key.clone(),
                        SagaState::Pending,
                        saga.attempts.saturating_add(1),
                        Some(error.to_string()),
                        now,
                    );
                    self.core.store.commit(batch)?;
                    tracing::warn!(key = %saga.idem_key, %error, "pending refund cannot run yet");
                }
            }
        }
        Ok(())
    }
}
