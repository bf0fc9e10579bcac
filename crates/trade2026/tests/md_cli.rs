//! `md normalize` on recordings as people have them: a JSON-lines recording with lines of no
//! known kind (skipped and reported, or fatal with `--strict`), checksums reported, and a zip
//! bomb refused.

mod common;

use std::io::Write;

use common::{bin, fixture};

/// The received messages of a cryptofeed text recording as a JSON-lines recording, with a
/// stray line after the header.
fn json_lines_with_a_stray_line(recording: &str) -> String {
    let mut lines = vec![r#"{"t":"header","version":1}"#.to_owned()];
    lines.push("-- recorder restarted --".to_owned());
    for line in recording.lines() {
        if line.contains(" <-") || line.trim().is_empty() {
            continue;
        }
        let (ts, msg) = line.split_once(": ").unwrap();
        let data = serde_json::Value::String(msg.to_owned());
        lines.push(format!(
            r#"{{"t":"recv","conn":1,"ts":{ts},"data":{data}}}"#
        ));
    }
    lines.join("\n")
}

#[test]
fn md_normalize_skips_unknown_lines_of_a_json_lines_recording_and_strict_stops() {
    let Some(path) = fixture("marketdata/okx/cryptofeed_OKX.ws.1.0") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("okx.jsonl");
    std::fs::write(
        &jsonl,
        json_lines_with_a_stray_line(&std::fs::read_to_string(&path).unwrap()),
    )
    .unwrap();
    let normalize = |extra: &[&str]| {
        bin()
            .args(["md", "normalize", "--exchange", "okx", "--file"])
            .arg(&jsonl)
            .args(extra)
            .output()
            .unwrap()
    };

    let out = normalize(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let from_jsonl = String::from_utf8(out.stdout).unwrap();
    assert!(
        stderr.contains("1 unknown lines skipped")
            && stderr.contains(
                "line 2: bad recording record: not a JSON record (input: -- recorder restarted --)"
            ),
        "{stderr}"
    );
    assert!(
        stderr.contains("book checksums: 290 verified, 0 mismatched"),
        "{stderr}"
    );
    // The same events as the original recording.
    let original = bin()
        .args(["md", "normalize", "--exchange", "okx", "--file"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(original.status.success());
    assert_eq!(from_jsonl, String::from_utf8(original.stdout).unwrap());
    assert_eq!(from_jsonl.lines().count(), 392);

    let out = normalize(&["--strict"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("trade2026: error:") && stderr.contains("line 2: bad recording record"),
        "{stderr}"
    );
}

#[test]
fn md_normalize_refuses_a_zip_bomb_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("data.jsonl", options).unwrap();
    zip.write_all(&vec![b'\n'; 4 << 20]).unwrap();
    zip.finish().unwrap();

    let out = bin()
        .args([
            "md",
            "normalize",
            "--exchange",
            "binance",
            "--unzip-limit",
            "1000000",
            "--file",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("zip entry \"data.jsonl\" unpacks to more than 1000000 bytes")
            && stderr.contains("--unzip-limit"),
        "{stderr}"
    );
    // Under the default limit the same archive is read.
    let out = bin()
        .args(["md", "normalize", "--exchange", "binance", "--file"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
