//! CSV in (entities to look up) and out (feature rows) for `trade2026 features history`.

use model::Timestamp;
use model::text::push_csv_field;

use crate::defs::{FeatureRow, FeatureValue, FeatureView};
use crate::error::FeaturesError;

/// A request time: RFC 3339 (`2024-01-02T03:04:05.123Z`, offsets allowed) or Unix seconds with
/// an optional fraction of up to 9 digits (`1704164645.123`).
pub fn parse_ts(s: &str) -> Result<Timestamp, String> {
    let s = s.trim();
    let numeric = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    if numeric && let Ok(t) = Timestamp::parse_decimal_secs(s) {
        return Ok(t);
    }
    Timestamp::parse_rfc3339(s).map_err(|_| {
        format!("{s:?} is not an RFC 3339 time nor Unix seconds (e.g. 2024-01-02T03:04:05Z or 1704164645.5)")
    })
}

/// Read `entity,ts` rows (a header naming both columns is required; other columns are ignored,
/// as are blank lines). Errors name the 1-based line (the header is line 1) and the column.
pub fn read_entities_csv(text: &str) -> Result<Vec<(String, Timestamp)>, FeaturesError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let err = |line: u64, column: &str, message: String| FeaturesError::Csv {
        line,
        column: column.to_string(),
        message,
    };
    let headers = rdr
        .headers()
        .map_err(|e| err(1, "-", format!("cannot read the header: {e}")))?
        .clone();
    let find = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            err(
                1,
                name,
                format!("missing column {name:?} (header must name entity and ts)"),
            )
        })
    };
    let (ei, ti) = (find("entity")?, find("ts")?);
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            err(line, "-", e.to_string())
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let entity = rec.get(ei).unwrap_or("");
        if entity.is_empty() {
            return Err(err(line, "entity", "empty entity".into()));
        }
        let ts = parse_ts(rec.get(ti).unwrap_or("")).map_err(|m| err(line, "ts", m))?;
        out.push((entity.to_string(), ts));
    }
    Ok(out)
}

/// Rows as CSV: `<entity join key>,event_timestamp,<features in view order>`; nulls are empty
/// fields, floats in Rust's shortest round-trip form, times in RFC 3339 with nanoseconds.
pub fn rows_to_csv(view: &FeatureView, rows: &[FeatureRow]) -> String {
    let mut out = String::new();
    out.push_str(view.entity);
    out.push_str(",event_timestamp");
    for f in view.features {
        out.push(',');
        out.push_str(f.name);
    }
    out.push('\n');
    for r in rows {
        push_csv_field(&mut out, &r.entity);
        out.push(',');
        out.push_str(&r.event_ts.to_string());
        for f in view.features {
            out.push(',');
            match r.get(f.name) {
                Some(FeatureValue::F64(v)) if v.is_finite() => out.push_str(&v.to_string()),
                Some(FeatureValue::I64(v)) => out.push_str(&v.to_string()),
                Some(FeatureValue::Str(s)) => push_csv_field(&mut out, s),
                _ => {}
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::view;

    #[test]
    fn entities_csv_reads_both_time_forms_and_names_bad_cells() {
        let rows = read_entities_csv(
            "\u{feff}entity,ts,note\nBTCUSDT.sim,2024-01-01T00:01:00Z,x\n\n acct-1 , 1704067260.5 ,\n",
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                (
                    "BTCUSDT.sim".to_string(),
                    Timestamp::from_secs(1_704_067_260)
                ),
                (
                    "acct-1".to_string(),
                    Timestamp::from_millis(1_704_067_260_500)
                ),
            ]
        );
        let e = read_entities_csv("entity,ts\na,2024-01-01T00:00:00Z\nb,yesterday\n").unwrap_err();
        assert!(
            matches!(&e, FeaturesError::Csv { line: 3, column, .. } if column == "ts"),
            "{e}"
        );
        let e = read_entities_csv("entity,time\na,1\n").unwrap_err();
        assert!(
            matches!(&e, FeaturesError::Csv { line: 1, column, .. } if column == "ts"),
            "{e}"
        );
        let e = read_entities_csv("entity,ts\n,1\n").unwrap_err();
        assert!(
            matches!(&e, FeaturesError::Csv { line: 2, column, .. } if column == "entity"),
            "{e}"
        );
        let e = read_entities_csv("entity,ts\na,1,extra\n").unwrap_err();
        assert!(matches!(&e, FeaturesError::Csv { line: 2, .. }), "{e}");
    }

    #[test]
    fn rows_csv_has_the_join_key_time_and_features_in_view_order() {
        let v = view("order_features").unwrap();
        let mut r = FeatureRow::null(v, "acc,1", Timestamp::from_secs(60));
        r.values[0].1 = FeatureValue::I64(3);
        r.values[2].1 = FeatureValue::F64(0.25);
        let csv = rows_to_csv(v, &[r]);
        assert_eq!(
            csv,
            "account,event_timestamp,orders_1h,cancels_1h,cancel_ratio_1h,fill_rate_1h,avg_slippage_bps_1h,rejects_1h,expires_1h,filled_orders_1h\n\
             \"acc,1\",1970-01-01T00:01:00.000000000Z,3,,0.25,,,,,\n"
        );
    }
}
