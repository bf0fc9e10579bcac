//! Order-book checksums. Kraken (WebSocket v1 and v2) and OKX (v5) send a CRC32 of the top of
//! their book with book messages, so a client can tell whether the book it built from the
//! snapshot and the updates is still the venue's book. [`BookVerifier`] keeps the books of one
//! connection (or one recording) and checks every checksum after applying its message.
//!
//! The parsers stay stateless; the verifier reads the raw message itself. It keeps each level's
//! price and size *text* as sent, because the checksums are computed over the text, not over
//! the values. Messages of other venues and channels are passed over after a substring search.
//!
//! * **Kraken**: CRC32 (unsigned) of the top 10 asks (low to high) followed by the top 10 bids
//!   (high to low), each level as price then quantity with `.` removed and leading zeros
//!   stripped. v1 sends `"c"` in updates only, with fixed-decimal strings. v2 sends `checksum`
//!   in snapshots and updates, with JSON numbers that may drop trailing zeros (`0.566` for
//!   `0.5660`): v2 levels are first written with the pair's precision, taken as the most
//!   decimals seen for the pair (Kraken's `instrument` channel states it, but a recording may
//!   not hold it). Kraken sends no deletes for levels that fall below the subscribed depth, so
//!   the book is cut to that depth after every message: v1 names it in the channel
//!   (`book-1000`), v2 in the subscribe reply; without a reply, the smallest Kraken depth that
//!   holds the snapshot.
//! * **OKX** (`books`, `books-l2-tbt`, `books50-l2-tbt`): CRC32 as a signed 32-bit integer of
//!   the first 25 bids and asks interleaved `bidPx:bidSz:askPx:askSz:...` (the longer side goes
//!   on alone), texts as sent. OKX deprecated the field on 23 June 2026 (it is `0` since) in
//!   favour of `seqId` / `prevSeqId`, so a `0` is not compared, and where the sequence fields
//!   are present an update's `prevSeqId` must be the previous message's `seqId` (a `seqId` below
//!   `prevSeqId` is OKX's documented sequence reset, not a gap).
//!
//! After a mismatch the symbol's book is dropped: its later updates are not checked until the
//! next snapshot (a live feed reconnects to get one).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use model::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Exchange;
use crate::common::{Level, Num};
use crate::kraken::messages::{BookRow, V2Level};
use crate::okx::messages::Arg;

/// Kraken's checksum covers this many levels a side.
const KRAKEN_LEVELS: usize = 10;
/// OKX's checksum covers this many levels a side.
const OKX_LEVELS: usize = 25;
/// The depths Kraken lets a client subscribe to.
const KRAKEN_DEPTHS: [usize; 5] = [10, 25, 100, 500, 1000];

/// What one message's checksums said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Checksums (and OKX sequence links) that matched.
    pub verified: u32,
    pub mismatches: Vec<Mismatch>,
}

/// A book that no longer matches the venue's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The venue's symbol (`XBT/USD`, `BTC-USDT`).
    pub symbol: String,
    pub kind: MismatchKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MismatchKind {
    /// The venue's checksum differs from the one of the book built here.
    Checksum { expected: i64, computed: i64 },
    /// OKX: an update does not follow the previous message (`prevSeqId` is not its `seqId`).
    SequenceGap { last_seq_id: i64, prev_seq_id: i64 },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            MismatchKind::Checksum { expected, computed } => write!(
                f,
                "{}: book checksum {computed} differs from the venue's {expected}",
                self.symbol
            ),
            MismatchKind::SequenceGap {
                last_seq_id,
                prev_seq_id,
            } => write!(
                f,
                "{}: update follows seqId {prev_seq_id}, the last one seen was {last_seq_id}",
                self.symbol
            ),
        }
    }
}

/// One price level as the venue wrote it.
#[derive(Debug, Clone)]
struct RawLevel {
    price: Box<str>,
    qty: Box<str>,
}

#[derive(Debug, Default)]
struct Book {
    /// Keyed by value, so `0.566` and `0.5660` are one level.
    bids: BTreeMap<Decimal, RawLevel>,
    asks: BTreeMap<Decimal, RawLevel>,
    /// Levels kept a side (the subscribed depth).
    depth: usize,
    /// OKX: the `seqId` of the last message applied.
    seq_id: Option<i64>,
}

impl Book {
    fn new(depth: usize) -> Self {
        Book {
            depth,
            ..Book::default()
        }
    }

    /// Applies one level (`qty` 0 deletes it); `None` when a number does not parse.
    fn apply(&mut self, bid: bool, price: &str, qty: &str) -> Option<()> {
        let key = decimal(price)?;
        let side = if bid { &mut self.bids } else { &mut self.asks };
        if decimal(qty)?.is_zero() {
            side.remove(&key);
        } else {
            side.insert(
                key,
                RawLevel {
                    price: price.into(),
                    qty: qty.into(),
                },
            );
        }
        Some(())
    }

    /// Applies a message's levels in order (`(bid, price, qty)`), then cuts the book to its
    /// depth; `None` when a number does not parse.
    fn apply_all<'a>(
        &mut self,
        levels: impl Iterator<Item = (bool, &'a str, &'a str)>,
    ) -> Option<()> {
        for (bid, price, qty) in levels {
            self.apply(bid, price, qty)?;
        }
        self.truncate();
        Some(())
    }

    /// Drops the levels beyond the depth (the worst ones).
    fn truncate(&mut self) {
        while self.bids.len() > self.depth {
            self.bids.pop_first();
        }
        while self.asks.len() > self.depth {
            self.asks.pop_last();
        }
    }
}

fn decimal(s: &str) -> Option<Decimal> {
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .ok()
}

/// The books of one connection or recording of one exchange, with their checksums checked.
#[derive(Debug)]
pub struct BookVerifier {
    exchange: Exchange,
    books: HashMap<String, Book>,
    /// Kraken v2: the most (price, quantity) decimals seen per pair.
    precision: HashMap<String, (u32, u32)>,
    /// Kraken v2: the depth each pair was subscribed with (from the subscribe reply).
    depth: HashMap<String, usize>,
    text: String,
}

impl BookVerifier {
    pub fn new(exchange: Exchange) -> Self {
        BookVerifier {
            exchange,
            books: HashMap::new(),
            precision: HashMap::new(),
            depth: HashMap::new(),
            text: String::new(),
        }
    }

    /// Whether this exchange sends checksums at all (Kraken and OKX).
    pub fn applies(exchange: Exchange) -> bool {
        matches!(exchange, Exchange::Kraken | Exchange::Okx)
    }

    /// Forgets every book (a new connection starts with new snapshots). Pair precisions stay:
    /// they belong to the pair, not to the connection.
    pub fn reset(&mut self) {
        self.books.clear();
        self.depth.clear();
    }

    /// Applies one raw message to the books and checks the checksums it carries. Messages that
    /// are not book messages of a checksummed channel (or do not parse: the parser reports
    /// those) give an empty verdict.
    pub fn check(&mut self, msg: &str) -> Verdict {
        let mut verdict = Verdict::default();
        let t = msg.trim();
        match self.exchange {
            Exchange::Kraken if memchr::memmem::find(t.as_bytes(), b"book").is_some() => {
                match t.as_bytes().first() {
                    Some(b'[') => self.kraken_v1(t, &mut verdict),
                    Some(b'{') => self.kraken_v2(t, &mut verdict),
                    _ => None,
                };
            }
            Exchange::Okx if memchr::memmem::find(t.as_bytes(), b"\"books").is_some() => {
                self.okx(t, &mut verdict);
            }
            _ => {}
        }
        verdict
    }

    fn outcome(&mut self, symbol: &str, expected: i64, computed: i64, verdict: &mut Verdict) {
        if expected == computed {
            verdict.verified += 1;
        } else {
            self.books.remove(symbol);
            verdict.mismatches.push(Mismatch {
                symbol: symbol.to_owned(),
                kind: MismatchKind::Checksum { expected, computed },
            });
        }
    }

    // ---- Kraken -------------------------------------------------------------------------

    fn kraken_v1(&mut self, t: &str, verdict: &mut Verdict) -> Option<()> {
        #[derive(Deserialize)]
        struct Part<'a> {
            #[serde(rename = "as", borrow)]
            snapshot_asks: Option<Vec<BookRow<'a>>>,
            #[serde(rename = "bs", borrow)]
            snapshot_bids: Option<Vec<BookRow<'a>>>,
            #[serde(borrow)]
            a: Option<Vec<BookRow<'a>>>,
            #[serde(borrow)]
            b: Option<Vec<BookRow<'a>>>,
            #[serde(borrow)]
            c: Option<&'a str>,
        }
        let parts: Vec<&RawValue> = serde_json::from_str(t).ok()?;
        let [_channel_id, payload @ .., name, pair] = parts.as_slice() else {
            return None;
        };
        let name: &str = serde_json::from_str(name.get()).ok()?;
        let depth: usize = name.strip_prefix("book-")?.parse().ok()?;
        let pair: &str = serde_json::from_str(pair.get()).ok()?;
        let mut expected = None;
        for part in payload {
            let p: Part = serde_json::from_str(part.get()).ok()?;
            if p.snapshot_asks.is_some() || p.snapshot_bids.is_some() {
                self.books.insert(pair.to_owned(), Book::new(depth));
            }
            let Some(book) = self.books.get_mut(pair) else {
                continue; // an update before any snapshot: nothing to check against
            };
            let sides = [
                (false, &p.snapshot_asks),
                (true, &p.snapshot_bids),
                (false, &p.a),
                (true, &p.b),
            ];
            let levels = sides.into_iter().flat_map(|(bid, rows)| {
                rows.iter()
                    .flatten()
                    .map(move |r| (bid, r.price.as_str(), r.volume.as_str()))
            });
            if book.apply_all(levels).is_none() {
                self.books.remove(pair);
                return None;
            }
            if let Some(c) = p.c {
                expected = Some(c.parse::<u32>().ok()?);
            }
        }
        let expected = expected?;
        let book = self.books.get(pair)?;
        let computed = kraken_crc(book, None, &mut self.text);
        self.outcome(pair, i64::from(expected), i64::from(computed), verdict);
        Some(())
    }

    fn kraken_v2(&mut self, t: &str, verdict: &mut Verdict) -> Option<()> {
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            channel: Option<&'a str>,
            #[serde(rename = "type", borrow)]
            kind: Option<&'a str>,
            #[serde(borrow)]
            data: Option<&'a RawValue>,
            #[serde(borrow)]
            method: Option<&'a str>,
            #[serde(borrow)]
            result: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct Subscribed<'a> {
            #[serde(borrow)]
            channel: Option<&'a str>,
            depth: Option<usize>,
            #[serde(borrow)]
            symbol: Option<&'a str>,
        }
        #[derive(Deserialize)]
        struct Data<'a> {
            #[serde(borrow)]
            symbol: &'a str,
            #[serde(borrow, default)]
            bids: Vec<V2Level<'a>>,
            #[serde(borrow, default)]
            asks: Vec<V2Level<'a>>,
            checksum: Option<u32>,
        }
        let env: Envelope = serde_json::from_str(t).ok()?;
        if env.method == Some("subscribe") {
            // The reply names the depth of each pair's subscription.
            let r: Subscribed = serde_json::from_str(env.result?.get()).ok()?;
            if let (Some("book"), Some(depth), Some(symbol)) = (r.channel, r.depth, r.symbol) {
                self.depth.insert(symbol.to_owned(), depth);
            }
            return Some(());
        }
        if env.channel != Some("book") {
            return None;
        }
        let snapshot = match env.kind {
            Some("snapshot") => true,
            Some("update") => false,
            _ => return None,
        };
        for d in serde_json::from_str::<Vec<Data>>(env.data?.get()).ok()? {
            if snapshot {
                let held = d.bids.len().max(d.asks.len());
                let depth = self.depth.get(d.symbol).copied().unwrap_or_else(|| {
                    KRAKEN_DEPTHS
                        .into_iter()
                        .find(|n| *n >= held)
                        .unwrap_or(held)
                });
                self.books.insert(d.symbol.to_owned(), Book::new(depth));
            }
            let Some(book) = self.books.get_mut(d.symbol) else {
                continue;
            };
            let precision = self.precision.entry(d.symbol.to_owned()).or_default();
            for l in d.bids.iter().chain(&d.asks) {
                let scale = |n: Num<'_>| decimal(n.as_str()).map_or(0, |v| v.scale());
                precision.0 = precision.0.max(scale(l.price));
                precision.1 = precision.1.max(scale(l.qty));
            }
            let precision = Some(*precision);
            let levels = (d.bids.iter().map(|l| (true, l)))
                .chain(d.asks.iter().map(|l| (false, l)))
                .map(|(bid, l)| (bid, l.price.as_str(), l.qty.as_str()));
            if book.apply_all(levels).is_none() {
                self.books.remove(d.symbol);
                return None;
            }
            let Some(expected) = d.checksum else { continue };
            let computed = kraken_crc(book, precision, &mut self.text);
            self.outcome(d.symbol, i64::from(expected), i64::from(computed), verdict);
        }
        Some(())
    }

    // ---- OKX ----------------------------------------------------------------------------

    fn okx(&mut self, t: &str, verdict: &mut Verdict) -> Option<()> {
        #[derive(Deserialize)]
        struct Message<'a> {
            #[serde(borrow)]
            arg: Option<Arg<'a>>,
            #[serde(borrow)]
            action: Option<&'a str>,
            #[serde(borrow)]
            data: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data<'a> {
            #[serde(borrow)]
            asks: Vec<Level<'a>>,
            #[serde(borrow)]
            bids: Vec<Level<'a>>,
            checksum: Option<i64>,
            seq_id: Option<i64>,
            prev_seq_id: Option<i64>,
        }
        let m: Message = serde_json::from_str(t).ok()?;
        let arg = m.arg?;
        let depth = match arg.channel {
            "books" | "books-l2-tbt" => 400,
            "books50-l2-tbt" => 50,
            _ => return None, // books5 and bbo-tbt carry whole books without checksums
        };
        let symbol = arg.inst_id?;
        let snapshot = match m.action {
            Some("snapshot") => true,
            Some("update") => false,
            _ => return None,
        };
        for d in serde_json::from_str::<Vec<Data>>(m.data?.get()).ok()? {
            if snapshot {
                self.books.insert(symbol.to_owned(), Book::new(depth));
            }
            let Some(book) = self.books.get_mut(symbol) else {
                continue;
            };
            if !snapshot
                && let (Some(last), Some(prev), Some(seq)) = (book.seq_id, d.prev_seq_id, d.seq_id)
            {
                // A reset (seqId below prevSeqId) starts a new sequence; anything else that
                // does not follow the last message is a lost update.
                if prev != last && seq >= prev {
                    self.books.remove(symbol);
                    verdict.mismatches.push(Mismatch {
                        symbol: symbol.to_owned(),
                        kind: MismatchKind::SequenceGap {
                            last_seq_id: last,
                            prev_seq_id: prev,
                        },
                    });
                    continue;
                }
                verdict.verified += 1;
            }
            book.seq_id = d.seq_id;
            let levels = (d.bids.iter().map(|l| (true, l)))
                .chain(d.asks.iter().map(|l| (false, l)))
                .map(|(bid, l)| (bid, l.price.as_str(), l.qty.as_str()));
            if book.apply_all(levels).is_none() {
                self.books.remove(symbol);
                return None;
            }
            match d.checksum {
                // 0: the deprecated field, or a checksum that cannot be told from it.
                Some(expected) if expected != 0 => {
                    let computed = okx_crc(book, &mut self.text);
                    self.outcome(symbol, expected, i64::from(computed), verdict);
                }
                _ => {}
            }
        }
        Some(())
    }
}

/// Kraken's checksum of a book; `precision` (price, quantity decimals) writes each value with
/// that many decimals first (v2), `None` takes the texts as sent (v1).
fn kraken_crc(book: &Book, precision: Option<(u32, u32)>, text: &mut String) -> u32 {
    text.clear();
    let asks = book.asks.values().take(KRAKEN_LEVELS);
    let bids = book.bids.values().rev().take(KRAKEN_LEVELS);
    for l in asks.chain(bids) {
        kraken_digits(text, &l.price, precision.map(|p| p.0));
        kraken_digits(text, &l.qty, precision.map(|p| p.1));
    }
    crc32fast::hash(text.as_bytes())
}

/// Appends `value` without its `.` and without leading zeros (`0.00100000` -> `100000`).
fn kraken_digits(text: &mut String, value: &str, decimals: Option<u32>) {
    let mut formatted;
    let value = match decimals.and_then(|d| decimal(value).map(|v| (v, d))) {
        Some((v, d)) => {
            // Padded by hand: rust_decimal's `{:.N}` panics when the digits and the padding
            // pass its 32-character buffer (a 21-digit quantity at 8 decimals; found by fuzzing).
            let v = if v.scale() > d { v.round_dp(d) } else { v };
            formatted = v.to_string();
            let missing = (d - v.scale()) as usize;
            if missing > 0 {
                if v.scale() == 0 {
                    formatted.push('.');
                }
                formatted.extend(std::iter::repeat_n('0', missing));
            }
            formatted.as_str()
        }
        None => value,
    };
    let digits = value.chars().filter(|c| *c != '.');
    text.extend(digits.skip_while(|c| *c == '0'));
}

/// OKX's checksum of a book: the first 25 bids and asks interleaved, as a signed integer.
fn okx_crc(book: &Book, text: &mut String) -> i32 {
    text.clear();
    let mut bids = book.bids.values().rev().take(OKX_LEVELS);
    let mut asks = book.asks.values().take(OKX_LEVELS);
    loop {
        let (bid, ask) = (bids.next(), asks.next());
        if bid.is_none() && ask.is_none() {
            break;
        }
        for l in [bid, ask].into_iter().flatten() {
            text.push_str(&l.price);
            text.push(':');
            text.push_str(&l.qty);
            text.push(':');
        }
    }
    text.pop(); // the last ':'
    // OKX sends the CRC32 reinterpreted as a signed 32-bit integer.
    crc32fast::hash(text.as_bytes()) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kraken_digits_pad_to_the_pair_precision_whatever_the_size() {
        let mut t = String::new();
        kraken_digits(&mut t, "0.566", Some(4));
        assert_eq!(t, "5660");
        t.clear();
        kraken_digits(&mut t, "45283", Some(1));
        assert_eq!(t, "452830");
        t.clear();
        // Found by fuzzing: `{:.8}` of a 21-digit decimal panicked inside rust_decimal.
        kraken_digits(&mut t, "418446744073709551616.797", Some(8));
        assert_eq!(t, "41844674407370955161679700000");
        t.clear();
        kraken_digits(&mut t, "1.23456", Some(2));
        assert_eq!(t, "123", "more decimals than the pair's are rounded");
    }

    /// Kraken's documentation examples (docs.kraken.com, WebSocket v2 `book`): the BTC/USD
    /// snapshot, whose numbers keep their trailing zeros, and the MATIC/USD snapshot and
    /// update, whose numbers drop them (`0.566`) and only match at the pair's precision.
    const KRAKEN_BTC_SNAPSHOT: &str = r#"{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":0.10000000},{"price":45283.4,"qty":1.54582015},{"price":45282.1,"qty":0.10000000},{"price":45281.0,"qty":0.10000000},{"price":45280.3,"qty":1.54592586},{"price":45279.0,"qty":0.07990000},{"price":45277.6,"qty":0.03310103},{"price":45277.5,"qty":0.30000000},{"price":45277.3,"qty":1.54602737},{"price":45276.6,"qty":0.15445238}],"asks":[{"price":45285.2,"qty":0.00100000},{"price":45286.4,"qty":1.54571953},{"price":45286.6,"qty":1.54571109},{"price":45289.6,"qty":1.54560911},{"price":45290.2,"qty":0.15890660},{"price":45291.8,"qty":1.54553491},{"price":45294.7,"qty":0.04454749},{"price":45296.1,"qty":0.35380000},{"price":45297.5,"qty":0.09945542},{"price":45299.5,"qty":0.18772827}],"checksum":3310070434}]}"#;
    const KRAKEN_MATIC_SNAPSHOT: &str = r#"{"channel":"book","type":"snapshot","data":[{"symbol":"MATIC/USD","bids":[{"price":0.5666,"qty":4831.75496356},{"price":0.5665,"qty":6658.22734739},{"price":0.5664,"qty":18724.91513344},{"price":0.5663,"qty":11563.92544914},{"price":0.5662,"qty":14006.65365711},{"price":0.5661,"qty":17454.85679807},{"price":0.566,"qty":18097.1547},{"price":0.5659,"qty":33644.89175666},{"price":0.5658,"qty":148.3464},{"price":0.5657,"qty":606.70854372}],"asks":[{"price":0.5668,"qty":4410.79769741},{"price":0.5669,"qty":4655.40412487},{"price":0.567,"qty":49844.89424998},{"price":0.5671,"qty":24306.41678},{"price":0.5672,"qty":29783.25223475},{"price":0.5673,"qty":57234.71239278},{"price":0.5674,"qty":45065.04744},{"price":0.5675,"qty":5912.76380354},{"price":0.5676,"qty":42514.92434778},{"price":0.5677,"qty":36304.0847022}],"checksum":2439117997}]}"#;
    const KRAKEN_MATIC_UPDATE: &str = r#"{"channel":"book","type":"update","data":[{"symbol":"MATIC/USD","bids":[{"price":0.5657,"qty":1098.3947558}],"asks":[],"checksum":2114181697,"timestamp":"2023-10-06T17:35:55.440295Z"}]}"#;

    #[test]
    fn kraken_v2_documentation_examples_verify() {
        let mut v = BookVerifier::new(Exchange::Kraken);
        assert_eq!(v.check(KRAKEN_BTC_SNAPSHOT).verified, 1);
        let snap = v.check(KRAKEN_MATIC_SNAPSHOT);
        assert_eq!((snap.verified, snap.mismatches.len()), (1, 0), "{snap:?}");
        let update = v.check(KRAKEN_MATIC_UPDATE);
        assert_eq!(
            (update.verified, update.mismatches.len()),
            (1, 0),
            "{update:?}"
        );
    }

    #[test]
    fn kraken_v2_corrupted_level_is_a_mismatch_and_drops_the_book() {
        let mut v = BookVerifier::new(Exchange::Kraken);
        let corrupted = KRAKEN_MATIC_SNAPSHOT.replace("4831.75496356", "4831.75496357");
        let verdict = v.check(&corrupted);
        assert_eq!(verdict.verified, 0);
        assert_eq!(verdict.mismatches.len(), 1);
        let m = &verdict.mismatches[0];
        assert_eq!(m.symbol, "MATIC/USD");
        assert!(
            matches!(m.kind, MismatchKind::Checksum { expected: 2439117997, computed } if computed != 2439117997),
            "{m:?}"
        );
        assert!(m.to_string().contains("2439117997"), "{m}");
        // No book any more: the next update is not checked until a new snapshot.
        assert_eq!(v.check(KRAKEN_MATIC_UPDATE), Verdict::default());
        assert_eq!(v.check(KRAKEN_MATIC_SNAPSHOT).verified, 1);
    }

    #[test]
    fn kraken_v2_update_that_misses_a_level_fails() {
        let mut v = BookVerifier::new(Exchange::Kraken);
        v.check(KRAKEN_MATIC_SNAPSHOT);
        let lost = KRAKEN_MATIC_UPDATE.replace("1098.3947558", "1098.3947559");
        assert_eq!(v.check(&lost).mismatches.len(), 1);
    }

    #[test]
    fn kraken_v2_depth_from_the_subscribe_reply_cuts_the_book() {
        // Subscribed at depth 10: an insert at the top pushes the 10th bid out of the book,
        // and the checksum covers the new top 10 only.
        let mut v = BookVerifier::new(Exchange::Kraken);
        v.check(r#"{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"MATIC/USD"},"success":true}"#);
        v.check(KRAKEN_MATIC_SNAPSHOT);
        let book = &v.books["MATIC/USD"];
        assert_eq!(book.depth, 10);
        v.check(r#"{"channel":"book","type":"update","data":[{"symbol":"MATIC/USD","bids":[{"price":0.5667,"qty":1.0}],"asks":[]}]}"#);
        let book = &v.books["MATIC/USD"];
        assert_eq!(book.bids.len(), 10);
        assert_eq!(
            book.bids.first_key_value().map(|(k, _)| k.to_string()),
            Some("0.5658".into())
        );
    }

    #[test]
    fn kraken_digits_follow_the_documented_formatting() {
        let mut s = String::new();
        kraken_digits(&mut s, "0.05000", None);
        kraken_digits(&mut s, "0.00000304", None);
        assert_eq!(s, "5000304"); // Kraken's v1 example: "0.05000" + "0.00000304"
        s.clear();
        kraken_digits(&mut s, "0.566", Some(4));
        assert_eq!(s, "5660");
        s.clear();
        kraken_digits(&mut s, "1e-5", Some(8));
        assert_eq!(s, "1000");
    }

    /// OKX's documentation examples (the checksum section of the OKX/OKEx API docs): the
    /// string `3366.1:7:3366.8:9:3366:6:3368:8` (equal sides) and
    /// `3366.1:7:3366.8:9:3368:8:3372:8` (more asks), with their signed checksums.
    #[test]
    fn okx_documentation_examples_verify() {
        let mut v = BookVerifier::new(Exchange::Okx);
        let even = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["3366.8","9","10","3"],["3368","8","3","4"]],"bids":[["3366.1","7","0","3"],["3366","6","3","4"]],"ts":"1","checksum":-1881014294}]}"#;
        assert_eq!(v.check(even).verified, 1);
        let odd = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["3366.8","9","10","3"],["3368","8","3","4"],["3372","8","3","4"]],"bids":[["3366.1","7","0","3"]],"ts":"1","checksum":831078360}]}"#;
        assert_eq!(v.check(odd).verified, 1);
        let bad = odd.replace("[\"3372\",\"8\"", "[\"3372\",\"9\"");
        assert_eq!(v.check(&bad).mismatches.len(), 1);
    }

    #[test]
    fn okx_deprecated_zero_checksum_is_not_compared_but_sequence_gaps_are_found() {
        let mut v = BookVerifier::new(Exchange::Okx);
        let snap = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":[["3366.8","9","0","3"]],"bids":[["3366.1","7","0","3"]],"ts":"1","checksum":0,"seqId":100,"prevSeqId":-1}]}"#;
        assert_eq!(v.check(snap), Verdict::default());
        let next = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[["3366.1","8","0","3"]],"ts":"2","checksum":0,"seqId":101,"prevSeqId":100}]}"#;
        assert_eq!(v.check(next).verified, 1);
        // A reset (seqId below prevSeqId) is not a gap.
        let reset = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[],"ts":"3","checksum":0,"seqId":5,"prevSeqId":101}]}"#;
        assert!(v.check(reset).mismatches.is_empty());
        let gap = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[],"ts":"4","checksum":0,"seqId":9,"prevSeqId":7}]}"#;
        let verdict = v.check(gap);
        assert_eq!(
            verdict.mismatches[0].kind,
            MismatchKind::SequenceGap {
                last_seq_id: 5,
                prev_seq_id: 7
            }
        );
    }

    #[test]
    fn other_exchanges_channels_and_garbage_give_nothing() {
        let mut v = BookVerifier::new(Exchange::Binance);
        assert_eq!(v.check(KRAKEN_BTC_SNAPSHOT), Verdict::default());
        let mut v = BookVerifier::new(Exchange::Okx);
        assert_eq!(
            v.check(r#"{"arg":{"channel":"books5","instId":"X"},"data":[{"asks":[],"bids":[],"ts":"1","checksum":5}]}"#),
            Verdict::default()
        );
        let mut v = BookVerifier::new(Exchange::Kraken);
        for junk in [
            "[1,2,\"book-10\",\"X\"]",
            "{\"channel\":\"book\"}",
            "book",
            "[\"book-x\"]",
        ] {
            assert_eq!(v.check(junk), Verdict::default(), "{junk}");
        }
    }
}
