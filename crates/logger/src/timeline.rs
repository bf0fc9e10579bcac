//! An order's timeline: the journal's facts about the order (submitted, the risk decision,
//! triggers, fills, cancel or expiry, compliance alerts that name it) merged with every log
//! line that carries its id, in time order. Pure: the index rows come from journal events
//! ([`index_rows`]), the merge from what the store returns ([`merge`]).

use std::collections::BTreeSet;

use model::{Event, Timestamp};
use serde_json::{Value, json};

use crate::store::StoredLine;

/// A journal event as indexed for one order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEvent {
    pub order_id: u64,
    /// The event's journal sequence.
    pub seq: u64,
    pub ts: Timestamp,
    /// The event kind (`order_submitted`, `order_rejected`, `order_filled`, `compliance_alert`).
    pub kind: String,
    /// Every account the event involves (the scope rule applies to all of them).
    pub accounts: Vec<String>,
    /// What happened: the event as journaled, or for an alert its key, rule and accounts (the
    /// compliance service serves the whole alert).
    pub summary: Value,
}

/// The subjects the index reads.
pub const SUBJECTS: &str = "orders.* fills.* alerts.compliance";

/// The index rows of one journal event (none for events that concern no order).
pub fn index_rows(seq: u64, event: &Event) -> Vec<OrderEvent> {
    let one = |order_id: u64, account: &str| {
        let mut summary = serde_json::to_value(event).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut summary {
            m.remove("type");
        }
        vec![OrderEvent {
            order_id,
            seq,
            ts: event.ts(),
            kind: event.kind().as_str().to_owned(),
            accounts: vec![account.to_owned()],
            summary,
        }]
    };
    match event {
        Event::OrderSubmitted { order } => one(order.order_id.0, order.account.as_str()),
        Event::OrderAccepted {
            order_id, account, ..
        }
        | Event::OrderRejected {
            order_id, account, ..
        }
        | Event::OrderCanceled {
            order_id, account, ..
        }
        | Event::OrderExpired {
            order_id, account, ..
        }
        | Event::OrderTriggered {
            order_id, account, ..
        } => one(order_id.0, account.as_str()),
        Event::OrderFilled(f) => one(f.order_id.0, f.account.as_str()),
        Event::ComplianceAlert {
            key,
            rule,
            alert,
            ts,
        } => {
            let accounts: Vec<String> = accounts_in(alert).into_iter().collect();
            let summary = json!({
                "key": key,
                "rule": rule,
                "owner": alert.get("owner"),
                "accounts": accounts,
            });
            order_ids_in(alert)
                .into_iter()
                .map(|order_id| OrderEvent {
                    order_id,
                    seq,
                    ts: *ts,
                    kind: event.kind().as_str().to_owned(),
                    accounts: accounts.clone(),
                    summary: summary.clone(),
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Every order id an alert names: values of keys `order_id` / `*_order_id` and elements of
/// `order_ids` / `*_order_ids`, anywhere in it (the detectors' evidence nests them).
pub fn order_ids_in(alert: &Value) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    walk(alert, &mut |key, v| {
        let single = key == "order_id" || key.ends_with("_order_id");
        let many = key == "order_ids" || key.ends_with("_order_ids");
        if single {
            ids.extend(as_id(v));
        } else if many && let Value::Array(items) = v {
            ids.extend(items.iter().filter_map(as_id));
        }
    });
    ids
}

/// Every account an alert names (`accounts` lists, `account` / `*_account` values).
pub fn accounts_in(alert: &Value) -> BTreeSet<String> {
    let mut accounts = BTreeSet::new();
    walk(alert, &mut |key, v| match v {
        Value::String(s) if key == "account" || key.ends_with("_account") => {
            accounts.insert(s.clone());
        }
        Value::Array(items) if key == "accounts" => {
            accounts.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)));
        }
        _ => {}
    });
    accounts
}

fn as_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn walk(v: &Value, f: &mut impl FnMut(&str, &Value)) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                f(k, x);
                walk(x, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| walk(x, f)),
        _ => {}
    }
}

/// One entry of a timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Journal(OrderEvent),
    Log(StoredLine),
}

impl Entry {
    pub fn ts(&self) -> Timestamp {
        match self {
            Entry::Journal(e) => e.ts,
            Entry::Log(l) => l.record.ts,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Entry::Journal(e) => json!({
                "ts": e.ts,
                "source": "journal",
                "seq": e.seq,
                "kind": e.kind,
                "summary": e.summary,
            }),
            Entry::Log(l) => {
                let mut v = l.to_json();
                if let Value::Object(m) = &mut v {
                    m.insert("source".into(), Value::from("log"));
                }
                v
            }
        }
    }
}

/// Journal events and log lines in time order. At the same instant a journal fact comes
/// before the lines about it; journal events keep their sequence order and lines their id order.
pub fn merge(events: Vec<OrderEvent>, lines: Vec<StoredLine>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = events
        .into_iter()
        .map(Entry::Journal)
        .chain(lines.into_iter().map(Entry::Log))
        .collect();
    entries.sort_by_key(|e| match e {
        Entry::Journal(j) => (e.ts(), 0, j.seq as i64),
        Entry::Log(l) => (e.ts(), 1, l.id),
    });
    entries
}

/// The order's account: the one its own events name.
pub fn order_account(events: &[OrderEvent]) -> Option<&str> {
    events
        .iter()
        .find(|e| e.kind != "compliance_alert")
        .and_then(|e| e.accounts.first())
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Level, Record};
    use model::{AccountId, OrderId};

    #[test]
    fn order_events_index_under_their_order_with_their_account() {
        let ev = Event::OrderRejected {
            order_id: OrderId(7),
            account: AccountId::new("acc").unwrap(),
            code: "price_collar".into(),
            message: "too far".into(),
            ts: Timestamp::from_nanos(100),
        };
        let rows = index_rows(12, &ev);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(
            (r.order_id, r.seq, r.kind.as_str()),
            (7, 12, "order_rejected")
        );
        assert_eq!(r.accounts, vec!["acc".to_owned()]);
        assert_eq!(r.summary["code"], "price_collar");
        assert!(r.summary.get("type").is_none());
        let md = Event::IdsReserved {
            orders_through: 1,
            fills_through: 1,
            ts: Timestamp::from_nanos(1),
        };
        assert!(index_rows(1, &md).is_empty());
    }

    #[test]
    fn an_alert_is_indexed_under_every_order_it_names() {
        // The shape of a spoofing alert's evidence (crates/surveillance alert.rs).
        let alert = json!({
            "owner": "o1",
            "accounts": ["a", "b"],
            "evidence": {
                "genuine_order_id": "5",
                "genuine_account": "a",
                "spoof_order_ids": ["6", "7"],
                "spoof_orders": [{"order_id": "6", "account": "b"}],
                "genuine_fills": [{"fill_id": "99", "order_id": "5"}]
            }
        });
        assert_eq!(order_ids_in(&alert), [5, 6, 7].into());
        assert_eq!(accounts_in(&alert), ["a".to_owned(), "b".to_owned()].into());
        let ev = Event::ComplianceAlert {
            key: "k1".into(),
            rule: "SPOOFING".into(),
            alert,
            ts: Timestamp::from_nanos(9),
        };
        let rows = index_rows(40, &ev);
        assert_eq!(
            rows.iter().map(|r| r.order_id).collect::<Vec<_>>(),
            vec![5, 6, 7]
        );
        assert_eq!(rows[0].summary["key"], "k1");
        assert_eq!(rows[0].accounts, vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn the_merge_is_in_time_order_with_facts_before_lines_at_the_same_instant() {
        let ev = |seq, ts| OrderEvent {
            order_id: 1,
            seq,
            ts: Timestamp::from_nanos(ts),
            kind: "order_accepted".into(),
            accounts: vec!["a".into()],
            summary: Value::Null,
        };
        let line = |id, ts| StoredLine {
            id,
            record: Record::new(Timestamp::from_nanos(ts), Level::Info, "s", "t", "m".into()),
        };
        let merged = merge(
            vec![ev(3, 20), ev(2, 10)],
            vec![line(8, 10), line(5, 30), line(4, 5)],
        );
        let order: Vec<String> = merged
            .iter()
            .map(|e| match e {
                Entry::Journal(j) => format!("j{}", j.seq),
                Entry::Log(l) => format!("l{}", l.id),
            })
            .collect();
        assert_eq!(order, ["l4", "j2", "l8", "j3", "l5"]);
        assert_eq!(order_account(&[ev(1, 1)]), Some("a"));
    }
}
