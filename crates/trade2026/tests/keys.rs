//! `trade2026 keys create | list | revoke` (issue 10, item 8): the key is printed once, the
//! listing never shows a key or its hash, the file is private, errors are messages with a
//! nonzero exit, and a running platform follows creations and revocations.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Platform, bin, create_key, http_as};

/// Runs `trade2026 keys <args> --data-dir <dir>`: (exit code, stdout, stderr).
fn keys(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = bin()
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run trade2026 keys");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The value of the `name` line of `keys create`'s output.
fn field<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name).map(str::trim))
        .unwrap_or_else(|| panic!("no {name:?} line in {stdout:?}"))
}

#[test]
fn create_list_revoke_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (trader_id, trader_key) = create_key(&data, &["--role", "trader", "--accounts", "a1,b2"]);
    assert!(trader_key.starts_with("t26_"), "{trader_key}");
    let (admin_id, admin_key) = create_key(&data, &["--role", "admin"]);
    let (code, out, _) = keys(
        &data,
        &["create", "--role", "compliance", "--accounts", "*"],
    );
    assert_eq!(code, 0);
    assert_eq!(field(&out, "accounts"), "*");

    let stored = std::fs::read_to_string(data.join("api_keys.json")).unwrap();
    assert!(!stored.contains(&trader_key) && !stored.contains(&admin_key));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("api_keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }

    let (code, list, err) = keys(&data, &["list"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{list}");
    assert_eq!(rows[0][..3], [trader_id.as_str(), "trader", "a1,b2"]);
    assert_eq!(rows[1][..3], [admin_id.as_str(), "admin", "*"]);
    assert_eq!(rows[2][1..3], ["compliance", "*"]);
    for row in &rows {
        assert!(
            model::Timestamp::parse_rfc3339(row[3]).is_ok(),
            "created time: {row:?}"
        );
    }
    assert!(!list.contains("t26_"), "no key in the listing: {list}");
    let stored_hashes: Vec<serde_json::Value> = serde_json::from_str(&stored).unwrap();
    for k in &stored_hashes {
        let hash = k["sha256"].as_str().unwrap();
        assert!(!list.contains(hash), "no hash in the listing");
    }

    let (code, out, err) = keys(&data, &["revoke", &trader_id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&trader_id), "{out}");
    let (_, list, _) = keys(&data, &["list"]);
    assert!(
        !list.contains(&trader_id) && list.contains(&admin_id),
        "{list}"
    );
    let (code, _, err) = keys(&data, &["revoke", &trader_id]);
    assert_ne!(code, 0);
    assert!(
        err.contains("no key") && err.contains(&trader_id),
        "the message names the unknown id: {err}"
    );
}

#[test]
fn bad_arguments_are_messages_with_a_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &["create", "--role", "boss"][..],
            "possible values: trader, compliance, admin",
        ),
        (
            &["create", "--role", "trader", "--accounts", "a,,b"],
            "empty account",
        ),
        (
            &["create", "--role", "trader", "--accounts", ""],
            "empty account",
        ),
        (
            &["create", "--role", "trader"],
            "a trader key names its accounts",
        ),
        (&["revoke", "k_nothing"], "no key \"k_nothing\""),
    ] {
        let (code, out, err) = keys(dir.path(), args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!out.contains("t26_"), "{args:?}: no key was made");
    }
    let (code, _, err) = keys(&dir.path().join("missing"), &["list"]);
    assert_ne!(code, 0);
    assert!(err.contains("no data dir"), "{err}");
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_running_platform_follows_created_and_revoked_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (early_id, early) = create_key(dir.path(), &["--role", "compliance", "--accounts", "*"]);
    let p = Platform::start(dir.path(), &[]);
    // Every port takes the key from the file.
    let reads = [
        (p.gateway, "/orders"),
        (p.ptrc, "/reports"),
        (p.quality, "/quality"),
        (p.scanner, "/alerts"),
        (p.features, "/features/position_features/someone"),
    ];
    let status = |key: &str, (addr, path): (std::net::SocketAddr, &str)| {
        http_as(addr, key, "GET", path, None).0
    };
    for read in reads {
        eventually("the stored key works", || {
            matches!(status(&early, read), 200 | 404)
        });
    }
    // A key created while the platform runs works within about a second.
    let (late_id, late) = create_key(dir.path(), &["--role", "trader", "--accounts", "late"]);
    eventually("the new key is accepted", || {
        status(&late, (p.gateway, "/orders")) == 200
    });

    let (code, _, err) = keys(dir.path(), &["revoke", &early_id]);
    assert_eq!(code, 0, "{err}");
    for read in reads {
        eventually("the revoked key is refused on every port", || {
            status(&early, read) == 401
        });
    }
    assert_eq!(
        status(&late, (p.gateway, "/orders")),
        200,
        "the others stay"
    );
    assert_eq!(
        status(&p.admin_key, (p.gateway, "/orders")),
        200,
        "dev keys stay"
    );
    let (code, _, _) = keys(dir.path(), &["revoke", &late_id]);
    assert_eq!(code, 0);
    eventually("the second revoked key is refused", || {
        status(&late, (p.gateway, "/orders")) == 401
    });
    p.stop();
}
