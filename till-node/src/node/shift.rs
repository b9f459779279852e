//! [`Shifts`]: the till's cash-shift writes — open a shift, move cash, sell, close (Z) — each
//! one [`Core::commit`], and the reads of a shift the API serves from the replica.
//!
//! Every write may carry an [`IdempotencyRequest`]. The stored record holds the exact answer and
//! is committed in the same transaction as the change, so "the key is recorded" and "the change
//! is durable" are one fact. A replay is answered from the record before anything else is
//! checked (even on a till that stopped writing: the answer is already durable); the same key
//! with a different request is refused. Failed requests leave no record. A write returns
//! [`Recorded`]: the answer's JSON as stored, which `api` sends with its HTTP status.

use crdt_model::commit_tag;
use crdt_model::ids::DocKey;
use crdt_model::receipt::{ReceiptDraft, ReceiptKind};
use crdt_model::session::{self, CashMovement, MovementKind, SessionHeader};
use crdt_model::{Kopecks, MovementId, Receipt, ReceiptId, SessionId};
use serde::Serialize;
use sync_engine::DocId;
use uuid::Uuid;

use super::commit::Commit;
use super::core::{doc_id, Core};
use super::error::NodeError;
use super::fiscal_queue::{close_job_id, job_entry, FiscalSettings};
use super::replica::LoadedDoc;
use super::views::{
    close_record, session_summary, MovementAck, ReceiptAnswer, ReceiptStatus, SessionOpened,
    SessionSummary,
};
use crate::store::{IdempotencyRecord, OutboxEntry, WriteBatch};
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

/// The status every stored answer of a successful write carries (the idempotency record keeps
/// the column; a failed write stores nothing).
const RECORDED_STATUS: u16 = 200;

/// The result of a successful write: its answer's JSON as recorded, possibly replayed from an
/// earlier request with the same idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The answer's JSON body.
    pub body: Vec<u8>,
    /// True when this answer was stored for an earlier request with the same key.
    pub replayed: bool,
}

impl Recorded {
    fn fresh(body: Vec<u8>) -> Recorded {
        Recorded {
            body,
            replayed: false,
        }
    }
}

/// The JSON of an answer that is about to be stored.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, NodeError> {
    serde_json::to_vec(value).map_err(|e| NodeError::encode("an answer", &e))
}

/// The parts of a shift header the fiscal side needs, kept so that sales and status reads
/// do not parse the whole shift document.
#[derive(Debug, Clone)]
pub(super) struct CachedHeader {
    doc: DocId,
    cashier: String,
    opened_ms: u64,
}

/// Cash shifts over the core: writes and reads. See the module documentation.
#[derive(Debug)]
pub struct Shifts<'a> {
    pub(super) core: &'a mut Core,
    pub(super) fiscal: FiscalSettings,
    pub(super) header: &'a mut Option<CachedHeader>,
}

/// The stored answer for `idem`, if this key was answered before with the same request.
pub(super) fn replay(
    core: &Core,
    idem: Option<&IdempotencyRequest>,
) -> Result<Option<Recorded>, NodeError> {
    let Some(idem) = idem else { return Ok(None) };
    match core.store.idempotency(&idem.key)? {
        Some(record) if record.request_sha256 == idem.request_sha256 => {
            if record.response_status != RECORDED_STATUS {
                tracing::warn!(key = %idem.key, status = record.response_status, "a stored answer with an unexpected status");
            }
            Ok(Some(Recorded {
                body: record.response_body,
                replayed: true,
            }))
        }
        Some(_) => Err(NodeError::IdempotencyConflict),
        None => Ok(None),
    }
}

/// Adds the idempotency record of `idem` with its answer `body` to `commit`.
fn record(commit: &mut Commit, idem: Option<&IdempotencyRequest>, body: &[u8], now: u64) {
    if let Some(idem) = idem {
        commit.side.put_idempotency(IdempotencyRecord {
            key: idem.key.clone(),
            request_sha256: idem.request_sha256,
            response_status: RECORDED_STATUS,
            response_body: body.to_vec(),
            created_at_ms: i64::try_from(now).unwrap_or(i64::MAX),
        });
    }
}

impl Shifts<'_> {
    fn open_shift_id(&self) -> Result<DocId, NodeError> {
        self.core.open_shift.clone().ok_or(NodeError::NoOpenShift)
    }

    /// Counts a local change as not yet on the hub and refreshes the gauges.
    fn note_local_change(&mut self, id: &DocId, time_ms: u64, is_receipt: bool) {
        self.core.note_local_change(id, time_ms, is_receipt);
        self.fiscal.refresh_gauges(self.core);
    }

    /// Opens a cash shift. Refused while one is open.
    pub fn open(
        &mut self,
        cashier: String,
        opening_cash: Kopecks,
        idem: Option<&IdempotencyRequest>,
    ) -> Result<Recorded, NodeError> {
        if let Some(answer) = replay(self.core, idem)? {
            return Ok(answer);
        }
        self.core.ensure_writable()?;
        if let Some(open) = &self.core.open_shift {
            let session = match DocKey::parse(open.as_str()) {
                Ok(DocKey::Session { session, .. }) => session,
                _ => SessionId::new(Uuid::nil()),
            };
            return Err(NodeError::ShiftAlreadyOpen(session));
        }
        let now = now_ms();
        // UUIDv7: time-ordered, which lets the sync policy decline long-retired shifts.
        let session_id = SessionId::new(Uuid::now_v7());
        let header = SessionHeader {
            session_id,
            store: self.core.identity.store.clone(),
            till: self.core.identity.till.clone(),
            cashier,
            opened_at: self.core.clock.now(now),
            opening_cash,
        };
        let id = doc_id(&header.doc_key())?;
        let body = encode(&SessionOpened {
            session_id,
            cashier: header.cashier.clone(),
            opened_at: rfc3339_ms(header.opened_at.physical_ms),
            opened_at_hlc: header.opened_at.clone(),
            opening_cash,
        })?;
        let mut commit = self.core.begin("shift open");
        let mut loaded = LoadedDoc::empty(&self.core.identity.actor);
        session::open(&mut loaded.doc, &header)?;
        self.core.replica.insert(id.clone(), loaded);
        record(&mut commit, idem, &body, now);
        self.seal_and_commit(commit, &id, commit_tag::session_open(session_id), now)?;
        self.note_local_change(&id, now, false);
        self.core.open_shift = Some(id);
        tracing::info!(session = %session_id, "cash session opened");
        Ok(Recorded::fresh(body))
    }

    /// Records a cash-in or cash-out in the open shift.
    pub fn cash_movement(
        &mut self,
        kind: MovementKind,
        amount: Kopecks,
        reason: String,
        idem: Option<&IdempotencyRequest>,
    ) -> Result<Recorded, NodeError> {
        if let Some(answer) = replay(self.core, idem)? {
            return Ok(answer);
        }
        self.core.ensure_writable()?;
        let id = self.open_shift_id()?;
        let now = now_ms();
        let movement = CashMovement {
            id: MovementId::new(Uuid::new_v4()),
            kind,
            amount,
            hlc: self.core.clock.now(now),
            reason,
        };
        let job = match kind {
            MovementKind::CashIn => FiscalJob::CashIn { amount },
            MovementKind::CashOut => FiscalJob::CashOut { amount },
        };
        let entry = match self.fiscal.enabled {
            true => Some(job_entry(
                movement.id.to_string(),
                &movement.hlc,
                &id,
                &job,
                now,
            )?),
            false => None,
        };
        let mut commit = self.core.begin("cash movement");
        let loaded = self.loaded_mut(&id)?;
        if let Err(error) = session::append_movement(&mut loaded.doc, &movement) {
            loaded.doc.rollback();
            return Err(error.into());
        }
        commit.touch(&id);
        let body = session::read(&loaded.doc)
            .map_err(NodeError::from)
            .and_then(|view| {
                encode(&MovementAck {
                    movement_id: movement.id,
                    kind: kind.into(),
                    amount,
                    cash_balance: view.cash_balance(),
                })
            });
        let answer = body.map(|body| (body, entry));
        let message = commit_tag::cash(movement.id);
        let body = self.finish(commit, &id, idem, answer, message, now)?;
        self.note_local_change(&id, now, false);
        Ok(Recorded::fresh(body))
    }

    /// Sells (or refunds): validates the draft, appends the receipt and commits it durably.
    pub fn sell(
        &mut self,
        draft: ReceiptDraft,
        idem: Option<&IdempotencyRequest>,
    ) -> Result<Recorded, NodeError> {
        self.sell_with(draft, idem, WriteBatch::new())
    }

    /// [`Shifts::sell`] with more side records committed in the same transaction.
    pub(super) fn sell_with(
        &mut self,
        draft: ReceiptDraft,
        idem: Option<&IdempotencyRequest>,
        also: WriteBatch,
    ) -> Result<Recorded, NodeError> {
        if let Some(answer) = replay(self.core, idem)? {
            return Ok(answer);
        }
        self.core.ensure_writable()?;
        let id = self.open_shift_id()?;
        self.fiscal.check_buffer(self.core)?;
        if let (ReceiptKind::Refund, Some(original)) = (draft.kind, draft.refund_of) {
            if !self.holds_receipt(original) {
                return Err(NodeError::OriginalNotFound(original));
            }
        }
        let session_id = match DocKey::parse(id.as_str()) {
            Ok(DocKey::Session { session, .. }) => session,
            _ => return Err(NodeError::NoOpenShift),
        };
        let now = now_ms();
        let receipt_id = ReceiptId::new(Uuid::new_v4());
        let receipt = Receipt::from_draft(
            draft,
            receipt_id,
            self.core.identity.store.clone(),
            self.core.identity.till.clone(),
            session_id,
            self.core.clock.now(now),
        )
        .map_err(NodeError::InvalidReceipt)?;
        let (cashier, _) = self.header_of(&id)?;
        let body = encode(&ReceiptAnswer {
            status: ReceiptStatus::Buffered,
            receipt_id,
            fiscal_doc: None,
        })?;
        let mut commit = self.core.begin("sale");
        record(&mut commit, idem, &body, now);
        for op in also.ops() {
            commit.side.push(op.clone());
        }
        if self.fiscal.enabled {
            let hlc = receipt.hlc.clone();
            let job = FiscalJob::Receipt {
                receipt: Box::new(receipt.clone()),
                cashier,
            };
            let entry = job_entry(receipt_id.to_string(), &hlc, &id, &job, now)?;
            commit.side.enqueue_outbox(entry);
        }
        let loaded = self.loaded_mut(&id)?;
        if let Err(error) = session::append_receipt(&mut loaded.doc, &receipt) {
            loaded.doc.rollback();
            return Err(error.into());
        }
        let message = commit_tag::receipt(receipt_id);
        self.seal_and_commit(commit, &id, message, now)?;
        self.note_local_change(&id, now, true);
        self.core.metrics.receipts_accepted_total.inc();
        Ok(Recorded::fresh(body))
    }

    /// Closes the open shift (Z) and compacts its document.
    pub fn close(
        &mut self,
        cashier: Option<String>,
        idem: Option<&IdempotencyRequest>,
    ) -> Result<Recorded, NodeError> {
        if let Some(answer) = replay(self.core, idem)? {
            return Ok(answer);
        }
        self.core.ensure_writable()?;
        let id = self.open_shift_id()?;
        let now = now_ms();
        let closed_at = self.core.clock.now(now);
        let fiscal = self.fiscal;
        let mut commit = self.core.begin("shift close");
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
        commit.touch(&id);
        let session_id = view.header.session_id;
        let side = encode(&close_record(&view, &close)).and_then(|body| {
            let entry = match fiscal.enabled {
                true => {
                    let job = FiscalJob::CloseShift {
                        cashier: cashier.clone(),
                    };
                    let job_id = close_job_id(*session_id.as_uuid());
                    Some(job_entry(job_id, &closed_at, &id, &job, now)?)
                }
                false => None,
            };
            Ok((body, entry))
        });
        let message = commit_tag::session_close(session_id);
        let body = self.finish(commit, &id, idem, side, message, now)?;
        self.note_local_change(&id, now, false);
        self.core.open_shift = None;
        self.core.maybe_compact(&id, true);
        tracing::info!(session = %session_id, "cash session closed");
        Ok(Recorded::fresh(body))
    }

    /// Ends a write whose document change is already made: with its answer (and fiscal job)
    /// encoded, records the answer for its idempotency key, queues the job and commits all of it
    /// with the change; when the answer could not be made, rolls the change back instead.
    fn finish(
        &mut self,
        mut commit: Commit,
        id: &DocId,
        idem: Option<&IdempotencyRequest>,
        answer: Result<(Vec<u8>, Option<OutboxEntry>), NodeError>,
        message: String,
        now: u64,
    ) -> Result<Vec<u8>, NodeError> {
        let (body, entry) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                self.core.rollback(&commit);
                return Err(error);
            }
        };
        record(&mut commit, idem, &body, now);
        if let Some(entry) = entry {
            commit.side.enqueue_outbox(entry);
        }
        self.seal_and_commit(commit, id, message, now)?;
        Ok(body)
    }

    /// Seals the open transaction of `id` into `commit` and makes it durable.
    fn seal_and_commit(
        &mut self,
        mut commit: Commit,
        id: &DocId,
        message: String,
        now: u64,
    ) -> Result<(), NodeError> {
        self.core.seal(&mut commit, id, message, now)?;
        self.core.commit(commit)
    }

    /// The open shift with its running totals.
    pub fn summary(&self) -> Result<SessionSummary, NodeError> {
        let id = self.open_shift_id()?;
        let loaded = self.core.replica.get(&id).ok_or(NodeError::NoOpenShift)?;
        let view = session::read(&loaded.doc)?;
        Ok(session_summary(&view))
    }

    /// Every receipt of shift `session_id` held by this till, in till order.
    pub fn receipts(&self, session_id: SessionId) -> Result<Vec<Receipt>, NodeError> {
        let key = DocKey::Session {
            store: self.core.identity.store.clone(),
            till: self.core.identity.till.clone(),
            session: session_id,
        };
        let id = doc_id(&key)?;
        let loaded = self
            .core
            .replica
            .get(&id)
            .ok_or_else(|| NodeError::ShiftNotFound(session_id.to_string()))?;
        Ok(session::read(&loaded.doc)?.receipts)
    }

    /// When the open shift was opened (Unix ms): the register's shift clock.
    pub fn opened_ms(&mut self) -> Option<u64> {
        let id = self.core.open_shift.clone()?;
        self.header_of(&id).ok().map(|(_, opened_ms)| opened_ms)
    }

    /// Whether any shift document of this till holds receipt `id`.
    fn holds_receipt(&self, id: ReceiptId) -> bool {
        self.find_receipt(id).is_some()
    }

    /// Receipt `id` from whichever shift document of this till holds it.
    pub(super) fn find_receipt(&self, id: ReceiptId) -> Option<Receipt> {
        self.core.replica.iter().find_map(|(doc, loaded)| {
            if !doc.as_str().starts_with("session/") {
                return None;
            }
            session::get_receipt(&loaded.doc, id).ok().flatten()
        })
    }

    /// The cashier who opened shift `id` and when (read once, then cached).
    fn header_of(&mut self, id: &DocId) -> Result<(String, u64), NodeError> {
        if let Some(cached) = self.header.as_ref() {
            if &cached.doc == id {
                return Ok((cached.cashier.clone(), cached.opened_ms));
            }
        }
        let loaded = self.core.replica.get(id).ok_or(NodeError::NoOpenShift)?;
        let header = session::read(&loaded.doc)?.header;
        *self.header = Some(CachedHeader {
            doc: id.clone(),
            cashier: header.cashier.clone(),
            opened_ms: header.opened_at.physical_ms,
        });
        Ok((header.cashier, header.opened_at.physical_ms))
    }

    fn loaded_mut(&mut self, id: &DocId) -> Result<&mut LoadedDoc, NodeError> {
        self.core.replica.get_mut(id).ok_or(NodeError::NoOpenShift)
    }
}
