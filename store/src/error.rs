//! Errors of the store and the retry classification of ClickHouse failures.

/// What the caller should do about a failed ClickHouse call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Network, timeouts, overload, "too many parts": back off and try again; the data is fine.
    Transient,
    /// The server rejected the data or the statement (type mismatch, a column the table lacks,
    /// syntax): retrying cannot help; the rows go to the DLQ with ClickHouse's message, for
    /// `citypulse dlq replay` after the fix.
    Permanent,
    /// ClickHouse cannot take any post until someone acts: the table or database is missing
    /// (detached for maintenance, dropped, not migrated) or access is denied. No post is at fault,
    /// so none is dead-lettered: the writer waits, says why, and reports unhealthy. (Sinks that
    /// drop on such errors are how pipelines lose whole hours of data during a maintenance.)
    Blocked,
    /// An error code we do not know: retried a few times, then treated as permanent.
    Unknown,
}

/// A failure talking to ClickHouse, with ClickHouse's own message.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct ClickHouseError {
    pub context: String,
    #[source]
    pub source: clickhouse::error::Error,
}

impl ClickHouseError {
    pub fn new(context: impl Into<String>, source: clickhouse::error::Error) -> Self {
        ClickHouseError { context: context.into(), source }
    }

    /// ClickHouse's exception code (`Code: N` in its message), if the server answered with one.
    pub fn code(&self) -> Option<u32> {
        match &self.source {
            clickhouse::error::Error::BadResponse(msg) => exception_code(msg),
            _ => None,
        }
    }

    pub fn retry(&self) -> Retry {
        use clickhouse::error::Error as E;
        match &self.source {
            E::Network(_) | E::TimedOut => Retry::Transient,
            E::BadResponse(msg) => classify_response(msg),
            // Our rows did not serialise or the answer did not match our row type: the schema is wrong.
            _ => Retry::Permanent,
        }
    }

    /// A short stable name for metric labels.
    pub fn kind(&self) -> &'static str {
        use clickhouse::error::Error as E;
        match (&self.source, self.retry()) {
            (E::Network(_), _) => "network",
            (E::TimedOut, _) => "timeout",
            (_, Retry::Transient) => "server_transient",
            (_, Retry::Blocked) => "blocked",
            (_, Retry::Permanent) => "rejected",
            (_, Retry::Unknown) => "unknown",
        }
    }
}

/// Exception codes that mean "try again later" (ClickHouse's ErrorCodes.cpp).
const TRANSIENT_CODES: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (a replica in read-only mode)
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
    394, // QUERY_WAS_CANCELLED (server shutting down)
    425, // SYSTEM_ERROR
];

/// Codes that say the statement or the data is wrong.
const PERMANENT_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    16,  // NO_SUCH_COLUMN_IN_TABLE
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    33,  // CANNOT_READ_ALL_DATA (RowBinary shorter than the table's row)
    36,  // BAD_ARGUMENTS
    41,  // CANNOT_PARSE_DATETIME
    43,  // ILLEGAL_TYPE_OF_ARGUMENT
    44,  // ILLEGAL_COLUMN
    47,  // UNKNOWN_IDENTIFIER
    53,  // TYPE_MISMATCH
    62,  // SYNTAX_ERROR
    70,  // CANNOT_CONVERT_TYPE
    73,  // UNKNOWN_FORMAT
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
];

/// Codes that say nothing can be written until someone acts ([`Retry::Blocked`]).
const BLOCKED_CODES: &[u32] = &[
    60,  // UNKNOWN_TABLE (also a DETACHed table)
    81,  // UNKNOWN_DATABASE
    192, // UNKNOWN_USER
    193, // WRONG_PASSWORD
    497, // ACCESS_DENIED
    516, // AUTHENTICATION_FAILED
];

fn classify_response(msg: &str) -> Retry {
    match exception_code(msg) {
        Some(code) if TRANSIENT_CODES.contains(&code) => Retry::Transient,
        Some(code) if BLOCKED_CODES.contains(&code) => Retry::Blocked,
        Some(code) if PERMANENT_CODES.contains(&code) => Retry::Permanent,
        Some(_) => Retry::Unknown,
        // No ClickHouse exception: a proxy or the HTTP layer answered (502/503/504 while restarting).
        None if msg.len() >= 3 && msg.starts_with('5') && msg[..3].bytes().all(|b| b.is_ascii_digit()) => {
            Retry::Transient
        }
        None => Retry::Unknown,
    }
}

/// `Code: 60, e.displayText() = ...` (18.16) or `Code: 60. DB::Exception: ...` (current).
fn exception_code(msg: &str) -> Option<u32> {
    let rest = &msg[msg.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

pub use stagekit::Backoff;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error("invalid {what} {value:?}: {why}")]
    InvalidName { what: &'static str, value: String, why: &'static str },
    #[error("migration {version} ({name}): {source}")]
    Migration {
        version: u32,
        name: &'static str,
        #[source]
        source: ClickHouseError,
    },
    #[error("the trend views were created for time zone {found}, the config says {configured}; re-create them")]
    TimeZoneChanged { found: String, configured: String },
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("stopped by shutdown before the batch was stored (it will be redelivered)")]
    Cancelled,
    #[error("{0}")]
    Invalid(String),
}

impl From<stagekit::Cancelled> for StoreError {
    fn from(_: stagekit::Cancelled) -> Self {
        StoreError::Cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(msg: &str) -> ClickHouseError {
        ClickHouseError::new("t", clickhouse::error::Error::BadResponse(msg.into()))
    }

    #[test]
    fn classifies_old_and_new_exception_formats() {
        let old =
            "Code: 60, e.displayText() = DB::Exception: Table citypulse.postz doesn't exist., e.what() = DB::Exception";
        assert_eq!(bad(old).retry(), Retry::Blocked, "a missing (or detached) table blocks; no post is at fault");
        assert_eq!(bad(old).code(), Some(60));
        assert_eq!(
            bad("Code: 16, e.displayText() = DB::Exception: No such column url in table posts").retry(),
            Retry::Permanent
        );
        let new = "Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS) (version 24.8.1.1)";
        assert_eq!(bad(new).retry(), Retry::Transient);
        assert_eq!(bad("Code: 53, e.displayText() = DB::Exception: Type mismatch").retry(), Retry::Permanent);
        assert_eq!(bad("Code: 999, something new").retry(), Retry::Unknown);
        assert_eq!(bad("503 Service Unavailable").retry(), Retry::Transient);
        let net = ClickHouseError::new("t", clickhouse::error::Error::Network("connection refused".into()));
        assert_eq!(net.retry(), Retry::Transient);
        assert_eq!(net.kind(), "network");
    }
}
