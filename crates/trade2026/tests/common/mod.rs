//! Helpers for tests that run the real `trade2026` binary.
#![allow(dead_code)]

pub mod cluster;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trade2026"))
}

/// A path under ../shared/fixtures; under CI=true a missing fixture fails the test.
pub fn fixture(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(rel);
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "fixture {} missing under CI",
        p.display()
    );
    eprintln!("skipping: fixture {} not found", p.display());
    None
}

/// An external program a test needs, from the environment variable `var` (set by `.ci/run`):
/// `None` (the test skips, saying so) when unset, except under CI=true where it fails.
pub fn tool(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{var} is not set under CI (.ci/run installs {what})"
            );
            eprintln!("skipping: set {var} to {what}'s path");
            None
        }
    }
}

/// `trade2026 keys create <args> --data-dir <dir>`: the key's id and the key (printed once).
pub fn create_key(dir: &Path, args: &[&str]) -> (String, String) {
    let out = bin()
        .args(["keys", "create"])
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run trade2026 keys create");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "keys create {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {name:?} line in {stdout:?}"))
    };
    (field("id "), field("key "))
}

/// A running `trade2026 up` on ephemeral ports with its data under `dir`.
pub struct Platform {
    pub child: Child,
    pub gateway: SocketAddr,
    pub quality: SocketAddr,
    pub ptrc: SocketAddr,
    pub features: SocketAddr,
    /// The dev keys `up` printed: trader for test_account, and admin.
    pub trader_key: String,
    pub admin_key: String,
    pub scanner: SocketAddr,
    pub logger: SocketAddr,
    pub monitoring: SocketAddr,
    pub banner: Vec<String>,
    stdout: BufReader<ChildStdout>,
}

impl Platform {
    pub fn start(dir: &Path, extra: &[&str]) -> Platform {
        Self::start_with_env(dir, extra, &[])
    }

    pub fn start_with_env(dir: &Path, extra: &[&str], env: &[(&str, String)]) -> Platform {
        let mut child = bin()
            .arg("up")
            .arg("--data-dir")
            .arg(dir)
            .args(extra)
            .env("TRADE2026_SERVICES__GATEWAY", "0")
            .env("TRADE2026_SERVICES__EXECUTION_QUALITY", "0")
            .env("TRADE2026_SERVICES__PTRC", "0")
            .env("TRADE2026_SERVICES__FEATURE_PIPELINE", "0")
            .env("TRADE2026_SERVICES__COMPLIANCE_SCANNER", "0")
            .env("TRADE2026_SERVICES__LOGGER", "0")
            .env("TRADE2026_SERVICES__MONITORING", "0")
            .env("TRADE2026_FEED__SYNTHETIC__TICK_INTERVAL_MS", "50")
            .env("RUST_LOG", "warn")
            // The caller's variables win (a test may fix a port).
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn trade2026 up");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = Vec::new();
        let mut gateway = None;
        let mut quality = None;
        let mut ptrc = None;
        let mut features = None;
        let (mut trader_key, mut admin_key) = (String::new(), String::new());
        let mut scanner = None;
        let mut logger = None;
        let mut monitoring = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!("trade2026 up exited before it was ready; printed {banner:?}");
            }
            let line = line.trim_end().to_string();
            let addr = |rest: &str| -> SocketAddr {
                let url = rest.split_whitespace().next().unwrap();
                url.trim_start_matches("http://").parse().unwrap()
            };
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix("gateway") {
                gateway = Some(addr(rest));
            } else if let Some(rest) = trimmed.strip_prefix("api key") {
                trader_key = rest.split_whitespace().next().unwrap().to_string();
            } else if let Some(rest) = trimmed.strip_prefix("admin key") {
                admin_key = rest.split_whitespace().next().unwrap().to_string();
            } else if let Some(rest) = trimmed.strip_prefix("features") {
                features = Some(addr(rest));
            } else if let Some(rest) = trimmed.strip_prefix("ptrc") {
                ptrc = Some(addr(rest));
            } else if let Some(rest) = trimmed.strip_prefix("exec quality") {
                quality = Some(addr(rest));
            } else if let Some(rest) = trimmed.strip_prefix("compliance") {
                scanner = Some(addr(rest));
            } else if let Some(rest) = trimmed.strip_prefix("logger") {
                logger = Some(addr(rest));
            } else if let Some(rest) = trimmed.strip_prefix("monitoring") {
                monitoring = Some(addr(rest));
            }
            let done = line.starts_with("Press Ctrl-C");
            banner.push(line);
            if done {
                break;
            }
        }
        Platform {
            child,
            gateway: gateway.expect("banner names the gateway address"),
            quality: quality.expect("banner names the execution-quality address"),
            ptrc: ptrc.expect("banner names the ptrc address"),
            features: features.expect("banner names the feature pipeline address"),
            trader_key,
            admin_key,
            scanner: scanner.expect("banner names the compliance-scanner address"),
            logger: logger.expect("banner names the logger address"),
            monitoring: monitoring.expect("banner names the monitoring address"),
            banner,
            stdout,
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for a clean exit; returns the rest of stdout.
    pub fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let exit = self.child.wait().unwrap();
        assert!(
            exit.success(),
            "trade2026 up exited with {exit}; stdout: {rest}"
        );
        rest
    }
}

/// A test that fails mid-way must not leave its platform running (it would outlive the test's
/// temporary directory and fill the log with errors).
impl Drop for Platform {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal HTTP/1.1 GET (the tests need no HTTP client library).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, None)
}

/// `GET /health` until it answers 200 (at most 10 s): a service reports 503 "starting" until
/// its consumers are ready, which on a loaded machine can outlast the banner. Returns the last
/// answer; any answer but 200 or "starting" is returned at once.
#[allow(dead_code)]
pub fn health_when_ready(addr: SocketAddr) -> (u16, String) {
    let ready_by = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = http_get(addr, "/health");
        if status == 200 || !body.contains("\"status\":\"starting\"") || Instant::now() > ready_by {
            return (status, body);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    try_http(addr, method, path, body).expect("HTTP exchange failed")
}

/// [`http`] with `Authorization: Bearer <key>`.
pub fn http_as(
    addr: SocketAddr,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// Like [`http`], but `None` when the connection fails (the server was killed).
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Some((
        status,
        if chunked {
            dechunk(body)?
        } else {
            body.to_string()
        },
    ))
}

/// The body of a chunked response (large answers are streamed in chunks).
fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// Every item of a paged listing (`/orders`, `/fills`), oldest first, following the cursor
/// (the id in `id_field` of a page's last item) until a page comes back short.
pub fn get_all(addr: SocketAddr, path: &str, id_field: &str) -> Vec<serde_json::Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor: Option<u64> = None;
    loop {
        let url = match cursor {
            Some(c) => format!("{path}{sep}order=asc&limit=1000&cursor={c}"),
            None => format!("{path}{sep}order=asc&limit=1000"),
        };
        let (status, body) = http_get(addr, &url);
        assert_eq!(status, 200, "{url}: {body}");
        let page: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        let n = page.len();
        cursor = page.last().and_then(|v| v[id_field].as_u64());
        out.extend(page);
        if n < 1000 {
            return out;
        }
    }
}
