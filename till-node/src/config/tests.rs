//! Unit tests of the settings: merging, TOML keys, secrets, file permissions.

use super::*;

#[test]
fn node_ident_rules() {
    assert!(NodeIdent::parse("S01").is_ok());
    assert!(NodeIdent::parse("till_7-b").is_ok());
    assert!(NodeIdent::parse(&"x".repeat(32)).is_ok());
    assert!(NodeIdent::parse(&"x".repeat(33)).is_err());
    assert!(NodeIdent::parse("").is_err());
    assert!(NodeIdent::parse("касса").is_err());
    assert!(NodeIdent::parse("a/b").is_err());
}

#[test]
fn secret_is_redacted() {
    let secret: Secret = "s3cr3t".parse().unwrap_or_else(|never| match never {});
    assert_eq!(format!("{secret:?}"), "\"***\"");
    assert_eq!(secret.expose(), "s3cr3t");
}

#[test]
fn higher_source_wins_field_by_field() {
    let high = PartialRunConfig {
        till: Some("T2".into()),
        ..PartialRunConfig::default()
    };
    let low = PartialRunConfig {
        till: Some("T1".into()),
        store: Some("S1".into()),
        ..PartialRunConfig::default()
    };
    let merged = high.or(low);
    assert_eq!(merged.till.as_deref(), Some("T2"));
    assert_eq!(merged.store.as_deref(), Some("S1"));
    assert_eq!(merged.hub, None);
}

#[test]
fn toml_keys_are_the_flag_names() {
    let parsed = PartialRunConfig::from_toml(
        "heartbeat-secs = 5\nbuffer-capacity = 50\nlog-format = \"json\"\n",
        Path::new("t.toml"),
    )
    .expect("valid toml");
    assert_eq!(parsed.heartbeat_secs, Some(5));
    assert_eq!(parsed.buffer_capacity, Some(50));
    assert_eq!(parsed.log_format, Some(LogFormat::Json));
    let error = PartialRunConfig::from_toml("log-format = \"xml\"\n", Path::new("t.toml"))
        .expect_err("unknown format");
    assert!(error.to_string().contains("t.toml"), "{error}");
}

#[cfg(unix)]
#[test]
fn world_readable_token_file_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("till.toml");
    std::fs::write(&path, "hub-token = \"x\"\n").expect("write");
    let partial = PartialRunConfig::from_file(&path).expect("parse");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(permissions_warning(&path, &partial).is_some());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(permissions_warning(&path, &partial), None);
}
