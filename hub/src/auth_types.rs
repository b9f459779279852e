//! Auth vocabulary shared by the storage layer and the HTTP layer: hub user roles and the
//! password / PIN policy.
//!
//! The role × action × store-scope table itself belongs to the API layer; this module only
//! names the roles and says which secrets are acceptable for each.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// A hub user's role. Stored in `users.role` as the lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users, devices and configuration.
    Admin,
    /// Sees merged reports (sales, GP, X/Z).
    Manager,
    /// L1/L2 support: divergence, buffers, dead-letter queue.
    Support,
    /// Reconciliation exports.
    Accountant,
    /// Sells at a till; logs in with a numeric PIN.
    Cashier,
}

impl Role {
    /// Every role, in a stable order (for route-table tests).
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Manager,
        Role::Support,
        Role::Accountant,
        Role::Cashier,
    ];

    /// The lowercase name used in the database, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Support => "support",
            Role::Accountant => "accountant",
            Role::Cashier => "cashier",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown role {0:?} (expected admin, manager, support, accountant or cashier)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.chars().take(40).collect()))
    }
}

/// Minimum password length for every role except cashier.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Upper bound on a password: argon2 cost grows with input, so a huge "password" is a DoS.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Cashier PINs are 4..=8 decimal digits.
pub const PIN_DIGITS: std::ops::RangeInclusive<usize> = 4..=8;

/// A password or PIN was refused by the policy.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PasswordPolicyError {
    /// Empty input.
    #[error("the password is empty")]
    Empty,
    /// Shorter than [`MIN_PASSWORD_CHARS`].
    #[error("the password is too short: at least {MIN_PASSWORD_CHARS} characters are required")]
    TooShort,
    /// Longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password is too long: at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// A cashier PIN that is not 4..=8 digits.
    #[error("a cashier PIN must be 4 to 8 decimal digits")]
    BadPin,
}

/// Checks `secret` against the policy for `role`: cashiers use a 4..=8 digit PIN, everyone
/// else a password of at least [`MIN_PASSWORD_CHARS`] characters.
pub fn validate_secret(role: Role, secret: &str) -> Result<(), PasswordPolicyError> {
    if secret.is_empty() {
        return Err(PasswordPolicyError::Empty);
    }
    if secret.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordPolicyError::TooLong);
    }
    if role == Role::Cashier {
        let digits_only = secret.chars().all(|c| c.is_ascii_digit());
        if !digits_only || !PIN_DIGITS.contains(&secret.len()) {
            return Err(PasswordPolicyError::BadPin);
        }
        return Ok(());
    }
    if secret.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooShort);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_round_trips_through_text() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(role.to_string(), role.as_str());
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn role_serde_uses_lowercase() {
        let json = serde_json::to_string(&Role::Accountant).expect("serialize");
        assert_eq!(json, "\"accountant\"");
    }

    #[test]
    fn password_policy() {
        assert_eq!(
            validate_secret(Role::Admin, ""),
            Err(PasswordPolicyError::Empty)
        );
        assert_eq!(
            validate_secret(Role::Admin, "short"),
            Err(PasswordPolicyError::TooShort)
        );
        assert!(validate_secret(Role::Manager, "long enough").is_ok());
        assert_eq!(
            validate_secret(Role::Admin, &"x".repeat(2000)),
            Err(PasswordPolicyError::TooLong)
        );
        // Eight Cyrillic letters are eight characters even though they are 16 bytes.
        assert!(validate_secret(Role::Support, "пароль12").is_ok());
    }

    #[test]
    fn cashier_pin_policy() {
        assert!(validate_secret(Role::Cashier, "1234").is_ok());
        assert!(validate_secret(Role::Cashier, "12345678").is_ok());
        assert_eq!(
            validate_secret(Role::Cashier, "123"),
            Err(PasswordPolicyError::BadPin)
        );
        assert_eq!(
            validate_secret(Role::Cashier, "123456789"),
            Err(PasswordPolicyError::BadPin)
        );
        assert_eq!(
            validate_secret(Role::Cashier, "12a4"),
            Err(PasswordPolicyError::BadPin)
        );
    }
}
