//! CSV (Form 8949 column layout) and self-contained HTML renderings of a [`TaxReport`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom, Write};

use model::text::{DATE_TEXT, DECIMAL_TEXT, date_str, decimal_str, push_csv_field};
use rust_decimal::{Decimal, RoundingStrategy};

use super::{
    Replacement, TaxFilter, TaxReport, TaxRow, TaxSink, TaxSummary, Term, TermTotals, WashMatch,
};
use crate::PtrcError;

const CSV_HEADER: [&str; 9] = [
    "part",
    "(a) description",
    "(b) date acquired",
    "(c) date sold",
    "(d) proceeds",
    "(e) cost basis",
    "(f) code",
    "(g) adjustment",
    "(h) gain or loss",
];

fn csv_line(out: &mut String, fields: &[&str]) {
    for (k, f) in fields.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        push_csv_field(out, f);
    }
    out.push('\n');
}

/// A row's CSV columns as text (the HTML table shows the same).
fn row_fields(r: &TaxRow) -> [String; 9] {
    [
        r.part.to_string(),
        r.description.clone(),
        r.date_acquired.to_string(),
        r.date_sold.to_string(),
        r.proceeds.to_string(),
        r.cost_basis.to_string(),
        r.adjustment_code.to_string(),
        if r.adjustment.is_zero() {
            String::new()
        } else {
            r.adjustment.to_string()
        },
        r.gain_loss.to_string(),
    ]
}

/// One row's line, written straight into `out` (dates and amounts never need quoting): the
/// same bytes as `csv_line` over [`row_fields`], without its nine strings.
fn csv_row(out: &mut String, r: &TaxRow) {
    let mut num = [0; DECIMAL_TEXT];
    let mut date = [0; DATE_TEXT];
    push_csv_field(out, &r.part);
    out.push(',');
    push_csv_field(out, &r.description);
    out.push(',');
    out.push_str(date_str(r.date_acquired, &mut date));
    out.push(',');
    out.push_str(date_str(r.date_sold, &mut date));
    out.push(',');
    out.push_str(decimal_str(&r.proceeds, &mut num));
    out.push(',');
    out.push_str(decimal_str(&r.cost_basis, &mut num));
    out.push(',');
    push_csv_field(out, &r.adjustment_code);
    out.push(',');
    // Column (g) is empty when there is no adjustment, as on the form.
    if !r.adjustment.is_zero() {
        out.push_str(decimal_str(&r.adjustment, &mut num));
    }
    out.push(',');
    out.push_str(decimal_str(&r.gain_loss, &mut num));
    out.push('\n');
}

fn csv_total(out: &mut String, term: Term, totals: &TermTotals) {
    let label = format!("Total Part {}", term.part());
    let (d, e, g, h) = (
        totals.proceeds.to_string(),
        totals.cost_basis.to_string(),
        totals.adjustment.to_string(),
        totals.gain_loss.to_string(),
    );
    csv_line(out, &[term.part(), &label, "", "", &d, &e, "", &g, &h]);
}

/// Form 8949 columns (a)-(h), one line per row, Part I rows then a `Total Part I` line, then
/// Part II likewise (a part with no rows is left out). Column (g) is empty when there is no
/// adjustment, as on the form.
pub fn tax_to_csv(report: &TaxReport) -> String {
    let mut out = String::with_capacity(64 * (report.rows.len() + 4));
    csv_line(&mut out, &CSV_HEADER);
    for (term, totals) in [
        (Term::Short, &report.totals.short),
        (Term::Long, &report.totals.long),
    ] {
        let mut any = false;
        for r in report.rows.iter().filter(|r| r.term == term) {
            any = true;
            csv_row(&mut out, r);
        }
        if any {
            csv_total(&mut out, term, totals);
        }
    }
    out
}

/// The output format of a [`TaxStream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxFormat {
    /// [`tax_to_csv`]'s lines.
    Csv,
    /// The [`TaxReport`] as JSON (same fields and order), one row, wash or lot per line.
    Json,
}

fn write_err(e: std::io::Error) -> PtrcError {
    PtrcError::Write(e.to_string())
}

/// A [`TaxSink`] that writes the report as rows arrive (the `ptrc tax` CLI): Part I rows go
/// straight to `out`; Part II rows, and the wash matches (JSON), which come after them in the
/// report, wait in the two spill files given (temporary files; any `Read + Write + Seek`), and
/// [`TaxStream::finish`] appends them with the totals. Memory does not grow with the row count.
pub struct TaxStream<W: Write, T: Read + Write + Seek> {
    format: TaxFormat,
    out: W,
    part2: Spill<T>,
    washes: Spill<T>,
    short_rows: usize,
    long_rows: usize,
    line: String,
}

impl<W: Write, T: Read + Write + Seek> TaxStream<W, T> {
    /// Starts the output: the CSV header, or the JSON object up to its `rows` array.
    pub fn new(
        format: TaxFormat,
        year: i32,
        filter: Option<&TaxFilter>,
        mut out: W,
        part2: T,
        washes: T,
    ) -> Result<Self, PtrcError> {
        let mut line = String::new();
        match format {
            TaxFormat::Csv => csv_line(&mut line, &CSV_HEADER),
            TaxFormat::Json => {
                let filter = to_json(&filter)?;
                let _ = write!(line, "{{\"year\":{year},\"filter\":{filter},\"rows\":[");
            }
        }
        out.write_all(line.as_bytes()).map_err(write_err)?;
        line.clear();
        Ok(TaxStream {
            format,
            out,
            part2: Spill::new(part2),
            washes: Spill::new(washes),
            short_rows: 0,
            long_rows: 0,
            line,
        })
    }

    /// Writes the totals, the Part II rows, the washes and the rest of the report; returns the
    /// output writer (flushed).
    pub fn finish(mut self, summary: &TaxSummary) -> Result<W, PtrcError> {
        match self.format {
            TaxFormat::Csv => {
                if self.short_rows > 0 {
                    csv_total(&mut self.line, Term::Short, &summary.totals.short);
                }
                self.flush_line()?;
                self.part2.copy_to(0, &mut self.out)?;
                if self.long_rows > 0 {
                    csv_total(&mut self.line, Term::Long, &summary.totals.long);
                }
                self.flush_line()?;
            }
            TaxFormat::Json => {
                // Part II elements were written with a leading comma each.
                let skip = u64::from(self.short_rows == 0);
                self.part2.copy_to(skip, &mut self.out)?;
                let _ = write!(
                    self.line,
                    "\n],\"totals\":{},\"washes\":[",
                    to_json(&summary.totals)?
                );
                self.flush_line()?;
                self.washes.copy_to(1, &mut self.out)?;
                self.line.push_str("\n],\"open_lots\":[");
                for (k, l) in summary.open_lots.iter().enumerate() {
                    let sep = if k == 0 { "\n" } else { ",\n" };
                    let _ = write!(self.line, "{sep}{}", to_json(l)?);
                    if self.line.len() > 1 << 16 {
                        self.flush_line()?;
                    }
                }
                let _ = write!(
                    self.line,
                    "\n],\"open_shorts\":{},\"notes\":{},\"settings\":{}}}\n",
                    to_json(&summary.open_shorts)?,
                    to_json(&summary.notes)?,
                    to_json(&summary.settings)?
                );
                self.flush_line()?;
            }
        }
        self.out.flush().map_err(write_err)?;
        Ok(self.out)
    }

    fn flush_line(&mut self) -> Result<(), PtrcError> {
        self.out
            .write_all(self.line.as_bytes())
            .map_err(write_err)?;
        self.line.clear();
        Ok(())
    }
}

fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, PtrcError> {
    serde_json::to_string(v).map_err(|e| PtrcError::Write(e.to_string()))
}

/// A spill file with a write buffer (the file itself may be unbuffered).
struct Spill<T> {
    file: T,
    buf: Vec<u8>,
}

impl<T: Read + Write + Seek> Spill<T> {
    fn new(file: T) -> Self {
        Spill {
            file,
            buf: Vec::with_capacity(1 << 16),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), PtrcError> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 1 << 16 {
            self.file.write_all(&self.buf).map_err(write_err)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Appends what was written, from byte `from` on, to `out`.
    fn copy_to(&mut self, from: u64, out: &mut impl Write) -> Result<(), PtrcError> {
        self.file.write_all(&self.buf).map_err(write_err)?;
        self.buf.clear();
        let end = self.file.seek(SeekFrom::End(0)).map_err(write_err)?;
        if end <= from {
            return Ok(());
        }
        self.file.seek(SeekFrom::Start(from)).map_err(write_err)?;
        std::io::copy(&mut self.file, out).map_err(write_err)?;
        Ok(())
    }
}

impl<W: Write, T: Read + Write + Seek> TaxSink for TaxStream<W, T> {
    type Error = PtrcError;

    fn row(&mut self, row: &TaxRow) -> Result<(), PtrcError> {
        let long = row.term == Term::Long;
        match self.format {
            TaxFormat::Csv => csv_row(&mut self.line, row),
            TaxFormat::Json => {
                let sep = if long || self.short_rows > 0 {
                    ",\n"
                } else {
                    "\n"
                };
                self.line.push_str(sep);
                self.line.push_str(&to_json(row)?);
            }
        }
        if long {
            self.long_rows += 1;
            self.part2.write(self.line.as_bytes())?;
        } else {
            self.short_rows += 1;
            self.out
                .write_all(self.line.as_bytes())
                .map_err(write_err)?;
        }
        self.line.clear();
        Ok(())
    }

    fn wash(&mut self, wash: &WashMatch) -> Result<(), PtrcError> {
        if self.format == TaxFormat::Json {
            let text = to_json(wash)?;
            self.washes.write(b",\n")?;
            self.washes.write(text.as_bytes())?;
        }
        Ok(())
    }
}

/// Escape text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

fn part_table(out: &mut String, report: &TaxReport, term: Term, totals: &TermTotals) {
    let title = match term {
        Term::Short => "Part I &mdash; Short-term (held one year or less)",
        Term::Long => "Part II &mdash; Long-term (held more than one year)",
    };
    let _ = writeln!(out, "<h2>{title}</h2>");
    let rows: Vec<&TaxRow> = report.rows.iter().filter(|r| r.term == term).collect();
    if rows.is_empty() {
        out.push_str("<p>No transactions.</p>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th>Account</th><th>(a) Description</th><th>(b) Date acquired</th>\
<th>(c) Date sold</th><th>(d) Proceeds</th><th>(e) Cost basis</th><th>(f) Code</th>\
<th>(g) Adjustment</th><th>(h) Gain or (loss)</th></tr></thead>\n<tbody>\n",
    );
    for r in rows {
        let f = row_fields(r);
        let cls = if r.gain_loss < Decimal::ZERO {
            " class=\"neg\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\"><span{cls}>{}</span></td></tr>",
            esc(&r.account),
            esc(&f[1]),
            esc(&f[2]),
            esc(&f[3]),
            esc(&f[4]),
            esc(&f[5]),
            esc(&f[6]),
            esc(&f[7]),
            esc(&f[8]),
        );
    }
    let _ = writeln!(
        out,
        "</tbody>\n<tfoot><tr><th colspan=\"4\">Totals ({} rows)</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></tfoot>\n</table>",
        totals.rows,
        esc(&totals.proceeds.to_string()),
        esc(&totals.cost_basis.to_string()),
        esc(&totals.adjustment.to_string()),
        esc(&totals.gain_loss.to_string()),
    );
}

/// Horizontal bars of the gain or loss per symbol (column (h) summed), losses to the left of the
/// axis. Geometry is computed in exact decimals and rounded to 0.1 px.
fn chart(out: &mut String, report: &TaxReport) {
    let mut by_symbol: BTreeMap<&str, Decimal> = BTreeMap::new();
    for r in &report.rows {
        // Only the bar lengths depend on it: saturating keeps absurd inputs drawable.
        let sum = by_symbol.entry(&r.symbol).or_default();
        *sum = sum.saturating_add(r.gain_loss);
    }
    if by_symbol.is_empty() {
        return;
    }
    let max = by_symbol
        .values()
        .map(|v| v.abs())
        .max()
        .unwrap_or(Decimal::ZERO);
    let (label_w, half, bar_h, gap) = (140i64, Decimal::from(250), 18i64, 6i64);
    let axis = Decimal::from(label_w) + half;
    let width = label_w + 2 * 250 + 120;
    let height = (bar_h + gap) * by_symbol.len() as i64 + gap;
    let _ = writeln!(
        out,
        "<h2>Gain or (loss) by symbol</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"Gain or loss by symbol\">"
    );
    for (k, (sym, v)) in by_symbol.iter().enumerate() {
        let y = gap + k as i64 * (bar_h + gap);
        let len = if max.is_zero() {
            Decimal::ZERO
        } else {
            // The ratio first: it is at most 1, so no product can leave the decimal range.
            (v.abs().checked_div(max).unwrap_or(Decimal::ONE) * half)
                .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero)
        };
        let x = if *v < Decimal::ZERO { axis - len } else { axis };
        let color = if *v < Decimal::ZERO {
            "#c0392b"
        } else {
            "#27ae60"
        };
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\">{}</text><rect x=\"{x}\" y=\"{y}\" width=\"{len}\" height=\"{bar_h}\" fill=\"{color}\"><title>{}: {}</title></rect><text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>",
            label_w - 6,
            y + 13,
            esc(sym),
            esc(sym),
            esc(&v.to_string()),
            axis + half + Decimal::from(6),
            y + 13,
            esc(&v.to_string()),
        );
    }
    let _ = writeln!(
        out,
        "<line x1=\"{axis}\" y1=\"0\" x2=\"{axis}\" y2=\"{height}\" stroke=\"#333\"/>\n</svg>"
    );
}

/// A self-contained HTML page (inline CSS, no JavaScript): Part I and Part II tables with
/// totals, a bar chart of gain or loss per symbol, the wash-sale matches, the open lots carried
/// into the next year and the settings used. All text is escaped.
pub fn tax_to_html(report: &TaxReport) -> String {
    let mut out = String::with_capacity(256 * (report.rows.len() + 16));
    let scope = match &report.filter {
        None => "all accounts".to_string(),
        Some(super::TaxFilter::Account(a)) => format!("account {a}"),
        Some(super::TaxFilter::Owner(o)) => format!("owner {o}"),
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Form 8949 {year} &mdash; {scope}</title>\n<style>\nbody{{font-family:sans-serif;margin:1.5em;color:#222}}\ntable{{border-collapse:collapse;margin-bottom:1em}}\nth,td{{border:1px solid #bbb;padding:3px 6px;font-size:13px}}\nthead th{{background:#eee}}\ntfoot th,tfoot td{{background:#f6f6f6;font-weight:bold}}\n.n{{text-align:right;font-variant-numeric:tabular-nums}}\n.neg{{color:#c0392b}}\n</style>\n</head>\n<body>\n<h1>Sales and other dispositions of capital assets (Form 8949), {year}</h1>\n<p>{scope}. Code W: wash sale, loss disallowed (column (g) is the disallowed loss as a positive number; (h) = (d) &minus; (e) + (g)).</p>\n",
        year = report.year,
        scope = esc(&scope),
    );
    part_table(&mut out, report, Term::Short, &report.totals.short);
    part_table(&mut out, report, Term::Long, &report.totals.long);
    let t = &report.totals.total;
    let _ = writeln!(
        out,
        "<p><b>All rows:</b> proceeds {}, cost basis {}, adjustments {}, gain or (loss) {}.</p>",
        esc(&t.proceeds.to_string()),
        esc(&t.cost_basis.to_string()),
        esc(&t.adjustment.to_string()),
        esc(&t.gain_loss.to_string()),
    );
    chart(&mut out, report);
    if !report.washes.is_empty() {
        out.push_str("<h2>Wash sales</h2>\n<table>\n<thead><tr><th>Symbol</th><th>Loss on</th><th>Sale account</th><th>Date sold</th><th>Replacement</th><th>Replacement account</th><th>Replacement date</th><th>Qty</th><th>Disallowed</th><th>Holding period from</th></tr></thead>\n<tbody>\n");
        for w in &report.washes {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&w.symbol),
                if w.short_sale {
                    "short cover (§1091(e))"
                } else {
                    "sale"
                },
                esc(&w.sale_account),
                w.date_sold,
                match w.replacement {
                    Replacement::Purchase => "purchase",
                    Replacement::ShortSale => "short sale",
                    Replacement::Sale => "shares sold",
                },
                esc(&w.replacement_account),
                w.replacement_date,
                esc(&w.qty.to_string()),
                esc(&w.disallowed.to_string()),
                w.holding_period_start,
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if !report.open_lots.is_empty() {
        out.push_str("<h2>Open lots carried into the next year</h2>\n<table>\n<thead><tr><th>Account</th><th>Symbol</th><th>Lot</th><th>Qty</th><th>Cost basis</th><th>of which wash adjustment</th><th>Acquired</th><th>Holding period from</th></tr></thead>\n<tbody>\n");
        for l in &report.open_lots {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&l.account),
                esc(&l.symbol),
                esc(l.lot_id.as_deref().unwrap_or("")),
                esc(&l.qty.to_string()),
                esc(&l.cost_basis.to_string()),
                esc(&l.wash_adjustment.to_string()),
                l.date_acquired,
                l.holding_period_start,
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if !report.open_shorts.is_empty() {
        out.push_str("<h2>Open short sales carried into the next year</h2>\n<table>\n<thead><tr><th>Account</th><th>Symbol</th><th>Qty</th><th>Proceeds</th><th>Deferred loss added at cover</th><th>Opened</th></tr></thead>\n<tbody>\n");
        for sh in &report.open_shorts {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&sh.account),
                esc(&sh.symbol),
                esc(&sh.qty.to_string()),
                esc(&sh.proceeds.to_string()),
                esc(&sh.wash_adjustment.to_string()),
                sh.date_opened,
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if !report.notes.is_empty() {
        out.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in &report.notes {
            let _ = writeln!(out, "<li>{}</li>", esc(n));
        }
        out.push_str("</ul>\n");
    }
    let settings = serde_json::to_string_pretty(&report.settings).unwrap_or_default();
    let _ = write!(
        out,
        "<h2>Settings</h2>\n<pre>{}</pre>\n</body>\n</html>\n",
        esc(&settings)
    );
    out
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    /// The hand-written row line against the generic one over the row's text fields, on rows
    /// that need quoting, negative and zero amounts, empty and set codes.
    #[test]
    fn csv_row_writes_what_csv_line_writes() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        let base = TaxRow {
            account: "a".into(),
            owner: "o".into(),
            symbol: "XYZ".into(),
            description: "100 XYZ".into(),
            qty: Decimal::new(100, 0),
            lot_id: None,
            date_acquired: day(2024, 2, 29),
            date_sold: day(2025, 1, 2),
            proceeds: Decimal::new(123_456, 2),
            cost_basis: Decimal::new(-5, 3),
            adjustment_code: "".into(),
            adjustment: Decimal::new(0, 2),
            gain_loss: Decimal::new(-100_000_001, 2),
            term: Term::Short,
            part: "I".into(),
            short_sale: false,
        };
        let rows = [
            base.clone(),
            TaxRow {
                description: "7 \"A,B\"\n".into(),
                adjustment_code: "W".into(),
                adjustment: Decimal::new(1, 2),
                part: "II".into(),
                date_acquired: day(9999, 12, 31),
                date_sold: day(10_000, 1, 1),
                ..base.clone()
            },
            TaxRow {
                proceeds: Decimal::MAX,
                cost_basis: Decimal::new(0, 0),
                gain_loss: Decimal::from_i128_with_scale(-1, 28),
                adjustment_code: "a\rb".into(),
                adjustment: Decimal::new(-7, 0),
                ..base
            },
        ];
        for r in &rows {
            let (mut fast, mut slow) = (String::new(), String::new());
            csv_row(&mut fast, r);
            let f = row_fields(r);
            let refs: [&str; 9] = std::array::from_fn(|k| f[k].as_str());
            csv_line(&mut slow, &refs);
            assert_eq!(fast, slow);
        }
    }
}
