//! Alerts and their evidence. Every alert is a candidate for human review, not a finding: intent
//! is never observable in order data (spec B0).

use model::text::csv_field;
use model::{Decimal, Side, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Rule {
    WashTrade,
    Spoofing,
    Layering,
    MarkingTheClose,
    MomentumIgnition,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::WashTrade => "WASH_TRADE",
            Rule::Spoofing => "SPOOFING",
            Rule::Layering => "LAYERING",
            Rule::MarkingTheClose => "MARKING_THE_CLOSE",
            Rule::MomentumIgnition => "MOMENTUM_IGNITION",
        }
    }
}

/// A triage hint for the reviewer's queue, not a measure of culpability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    #[serde(rename = "type")]
    pub rule: Rule,
    pub subtype: String,
    /// Beneficial owner of the order or fill the alert is about (the genuine order, the buy
    /// leg, the layers, the burst); `evidence` names every owner involved.
    pub owner: String,
    /// Every account involved, sorted.
    pub accounts: Vec<String>,
    pub symbol: String,
    /// Time of the event that completed the pattern (for marking the close: the close).
    pub ts: Timestamp,
    pub severity: Severity,
    /// Deterministic from the rule and the identifying order/fill ids: equal across runs and
    /// between streaming and batch, so a re-run or a replay can be deduplicated on it.
    pub key: String,
    pub evidence: Evidence,
}

/// One struct per rule; serialized without a tag (the alert's `type` says which).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Evidence {
    Wash(WashEvidence),
    Spoofing(SpoofingEvidence),
    Layering(LayeringEvidence),
    MarkingTheClose(MtcEvidence),
    MomentumIgnition(MiEvidence),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuoteSnap {
    pub ts: Timestamp,
    pub bid: Option<Decimal>,
    pub ask: Option<Decimal>,
    pub bid_size: Option<Decimal>,
    pub ask_size: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillRef {
    pub fill_id: String,
    pub order_id: String,
    pub account: String,
    pub side: Side,
    pub qty: Decimal,
    pub price: Decimal,
    pub ts: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WashEvidence {
    pub trade_ids: Vec<String>,
    pub buy: FillRef,
    pub sell: FillRef,
    pub buy_owner: String,
    pub sell_owner: String,
    /// The related-owner group that links the two owners, when one does.
    pub owner_group: Option<Vec<String>>,
    pub delta_ms: i64,
    pub price_diff_bps: Decimal,
    pub qty_diff_ratio: Decimal,
    /// Owner's net position change over the two legs (buy qty - sell qty).
    pub net_position_change: Decimal,
    /// Owner's order quantity / filled quantity so far this UTC day (null before any fill).
    pub order_to_trade_ratio: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpoofOrder {
    pub order_id: String,
    pub account: String,
    pub side: Side,
    pub qty: Decimal,
    pub price: Option<Decimal>,
    pub filled_qty: Decimal,
    pub placed: Timestamp,
    pub cancelled: Timestamp,
    pub lifetime_ms: i64,
    /// Cancel time minus the latest fill of the genuine order at or before it.
    pub cancel_latency_ms: i64,
    pub ticks_from_touch: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpoofingEvidence {
    pub genuine_order_id: String,
    pub genuine_account: String,
    pub genuine_side: Side,
    pub genuine_qty: Decimal,
    pub genuine_price: Option<Decimal>,
    pub genuine_filled_qty: Decimal,
    pub genuine_fills: Vec<FillRef>,
    pub entry_to_first_fill_ms: Option<i64>,
    pub spoof_order_ids: Vec<String>,
    pub spoof_orders: Vec<SpoofOrder>,
    pub total_spoof_qty: Decimal,
    /// total_spoof_qty / genuine_qty.
    pub size_ratio: Decimal,
    pub price_levels: Vec<Decimal>,
    pub min_lifetime_ms: i64,
    pub max_lifetime_ms: i64,
    pub max_cancel_latency_ms: i64,
    pub order_to_trade_ratio: Option<Decimal>,
    pub quote_at_genuine_entry: Option<QuoteSnap>,
    pub quote_at_alert: Option<QuoteSnap>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerOrder {
    pub order_id: String,
    pub account: String,
    pub price: Decimal,
    pub qty: Decimal,
    pub filled_qty: Decimal,
    pub placed: Timestamp,
    pub cancelled: Timestamp,
    pub lifetime_ms: i64,
    /// `(price - ask)/tick` for sells, `(bid - price)/tick` for buys, at placement.
    pub ticks_from_touch: Option<Decimal>,
}

/// The episode's orders, levels and fill quantity of the layers are those listed (see
/// `orders_not_listed`); `total_qty` and `max_simultaneous_levels` cover every order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayeringEvidence {
    pub side: Side,
    pub order_ids: Vec<String>,
    pub orders: Vec<LayerOrder>,
    pub distinct_levels: usize,
    pub max_simultaneous_levels: usize,
    pub total_qty: Decimal,
    /// Same-side touch size at the episode start (top-of-book proxy for "large").
    pub touch_size: Decimal,
    pub layer_fill_qty: Decimal,
    pub episode_start: Timestamp,
    pub episode_end: Timestamp,
    pub episode_duration_ms: i64,
    pub opposite_fills: Vec<FillRef>,
    pub opposite_fill_qty: Decimal,
    pub order_to_trade_ratio: Option<Decimal>,
    /// Orders of the episode cancelled more than `order_max_live_ms` before the alert: counted
    /// in `total_qty` and the levels, not listed (an episode chaining orders for longer than
    /// that keeps only its recent ones). Absent when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub orders_not_listed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtcEvidence {
    pub close: Timestamp,
    pub window_start: Timestamp,
    pub ref_price: Decimal,
    pub close_price: Decimal,
    pub tape_volume: Decimal,
    pub owner_volume: Decimal,
    pub volume_share: Decimal,
    pub buy_qty: Decimal,
    pub sell_qty: Decimal,
    pub net_ratio: Decimal,
    pub move_bps: Decimal,
    pub taker_share: Decimal,
    pub fill_ids: Vec<String>,
    /// Owner's orders cancelled inside the window (the 2016/522 indicator, without auction data).
    pub cancelled_orders_in_window: usize,
    pub cancelled_qty_in_window: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MiEvidence {
    pub side: Side,
    pub burst_order_ids: Vec<String>,
    pub burst_fill_ids: Vec<String>,
    pub burst_fills: usize,
    pub burst_qty: Decimal,
    pub burst_start: Timestamp,
    pub burst_end: Timestamp,
    pub burst_duration_ms: i64,
    pub burst_vwap: Decimal,
    pub mid_pre: Decimal,
    pub mid_post: Decimal,
    pub move_bps: Decimal,
    pub exit_order_ids: Vec<String>,
    pub exit_fill_ids: Vec<String>,
    pub exit_qty: Decimal,
    pub exit_vwap: Decimal,
    /// (exit VWAP - burst VWAP) x matched qty, signed so a profit is positive.
    pub gross_pnl: Decimal,
    /// Owner's cancelled quantity / order quantity this UTC day (the high-cancel variant).
    pub cancel_ratio: Option<Decimal>,
}

/// Key = rule name + first 16 bytes of SHA-256 over the identifying parts.
pub(crate) fn make_key(rule: Rule, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_str().as_bytes());
    for p in parts {
        h.update([0x1f]);
        h.update(p.as_bytes());
    }
    let d = h.finalize();
    format!("{}-{}", rule.as_str(), hex::encode(&d[..16]))
}

/// CSV for the CLI: one row per alert, `evidence` as a JSON string in the last column.
pub fn alerts_to_csv(alerts: &[Alert]) -> String {
    let mut out = String::from("type,subtype,owner,accounts,symbol,ts,severity,key,evidence\n");
    for a in alerts {
        let sev = match a.severity {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        };
        let evidence = serde_json::to_string(&a.evidence).unwrap_or_default();
        let fields = [
            a.rule.as_str().to_string(),
            a.subtype.clone(),
            a.owner.clone(),
            a.accounts.join(";"),
            a.symbol.clone(),
            a.ts.to_string(),
            sev.to_string(),
            a.key.clone(),
            evidence,
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}
