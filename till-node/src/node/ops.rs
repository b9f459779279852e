//! The till's writes: open a session, move cash, sell, close — each one durable commit — and
//! the reads the API serves from the replica.
//!
//! Every write may carry an [`IdempotencyRequest`]. The stored record holds the exact answer and
//! is committed in the same transaction as the change, so "the key is recorded" and "the change
//! is durable" are one fact. A replay is answered from the record before anything else is
//! checked (even on a till that stopped writing: the answer is already durable); the same key
//! with a different request is refused. Failed requests leave no record.

use crdt_model::commit_tag;
use crdt_model::ids::DocKey;
use crdt_model::receipt::{ReceiptDraft, ReceiptKind};
use crdt_model::session::{self, CashMovement, MovementKind, SessionHeader};
use crdt_model::{Kopecks, MovementId, Receipt, ReceiptId, SessionId};
use serde::Serialize;
use sync_engine::DocId;
use uuid::Uuid;

use super::fiscal::{close_job_id, job_entry};
use super::replica::LoadedDoc;
use super::views::{CloseRecord, MovementAck, SaleAck, SessionOpened, SessionSummary};
use super::{doc_id, CachedHeader, Node, NodeError};
use crate::store::{IdempotencyRecord, WriteBatch};
use crate::time::{now_ms, rfc3339_ms};
use fiscal::pipeline::FiscalJob;

/// The `Idempotency-Key` of a request and the SHA-256 of its canonical body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRequest {
    /// The client's key.
    pub key: String,
    /// SHA-256 of the canonical JSON body.
    pub request_sha256: [u8; 32],
}

/// An answer to a write: HTTP status and JSON body, possibly replayed from an earlier request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Vec<u8>,
    /// True when this answer was stored for an earlier request with the same key.
    pub replayed: bool,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own plain structs cannot fail; an empty object is a safe fallback.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

impl Node {
    /// The stored answer for `idem`, if this key was answered before with the same request.
    pub(super) fn replay(
        &self,
        idem: Option<&IdempotencyRequest>,
    ) -> Result<Option<Answer>, NodeError> {
        let Some(idem) = idem else { return Ok(None) };
        match self.store.idempotency(&idem.key)? {
            Some(record) if record.request_sha256 == idem.request_sha256 => Ok(Some(Answer {
                status: record.response_status,
                body: record.response_body,
                replayed: true,
            })),
            Some(_) => Err(NodeError::IdempotencyConflict),
            None => Ok(None),
        }
    }

    fn record(idem: Option<&IdempotencyRequest>, body: &[u8], now: u64) -> WriteBatch {
        let mut batch = WriteBatch::new();
        if let Some(idem) = idem {
            batch.put_idempotency(IdempotencyRecord {
                key: idem.key.clone(),
                request_sha256: idem.request_sha256,
                response_status: 200,
                response_body: body.to_vec(),
                created_at_ms: i64::try_from(now).unwrap_or(i64::MAX),
            });
        }
        batch
    }

    fn open_session_id(&self) -> Result<DocId, NodeError> {
        self.current_session.clone().ok_or(NodeError::NoOpenSession)
    }

    /// Opens a cash session. Refused while one is open.
    pub fn open_session(
        &mut self,
        cashier: String,
        opening_cash: Kopecks,
        idem: Option<&IdempotencyRequest>,
    ) -> Result<Answer, NodeError> {
        if let Some(answer) = self.replay(idem)? {
            return Ok(answer);
        }
        self.ensure_writable()?;
        if let Some(open) = &self.current_session {
            let session = match DocKey::parse(open.as_str()) {
                Ok(DocKey::Session { session, .. }) => session,
                _ => SessionId::new(Uuid::nil()),
            };
            return Err(NodeError::SessionAlreadyOpen(session));
        }
        let now = now_ms();
        // UUIDv7: time-ordered, which lets the sync policy decline long-retired sessions.
        let session_id = SessionId::new(Uuid::now_v7());
        let header = SessionHeader {
            session_id,
            store: self.identity.store.clone(),
            till: self.identity.till.clone(),
            cashier,
            opened_at: self.clock.now(now),
            opening_cash,
        };
        let id = doc_id(&header.doc_key())?;
        let mut loaded = LoadedDoc::empty(&self.identity.actor);
        session::open(&mut loaded.doc, &header)?;
        self.replica.insert(id.clone(), loaded);
        let body = encode(&SessionOpened {
            session_id,
            cashier: header.cashier.clone(),
            opened_at: rfc3339_ms(header.opened_at.physical_ms),
            opened_at_hlc: header.opened_at.clone(),
            opening_cash,
        });
        let extra = Self::record(idem, &body, now);
        self.commit_change(&id, commit_tag::session_open(session_id), now, extra)?;
        self.note_local_change(&id, now, false);
        self.current_session = Some(id);
        tracing::info!(session = %session_id, "cash session opened");
        Ok(Answer {
            status: 200,
            body,
            replayed: false,
        })
    }

    /// Records a cash-in or cash-out in the open session.
    pub fn cash_movement(
        &mut self,
        kind: MovementKind,
        amount: Kopecks,
        reason: String,
        idem: Option<&IdempotencyRequest>,
    ) -> Result<Answer, NodeError> {
        if let Some(answer) = self.replay(idem)? {
            return Ok(answer);
        }
        self.ensure_writable()?;
        let id = self.open_session_id()?;
        let now = now_ms();
        let movement = CashMovement {
            id: MovementId::new(Uuid::new_v4()),
            kind,
            amount,
            hlc: self.clock.now(now),
            reason,
        };
        let loaded = self.loaded_mut(&id)?;
        if let Err(error) = session::append_movement(&mut loaded.doc, &movement) {
            loaded.doc.rollback();
            return Err(error.into());
        }
        let cash_balance = session::read(&loaded.doc)?.cash_balance();
        let fiscal_job = self.fiscal_enabled.then_some(match kind {
            MovementKind::CashIn => FiscalJob::CashIn { amount },
            MovementKind::CashOut => FiscalJob::CashOut { amount },
        });
        let body = encode(&MovementAck {
            movement_id: movement.id,
            kind: match kind {
                MovementKind::CashIn => "in",
                MovementKind::CashOut => "out",
            },
            amount,
            cash_balance,
        });
        let mut extra = Self::record(idem, &body, now);
        if let Some(job) = fiscal_job {
            let entry = job_entry(movement.id.to_string(), &movement.hlc, &id, &job, now);
            extra.enqueue_outbox(entry);
        }
        self.commit_change(&id, commit_tag::cash(movement.id), now, extra)?;
        self.note_local_change(&id, now, false);
        Ok(Answer {
            status: 200,
            body,
            replayed: false,
        })
    }

    /// Sells (or refunds): validates the draft, appends the receipt and commits it durably.
    pub fn sell(
        &mut self,
        draft: ReceiptDraft,
        idem: Option<&IdempotencyRequest>,
    ) -> Result<Answer, NodeError> {
        self.sell_with(draft, idem, WriteBatch::new())
    }

    /// [`Node::sell`] with more operations committed in the same transaction.
    pub(super) fn sell_with(
        &mut self,
        draft: ReceiptDraft,
        idem: Option<&IdempotencyRequest>,
        also: WriteBatch,
    ) -> Result<Answer, NodeError> {
        if let Some(answer) = self.replay(idem)? {
            return Ok(answer);
        }
        self.ensure_writable()?;
        let id = self.open_session_id()?;
        self.check_buffer()?;
        if let (ReceiptKind::Refund, Some(original)) = (draft.kind, draft.refund_of) {
            if !self.holds_receipt(original) {
                return Err(NodeError::OriginalNotFound(original));
            }
        }
        let session_id = match DocKey::parse(id.as_str()) {
            Ok(DocKey::Session { session, .. }) => session,
            _ => return Err(NodeError::NoOpenSession),
        };
        let now = now_ms();
        let receipt_id = ReceiptId::new(Uuid::new_v4());
        let receipt = Receipt::from_draft(
            draft,
            receipt_id,
            self.identity.store.clone(),
            self.identity.till.clone(),
            session_id,
            self.clock.now(now),
        )
        .map_err(NodeError::InvalidReceipt)?;
        let (cashier, _) = self.session_header(&id)?;
        let loaded = self.loaded_mut(&id)?;
        if let Err(error) = session::append_receipt(&mut loaded.doc, &receipt) {
            loaded.doc.rollback();
            return Err(error.into());
        }
        let body = encode(&SaleAck {
            status: "buffered",
            receipt_id,
        });
        let mut extra = Self::record(idem, &body, now);
        for op in also.ops() {
            extra.push(op.clone());
        }
        if self.fiscal_enabled {
            let hlc = receipt.hlc.clone();
            let job = FiscalJob::Receipt {
                receipt: Box::new(receipt),
                cashier,
            };
            extra.enqueue_outbox(job_entry(receipt_id.to_string(), &hlc, &id, &job, now));
        }
        self.commit_change(&id, commit_tag::receipt(receipt_id), now, extra)?;
        self.note_local_change(&id, now, true);
        self.metrics.receipts_accepted_total.inc();
        Ok(Answer {
            status: 200,
            body,
            replayed: false,
        })
    }

    /// Closes the open session (Z) and compacts its document.
    pub fn close_session(
        &mut self,
        cashier: Option<String>,
        idem: Option<&IdempotencyRequest>,
    ) -> Result<Answer, NodeError> {
        if let Some(answer) = self.replay(idem)? {
            return Ok(answer);
        }
        self.ensure_writable()?;
        let id = self.open_session_id()?;
        let now = now_ms();
        let closed_at = self.clock.now(now);
        let loaded = self.loaded_mut(&id)?;
        let view = session::read(&loaded.doc)?;
        let cashier = cashier.unwrap_or_else(|| view.header.cashier.clone());
        let close = match session::close(&mut loaded.doc, &closed_at, &cashier) {
            Ok(close) => close,
            Err(error) => {
                loaded.doc.rollback();
                return Err(error.into());
            }
        };
        let body = encode(&CloseRecord::new(&view, &close));
        let mut extra = Self::record(idem, &body, now);
        let session_id = view.header.session_id;
        if self.fiscal_enabled {
            let job = FiscalJob::CloseShift {
                cashier: cashier.clone(),
            };
            let job_id = close_job_id(*session_id.as_uuid());
            extra.enqueue_outbox(job_entry(job_id, &closed_at, &id, &job, now));
        }
        self.commit_change(&id, commit_tag::session_close(session_id), now, extra)?;
        self.note_local_change(&id, now, false);
        self.current_session = None;
        self.maybe_compact(&id, true);
        tracing::info!(session = %session_id, "cash session closed");
        Ok(Answer {
            status: 200,
            body,
            replayed: false,
        })
    }

    /// The open session with its running totals.
    pub fn current_summary(&self) -> Result<SessionSummary, NodeError> {
        let id = self.open_session_id()?;
        let loaded = self.replica.get(&id).ok_or(NodeError::NoOpenSession)?;
        let view = session::read(&loaded.doc)?;
        Ok(SessionSummary::new(&view))
    }

    /// Every receipt of session `session_id` held by this till, in till order.
    pub fn session_receipts(&self, session_id: SessionId) -> Result<Vec<Receipt>, NodeError> {
        let key = DocKey::Session {
            store: self.identity.store.clone(),
            till: self.identity.till.clone(),
            session: session_id,
        };
        let id = doc_id(&key)?;
        let loaded = self
            .replica
            .get(&id)
            .ok_or_else(|| NodeError::SessionNotFound(session_id.to_string()))?;
        Ok(session::read(&loaded.doc)?.receipts)
    }

    /// Whether any session document of this till holds receipt `id`.
    fn holds_receipt(&self, id: ReceiptId) -> bool {
        self.find_receipt(id).is_some()
    }

    /// Receipt `id` from whichever session document of this till holds it.
    pub(super) fn find_receipt(&self, id: ReceiptId) -> Option<Receipt> {
        self.replica.iter().find_map(|(doc, loaded)| {
            if !doc.as_str().starts_with("session/") {
                return None;
            }
            session::get_receipt(&loaded.doc, id).ok().flatten()
        })
    }

    /// The cashier who opened session `id` and when (read once, then cached).
    pub(super) fn session_header(&mut self, id: &DocId) -> Result<(String, u64), NodeError> {
        if let Some(cached) = &self.session_header {
            if &cached.doc == id {
                return Ok((cached.cashier.clone(), cached.opened_ms));
            }
        }
        let loaded = self.replica.get(id).ok_or(NodeError::NoOpenSession)?;
        let header = session::read(&loaded.doc)?.header;
        self.session_header = Some(CachedHeader {
            doc: id.clone(),
            cashier: header.cashier.clone(),
            opened_ms: header.opened_at.physical_ms,
        });
        Ok((header.cashier, header.opened_at.physical_ms))
    }

    fn loaded_mut(&mut self, id: &DocId) -> Result<&mut LoadedDoc, NodeError> {
        self.replica.get_mut(id).ok_or(NodeError::NoOpenSession)
    }

    /// Counts a local change as not yet on the hub and refreshes the gauges.
    pub(super) fn note_local_change(&mut self, id: &DocId, time_ms: u64, is_receipt: bool) {
        if let Some(loaded) = self.replica.get_mut(id) {
            loaded.unsynced.add(time_ms, is_receipt);
        }
        self.refresh_gauges();
    }
}
