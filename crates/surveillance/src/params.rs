//! Detection parameters, named as in the spec (section B) with the spec's defaults.
//!
//! Every field has a default, so a parameter file only names what it changes. Unknown names
//! are rejected: a misspelt threshold silently falling back to its default would be worse.

use std::collections::{BTreeMap, HashMap};

use model::{Decimal, Timestamp};
use serde::{Deserialize, Serialize};

use crate::SurveillanceError;

/// How accounts are linked into one "owner" for every rule (spec 6.12: same account, same
/// beneficial owner, common ownership / related parties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OwnerLinkage {
    /// Only the same account counts as "the same owner" (FINRA 5210 desk-level reading).
    Account,
    /// The record's beneficial `owner` (falls back to the account).
    Owner,
    /// The beneficial owner, and owners listed together in `related_owner_groups` are one
    /// (CME 534 common ownership, MAR "acting in concert"). The spec's reading.
    #[default]
    Group,
}

/// Which quote is "prevailing" at an order's placement (spec 6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QuoteTiming {
    /// Last quote with `ts <= t` (the spec's convention; among equal timestamps the later
    /// message already received wins).
    #[default]
    Inclusive,
    /// Last quote with `ts < t`.
    Strict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Reading of 6.12 (applies to every rule).
    pub owner_linkage: OwnerLinkage,
    /// Reading of 6.1 (touch at order placement, used by layering and the spoofing touch
    /// filter).
    pub quote_timing: QuoteTiming,

    // B1 wash trades
    pub wash_window_ms: i64,
    pub wash_price_tol_bps: Decimal,
    pub wash_qty_tol_ratio: Decimal,
    /// Groups of beneficial owners treated as one (only with `owner_linkage = group`).
    pub related_owner_groups: Vec<Vec<String>>,

    // B2 spoofing
    /// Cancel latency: a spoof order must be cancelled within this time after the fill.
    pub spoof_t_post_ms: i64,
    pub spoof_t_life_ms: i64,
    pub spoof_k_size: Decimal,
    pub spoof_max_fill_ratio: Decimal,
    /// Reading of 6.13. `null` (default): no price condition, so a Coscia-like sequence raises
    /// both SPOOFING and LAYERING. A number N: a spoof order must have been at most N ticks
    /// outside the same-side touch at placement (0 = at or inside the touch, FINRA's
    /// "inside the NBBO" spoofing), which separates spoofing from away-from-touch layering.
    pub spoof_max_ticks_from_touch: Option<Decimal>,

    // B3 layering
    pub layer_min_levels: usize,
    pub layer_max_fill_ratio: Decimal,
    pub layer_k_touch: Decimal,
    pub layer_min_ticks_away: Decimal,
    pub layer_t_post_ms: i64,
    /// Tick size per symbol.
    pub tick_size: BTreeMap<String, Decimal>,
    /// Tick size for symbols not in `tick_size`.
    pub default_tick_size: Decimal,

    // B4 marking the close
    /// Session close per symbol (`"*"` = every other symbol): either an RFC 3339 timestamp
    /// (one session) or a UTC time of day `"HH:MM"`, `"HH:MM:SS"`, `"HH:MM:SS.fff"` (every day).
    /// Empty (default): the rule is off.
    pub mtc_close: BTreeMap<String, String>,
    pub mtc_window_ms: i64,
    pub mtc_min_volume_share: Decimal,
    pub mtc_min_net_ratio: Decimal,
    pub mtc_min_move_bps: Decimal,
    pub mtc_min_aggressive_share: Decimal,

    // B5 momentum ignition
    pub mi_burst_window_ms: i64,
    pub mi_min_burst_fills: usize,
    pub mi_settle_ms: i64,
    pub mi_min_move_bps: Decimal,
    pub mi_exit_window_ms: i64,
    pub mi_min_exit_ratio: Decimal,

    /// State bound: a live order older than this is forgotten (treated as unknown when it is
    /// later cancelled or filled). Not in the spec; 1 day keeps Sarao-length layers.
    pub order_max_live_ms: i64,
}

impl Default for Params {
    fn default() -> Self {
        let d = |s: &str| s.parse::<Decimal>().unwrap_or_default();
        Params {
            owner_linkage: OwnerLinkage::Group,
            quote_timing: QuoteTiming::Inclusive,
            wash_window_ms: 60_000,
            wash_price_tol_bps: Decimal::from(10),
            wash_qty_tol_ratio: d("0.10"),
            related_owner_groups: Vec::new(),
            spoof_t_post_ms: 1_000,
            spoof_t_life_ms: 60_000,
            spoof_k_size: Decimal::from(5),
            spoof_max_fill_ratio: d("0.10"),
            spoof_max_ticks_from_touch: None,
            layer_min_levels: 3,
            layer_max_fill_ratio: d("0.01"),
            layer_k_touch: Decimal::ONE,
            layer_min_ticks_away: Decimal::ONE,
            layer_t_post_ms: 1_000,
            tick_size: BTreeMap::new(),
            default_tick_size: d("0.01"),
            mtc_close: BTreeMap::new(),
            mtc_window_ms: 300_000,
            mtc_min_volume_share: d("0.25"),
            mtc_min_net_ratio: d("0.8"),
            mtc_min_move_bps: Decimal::from(50),
            mtc_min_aggressive_share: d("0.5"),
            mi_burst_window_ms: 2_000,
            mi_min_burst_fills: 5,
            mi_settle_ms: 500,
            mi_min_move_bps: Decimal::from(20),
            mi_exit_window_ms: 60_000,
            mi_min_exit_ratio: d("0.5"),
            order_max_live_ms: 86_400_000,
        }
    }
}

impl Params {
    /// Parse YAML or JSON (JSON is YAML). Unknown names and bad values are errors.
    pub fn from_yaml_or_json(text: &str) -> Result<Params, SurveillanceError> {
        let p: Params =
            serde_yaml_ng::from_str(text).map_err(|e| SurveillanceError::Params(e.to_string()))?;
        p.compile()?;
        Ok(p)
    }

    /// Check every value and precompute what the scanner needs.
    pub(crate) fn compile(&self) -> Result<Compiled, SurveillanceError> {
        let bad = |what: &str| Err(SurveillanceError::Params(what.to_string()));
        for (name, v) in [
            ("wash_window_ms", self.wash_window_ms),
            ("spoof_t_post_ms", self.spoof_t_post_ms),
            ("spoof_t_life_ms", self.spoof_t_life_ms),
            ("layer_t_post_ms", self.layer_t_post_ms),
            ("mtc_window_ms", self.mtc_window_ms),
            ("mi_burst_window_ms", self.mi_burst_window_ms),
            ("mi_settle_ms", self.mi_settle_ms),
            ("mi_exit_window_ms", self.mi_exit_window_ms),
            ("order_max_live_ms", self.order_max_live_ms),
        ] {
            if v < 0 {
                return bad(&format!("{name} must be >= 0, got {v}"));
            }
        }
        for (name, v) in [
            ("wash_price_tol_bps", self.wash_price_tol_bps),
            ("wash_qty_tol_ratio", self.wash_qty_tol_ratio),
            ("spoof_max_fill_ratio", self.spoof_max_fill_ratio),
            ("layer_max_fill_ratio", self.layer_max_fill_ratio),
            ("layer_k_touch", self.layer_k_touch),
            ("mtc_min_volume_share", self.mtc_min_volume_share),
            ("mtc_min_net_ratio", self.mtc_min_net_ratio),
            ("mtc_min_aggressive_share", self.mtc_min_aggressive_share),
            ("mi_min_exit_ratio", self.mi_min_exit_ratio),
        ] {
            if v.is_sign_negative() {
                return bad(&format!("{name} must be >= 0, got {v}"));
            }
        }
        if self.spoof_k_size <= Decimal::ZERO {
            return bad("spoof_k_size must be > 0");
        }
        if self.layer_min_levels == 0 || self.mi_min_burst_fills == 0 {
            return bad("layer_min_levels and mi_min_burst_fills must be >= 1");
        }
        if self.default_tick_size <= Decimal::ZERO {
            return bad("default_tick_size must be > 0");
        }
        if let Some((sym, t)) = self.tick_size.iter().find(|(_, t)| **t <= Decimal::ZERO) {
            return bad(&format!("tick_size[{sym}] must be > 0, got {t}"));
        }
        let mut group_of = HashMap::new();
        for (i, g) in self.related_owner_groups.iter().enumerate() {
            for o in g {
                if let Some(j) = group_of.insert(o.clone(), i)
                    && j != i
                {
                    return bad(&format!(
                        "owner {o} is in related_owner_groups {j} and {i}; merge them"
                    ));
                }
            }
        }
        let mut closes = HashMap::new();
        for (sym, spec) in &self.mtc_close {
            closes.insert(
                sym.clone(),
                CloseSpec::parse(spec).ok_or_else(|| {
                    SurveillanceError::Params(format!(
                        "mtc_close[{sym}] = {spec:?}: expected RFC 3339 or HH:MM[:SS[.fff]]"
                    ))
                })?,
            );
        }
        Ok(Compiled {
            p: self.clone(),
            group_of,
            closes,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CloseSpec {
    /// One session closing at this instant (nanos).
    At(i64),
    /// Every UTC day at this many nanos after midnight.
    Daily(i64),
}

pub(crate) const DAY_NS: i64 = 86_400_000_000_000;

impl CloseSpec {
    fn parse(s: &str) -> Option<CloseSpec> {
        if let Ok(t) = Timestamp::parse_rfc3339(s) {
            return Some(CloseSpec::At(t.as_nanos()));
        }
        use chrono::Timelike;
        let t = chrono::NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
            .or_else(|_| chrono::NaiveTime::parse_from_str(s, "%H:%M"))
            .ok()?;
        Some(CloseSpec::Daily(
            i64::from(t.num_seconds_from_midnight()) * 1_000_000_000 + i64::from(t.nanosecond()),
        ))
    }

    /// The first close at or after `ts`, if any.
    pub(crate) fn next_at_or_after(self, ts: i64) -> Option<i64> {
        match self {
            CloseSpec::At(c) => (c >= ts).then_some(c),
            CloseSpec::Daily(tod) => {
                let c = ts.div_euclid(DAY_NS) * DAY_NS + tod;
                Some(if c >= ts { c } else { c + DAY_NS })
            }
        }
    }
}

pub(crate) struct Compiled {
    pub p: Params,
    pub group_of: HashMap<String, usize>,
    pub closes: HashMap<String, CloseSpec>,
}

pub(crate) fn ms(v: i64) -> i64 {
    v.saturating_mul(1_000_000)
}
