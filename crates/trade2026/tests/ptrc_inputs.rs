//! `trade2026 ptrc ...` on hostile CSV inputs (issue 10, item 7): a position that adds up past
//! the decimal range and a line too long to hold are refused with a message naming the file and
//! line and a nonzero exit, never a panic; the files are read as streams.

mod common;

use common::bin;

fn run(args: &[&str], files: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.current_dir(dir.path()).args(args);
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PRICES: &str = "date,symbol,close\n2024-01-02,X,100\n2024-01-03,X,101\n2024-01-04,X,99\n";

#[test]
fn positions_overflowing_decimal_are_an_error_not_a_panic() {
    let positions = "symbol,qty\nX,79228162514264337593543950335\nX,1\n";
    for cmd in [
        &[
            "ptrc",
            "var",
            "--positions",
            "p.csv",
            "--prices",
            "prices.csv",
        ][..],
        &[
            "ptrc",
            "stress",
            "--shock",
            "X=-20%",
            "--positions",
            "p.csv",
            "--prices",
            "prices.csv",
        ][..],
    ] {
        let (ok, err) = run(cmd, &[("p.csv", positions), ("prices.csv", PRICES)]);
        assert!(!ok, "{cmd:?} must fail");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains("p.csv:3: column \"qty\"") && err.contains("exact decimal range"),
            "{err}"
        );
    }
}

#[test]
fn a_huge_line_is_refused_naming_it() {
    let long = format!(
        "ts,account,symbol,side,qty,price,fee\n2024-01-02,A,X,buy,1,10,0\n2024-01-03,A,X,buy,1,10,0{}\n",
        "0".repeat(100_000)
    );
    for cmd in [
        &["ptrc", "pnl", "--trades", "t.csv"][..],
        &["ptrc", "tax", "--year", "2024", "--trades", "t.csv"][..],
    ] {
        let (ok, err) = run(cmd, &[("t.csv", &long)]);
        assert!(!ok, "{cmd:?} must fail");
        assert!(
            err.contains("t.csv:3: the record on this line is longer than 65536 bytes"),
            "{err}"
        );
    }
    // The same file with the line cut to size is fine.
    let short = long.replace(&"0".repeat(100_000), "");
    let (ok, err) = run(&["ptrc", "pnl", "--trades", "t.csv"], &[("t.csv", &short)]);
    assert!(ok, "{err}");
}
