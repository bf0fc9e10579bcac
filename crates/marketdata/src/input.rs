//! Whole inputs: format detection, the cryptofeed recording readers, NDJSON, JSON documents,
//! Binance `T_DEPTH` CSV and zip archives, and [`normalize`], which writes one JSON event per
//! line.
//!
//! Detection ([`detect_format`]) looks at the first bytes and the first non-empty line; when
//! that line is of no known kind (a stray banner, a truncated record), at the next ones too
//! (up to [`DETECT_LINES`]):
//! * `PK\x03\x04`: a zip; every file inside is detected and read on its own, its unpacked
//!   size capped ([`ZipLimits`]).
//! * `symbol,timestamp,first_update_id,...` header: Binance public-data `T_DEPTH` CSV.
//! * `configuration: {..}`, `<url> <-> <ts>`, `<url> -> <ts>: ..`, `<url> <- <ts>: ..` or
//!   `<ts>: {..`: a cryptofeed recording (its `AsyncFileCallback` text format). Sent lines
//!   (`<-`) are skipped; REST lines (`->`, with the response headers cryptofeed may append as
//!   ` header: {..}` removed) give the request URL, whose `symbol=` / `instId=` / `pair=` /
//!   `product_id=` names the symbol of bodies that lack one; the recording time is the receive
//!   time of every message.
//! * `{"t":"header"|"connect"|"send"|"http"|"recv",..}`: a JSON-lines recording, one record a
//!   line (see [`InputFormat::JsonLinesRecording`]).
//! * a first line that is a complete JSON value: NDJSON, one message per line.
//! * anything else: JSON document(s), e.g. a pretty-printed REST response.
//!
//! Lines no reader knows (in recordings, NDJSON and CSV) are skipped, counted and sampled in
//! [`NormalizeStats`]; [`NormalizeOptions::strict`] stops at the first one instead. Messages
//! that are recognized but do not parse are errors unless [`NormalizeOptions::lenient`].
//! Kraken and OKX book checksums are verified on the way ([`crate::checksum`]) and counted.

use std::borrow::Cow;
use std::io::{self, BufWriter, Read, Write};

use model::{BookLevel, BookSide, Event, InstrumentId, Price, Quantity, Symbol, Timestamp};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::checksum::BookVerifier;
use crate::error::{NormalizeError, snippet};
use crate::{Exchange, MessageContext, MessageKind, parse_into};

/// How many non-empty lines [`detect_format`] looks at when the first one is of no known kind.
pub const DETECT_LINES: usize = 32;
/// How many skipped unknown lines [`NormalizeStats::unknown_samples`] keeps.
pub const UNKNOWN_SAMPLES: usize = 3;

/// What [`detect_format`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    /// One JSON message per line.
    Ndjson,
    /// One (or several concatenated) JSON documents, possibly pretty-printed.
    JsonDocument,
    /// A cryptofeed raw recording (`sample_data/*.ws.*`, `*.http.*`).
    CryptofeedRecording,
    /// A recording in JSON lines: `{"t":"header",..}` then `connect`, `send`, `http` and `recv`
    /// records. `recv` holds a received message in `data` (a JSON string with the raw text, or
    /// the message itself as JSON), `http` a REST response body in `data` and its request URL
    /// in `url` (or `endpoint`); `ts` is the receive time in seconds (a number or a string,
    /// with a fraction), or an integer in milliseconds, microseconds or nanoseconds told apart
    /// by magnitude. Other fields (`conn`, ...) are ignored. cryptofeed itself publishes only
    /// the text format ([`InputFormat::CryptofeedRecording`]); this is the JSON shape of the
    /// same records, as recorders wrapping cryptofeed write them.
    JsonLinesRecording,
    /// Binance public-data order-book CSV (`T_DEPTH` layout).
    BinanceDepthCsv,
    /// A zip archive of any of the above.
    Zip,
}

/// Options of [`normalize_with`]. By default the first bad message stops the run, and lines of
/// no known kind are skipped (counted and sampled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// Skip bad messages (counting them in [`NormalizeStats::errors`]) instead of stopping.
    pub lenient: bool,
    /// Stop at the first line of no known kind (with its line number) instead of skipping it.
    pub strict: bool,
    /// Caps on the unpacked size of zip input.
    pub zip: ZipLimits,
    /// Symbol for REST bodies that do not name one (see [`MessageContext::symbol`]).
    pub symbol: Option<String>,
    /// Bar interval for REST candle lists (see [`MessageContext::interval`]).
    pub interval: Option<String>,
    /// Receive time for inputs without one (all but cryptofeed recordings); default: now.
    pub recv_ts: Option<Timestamp>,
}

/// Caps on what a zip archive may unpack to, counted on the bytes actually inflated (the sizes
/// an archive declares are not trusted): a small archive of a huge, highly compressible entry
/// (a zip bomb) is refused instead of exhausting memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    /// Bytes one entry may unpack to.
    pub per_entry: u64,
    /// Bytes all entries together may unpack to.
    pub total: u64,
}

impl ZipLimits {
    /// 1 GiB: far above any recording the fixtures hold, far below a bomb's petabytes.
    pub const DEFAULT_BYTES: u64 = 1 << 30;

    /// The same cap for one entry and for all of them.
    pub const fn total(bytes: u64) -> Self {
        ZipLimits {
            per_entry: bytes,
            total: bytes,
        }
    }
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits::total(ZipLimits::DEFAULT_BYTES)
    }
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
    /// Lines of no known kind, skipped (without [`NormalizeOptions::strict`]).
    pub unknown_lines: u64,
    /// The first [`UNKNOWN_SAMPLES`] of those: line number, reason and the line's start.
    pub unknown_samples: Vec<String>,
    /// Kraken and OKX book checksums (and OKX sequence links) that matched.
    pub checksums_verified: u64,
    /// Those that did not; the book is dropped until its next snapshot.
    pub checksum_mismatches: u64,
    /// The first mismatch, with its line number.
    pub first_checksum_mismatch: Option<String>,
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
            unknown_lines: 0,
            unknown_samples: Vec::new(),
            checksums_verified: 0,
            checksum_mismatches: 0,
            first_checksum_mismatch: None,
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
        self.unknown_lines += other.unknown_lines;
        let room = UNKNOWN_SAMPLES.saturating_sub(self.unknown_samples.len());
        self.unknown_samples
            .extend(other.unknown_samples.into_iter().take(room));
        self.checksums_verified += other.checksums_verified;
        self.checksum_mismatches += other.checksum_mismatches;
        if self.first_checksum_mismatch.is_none() {
            self.first_checksum_mismatch = other.first_checksum_mismatch;
        }
    }
}

/// Guesses the input's format from its first bytes and its first non-empty line, or, when
/// that line is of no known kind, from the next [`DETECT_LINES`] lines.
pub fn detect_format(input: &[u8]) -> InputFormat {
    if input.starts_with(b"PK\x03\x04") {
        return InputFormat::Zip;
    }
    let mut lines = input
        .split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l.trim_ascii()))
        .filter(|l| !l.is_empty())
        .take(DETECT_LINES);
    let Some(first) = lines.next() else {
        return InputFormat::JsonDocument;
    };
    if first.starts_with("symbol,timestamp,first_update_id") {
        return InputFormat::BinanceDepthCsv;
    }
    if let Some(recording) = recording_kind(&first) {
        return recording;
    }
    let is_json = |l: &str| serde_json::from_str::<IgnoredAny>(l).is_ok();
    if is_json(&first) {
        return InputFormat::Ndjson;
    }
    if first.starts_with(['{', '[']) {
        return InputFormat::JsonDocument; // pretty-printed
    }
    // An unknown first line: the rest of the file decides (the line is skipped as unknown).
    let mut json_lines = false;
    for line in lines {
        if let Some(recording) = recording_kind(&line) {
            return recording;
        }
        json_lines = json_lines || is_json(&line);
    }
    if json_lines {
        InputFormat::Ndjson
    } else {
        InputFormat::JsonDocument
    }
}

/// The recording format a line belongs to, if it is a recording line.
fn recording_kind(line: &str) -> Option<InputFormat> {
    if line.starts_with('{') {
        return jsonl_record(line)
            .is_ok()
            .then_some(InputFormat::JsonLinesRecording);
    }
    recording_line(line)
        .is_ok()
        .then_some(InputFormat::CryptofeedRecording)
}

/// One line of a cryptofeed recording.
#[derive(Debug, PartialEq, Eq)]
enum RecLine<'a> {
    /// `configuration: {..}`, the subscription cryptofeed writes first.
    Header,
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
    if let Some(config) = line.strip_prefix("configuration: ") {
        return if config.trim_start().starts_with('{') {
            Ok(RecLine::Header)
        } else {
            Err("not a recording line")
        };
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
        Ok(RecLine::Rest {
            url,
            ts,
            body: without_response_headers(body),
        })
    } else {
        Err("not a recording line")
    }
}

/// A REST body without the ` header: {..}` (the response headers as JSON) that cryptofeed
/// appends when it keeps them.
fn without_response_headers(body: &str) -> &str {
    match body.rsplit_once(" header: ") {
        Some((b, headers)) if headers.trim().starts_with('{') && headers.trim().ends_with('}') => b,
        _ => body,
    }
}

/// One record of a JSON-lines recording.
#[derive(Debug, PartialEq, Eq)]
enum JsonlRecord<'a> {
    /// `header`, `connect`: nothing to normalize.
    Meta,
    Sent,
    Rest {
        url: Option<Cow<'a, str>>,
        ts: Option<Timestamp>,
        body: Cow<'a, str>,
    },
    Received {
        ts: Option<Timestamp>,
        body: Cow<'a, str>,
    },
}

fn jsonl_record(line: &str) -> Result<JsonlRecord<'_>, &'static str> {
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        t: Option<&'a RawValue>,
        #[serde(borrow)]
        ts: Option<&'a RawValue>,
        #[serde(borrow)]
        data: Option<&'a RawValue>,
        #[serde(borrow)]
        url: Option<Cow<'a, str>>,
        #[serde(borrow)]
        endpoint: Option<Cow<'a, str>>,
    }
    // Exchange messages have "t" fields too (Binance trade ids); only these tags make a record.
    let raw: Raw = serde_json::from_str(line).map_err(|_| "not a JSON record")?;
    let tag = raw.t.map(RawValue::get).ok_or("no \"t\" tag")?;
    let ts = || {
        raw.ts
            .map(|t| record_time(t.get()).ok_or("bad \"ts\""))
            .transpose()
    };
    // `data` holds the raw message as a JSON string, or the message itself as JSON.
    let body = || -> Result<Cow<'_, str>, &'static str> {
        let data = raw.data.ok_or("record without \"data\"")?.get();
        if data.starts_with('"') {
            serde_json::from_str(data).map_err(|_| "bad \"data\" string")
        } else {
            Ok(Cow::Borrowed(data))
        }
    };
    match tag {
        r#""header""# | r#""connect""# => Ok(JsonlRecord::Meta),
        r#""send""# => Ok(JsonlRecord::Sent),
        r#""recv""# => Ok(JsonlRecord::Received {
            ts: ts()?,
            body: body()?,
        }),
        r#""http""# => Ok(JsonlRecord::Rest {
            url: raw.url.clone().or_else(|| raw.endpoint.clone()),
            ts: ts()?,
            body: body()?,
        }),
        _ => Err("unknown record tag"),
    }
}

/// A record time: decimal seconds (`1618678132.368463`, also as a string), or an integer in
/// seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude.
fn record_time(text: &str) -> Option<Timestamp> {
    let t = text.trim_matches('"');
    if t.contains(['.', 'e', 'E']) {
        return crate::common::decimal_secs(t);
    }
    let n: i64 = t.parse().ok()?;
    let magnitude = n.unsigned_abs();
    let nanos_per_unit = if magnitude < 100_000_000_000 {
        1_000_000_000
    } else if magnitude < 100_000_000_000_000 {
        1_000_000
    } else if magnitude < 100_000_000_000_000_000 {
        1_000
    } else {
        1
    };
    n.checked_mul(nanos_per_unit).map(Timestamp::from_nanos)
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
    let mut unpacked: u64 = 0;
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
        let limits = opts.zip;
        let left = limits.total.saturating_sub(unpacked);
        let (cap, scope) = if limits.per_entry <= left {
            (limits.per_entry, "per-entry")
        } else {
            (left, "total")
        };
        let too_large = || NormalizeError::ZipLimit {
            entry: name.clone(),
            limit: cap,
            scope,
        };
        // The declared size only allows an early refusal; the cap holds on the bytes inflated.
        if file.size() > cap {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        (&mut file)
            .take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| NormalizeError::Input {
                line: 0,
                entry: Some(name.clone()),
                reason: format!("cannot unpack: {e}"),
                snippet: String::new(),
            })?;
        if bytes.len() as u64 > cap {
            return Err(too_large());
        }
        unpacked += bytes.len() as u64;
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
    /// The message is a whole input line (NDJSON): if it is not JSON at all, the line is of
    /// no known kind rather than a bad message.
    whole_line: bool,
}

struct Runner<'o, 'f, F> {
    exchange: Exchange,
    entry: Option<&'o str>,
    opts: &'o NormalizeOptions,
    stats: NormalizeStats,
    buf: Vec<Event>,
    verifier: Option<BookVerifier>,
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

    /// Skips a line of no known kind (counted, the first few sampled), or stops on it when
    /// strict.
    fn unknown(&mut self, line: usize, text: &str, reason: String) -> Result<(), NormalizeError> {
        let err = NormalizeError::Input {
            line,
            entry: self.entry(),
            reason,
            snippet: snippet(text),
        };
        if self.opts.strict {
            return Err(err);
        }
        self.stats.unknown_lines += 1;
        if self.stats.unknown_samples.len() < UNKNOWN_SAMPLES {
            self.stats.unknown_samples.push(err.to_string());
        }
        Ok(())
    }

    fn message(&mut self, m: Msg<'_>) -> Result<(), NormalizeError> {
        let ctx = MessageContext {
            recv_ts: m.recv_ts,
            symbol: self.opts.symbol.as_deref().or(m.symbol),
            interval: self.opts.interval.as_deref(),
        };
        self.buf.clear();
        match parse_into(self.exchange, m.text, &ctx, &mut self.buf) {
            Ok(kind) => {
                self.stats.messages += 1;
                self.verify(m.line, m.text);
                self.deliver(m.line, kind)
            }
            Err(_) if m.whole_line && serde_json::from_str::<IgnoredAny>(m.text).is_err() => {
                self.unknown(m.line, m.text, "not a JSON message".into())
            }
            Err(source) => {
                self.stats.messages += 1;
                self.bad(NormalizeError::Parse {
                    line: m.line,
                    entry: self.entry(),
                    source,
                })
            }
        }
    }

    /// Checks the book checksums a parsed message carries.
    fn verify(&mut self, line: usize, text: &str) {
        let Some(verifier) = self.verifier.as_mut() else {
            return;
        };
        let verdict = verifier.check(text);
        self.stats.checksums_verified += u64::from(verdict.verified);
        self.stats.checksum_mismatches += verdict.mismatches.len() as u64;
        if let (None, Some(m)) = (
            &self.stats.first_checksum_mismatch,
            verdict.mismatches.first(),
        ) {
            let entry = self.entry.map(|e| format!("{e}: ")).unwrap_or_default();
            self.stats.first_checksum_mismatch = Some(format!("{entry}line {line}: {m}"));
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
        verifier: BookVerifier::applies(exchange).then(|| BookVerifier::new(exchange)),
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
                        whole_line: true,
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
                            whole_line: false,
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
                    Ok(RecLine::Header | RecLine::Connect) => {}
                    Ok(RecLine::Sent) => r.stats.sent += 1,
                    Ok(RecLine::Received { ts, body }) => r.message(Msg {
                        line: i + 1,
                        text: body,
                        recv_ts: ts,
                        symbol: None,
                        whole_line: false,
                    })?,
                    Ok(RecLine::Rest { url, ts, body }) => r.message(Msg {
                        line: i + 1,
                        text: body,
                        recv_ts: ts,
                        symbol: symbol_from_url(url),
                        whole_line: false,
                    })?,
                    Err(reason) => {
                        r.unknown(i + 1, line, format!("bad recording line: {reason}"))?;
                    }
                }
            }
        }
        InputFormat::JsonLinesRecording => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match jsonl_record(line.trim()) {
                    Ok(JsonlRecord::Meta) => {}
                    Ok(JsonlRecord::Sent) => r.stats.sent += 1,
                    Ok(JsonlRecord::Received { ts, body }) => r.message(Msg {
                        line: i + 1,
                        text: &body,
                        recv_ts: ts.unwrap_or(recv_ts),
                        symbol: None,
                        whole_line: false,
                    })?,
                    Ok(JsonlRecord::Rest { url, ts, body }) => r.message(Msg {
                        line: i + 1,
                        text: &body,
                        recv_ts: ts.unwrap_or(recv_ts),
                        symbol: url.as_deref().and_then(symbol_from_url),
                        whole_line: false,
                    })?,
                    Err(reason) => {
                        r.unknown(i + 1, line, format!("bad recording record: {reason}"))?;
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

/// Why a `T_DEPTH` line was not read: it is not a row at all, or a row with a bad value.
enum RowError {
    Unknown(String),
    Bad(String),
}

fn depth_row(line: &str) -> Result<DepthRow<'_>, RowError> {
    let f: Vec<&str> = line.trim().split(',').collect();
    let [symbol, ts, first, last, side, kind, price, qty, _pu] = f.as_slice() else {
        return Err(RowError::Unknown(format!(
            "expected 9 columns, got {}",
            f.len()
        )));
    };
    depth_values(symbol, [*ts, *first, *last, *side, *kind, *price, *qty]).map_err(RowError::Bad)
}

fn depth_values<'a>(
    symbol: &'a str,
    [ts, first, last, side, kind, price, qty]: [&str; 7],
) -> Result<DepthRow<'a>, String> {
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
        side: match side {
            "b" => BookSide::Bid,
            "a" => BookSide::Ask,
            other => return Err(format!("bad side {other:?}")),
        },
        snapshot: match kind {
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
            Err(RowError::Unknown(reason)) => {
                r.unknown(i + 1, line, format!("bad T_DEPTH row: {reason}"))?;
                continue;
            }
            Err(RowError::Bad(reason)) => {
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
        // cryptofeed writes its subscription first.
        assert_eq!(
            detect_format(b"configuration: {\"l2_book\": [\"BTC-USD\"]}\n1.5: {}\n"),
            InputFormat::CryptofeedRecording
        );
        assert_eq!(
            detect_format(
                b"{\"t\":\"header\",\"v\":1}\n{\"t\":\"recv\",\"ts\":1.5,\"data\":\"{}\"}\n"
            ),
            InputFormat::JsonLinesRecording
        );
        // A Binance trade has a "t" too, but not a record tag.
        assert_eq!(
            detect_format(b"{\"e\":\"trade\",\"t\":12345}\n"),
            InputFormat::Ndjson
        );
        // A first line of no known kind no longer decides: the lines after it do.
        assert_eq!(
            detect_format(b"# captured by hand\n1618678132.9: {\"event\":\"heartbeat\"}\n"),
            InputFormat::CryptofeedRecording
        );
        assert_eq!(detect_format(b"garbage\n{\"a\":1}\n"), InputFormat::Ndjson);
        assert_eq!(
            detect_format(b"garbage\n{\"t\":\"recv\",\"data\":{}}\n"),
            InputFormat::JsonLinesRecording
        );
    }

    #[test]
    fn json_lines_records() {
        assert_eq!(
            jsonl_record(r#"{"t":"header","exchange":"KRAKEN"}"#),
            Ok(JsonlRecord::Meta)
        );
        assert_eq!(
            jsonl_record(r#"{"t":"connect","conn":1,"url":"wss://x"}"#),
            Ok(JsonlRecord::Meta)
        );
        assert_eq!(
            jsonl_record(r#"{"t":"send","conn":1,"data":"{}"}"#),
            Ok(JsonlRecord::Sent)
        );
        // The raw message as a JSON string, unescaped ...
        let r = jsonl_record(r#"{"t":"recv","conn":1,"ts":1618678132.5,"data":"{\"a\":[1]}"}"#);
        assert_eq!(
            r,
            Ok(JsonlRecord::Received {
                ts: Some(Timestamp::from_millis(1_618_678_132_500)),
                body: Cow::Borrowed(r#"{"a":[1]}"#),
            })
        );
        // ... or as JSON; the REST URL from "url" or "endpoint".
        let r = jsonl_record(
            r#"{"t":"http","ts":"1618678132","endpoint":"https://x?symbol=AB","data":[1,2]}"#,
        );
        assert_eq!(
            r,
            Ok(JsonlRecord::Rest {
                url: Some(Cow::Borrowed("https://x?symbol=AB")),
                ts: Some(Timestamp::from_secs(1_618_678_132)),
                body: Cow::Borrowed("[1,2]"),
            })
        );
        for (line, why) in [
            (r#"{"t":"recv"}"#, "record without \"data\""),
            (r#"{"t":"recv","ts":"soon","data":"x"}"#, "bad \"ts\""),
            (r#"{"t":"close"}"#, "unknown record tag"),
            (r#"{"t":7}"#, "unknown record tag"),
            (r#"{"e":"trade"}"#, "no \"t\" tag"),
            ("{nope", "not a JSON record"),
        ] {
            assert_eq!(jsonl_record(line), Err(why), "{line}");
        }
    }

    #[test]
    fn record_times_by_magnitude() {
        let secs = Timestamp::from_secs(1_618_678_132);
        for t in [
            "1618678132",
            "1618678132000",
            "1618678132000000",
            "1618678132000000000",
            "\"1618678132.0\"",
        ] {
            assert_eq!(record_time(t), Some(secs), "{t}");
        }
        assert_eq!(record_time("1e400"), None);
        assert_eq!(record_time("99999999999"), None); // seconds beyond the nanosecond range
        assert_eq!(record_time("x"), None);
    }

    #[test]
    fn cryptofeed_response_headers_are_not_part_of_the_body() {
        let line = r#"https://api.binance.com/api/v3/depth?symbol=AB -> 1.5: {"lastUpdateId":1,"bids":[],"asks":[]} header: {"Content-Type": "application/json"}"#;
        let Ok(RecLine::Rest { body, url, .. }) = recording_line(line) else {
            panic!()
        };
        assert_eq!(body, r#"{"lastUpdateId":1,"bids":[],"asks":[]}"#);
        assert_eq!(symbol_from_url(url), Some("AB"));
        // " header: " inside a body that is not followed by a JSON object stays.
        assert_eq!(without_response_headers("a header: b"), "a header: b");
    }

    /// A zip of one entry of `size` zero bytes (deflated to a few KiB).
    fn zip_of_zeros(size: usize) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("bomb.jsonl", options).unwrap();
        w.write_all(&vec![b' '; size]).unwrap();
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn zip_entries_beyond_the_cap_are_refused() {
        let zip = zip_of_zeros(8 << 20);
        assert!(zip.len() < 64 << 10, "{}", zip.len());
        let capped = NormalizeOptions {
            zip: ZipLimits::total(1 << 20),
            ..opts()
        };
        let err = normalize_bytes(Exchange::Binance, &zip, &mut Vec::new(), &capped).unwrap_err();
        assert!(
            matches!(
                err,
                NormalizeError::ZipLimit {
                    limit: 1_048_576,
                    scope: "per-entry",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("\"bomb.jsonl\" unpacks to more than 1048576 bytes"),
            "{err}"
        );
        // Within the cap, the same archive reads (blank lines only: no events).
        let stats = normalize_bytes(Exchange::Binance, &zip, &mut Vec::new(), &opts()).unwrap();
        assert_eq!((stats.format, stats.events), (InputFormat::Zip, 0));
    }

    #[test]
    fn zip_cap_holds_when_the_archive_understates_its_sizes() {
        // The declared sizes are lowered to 100 bytes in the local and central headers; the
        // cap must still hold on what is actually inflated.
        let mut zip = zip_of_zeros(8 << 20);
        let lie = 100u32.to_le_bytes();
        for (magic, offset) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
            let at = zip.windows(4).position(|w| w == magic).unwrap();
            zip[at + offset..at + offset + 4].copy_from_slice(&lie);
        }
        let capped = NormalizeOptions {
            zip: ZipLimits {
                per_entry: 1 << 30,
                total: 1 << 20,
            },
            ..opts()
        };
        let err = normalize_bytes(Exchange::Binance, &zip, &mut Vec::new(), &capped).unwrap_err();
        assert!(
            matches!(err, NormalizeError::ZipLimit { scope: "total", .. }),
            "{err:?}"
        );
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
        // Skipped by default, with a count and a sample naming the line ...
        let stats = normalize_bytes(Exchange::Kraken, rec.as_bytes(), &mut out, &opts()).unwrap();
        assert_eq!((stats.unknown_lines, stats.sent, stats.control), (1, 1, 1));
        assert_eq!(
            stats.unknown_samples,
            ["line 4: bad recording line: not a recording line (input: garbage)"]
        );
        // ... and the first unknown line stops a strict run.
        let strict = NormalizeOptions {
            strict: true,
            ..opts()
        };
        let err = normalize_bytes(Exchange::Kraken, rec.as_bytes(), &mut out, &strict).unwrap_err();
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
