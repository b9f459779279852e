//! The page's login, manager approval and logout (`/v1/pos/login`, `/v1/pos/approve`,
//! `/v1/pos/logout`). The sync round (`/v1/pos/sync`) carries a binary envelope
//! (`sync_engine::Envelope`), not JSON, so it has no type here.

use serde::{Deserialize, Serialize};

/// `POST /v1/pos/login` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The cashier's PIN.
    pub pin: String,
    /// This browser's device name (its Automerge actor is `S/T/<device>`).
    pub device: String,
}

/// `POST /v1/pos/login` answer. The page keeps it in IndexedDB so that a reload with the till
/// down still sells; records stored before `device` was read have it empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginAnswer {
    /// Bearer token for every later call.
    pub token: String,
    /// The cashier's login (also the cashier name on receipts and sessions).
    pub login: String,
    /// `cashier` or `manager`.
    #[serde(default)]
    pub role: String,
    /// The store.
    pub store: String,
    /// The till.
    pub till: String,
    /// The device name the login was made for.
    #[serde(default)]
    pub device: String,
    /// This browser's peer id (`pos:S/T/<device>`).
    pub peer: String,
    /// The till's peer id.
    pub till_peer: String,
    /// When the token stops working (Unix ms); the till always says.
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
}

impl LoginAnswer {
    /// True once the token has expired.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|expires| now_ms >= expires)
    }
}

/// `POST /v1/pos/approve` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// A store manager's PIN or secret.
    pub secret: String,
}

/// `POST /v1/pos/approve` answer: who approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproveAnswer {
    /// The manager's login.
    pub login: String,
    /// Their role.
    #[serde(default)]
    pub role: String,
}

/// `POST /v1/pos/logout` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutAnswer {
    /// Always `logged_out`.
    pub status: LogoutStatus,
}

/// The one outcome of a logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogoutStatus {
    /// The token no longer works.
    LoggedOut,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_answer_reads_and_expires() {
        let body = r#"{"token": "t0k", "login": "ivanova", "role": "cashier", "store": "S1",
            "till": "T1", "peer": "pos:S1/T1/w1a2b3c4d5e6f", "till_peer": "till:S1/T1",
            "expires_at_ms": 1000, "extra": true}"#;
        let login: LoginAnswer = serde_json::from_str(body).expect("parses");
        assert_eq!(login.login, "ivanova");
        assert_eq!(login.till_peer, "till:S1/T1");
        assert_eq!(login.device, "");
        assert!(!login.expired(999));
        assert!(login.expired(1000));
        let json = serde_json::to_string(&login).expect("serialises");
        assert_eq!(serde_json::from_str::<LoginAnswer>(&json).ok(), Some(login));
    }

    #[test]
    fn login_answer_is_written_in_the_till_order() {
        let answer = LoginAnswer {
            token: "t".to_owned(),
            login: "ivanova".to_owned(),
            role: "cashier".to_owned(),
            store: "S1".to_owned(),
            till: "T1".to_owned(),
            device: "w1".to_owned(),
            peer: "pos:S1/T1/w1".to_owned(),
            till_peer: "till:S1/T1".to_owned(),
            expires_at_ms: Some(5),
        };
        assert_eq!(
            serde_json::to_string(&answer).expect("json"),
            r#"{"token":"t","login":"ivanova","role":"cashier","store":"S1","till":"T1","device":"w1","peer":"pos:S1/T1/w1","till_peer":"till:S1/T1","expires_at_ms":5}"#
        );
    }

    #[test]
    fn logout_answer_says_logged_out() {
        let answer = LogoutAnswer {
            status: LogoutStatus::LoggedOut,
        };
        assert_eq!(
            serde_json::to_string(&answer).expect("json"),
            r#"{"status":"logged_out"}"#
        );
    }

    #[test]
    fn login_body_refuses_unknown_fields() {
        let wrong = serde_json::from_str::<LoginRequest>(r#"{"pin":"1","device":"d","x":1}"#);
        assert!(wrong.is_err());
    }
}
