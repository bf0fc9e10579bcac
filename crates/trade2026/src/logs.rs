//! `trade2026 logs`: search the logger (port 8112), follow new lines, or show an order's
//! timeline; and `trade2026 bench logs`. An HTTP/1.1 client of the logger over hyper (already
//! in the binary for `bench orders`), nothing more.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Empty};
use serde_json::Value;

#[derive(Args)]
pub struct LogsArgs {
    /// Lines of one service (gateway, engine, ptrc, execution_quality, compliance_scanner,
    /// feature_pipeline, logger, feeds, sinks, platform, or a pushed service label).
    #[arg(long)]
    service: Option<String>,
    /// Lines at this level or more severe: trace, debug, info, warn, error.
    #[arg(long, value_parser = ["trace", "debug", "info", "warn", "error"])]
    level: Option<String>,
    /// Words that must all occur (`word*` for a prefix), in the message or any field.
    #[arg(short, long)]
    q: Option<String>,
    /// From this time (RFC 3339 or a date), inclusive.
    #[arg(long)]
    from: Option<String>,
    /// Until this time, exclusive.
    #[arg(long)]
    to: Option<String>,
    /// Lines carrying this order id.
    #[arg(long)]
    order_id: Option<String>,
    /// Lines of this account.
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    symbol: Option<String>,
    /// How many of the newest matching lines to print (oldest of them first).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Keep printing new matching lines as they are stored, until Ctrl-C.
    #[arg(short, long, conflicts_with = "order")]
    follow: bool,
    /// Print the timeline of this order instead: its journal events and every line with its id.
    #[arg(long, value_name = "ORDER_ID")]
    order: Option<u64>,
    /// Print each line (or timeline entry) as JSON.
    #[arg(long)]
    json: bool,
    /// The logger's base URL (http only).
    #[arg(long, default_value = "http://127.0.0.1:8112")]
    url: String,
    /// API key (admin or compliance for every line; a trader key sees its accounts' lines).
    #[arg(long, env = "TRADE2026_API_KEY", hide_env_values = true)]
    key: Option<String>,
}

#[derive(Args)]
pub struct BenchLogsArgs {
    /// Folder of the store (`logs.db` in it); lines are added to what it holds.
    #[arg(long)]
    data_dir: PathBuf,
    /// Lines to add.
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn bench(args: BenchLogsArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| args.data_dir.display().to_string())?;
    let report = logger::bench::run(
        &args.data_dir.join(logger::FILE_NAME),
        args.lines,
        args.seed,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

/// `http://host:port[/prefix]` -> (authority, prefix).
fn base(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("--url {url:?}: only http:// URLs are supported"))?;
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        bail!("--url {url:?} names no host");
    }
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, prefix.to_owned()))
}

impl LogsArgs {
    fn query(&self, with_limit: bool) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("service", &self.service),
            ("level", &self.level),
            ("q", &self.q),
            ("from", &self.from),
            ("to", &self.to),
            ("order_id", &self.order_id),
            ("account", &self.account),
            ("symbol", &self.symbol),
        ] {
            if let Some(v) = v {
                pairs.push((k, v.clone()));
            }
        }
        if with_limit {
            pairs.push(("limit", self.limit.clamp(1, 1000).to_string()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", runtime::percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A connection to the logger.
struct Client {
    authority: String,
    prefix: String,
    key: Option<String>,
}

impl Client {
    /// `GET path` -> the response, failing with the API's message on a non-2xx status.
    async fn get(&self, path_and_query: &str) -> Result<hyper::Response<hyper::body::Incoming>> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .with_context(|| {
                format!(
                    "connecting to the logger at {} (is it running?)",
                    self.authority
                )
            })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .context("HTTP handshake with the logger")?;
        tokio::spawn(conn);
        let mut req = hyper::Request::get(format!("{}{path_and_query}", self.prefix))
            .header(hyper::header::HOST, &self.authority);
        if let Some(k) = &self.key {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {k}"));
        }
        let res = sender
            .send_request(req.body(Empty::<Bytes>::new())?)
            .await
            .context("request to the logger")?;
        if !res.status().is_success() {
            let status = res.status();
            let body = res.into_body().collect().await?.to_bytes();
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| {
                    let e = v.get("error")?;
                    Some(format!(
                        "{}: {}",
                        e.get("code")?.as_str()?,
                        e.get("message")?.as_str()?
                    ))
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            bail!("the logger answered {status}: {message}");
        }
        Ok(res)
    }

    async fn get_json(&self, path_and_query: &str) -> Result<Value> {
        let body = self
            .get(path_and_query)
            .await?
            .into_body()
            .collect()
            .await?;
        serde_json::from_slice(&body.to_bytes()).context("the logger's answer is not JSON")
    }
}

pub fn run(args: LogsArgs) -> Result<()> {
    let (authority, prefix) = base(&args.url)?;
    let client = Client {
        authority,
        prefix,
        key: args.key.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        if let Some(order) = args.order {
            return timeline(&client, order, args.json).await;
        }
        let mut lines: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        while lines.len() < args.limit {
            let mut path = format!("/logs?{}", args.query(true));
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", runtime::percent_encode(c)));
            }
            let page = client.get_json(&path).await?;
            if let Some(Value::Array(items)) = page.get("lines") {
                lines.extend(items.iter().cloned());
            }
            match page.get("next_cursor").and_then(Value::as_str) {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        lines.truncate(args.limit);
        let mut out = std::io::stdout().lock();
        for line in lines.iter().rev() {
            print_line(&mut out, line, args.json)?;
        }
        out.flush()?;
        drop(out);
        if args.follow {
            follow(&client, &args).await?;
        }
        Ok(())
    })
}

/// Prints `line` events of `GET /logs/tail` until the stream ends.
async fn follow(client: &Client, args: &LogsArgs) -> Result<()> {
    let mut body = client
        .get(&format!("/logs/tail?{}", args.query(false)))
        .await?
        .into_body();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the tail stream")?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        buf.extend_from_slice(data);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let mut kind = "message";
            let mut data = String::new();
            for l in text.lines() {
                if let Some(k) = l.strip_prefix("event:") {
                    kind = k.trim();
                } else if let Some(d) = l.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            match kind {
                "line" => {
                    if let Ok(v) = serde_json::from_str::<Value>(&data) {
                        let mut out = std::io::stdout().lock();
                        print_line(&mut out, &v, args.json)?;
                        out.flush()?;
                    }
                }
                "lagged" => eprintln!("trade2026 logs: {data}"),
                _ => {}
            }
        }
    }
    Ok(())
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `ts LEVEL service message order_id=.. account=.. symbol=.. key=value ...`
fn print_line(out: &mut impl Write, v: &Value, json: bool) -> Result<()> {
    if json {
        writeln!(out, "{v}")?;
        return Ok(());
    }
    write!(
        out,
        "{} {:<5} {:<12} {}",
        text(v, "ts"),
        text(v, "level").to_ascii_uppercase(),
        text(v, "service"),
        text(v, "message")
    )?;
    for k in ["order_id", "account", "symbol"] {
        if let Some(x) = v.get(k).and_then(Value::as_str) {
            write!(out, " {k}={x}")?;
        }
    }
    if let Some(Value::Object(fields)) = v.get("fields") {
        for (k, x) in fields {
            match x {
                Value::String(s) => write!(out, " {k}={s}")?,
                other => write!(out, " {k}={other}")?,
            }
        }
    }
    writeln!(out)?;
    Ok(())
}

async fn timeline(client: &Client, order: u64, json: bool) -> Result<()> {
    let t = client
        .get_json(&format!("/orders/{order}/timeline"))
        .await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&t)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "order {} (account {})",
        text(&t, "order_id"),
        t.get("account")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
    )?;
    for e in t
        .get("entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if text(e, "source") == "journal" {
            writeln!(
                out,
                "{} journal #{:<8} {:<16} {}",
                text(e, "ts"),
                e.get("seq").and_then(Value::as_u64).unwrap_or(0),
                text(e, "kind"),
                e.get("summary").map(Value::to_string).unwrap_or_default()
            )?;
        } else {
            write!(out, "{} log      ", text(e, "ts"))?;
            let mut line = e.clone();
            if let Value::Object(m) = &mut line {
                m.remove("ts");
                m.remove("order_id");
            }
            let mut buf = Vec::new();
            print_line(&mut buf, &line, false)?;
            out.write_all(String::from_utf8_lossy(&buf).trim_start().as_bytes())?;
        }
    }
    if t.get("lines_truncated").and_then(Value::as_bool) == Some(true) {
        writeln!(
            out,
            "(more log lines carry this order id than a timeline shows; use trade2026 logs --order-id {order})"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_prefix() {
        assert_eq!(
            base("http://127.0.0.1:8112").unwrap(),
            ("127.0.0.1:8112".into(), String::new())
        );
        assert_eq!(
            base("http://logs.local/api/").unwrap(),
            ("logs.local:80".into(), "/api".into())
        );
        assert!(base("https://x").is_err());
        assert!(base("http://").is_err());
    }

    #[test]
    fn a_line_prints_as_one_readable_row() {
        let v: Value = serde_json::json!({
            "ts": "2026-01-01T00:00:00.000000001Z", "level": "info", "service": "gateway",
            "message": "order accepted", "order_id": "42", "account": "a",
            "fields": {"status": "Accepted", "n": 3}
        });
        let mut out = Vec::new();
        print_line(&mut out, &v, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-01-01T00:00:00.000000001Z INFO  gateway      order accepted order_id=42 account=a n=3 status=Accepted\n"
        );
    }
}
