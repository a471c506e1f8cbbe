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

fn granted(src: &WebConfigSource, c: &WebConfig, authorization: Option<&str>) -> bool {
    src.authorize(c, authorization) == Auth::Granted
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
    assert!(!granted(&src, &c, None));
    assert!(!granted(&src, &c, Some(&basic("alice", "wrong"))));
    assert!(!granted(&src, &c, Some(&basic("bob", "s3cret"))));
    assert!(!granted(&src, &c, Some("Bearer abc")));
    assert!(
        src.verified.lock().unwrap().is_empty(),
        "a failure is not taken for a verified password"
    );
    assert!(granted(&src, &c, Some(&basic("alice", "s3cret"))));
    assert_eq!(src.verified.lock().unwrap().len(), 1);
    // Served from the cache now, and the cache still tells passwords apart.
    assert!(granted(&src, &c, Some(&basic("alice", "s3cret"))));
    assert!(!granted(&src, &c, Some(&basic("alice", "s3cret2"))));
}

#[test]
fn a_cached_password_does_not_outlive_a_changed_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (p, src) = alice(dir.path(), "old");
    let new = bcrypt::hash("new", 4).unwrap();
    assert!(granted(&src, &src.current(), Some(&basic("alice", "old"))));
    std::fs::write(
        &p,
        format!("basic_auth_users:\n  alice: {new}\n  bob: {new}\n"),
    )
    .unwrap();
    src.refresh(Instant::now(), true);
    let c = src.current();
    assert!(!granted(&src, &c, Some(&basic("alice", "old"))));
    assert!(granted(&src, &c, Some(&basic("alice", "new"))));
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
    assert!(granted(&src, &c, Some(&basic("prometheus", "s3cret"))));
    assert!(!granted(&src, &c, Some(&basic("prometheus", "s3cret!"))));
}

#[test]
fn hash_password_refuses_what_bcrypt_would_weaken() {
    assert!(matches!(hash_password(""), Err(HashError::Empty)));
    let long = "x".repeat(73);
    assert!(matches!(hash_password(&long), Err(HashError::TooLong(73))));
    assert!(hash_password(&"x".repeat(72)).is_ok());
}

#[test]
fn failed_attempts_are_remembered_and_bcrypt_runs_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_, src) = alice(dir.path(), "s3cret");
    let c = src.current();
    let wrong = basic("alice", "wrong");
    assert_eq!(src.authorize(&c, Some(&wrong)), Auth::Denied);
    assert_eq!(
        src.authorize(&c, Some(&basic("mallory", "x"))),
        Auth::Denied
    );
    assert_eq!(src.failed.lock().unwrap().set.len(), 2);
    // While another bcrypt runs (the lock held here), what is remembered is
    // answered at once and anything new is Busy, never queued.
    {
        let _bcrypt = src.bcrypt.lock().unwrap();
        assert_eq!(src.authorize(&c, Some(&wrong)), Auth::Denied);
        assert_eq!(
            src.authorize(&c, Some(&basic("mallory", "x"))),
            Auth::Denied
        );
        assert_eq!(
            src.authorize(&c, Some(&basic("alice", "other"))),
            Auth::Busy
        );
        assert_eq!(
            src.authorize(&c, Some(&basic("alice", "s3cret"))),
            Auth::Busy
        );
        // No credentials need no bcrypt.
        assert_eq!(src.authorize(&c, None), Auth::Denied);
    }
    assert_eq!(
        src.authorize(&c, Some(&basic("alice", "s3cret"))),
        Auth::Granted
    );
    let _bcrypt = src.bcrypt.lock().unwrap();
    assert_eq!(
        src.authorize(&c, Some(&basic("alice", "s3cret"))),
        Auth::Granted
    );
    // The right password for a user that does not exist is still wrong.
    drop(_bcrypt);
    assert_eq!(
        src.authorize(&c, Some(&basic("bob", "s3cret"))),
        Auth::Denied
    );
}

#[test]
fn the_failed_attempt_cache_is_bounded_and_keyed() {
    let dir = tempfile::tempdir().unwrap();
    let (_, src) = alice(dir.path(), "pw");
    let mut failed = Failed::default();
    for i in 0..FAILED_CACHE + 10 {
        failed.insert(src.attempt("alice", "h", &format!("guess{i}")));
    }
    assert_eq!(failed.set.len(), FAILED_CACHE);
    assert_eq!(failed.order.len(), FAILED_CACHE);
    // The oldest went first.
    assert!(!failed.set.contains(&src.attempt("alice", "h", "guess0")));
    assert!(failed.set.contains(&src.attempt("alice", "h", "guess10")));
    // User, hash and password each count, and their boundaries too.
    let a = src.attempt("ab", "c", "d");
    assert_ne!(a, src.attempt("a", "bc", "d"));
    assert_ne!(a, src.attempt("ab", "cd", ""));
    assert_ne!(a, src.attempt("ab", "c", "e"));
}

#[test]
fn a_failed_reload_is_retried_without_a_new_change_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (p, src) = alice(dir.path(), "pw");
    assert_eq!(src.reload_status(), (0, true));
    // Same length and inode as the fixed file written below, and both get
    // the same mtime: to the stat(2) stamps, nothing changes after this
    // write (as with two writes within one mtime tick).
    let good = "basic_auth_users: {}\n";
    let bad = "basic_auth_users: [x\n";
    assert_eq!(good.len(), bad.len());
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap() + Duration::from_secs(5);
    let put = |text: &str| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        std::io::Write::write_all(&mut &f, text.as_bytes()).unwrap();
        f.set_modified(mtime).unwrap();
    };
    put(bad);
    let t = Instant::now();
    assert_eq!(
        src.refresh(t + RELOAD_CHECK, false),
        Reload::Failed { logged: true }
    );
    assert_eq!(src.reload_status(), (1, false));
    assert!(src.current().auth_required(), "the old users stay in force");
    put(good);
    // Within the check interval: not even looked at.
    assert_eq!(
        src.refresh(t + RELOAD_CHECK * 3 / 2, false),
        Reload::Unchanged
    );
    // The first retry is due one second later, and now it loads.
    assert_eq!(src.refresh(t + RELOAD_CHECK * 2, false), Reload::Reloaded);
    assert!(!src.current().auth_required());
    assert_eq!(src.reload_status(), (1, true));
}

#[test]
fn a_retry_that_fails_the_same_way_is_not_logged_again_and_backs_off() {
    let dir = tempfile::tempdir().unwrap();
    let (p, src) = alice(dir.path(), "pw");
    std::fs::write(&p, "basic_auth_users: [x\n").unwrap();
    let t = Instant::now();
    let s = |secs: u64| src.refresh(t + Duration::from_secs(secs), false);
    assert_eq!(s(1), Reload::Failed { logged: true });
    // Retries at 2 s, then 2 s later (4), then 4 s later (8).
    assert_eq!(s(2), Reload::Failed { logged: false });
    assert_eq!(s(3), Reload::Unchanged);
    assert_eq!(s(4), Reload::Failed { logged: false });
    for secs in 5..8 {
        assert_eq!(s(secs), Reload::Unchanged);
    }
    assert_eq!(s(8), Reload::Failed { logged: false });
    assert_eq!(src.reload_status(), (4, false));
    // SIGHUP retries at once.
    assert_eq!(
        src.refresh(t + Duration::from_secs(9), true),
        Reload::Failed { logged: false }
    );
}

/// A device named as a PEM file (an endless one: /dev/zero) or as the web
/// config is refused after fstat, not read; so is a file past the cap. (A
/// FIFO, which would block the open: tests/web_config.rs.)
#[test]
fn special_and_huge_files_are_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: /dev/zero\n  key_file: key.pem\n",
    );
    let e = WebConfig::load(&p).err().unwrap().to_string();
    assert!(
        e.contains("cert_file") && e.contains("not a regular file (character device)"),
        "{e}"
    );
    let e = WebConfig::load(Path::new("/dev/null"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a regular file (character device)"), "{e}");
    let big = dir.path().join("big.yml");
    std::fs::write(&big, vec![b'#'; FILE_MAX + 1]).unwrap();
    let e = WebConfig::load(&big).err().unwrap().to_string();
    assert!(e.contains("larger than"), "{e}");
}

#[test]
fn an_empty_cipher_suite_list_is_the_default_set() {
    let invalid = |key: &'static str, reason: String| WebConfigError::Invalid {
        path: PathBuf::from("web.yml"),
        key,
        reason,
    };
    let default = rustls::crypto::ring::default_provider();
    let names = |p: &CryptoProvider| {
        p.cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect::<Vec<_>>()
    };
    let tls12 = |p: &CryptoProvider| suite_names(p).len();
    assert!(tls12(&default) > 0);
    let empty = provider(Some(Vec::new()), None, &invalid).unwrap();
    assert_eq!(names(&empty), names(&default));
    let one = provider(
        Some(vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into()]),
        None,
        &invalid,
    )
    .unwrap();
    assert_eq!(tls12(&one), 1);
    assert!(one.cipher_suites.len() > 1, "TLS 1.3 suites stay");
}
