use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn basic(user: &str, password: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b64}")
}

/// A web config with one user, alice, and its source.
fn alice(dir: &Path, password: &str) -> (PathBuf, WebConfigSource) {
    let hash = bcrypt::hash(password, 4).unwrap();
    let text = format!("basic_auth_users:\n  alice: {hash}\n");
    let p = write(dir, "web.yml", &text);
    let src = WebConfigSource::open(&p).unwrap();
    (p, src)
}

fn load_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "web.yml", text);
    match WebConfig::load(&p) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unsupported_settings_are_errors_naming_the_key() {
    for (text, key) in [
        ("rate_limit:\n  interval: 1s\n  burst: 3\n", "rate_limit"),
        ("http_server_config:\n  http2: true\n", "http2"),
        (
            "http_server_config:\n  headers:\n    X-Powered-By: me\n",
            "headers",
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "headers",
        ),
        (
            "basic_auth_users:\n  alice: plaintext\n",
            "basic_auth_users",
        ),
        ("tls_server_config:\n  key_file: k.pem\n", "cert_file"),
        (
            "tls_server_config:\n  cert: x\n  cert_file: c.pem\n  key_file: k.pem\n",
            "cert_file",
        ),
        (
            "tls_server_config:\n  client_allowed_sans: [a]\n",
            "client_allowed_sans",
        ),
        (
            "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  client_ca_file: ca.pem\n",
            "client_ca_file",
        ),
        (
            "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  client_ca_file: ca.pem\n  client_auth_type: NoClientCert\n",
            "client_ca_file",
        ),
        ("no_such_section: 1\n", "no_such_section"),
    ] {
        let e = load_err(text);
        assert!(e.contains(key), "{text:?}: {e}");
    }
}

#[test]
fn headers_are_kept_and_blank_ones_unset() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "web.yml",
        "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    X-XSS-Protection: \"\"\n",
    );
    let c = WebConfig::load(&p).unwrap();
    assert_eq!(
        c.headers,
        vec![("X-Frame-Options".to_string(), "deny".to_string())]
    );
    assert!(c.tls.is_none() && !c.auth_required());
}

#[test]
fn basic_auth_checks_the_password_and_remembers_a_verified_one() {
    let dir = tempfile::tempdir().unwrap();
    let (_, src) = alice(dir.path(), "s3cret");
    let c = src.current();
    assert!(c.auth_required());
    assert!(!src.authorized(&c, None));
    assert!(!src.authorized(&c, Some(&basic("alice", "wrong"))));
    assert!(!src.authorized(&c, Some(&basic("bob", "s3cret"))));
    assert!(!src.authorized(&c, Some("Bearer abc")));
    assert!(
        src.verified.lock().unwrap().is_empty(),
        "a failure is not cached"
    );
    assert!(src.authorized(&c, Some(&basic("alice", "s3cret"))));
    assert_eq!(src.verified.lock().unwrap().len(), 1);
    // Served from the cache now, and the cache still tells passwords apart.
    assert!(src.authorized(&c, Some(&basic("alice", "s3cret"))));
    assert!(!src.authorized(&c, Some(&basic("alice", "s3cret2"))));
}

#[test]
fn a_cached_password_does_not_outlive_a_changed_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (p, src) = alice(dir.path(), "old");
    let new = bcrypt::hash("new", 4).unwrap();
    assert!(src.authorized(&src.current(), Some(&basic("alice", "old"))));
    std::fs::write(
        &p,
        format!("basic_auth_users:\n  alice: {new}\n  bob: {new}\n"),
    )
    .unwrap();
    src.refresh(Instant::now(), true);
    let c = src.current();
    assert!(!src.authorized(&c, Some(&basic("alice", "old"))));
    assert!(src.authorized(&c, Some(&basic("alice", "new"))));
}

#[test]
fn an_invalid_new_file_keeps_the_previous_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (p, src) = alice(dir.path(), "pw");
    std::fs::write(&p, "basic_auth_users: [this is not a map\n").unwrap();
    src.refresh(Instant::now(), true);
    assert!(src.current().auth_required(), "the old users stay in force");
    // Within the check interval nothing is re-read, even a changed file.
    std::fs::write(&p, "{}\n").unwrap();
    src.refresh(Instant::now(), false);
    assert!(src.current().auth_required());
    src.refresh(Instant::now(), true);
    assert!(!src.current().auth_required(), "a valid file is taken");
}

#[test]
fn parses_basic_credentials() {
    assert_eq!(
        basic_credentials(&basic("u", "p:w")),
        Some(("u".into(), "p:w".into()))
    );
    assert_eq!(basic_credentials("basic !!!"), None);
    assert_eq!(basic_credentials("Digest x"), None);
}

#[test]
fn hash_password_gives_a_hash_the_web_config_accepts() {
    let h = hash_password("s3cret").unwrap();
    assert!(h.starts_with("$2b$10$"), "{h}");
    assert!(bcrypt::verify("s3cret", &h).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: '{h}'\n"),
    );
    let src = WebConfigSource::open(&p).unwrap();
    let c = src.current();
    assert!(src.authorized(&c, Some(&basic("prometheus", "s3cret"))));
    assert!(!src.authorized(&c, Some(&basic("prometheus", "s3cret!"))));
}

#[test]
fn hash_password_refuses_what_bcrypt_would_weaken() {
    assert!(matches!(hash_password(""), Err(HashError::Empty)));
    let long = "x".repeat(73);
    assert!(matches!(hash_password(&long), Err(HashError::TooLong(73))));
    assert!(hash_password(&"x".repeat(72)).is_ok());
}
