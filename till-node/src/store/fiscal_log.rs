//! The fiscal pipeline's own log: a short, durable list of what happened to register and OFD
//! jobs, served by `GET /v1/kkt/buffer/logs?level=ERROR&limit=10` so support can see recent
//! failures without shell access to the till.
//!
//! It lives in the store (not only in `tracing` output) so it survives restarts, and it is a
//! ring: every append keeps only the newest [`MAX_FISCAL_LOG_ROWS`] rows, in the same
//! transaction, so a register that fails every second for a month cannot fill the disk.
//! "Newest" is append order (the row id), not `at_ms`, because the wall clock can step back.

use rusqlite::{params, Row};

use super::limits::check_key;
use super::{Store, StoreError};

/// Rows kept; older ones are deleted on append. Also the largest `limit` a read accepts.
pub const MAX_FISCAL_LOG_ROWS: usize = 1_000;

/// Longest message kept; longer ones are cut at a character boundary (a log line is better
/// shortened than lost).
pub const MAX_LOG_MESSAGE_BYTES: usize = 4 * 1024;

/// How serious a log record is. Ordered: `Info < Warn < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    /// Normal progress.
    Info,
    /// A failure that will be retried.
    Warn,
    /// A failure that needs attention (dead letter, refused document).
    Error,
}

impl LogLevel {
    /// All levels, least serious first.
    pub const ALL: [LogLevel; 3] = [LogLevel::Info, LogLevel::Warn, LogLevel::Error];

    /// The stored (and served) name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }

    /// Parses a level name, ignoring ASCII case (`?level=error` is as good as `ERROR`).
    pub fn parse(text: &str) -> Option<LogLevel> {
        LogLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(text))
    }

    /// Position in the order, for SQL comparisons.
    fn rank(self) -> i64 {
        match self {
            LogLevel::Info => 0,
            LogLevel::Warn => 1,
            LogLevel::Error => 2,
        }
    }
}

/// One line of the fiscal log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// When it happened (Unix ms).
    pub at_ms: i64,
    /// How serious.
    pub level: LogLevel,
    /// The pipeline stage or component (`register`, `ofd`, `refund_saga`…).
    pub stage: String,
    /// The outbox job or saga concerned, if any.
    pub job_id: Option<String>,
    /// What happened (at most [`MAX_LOG_MESSAGE_BYTES`] are kept).
    pub message: String,
}

/// `text` cut to at most `max_bytes`, at a character boundary.
fn truncate_at_char_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn read_record(row: &Row<'_>) -> rusqlite::Result<Result<LogRecord, StoreError>> {
    let level_text: String = row.get(1)?;
    let Some(level) = LogLevel::parse(&level_text) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "fiscal log has unknown level {level_text:?}"
        ))));
    };
    Ok(Ok(LogRecord {
        at_ms: row.get(0)?,
        level,
        stage: row.get(2)?,
        job_id: row.get(3)?,
        message: row.get(4)?,
    }))
}

impl Store {
    /// Appends `record` (message cut to [`MAX_LOG_MESSAGE_BYTES`]) and deletes all but the
    /// newest [`MAX_FISCAL_LOG_ROWS`] rows, in one transaction. `stage` and `job_id` must be
    /// valid keys (non-empty, at most 256 bytes, no control characters).
    pub fn append_fiscal_log(&mut self, record: &LogRecord) -> Result<(), StoreError> {
        check_key("log stage", &record.stage)?;
        if let Some(job_id) = &record.job_id {
            check_key("log job id", job_id)?;
        }
        let message = truncate_at_char_boundary(&record.message, MAX_LOG_MESSAGE_BYTES);
        // Fits: MAX_FISCAL_LOG_ROWS is a small constant.
        let keep_offset = i64::try_from(MAX_FISCAL_LOG_ROWS - 1).unwrap_or(i64::MAX);
        let op = "append fiscal log";
        self.write(op, |tx| {
            let sqlite = |e| StoreError::from_sqlite(op, e);
            tx.prepare_cached(
                "INSERT INTO fiscal_log(at_ms, level, stage, job_id, message)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    record.at_ms,
                    record.level.as_str(),
                    record.stage,
                    record.job_id,
                    message
                ])
            })
            .map_err(sqlite)?;
            // With fewer rows than the limit the sub-select is NULL and nothing is deleted.
            tx.prepare_cached(
                "DELETE FROM fiscal_log WHERE id <
                     (SELECT id FROM fiscal_log ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            )
            .and_then(|mut stmt| stmt.execute(params![keep_offset]))
            .map_err(sqlite)?;
            Ok(())
        })
    }

    /// Up to `limit` (1..=[`MAX_FISCAL_LOG_ROWS`]) records at `min_level` or above, newest
    /// first.
    pub fn fiscal_log(
        &self,
        min_level: LogLevel,
        limit: usize,
    ) -> Result<Vec<LogRecord>, StoreError> {
        if !(1..=MAX_FISCAL_LOG_ROWS).contains(&limit) {
            return Err(StoreError::InvalidInput(format!(
                "fiscal log reads return 1 to {MAX_FISCAL_LOG_ROWS} records, asked for {limit}"
            )));
        }
        let limit =
            i64::try_from(limit).map_err(|_| StoreError::InvalidInput(format!("limit {limit}")))?;
        let op = "read fiscal log";
        let sqlite = |e| StoreError::from_sqlite(op, e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT at_ms, level, stage, job_id, message FROM fiscal_log
                 WHERE CASE level WHEN 'INFO' THEN 0 WHEN 'WARN' THEN 1 ELSE 2 END >= ?1
                 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(sqlite)?;
        let rows = stmt
            .query_map(params![min_level.rank(), limit], read_record)
            .map_err(sqlite)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(sqlite)??);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(LogLevel::parse("ERROR"), Some(LogLevel::Error));
        assert_eq!(LogLevel::parse("warn"), Some(LogLevel::Warn));
        assert_eq!(LogLevel::parse("debug"), None);
        assert!(LogLevel::Info < LogLevel::Warn && LogLevel::Warn < LogLevel::Error);
        for level in LogLevel::ALL {
            assert_eq!(LogLevel::parse(level.as_str()), Some(level));
        }
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_at_char_boundary("abc", 4), "abc");
        // 'ж' is two bytes: cutting at 3 bytes of "жжж" keeps one letter.
        assert_eq!(truncate_at_char_boundary("жжж", 3), "ж");
        assert_eq!(truncate_at_char_boundary("жжж", 0), "");
    }
}
