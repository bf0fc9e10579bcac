//! Connection strings: Feast's `host:port[,db=N][,password=…][,username=…][,ssl=true]` (the plan
//! writes `valkey:6379`) and URLs (`redis://[user:pass@]host:port[/db]`, as
//! `TRADE2026_ONLINE_STORE` carries). Both parse into one [`Endpoint`], which renders either form:
//! the Rust client needs the URL, Feast's `feature_store.yaml` needs its own form.

use crate::error::FeastStoreError;

/// Where the online store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: bool,
}

const DEFAULT_PORT: u16 = 6379;

impl Endpoint {
    /// Parses a URL (`redis://`, `rediss://`, `valkey://`, `valkeys://`) or Feast's form.
    pub fn parse(input: &str) -> Result<Endpoint, FeastStoreError> {
        let bad = |reason: &str| FeastStoreError::InvalidConnection {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if let Some((scheme, rest)) = s.split_once("://") {
            let tls = match scheme.to_ascii_lowercase().as_str() {
                "redis" | "valkey" => false,
                "rediss" | "valkeys" => true,
                _ => {
                    return Err(bad(
                        "scheme must be redis://, rediss://, valkey:// or valkeys://",
                    ));
                }
            };
            let rest = rest.split(['?', '#']).next().unwrap_or("");
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let (userinfo, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, authority),
            };
            let (username, password) = match userinfo {
                None => (None, None),
                Some(u) => {
                    let (user, pass) = match u.split_once(':') {
                        Some((a, b)) => (a, Some(b)),
                        None => (u, None),
                    };
                    let user = percent_decode(user).ok_or_else(|| bad("bad %-escape"))?;
                    let pass = pass
                        .map(|p| percent_decode(p).ok_or_else(|| bad("bad %-escape")))
                        .transpose()?;
                    (
                        (!user.is_empty()).then_some(user),
                        pass.filter(|p| !p.is_empty()),
                    )
                }
            };
            let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host:port"))?;
            let db = if path.is_empty() {
                0
            } else {
                path.parse().map_err(|_| bad("database must be a number"))?
            };
            return Ok(Endpoint {
                host,
                port,
                db,
                username,
                password,
                tls,
            });
        }
        let mut parts = s.split(',');
        let (host, port) = split_host_port(parts.next().unwrap_or("").trim())
            .ok_or_else(|| bad("bad host:port"))?;
        let mut ep = Endpoint {
            host,
            port,
            db: 0,
            username: None,
            password: None,
            tls: false,
        };
        for opt in parts {
            let (k, v) = opt
                .split_once('=')
                .ok_or_else(|| bad("option must be key=value"))?;
            // Feast JSON-decodes option values ("\"secret\"" is secret); plain text stays as is.
            let v = serde_json::from_str::<serde_json::Value>(v.trim())
                .ok()
                .map(|j| match j {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .unwrap_or_else(|| v.trim().to_string());
            match k.trim() {
                "db" => ep.db = v.parse().map_err(|_| bad("db must be a number"))?,
                "password" => ep.password = Some(v),
                "username" => ep.username = Some(v),
                "ssl" => ep.tls = v.eq_ignore_ascii_case("true"),
                _ => {} // Feast passes other redis-py options through; they don't affect us
            }
        }
        Ok(ep)
    }

    /// `redis://` / `rediss://` URL for the Rust client.
    pub fn to_url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let auth = match (&self.username, &self.password) {
            (None, None) => String::new(),
            (u, p) => format!(
                "{}{}@",
                percent_encode(u.as_deref().unwrap_or("")),
                p.as_deref()
                    .map(|p| format!(":{}", percent_encode(p)))
                    .unwrap_or_default()
            ),
        };
        format!(
            "{scheme}://{auth}{}:{}/{}",
            self.host_for_url(),
            self.port,
            self.db
        )
    }

    /// Feast's `connection_string`: `host:port[,db=N][,username=…][,password=…][,ssl=true]`.
    pub fn to_feast_connection_string(&self) -> String {
        let mut s = format!("{}:{}", self.host_for_url(), self.port);
        if self.db != 0 {
            s.push_str(&format!(",db={}", self.db));
        }
        if let Some(u) = &self.username {
            s.push_str(&format!(",username={u}"));
        }
        if let Some(p) = &self.password {
            s.push_str(&format!(",password={p}"));
        }
        if self.tls {
            s.push_str(",ssl=true");
        }
        s
    }

    fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return None,
        };
        return (!host.is_empty()).then(|| (host.to_string(), port));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (s, DEFAULT_PORT),
    };
    (!host.is_empty() && !host.contains(':')).then(|| (host.to_string(), port))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let h = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_form_and_url_form() {
        let e = Endpoint::parse("valkey:6379").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.db), ("valkey", 6379, 0));
        assert_eq!(e.to_url(), "redis://valkey:6379/0");
        assert_eq!(e.to_feast_connection_string(), "valkey:6379");

        let e = Endpoint::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(e.to_url(), "redis://127.0.0.1:6379/0");
        assert_eq!(e.to_feast_connection_string(), "127.0.0.1:6379");

        assert_eq!(Endpoint::parse("localhost").unwrap().port, 6379);
        assert_eq!(
            Endpoint::parse("valkey://h").unwrap().to_url(),
            "redis://h:6379/0"
        );
    }

    #[test]
    fn credentials_and_db_round_trip() {
        let e = Endpoint::parse("redis://bob:p%40ss%3Aw@h:7000/3").unwrap();
        assert_eq!(e.username.as_deref(), Some("bob"));
        assert_eq!(e.password.as_deref(), Some("p@ss:w"));
        assert_eq!(e.db, 3);
        assert_eq!(
            e.to_feast_connection_string(),
            "h:7000,db=3,username=bob,password=p@ss:w"
        );
        assert_eq!(e.to_url(), "redis://bob:p%40ss%3Aw@h:7000/3");

        let f = Endpoint::parse("h:7000,db=3,username=bob,password=\"p@ss:w\"").unwrap();
        assert_eq!(f, e);
        let t = Endpoint::parse("h:1,ssl=true").unwrap();
        assert!(t.tls);
        assert_eq!(t.to_url(), "rediss://h:1/0");
        let v6 = Endpoint::parse("redis://[::1]:6380").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 6380));
        assert_eq!(v6.to_url(), "redis://[::1]:6380/0");
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "http://h:1",
            "h:notaport",
            "h:1,db=x",
            "h:1,nokv",
            "redis://h:1/x",
            ":6379",
        ] {
            assert!(
                matches!(
                    Endpoint::parse(s),
                    Err(FeastStoreError::InvalidConnection { .. })
                ),
                "{s:?}"
            );
        }
    }
}
