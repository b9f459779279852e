//! Unit tests of the store, one file per topic: documents and compaction (`docs`), the fiscal
//! outbox, log and refund sagas (`fiscal`), batches, idempotency and durability settings
//! (`writes`).

mod docs;
mod fiscal;
mod writes;
