//! Whole inputs: format detection, the cryptofeed recording reader, NDJSON, JSON documents,
//! Binance `T_DEPTH` CSV and zip archives, and [`normalize`], which writes one JSON event per
//! line.
//!
//! Detection ([`detect_format`]) looks at the first bytes / first non-empty line only:
//! * `PK\x03\x04`: a zip; every file inside is detected and read on its own.
//! * `symbol,timestamp,first_update_id,...` header: Binance public-data `T_DEPTH` CSV.
//! * `<url> <-> <ts>`, `<url> -> <ts>: ..`, `<url> <- <ts>: ..` or `<ts>: {..`: a cryptofeed
//!   recording. Sent lines (`<-`) are skipped; REST lines (`->`) give the request URL, whose
//!   `symbol=` / `instId=` / `pair=` / `product_id=` names the symbol of bodies that lack one;
//!   the recording time is the receive time of every message.
//! * a first line that is a complete JSON value: NDJSON, one message per line.
//! * anything else: JSON document(s), e.g. a pretty-printed REST response.

use std::io::{self, BufWriter, Read, Write};

use model::{BookLevel, BookSide, Event, InstrumentId, Price, Quantity, Symbol, Timestamp};

use crate::error::{NormalizeError, snippet};
use crate::{Exchange, MessageContext, MessageKind, parse_into};

/// What [`detect_format`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    /// One JSON message per line.
    Ndjson,
    /// One (or several concatenated) JSON documents, possibly pretty-printed.
    JsonDocument,
    /// A cryptofeed raw recording (`sample_data/*.ws.*`, `*.http.*`).
    CryptofeedRecording,
    /// Binance public-data order-book CSV (`T_DEPTH` layout).
    BinanceDepthCsv,
    /// A zip archive of any of the above.
    Zip,
}

/// Options of [`normalize_with`]. The default is strict: the first bad message stops the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// Skip bad messages (counting them in [`NormalizeStats::errors`]) instead of stopping.
    pub lenient: bool,
    /// Symbol for REST bodies that do not name one (see [`MessageContext::symbol`]).
    pub symbol: Option<String>,
    /// Bar interval for REST candle lists (see [`MessageContext::interval`]).
    pub interval: Option<String>,
    /// Receive time for inputs without one (all but cryptofeed recordings); default: now.
    pub recv_ts: Option<Timestamp>,
}

/// What a run read and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizeStats {
    pub format: InputFormat,
    /// Messages handed to the parser (CSV: groups of rows forming one book event).
    pub messages: u64,
    /// Events written.
    pub events: u64,
    /// Control messages skipped (acks, heartbeats, status).
    pub control: u64,
    /// Recording lines the client sent (subscribe requests), skipped.
    pub sent: u64,
    /// Bad messages skipped in lenient mode.
    pub errors: u64,
    /// The first of those, with its line number.
    pub first_error: Option<String>,
}

impl NormalizeStats {
    fn new(format: InputFormat) -> Self {
        NormalizeStats {
            format,
            messages: 0,
            events: 0,
            control: 0,
            sent: 0,
            errors: 0,
            first_error: None,
        }
    }
    fn add(&mut self, other: NormalizeStats) {
        self.messages += other.messages;
        self.events += other.events;
        self.control += other.control;
        self.sent += other.sent;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Guesses the input's format from its first bytes / first non-empty line.
pub fn detect_format(input: &[u8]) -> InputFormat {
    if input.starts_with(b"PK\x03\x04") {
        return InputFormat::Zip;
    }
    let first = input
        .split(|b| *b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    if first.starts_with("symbol,timestamp,first_update_id") {
        return InputFormat::BinanceDepthCsv;
    }
    if matches!(
        recording_line(&first),
        Ok(RecLine::Connect | RecLine::Sent | RecLine::Rest { .. } | RecLine::Received { .. })
    ) {
        return InputFormat::CryptofeedRecording;
    }
    if serde_json::from_str::<serde::de::IgnoredAny>(&first).is_ok() {
        InputFormat::Ndjson
    } else {
        InputFormat::JsonDocument
    }
}

/// One line of a cryptofeed recording.
#[derive(Debug, PartialEq, Eq)]
enum RecLine<'a> {
    Connect,
    Sent,
    Rest {
        url: &'a str,
        ts: Timestamp,
        body: &'a str,
    },
    Received {
        ts: Timestamp,
        body: &'a str,
    },
}

fn ts_body(s: &str) -> Result<(Timestamp, &str), &'static str> {
    let (ts, body) = s.split_once(": ").ok_or("expected \"<ts>: <message>\"")?;
    let ts = crate::common::decimal_secs(ts).ok_or("bad recording timestamp")?;
    Ok((ts, body))
}

fn recording_line(line: &str) -> Result<RecLine<'_>, &'static str> {
    if line.starts_with(|c: char| c.is_ascii_digit()) {
        let (ts, body) = ts_body(line)?;
        return Ok(RecLine::Received { ts, body });
    }
    let (url, rest) = line.split_once(' ').ok_or("not a recording line")?;
    if !url.contains("://") {
        return Err("not a recording line");
    }
    if let Some(ts) = rest.strip_prefix("<-> ") {
        crate::common::decimal_secs(ts.trim()).ok_or("bad recording timestamp")?;
        Ok(RecLine::Connect)
    } else if rest.starts_with("<- ") {
        Ok(RecLine::Sent)
    } else if let Some(r) = rest.strip_prefix("-> ") {
        let (ts, body) = ts_body(r)?;
        Ok(RecLine::Rest { url, ts, body })
    } else {
        Err("not a recording line")
    }
}

/// The symbol named in a REST request URL (`?symbol=XMRBTC`, `?instId=BTC-USDT`,
/// `?pair=XBTUSD`, `?product_id=BTC-USD` or `/products/BTC-USD/...`).
pub fn symbol_from_url(url: &str) -> Option<&str> {
    if let Some((_, query)) = url.split_once('?') {
        for kv in query.split('&') {
            if let Some((k, v)) = kv.split_once('=')
                && matches!(k, "symbol" | "instId" | "pair" | "product_id")
                && !v.is_empty()
            {
                return Some(v);
            }
        }
    }
    let path = url.split('?').next().unwrap_or(url);
    let mut segs = path.split('/');
    segs.find(|s| *s == "products")?;
    segs.next().filter(|s| !s.is_empty())
}

/// Reads `input` and writes every event as one JSON line to `out`. Strict: stops at the
/// first bad message with its line number.
pub fn normalize<R: Read, W: Write>(
    exchange: Exchange,
    input: R,
    out: &mut W,
) -> Result<NormalizeStats, NormalizeError> {
    normalize_with(exchange, input, out, &NormalizeOptions::default())
}

/// [`normalize`] with options (lenient mode, symbol / interval hints, receive time).
pub fn normalize_with<R: Read, W: Write>(
    exchange: Exchange,
    mut input: R,
    out: &mut W,
    opts: &NormalizeOptions,
) -> Result<NormalizeStats, NormalizeError> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(NormalizeError::Read)?;
    normalize_bytes(exchange, &bytes, out, opts)
}

/// [`normalize_with`] on bytes already in memory.
pub fn normalize_bytes<W: Write>(
    exchange: Exchange,
    input: &[u8],
    out: &mut W,
    opts: &NormalizeOptions,
) -> Result<NormalizeStats, NormalizeError> {
    let mut w = BufWriter::new(out);
    let stats = scan(exchange, input, opts, |_, _, events| {
        for e in events {
            serde_json::to_writer(&mut w, e).map_err(io::Error::from)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    w.flush().map_err(NormalizeError::Write)?;
    Ok(stats)
}

/// Where a message came from: its 1-based line, and the zip entry for zipped input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position<'a> {
    pub line: usize,
    pub entry: Option<&'a str>,
}

/// The engine under [`normalize`]: detects the format, parses every message and hands each
/// successfully parsed message's kind and events to `on_message` (control messages included,
/// with no events). Errors of `on_message` stop the run as [`NormalizeError::Write`].
pub fn scan<F>(
    exchange: Exchange,
    input: &[u8],
    opts: &NormalizeOptions,
    mut on_message: F,
) -> Result<NormalizeStats, NormalizeError>
where
    F: FnMut(Position<'_>, MessageKind, &[Event]) -> io::Result<()>,
{
    let recv_ts = opts.recv_ts.unwrap_or_else(Timestamp::now);
    let format = detect_format(input);
    if format != InputFormat::Zip {
        return scan_plain(
            exchange,
            input,
            None,
            format,
            opts,
            recv_ts,
            &mut on_message,
        );
    }
    let mut archive =
        zip::ZipArchive::new(io::Cursor::new(input)).map_err(|e| NormalizeError::Input {
            line: 0,
            entry: None,
            reason: format!("bad zip archive: {e}"),
            snippet: String::new(),
        })?;
    let mut total = NormalizeStats::new(InputFormat::Zip);
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(|e| NormalizeError::Input {
            line: 0,
            entry: None,
            reason: format!("bad zip entry {i}: {e}"),
            snippet: String::new(),
        })?;
        if file.is_dir() {
            continue;
        }
        let name = file.name().to_owned();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| NormalizeError::Input {
                line: 0,
                entry: Some(name.clone()),
                reason: format!("cannot unpack: {e}"),
                snippet: String::new(),
            })?;
        let inner = detect_format(&bytes);
        if inner == InputFormat::Zip {
            return Err(NormalizeError::Input {
                line: 0,
                entry: Some(name),
                reason: "nested zip archives are not read".into(),
                snippet: String::new(),
            });
        }
        let stats = scan_plain(
            exchange,
            &bytes,
            Some(&name),
            inner,
            opts,
            recv_ts,
            &mut on_message,
        )?;
        total.add(stats);
    }
    Ok(total)
}

/// One message to parse.
struct Msg<'a> {
    line: usize,
    text: &'a str,
    recv_ts: Timestamp,
    symbol: Option<&'a str>,
}

struct Runner<'o, 'f, F> {
    exchange: Exchange,
    entry: Option<&'o str>,
    opts: &'o NormalizeOptions,
    stats: NormalizeStats,
    buf: Vec<Event>,
    on_message: &'f mut F,
}

impl<F> Runner<'_, '_, F>
where
    F: FnMut(Position<'_>, MessageKind, &[Event]) -> io::Result<()>,
{
    fn entry(&self) -> Option<String> {
        self.entry.map(str::to_owned)
    }

    /// Counts a bad message (lenient) or returns the error (strict).
    fn bad(&mut self, err: NormalizeError) -> Result<(), NormalizeError> {
        if !self.opts.lenient {
            return Err(err);
        }
        self.stats.errors += 1;
        if self.stats.first_error.is_none() {
            self.stats.first_error = Some(err.to_string());
        }
        Ok(())
    }

    fn message(&mut self, m: Msg<'_>) -> Result<(), NormalizeError> {
        self.stats.messages += 1;
        let ctx = MessageContext {
            recv_ts: m.recv_ts,
            symbol: self.opts.symbol.as_deref().or(m.symbol),
            interval: self.opts.interval.as_deref(),
        };
        self.buf.clear();
        match parse_into(self.exchange, m.text, &ctx, &mut self.buf) {
            Ok(kind) => self.deliver(m.line, kind),
            Err(source) => self.bad(NormalizeError::Parse {
                line: m.line,
                entry: self.entry(),
                source,
            }),
        }
    }

    fn deliver(&mut self, line: usize, kind: MessageKind) -> Result<(), NormalizeError> {
        if kind == MessageKind::Control {
            self.stats.control += 1;
        }
        self.stats.events += self.buf.len() as u64;
        let pos = Position {
            line,
            entry: self.entry,
        };
        (self.on_message)(pos, kind, &self.buf).map_err(NormalizeError::Write)
    }
}

#[allow(clippy::too_many_arguments)]
fn scan_plain<F>(
    exchange: Exchange,
    input: &[u8],
    entry: Option<&str>,
    format: InputFormat,
    opts: &NormalizeOptions,
    recv_ts: Timestamp,
    on_message: &mut F,
) -> Result<NormalizeStats, NormalizeError>
where
    F: FnMut(Position<'_>, MessageKind, &[Event]) -> io::Result<()>,
{
    let text = std::str::from_utf8(input).map_err(|e| {
        let at = e.valid_up_to();
        NormalizeError::Input {
            line: line_of(input, at),
            entry: entry.map(str::to_owned),
            reason: "input is not UTF-8".into(),
            snippet: snippet(&String::from_utf8_lossy(
                &input[at..input.len().min(at + 40)],
            )),
        }
    })?;
    let mut r = Runner {
        exchange,
        entry,
        opts,
        stats: NormalizeStats::new(format),
        buf: Vec::new(),
        on_message,
    };
    match format {
        InputFormat::Ndjson => {
            for (i, line) in text.lines().enumerate() {
                if !line.trim().is_empty() {
                    r.message(Msg {
                        line: i + 1,
                        text: line,
                        recv_ts,
                        symbol: None,
                    })?;
                }
            }
        }
        InputFormat::JsonDocument => {
            let mut docs = serde_json::Deserializer::from_str(text)
                .into_iter::<&serde_json::value::RawValue>();
            let mut offset = 0;
            while let Some(doc) = docs.next() {
                match doc {
                    Ok(raw) => {
                        let start =
                            offset + (text[offset..].len() - text[offset..].trim_start().len());
                        r.message(Msg {
                            line: line_of(input, start),
                            text: raw.get(),
                            recv_ts,
                            symbol: None,
                        })?;
                    }
                    Err(e) => {
                        // The stream cannot resynchronize after malformed JSON: stop here.
                        r.stats.messages += 1;
                        r.bad(NormalizeError::Input {
                            line: e.line(),
                            entry: r.entry(),
                            reason: format!("malformed JSON: {e}"),
                            snippet: snippet(&text[offset..].chars().take(200).collect::<String>()),
                        })?;
                        break;
                    }
                }
                offset = docs.byte_offset();
            }
        }
        InputFormat::CryptofeedRecording => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match recording_line(line) {
                    Ok(RecLine::Connect) => {}
                    Ok(RecLine::Sent) => r.stats.sent += 1,
                    Ok(RecLine::Received { ts, body }) => r.message(Msg {
                        line: i + 1,
                        text: body,
                        recv_ts: ts,
                        symbol: None,
                    })?,
                    Ok(RecLine::Rest { url, ts, body }) => r.message(Msg {
                        line: i + 1,
                        text: body,
                        recv_ts: ts,
                        symbol: symbol_from_url(url),
                    })?,
                    Err(reason) => {
                        r.stats.messages += 1;
                        r.bad(NormalizeError::Input {
                            line: i + 1,
                            entry: r.entry(),
                            reason: format!("bad recording line: {reason}"),
                            snippet: snippet(line),
                        })?;
                    }
                }
            }
        }
        InputFormat::BinanceDepthCsv => depth_csv(text, &mut r)?,
        InputFormat::Zip => unreachable!("zip archives are unpacked by scan"),
    }
    Ok(r.stats)
}

fn line_of(input: &[u8], offset: usize) -> usize {
    memchr::memchr_iter(b'\n', &input[..offset.min(input.len())]).count() + 1
}

/// One row of a Binance `T_DEPTH` CSV.
struct DepthRow<'a> {
    symbol: &'a str,
    ts: i64,
    first: u64,
    last: u64,
    side: BookSide,
    snapshot: bool,
    level: BookLevel,
}

fn depth_row(line: &str) -> Result<DepthRow<'_>, String> {
    let f: Vec<&str> = line.trim().split(',').collect();
    let [symbol, ts, first, last, side, kind, price, qty, _pu] = f.as_slice() else {
        return Err(format!("expected 9 columns, got {}", f.len()));
    };
    let int = |s: &str, what: &str| -> Result<i64, String> {
        s.parse().map_err(|_| format!("bad {what} {s:?}"))
    };
    let uint = |s: &str, what: &str| -> Result<u64, String> {
        s.parse().map_err(|_| format!("bad {what} {s:?}"))
    };
    Ok(DepthRow {
        symbol,
        ts: int(ts, "timestamp")?,
        first: uint(first, "first_update_id")?,
        last: uint(last, "last_update_id")?,
        side: match *side {
            "b" => BookSide::Bid,
            "a" => BookSide::Ask,
            other => return Err(format!("bad side {other:?}")),
        },
        snapshot: match *kind {
            "snap" => true,
            "set" => false,
            other => return Err(format!("bad update_type {other:?}")),
        },
        level: BookLevel {
            price: Price::parse(price).map_err(|e| e.to_string())?,
            quantity: Quantity::parse(qty).map_err(|e| e.to_string())?,
        },
    })
}

/// Consecutive rows with the same symbol, time, update ids and type form one book event:
/// `snap` rows a [`model::BookSnapshot`], `set` rows a [`model::BookDelta`].
fn depth_csv<F>(text: &str, r: &mut Runner<'_, '_, F>) -> Result<(), NormalizeError>
where
    F: FnMut(Position<'_>, MessageKind, &[Event]) -> io::Result<()>,
{
    struct Group {
        line: usize,
        key: (String, i64, u64, u64, bool),
        bids: Vec<BookLevel>,
        asks: Vec<BookLevel>,
    }
    let flush = |g: Group, r: &mut Runner<'_, '_, F>| -> Result<(), NormalizeError> {
        r.stats.messages += 1;
        let (symbol, ts, first, last, snapshot) = g.key;
        let instrument = match Symbol::new(symbol.to_ascii_uppercase()) {
            Ok(s) => InstrumentId::new(r.exchange.venue(), s),
            Err(e) => {
                return r.bad(NormalizeError::Input {
                    line: g.line,
                    entry: r.entry(),
                    reason: e.to_string(),
                    snippet: snippet(&symbol),
                });
            }
        };
        let ts = Timestamp::from_millis(ts);
        r.buf.clear();
        let mut em = crate::common::Emit {
            venue: r.exchange.venue(),
            recv_ts: ts,
            symbol_hint: None,
            interval_hint: None,
            out: &mut r.buf,
        };
        if snapshot {
            em.snapshot(instrument, g.bids, g.asks, Some(last), ts);
        } else {
            em.delta(instrument, g.bids, g.asks, Some(first), Some(last), ts);
        }
        r.deliver(g.line, MessageKind::Data)
    };
    let mut group: Option<Group> = None;
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let row = match depth_row(line) {
            Ok(row) => row,
            Err(reason) => {
                r.bad(NormalizeError::Input {
                    line: i + 1,
                    entry: r.entry(),
                    reason: format!("bad T_DEPTH row: {reason}"),
                    snippet: snippet(line),
                })?;
                continue;
            }
        };
        let key = (
            row.symbol.to_owned(),
            row.ts,
            row.first,
            row.last,
            row.snapshot,
        );
        if group.as_ref().is_some_and(|g| g.key != key)
            && let Some(g) = group.take()
        {
            flush(g, r)?;
        }
        let g = group.get_or_insert_with(|| Group {
            line: i + 1,
            key,
            bids: Vec::new(),
            asks: Vec::new(),
        });
        match row.side {
            BookSide::Bid => g.bids.push(row.level),
            BookSide::Ask => g.asks.push(row.level),
        }
    }
    if let Some(g) = group {
        flush(g, r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECV: Timestamp = Timestamp::from_secs(1_700_000_000);

    fn opts() -> NormalizeOptions {
        NormalizeOptions {
            recv_ts: Some(RECV),
            ..NormalizeOptions::default()
        }
    }

    #[test]
    fn detects_formats() {
        assert_eq!(detect_format(b"PK\x03\x04rest"), InputFormat::Zip);
        assert_eq!(
            detect_format(b"\n{\"a\":1}\n{\"a\":2}\n"),
            InputFormat::Ndjson
        );
        assert_eq!(
            detect_format(b"{\n  \"a\": 1\n}\n"),
            InputFormat::JsonDocument
        );
        assert_eq!(detect_format(b"[\n 1\n]"), InputFormat::JsonDocument);
        assert_eq!(
            detect_format(b"wss://ws.kraken.com <-> 1618678132.368463\n"),
            InputFormat::CryptofeedRecording
        );
        assert_eq!(
            detect_format(b"https://x/api?symbol=A -> 1.5: {}\n"),
            InputFormat::CryptofeedRecording
        );
        assert_eq!(
            detect_format(b"1618678132.9: {\"event\":\"heartbeat\"}\n"),
            InputFormat::CryptofeedRecording
        );
        assert_eq!(
            detect_format(
                b"symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu\n"
            ),
            InputFormat::BinanceDepthCsv
        );
        assert_eq!(detect_format(b""), InputFormat::JsonDocument);
    }

    #[test]
    fn symbols_from_urls() {
        assert_eq!(
            symbol_from_url("https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000"),
            Some("NKNUSDT")
        );
        assert_eq!(
            symbol_from_url("https://www.okx.com/api/v5/market/candles?instId=BTC-USDT&bar=1m"),
            Some("BTC-USDT")
        );
        assert_eq!(
            symbol_from_url("https://api.coinbase.com/api/v3/brokerage/products/BTC-USD/candles"),
            Some("BTC-USD")
        );
        assert_eq!(symbol_from_url("https://x/y?limit=5"), None);
    }

    #[test]
    fn strict_mode_names_the_line_and_lenient_mode_counts() {
        let input = b"{\"result\":null,\"id\":1}\n\n{\"e\":\"trade\",\"s\":\"X\"}\n";
        let mut out = Vec::new();
        let err = normalize_bytes(Exchange::Binance, input, &mut out, &opts()).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("line 3: binance:"), "{text}");
        assert!(text.contains("{\"e\":\"trade\""), "{text}");

        let lenient = NormalizeOptions {
            lenient: true,
            ..opts()
        };
        let stats = normalize_bytes(Exchange::Binance, input, &mut out, &lenient).unwrap();
        assert_eq!((stats.messages, stats.control, stats.errors), (2, 1, 1));
        assert!(stats.first_error.unwrap().starts_with("line 3:"));
    }

    #[test]
    fn recording_lines_and_json_documents() {
        let rec = "wss://ws.kraken.com <-> 1618678132.368463\n\
                   wss://ws.kraken.com <- 1618678132.83097: {\"event\":\"subscribe\"}\n\
                   1618678132.9: {\"event\":\"heartbeat\"}\n\
                   garbage\n";
        let mut out = Vec::new();
        let err = normalize_bytes(Exchange::Kraken, rec.as_bytes(), &mut out, &opts()).unwrap_err();
        assert!(
            err.to_string().starts_with("line 4: bad recording line"),
            "{err}"
        );

        // Two pretty-printed documents, the second starting on line 4.
        let docs = "{\n \"result\": null,\n \"id\": 1}\n{\n \"e\": \"nope\"\n}\n";
        let err =
            normalize_bytes(Exchange::Binance, docs.as_bytes(), &mut out, &opts()).unwrap_err();
        assert!(err.to_string().starts_with("line 4: "), "{err}");
    }

    #[test]
    fn non_utf8_input_is_an_input_error() {
        let mut out = Vec::new();
        let err = normalize_bytes(Exchange::Okx, b"{\"a\":1}\n\xff\xfe\n", &mut out, &opts())
            .unwrap_err();
        assert!(
            matches!(err, NormalizeError::Input { line: 2, .. }),
            "{err}"
        );
    }
}
