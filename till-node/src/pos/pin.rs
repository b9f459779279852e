//! Checking a PIN (or a manager's secret) against the staff document.
//!
//! The hub replicates `staff/<store>` to the store's tills with an argon2id hash per member;
//! the till never sees a PIN in clear except in the login request. The PIN alone names the
//! cashier, so a login tries every active member of the allowed roles: a few dozen
//! milliseconds each, which is why the caller runs it on a blocking thread and why wrong PINs
//! are throttled (`throttle`).

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use crdt_model::staff::{StaffMember, StaffRole};

/// Longest secret the till will hash (a PIN has at most 8 digits; a manager's password more).
pub const MAX_SECRET_LEN: usize = 128;

/// The active member of one of `roles` whose hash matches `secret`, if any.
pub fn find_member(
    members: &[StaffMember],
    secret: &str,
    roles: &[StaffRole],
) -> Option<StaffMember> {
    if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
        return None;
    }
    let argon2 = Argon2::default();
    members
        .iter()
        .filter(|member| member.active && roles.contains(&member.role))
        .find(|member| {
            PasswordHash::new(&member.secret_hash)
                .map(|hash| argon2.verify_password(secret.as_bytes(), &hash).is_ok())
                .unwrap_or_else(|error| {
                    tracing::warn!(login = %member.login, %error, "unreadable secret hash in the staff document");
                    false
                })
        })
        .cloned()
}

/// The wire name of a role.
pub fn role_name(role: StaffRole) -> &'static str {
    match role {
        StaffRole::Cashier => "cashier",
        StaffRole::Manager => "manager",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};
    use crdt_model::hlc::Hlc;

    fn member(login: &str, role: StaffRole, secret: &str, active: bool) -> StaffMember {
        let salt = SaltString::encode_b64(format!("salt-for-{login}").as_bytes()).expect("salt");
        let hash = Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .expect("hash")
            .to_string();
        StaffMember {
            login: login.to_owned(),
            role,
            secret_hash: hash,
            active,
            updated_at: Hlc::new(1_700_000_000_000, 0, "hub/hub").expect("hlc"),
        }
    }

    #[test]
    fn the_pin_names_the_active_member_of_an_allowed_role() {
        let staff = vec![
            member("ivanova", StaffRole::Cashier, "1234", true),
            member("sidorov", StaffRole::Cashier, "5678", false),
            member("petrova", StaffRole::Manager, "manager-secret", true),
        ];
        let cashiers = [StaffRole::Cashier, StaffRole::Manager];
        assert_eq!(
            find_member(&staff, "1234", &cashiers).map(|m| m.login),
            Some("ivanova".into())
        );
        assert_eq!(find_member(&staff, "5678", &cashiers), None, "inactive");
        assert_eq!(find_member(&staff, "0000", &cashiers), None, "wrong");
        assert_eq!(find_member(&staff, "", &cashiers), None, "empty");
        assert_eq!(
            find_member(&staff, "1234", &[StaffRole::Manager]),
            None,
            "not a manager"
        );
        assert_eq!(
            find_member(&staff, "manager-secret", &[StaffRole::Manager]).map(|m| m.login),
            Some("petrova".into())
        );
        let long = "9".repeat(MAX_SECRET_LEN + 1);
        assert_eq!(find_member(&staff, &long, &cashiers), None);
    }
}
