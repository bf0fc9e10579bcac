//! The feature-view table: the single definition the engine, the Feast repo generator and the
//! online stores all read. Names here are the column names everywhere downstream.

use model::Timestamp;

/// Name of the market view (entity `symbol`).
pub const MARKET_FEATURES: &str = "market_features";
/// Name of the order-flow view (entity `account`).
pub const ORDER_FEATURES: &str = "order_features";
/// Name of the account-level position view (entity `account`).
pub const POSITION_FEATURES: &str = "position_features";
/// Name of the per account + instrument position view (entity `account_symbol`).
pub const POSITION_SYMBOL_FEATURES: &str = "position_symbol_features";

/// The value type of a feature, as Feast / the online stores declare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    Float64,
    Int64,
    String,
}

impl Dtype {
    /// The Feast type name (`feast.types`).
    pub fn feast_name(self) -> &'static str {
        match self {
            Dtype::Float64 => "Float64",
            Dtype::Int64 => "Int64",
            Dtype::String => "String",
        }
    }
}

/// One feature of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureDef {
    pub name: &'static str,
    pub dtype: Dtype,
    pub description: &'static str,
}

/// A feature view: a set of features sharing one entity (join key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureView {
    pub name: &'static str,
    /// The join-key name: `symbol`, `account` or `account_symbol`.
    pub entity: &'static str,
    /// How the entity value is spelled.
    pub entity_description: &'static str,
    pub features: &'static [FeatureDef],
    /// How long a materialized row stays valid online (Feast `ttl`); 0 means no expiry.
    pub ttl_seconds: u64,
}

impl FeatureView {
    /// The feature named `name`, if this view has it.
    pub fn feature(&self, name: &str) -> Option<&'static FeatureDef> {
        self.features.iter().find(|f| f.name == name)
    }
}

const fn f64f(name: &'static str, description: &'static str) -> FeatureDef {
    FeatureDef {
        name,
        dtype: Dtype::Float64,
        description,
    }
}
const fn i64f(name: &'static str, description: &'static str) -> FeatureDef {
    FeatureDef {
        name,
        dtype: Dtype::Int64,
        description,
    }
}

const MARKET: &[FeatureDef] = &[
    f64f(
        "last_price",
        "price of the trade with the latest event time at or before as_of (ties: later in journal order)",
    ),
    f64f(
        "mid",
        "(bid + ask) / 2 of the latest top of book (quote, or book with both sides)",
    ),
    f64f(
        "spread_bps",
        "(ask - bid) / mid x 10,000 of the same top of book",
    ),
    f64f(
        "vwap_1m",
        "sum(price x qty) / sum(qty) of trades in the 1-minute window, ts in [as_of - 60 s rounded down to a multiple of 100 ms, as_of]; null without volume",
    ),
    f64f(
        "vwap_5m",
        "sum(price x qty) / sum(qty) of trades in the 5-minute window, ts in [as_of - 300 s rounded down to a multiple of 500 ms, as_of]; null without volume",
    ),
    f64f(
        "volume_1m",
        "sum of trade quantities (base units) in the 1-minute window",
    ),
    f64f(
        "volume_5m",
        "sum of trade quantities (base units) in the 5-minute window",
    ),
    i64f("trade_count_5m", "number of trades in the 5-minute window"),
    f64f(
        "return_1m",
        "last_price / p0 - 1, p0 = price of the newest trade before the 1-minute window (ts < as_of - 60 s rounded down to a multiple of 100 ms); null if none",
    ),
    f64f(
        "return_5m",
        "last_price / p0 - 1, p0 = price of the newest trade before the 5-minute window (ts < as_of - 300 s rounded down to a multiple of 500 ms); null if none",
    ),
    f64f(
        "realized_vol_5m",
        "sample stdev (n - 1) of ln(p_i / p_prev) over trades i in the 5-minute window; per trade, not annualized; null if n < 2",
    ),
    f64f(
        "book_imbalance",
        "(sum bid qty - sum ask qty) / (sum bid qty + sum ask qty) over the top N (default 5) levels of each side; in [-1, 1]",
    ),
];

const ORDERS: &[FeatureDef] = &[
    i64f(
        "orders_1h",
        "orders submitted with created_at in the 1-hour window, [as_of - 3600 s rounded down to a multiple of 6 s, as_of]",
    ),
    i64f("cancels_1h", "order_canceled events in the 1-hour window"),
    f64f(
        "cancel_ratio_1h",
        "cancels_1h / orders_1h; null when orders_1h = 0 (may exceed 1: cancels of older orders count)",
    ),
    f64f(
        "fill_rate_1h",
        "filled_orders_1h / (filled_orders_1h + cancels_1h + rejects_1h + expires_1h): share of orders that ended fully filled; null when none ended",
    ),
    f64f(
        "avg_slippage_bps_1h",
        "mean over fills in the window of side x (fill price - mid at the order's submission) / that mid x 10,000 (positive = cost); fills without a known arrival mid are left out; null if none",
    ),
    i64f("rejects_1h", "order_rejected events in the 1-hour window"),
    i64f("expires_1h", "order_expired events in the 1-hour window"),
    i64f(
        "filled_orders_1h",
        "orders whose fills reached their full quantity, counted at the completing fill's ts, in the 1-hour window",
    ),
];

const POSITIONS: &[FeatureDef] = &[
    f64f(
        "notional",
        "sum over instruments of net_qty x mark (signed, quote currency)",
    ),
    f64f(
        "gross_exposure",
        "sum over instruments of |net_qty x mark| (quote currency)",
    ),
    f64f(
        "unrealized_pnl",
        "sum of (mark - avg entry) x net_qty (average-cost method of the positions crate)",
    ),
    f64f(
        "realized_pnl_today",
        "realized P&L before fees of fills on the UTC date of as_of",
    ),
    f64f(
        "fees_today",
        "fees of fills on the UTC date of as_of (negative = rebates)",
    ),
    i64f("open_positions", "number of instruments with net_qty != 0"),
];

const POSITION_SYMBOL: &[FeatureDef] = &[
    f64f(
        "net_qty",
        "signed net quantity (positive long, negative short)",
    ),
    f64f(
        "avg_entry_price",
        "average entry price of the open quantity; null when flat",
    ),
    f64f(
        "mark_price",
        "the instrument's current mark (mid, else last trade, else fill price)",
    ),
    f64f("notional", "net_qty x mark (signed)"),
    f64f("gross_exposure", "|net_qty x mark|"),
    f64f("unrealized_pnl", "(mark - avg entry) x net_qty"),
    f64f(
        "realized_pnl_today",
        "realized P&L before fees of fills on the UTC date of as_of",
    ),
    f64f("fees_today", "fees of fills on the UTC date of as_of"),
];

static VIEWS: [FeatureView; 4] = [
    FeatureView {
        name: MARKET_FEATURES,
        entity: "symbol",
        entity_description: "instrument as `SYMBOL.venue` (e.g. BTCUSDT.binance); a bare symbol is accepted when only one venue lists it",
        features: MARKET,
        ttl_seconds: 600,
    },
    FeatureView {
        name: ORDER_FEATURES,
        entity: "account",
        entity_description: "account id",
        features: ORDERS,
        ttl_seconds: 3600,
    },
    FeatureView {
        name: POSITION_FEATURES,
        entity: "account",
        entity_description: "account id",
        features: POSITIONS,
        ttl_seconds: 0,
    },
    FeatureView {
        name: POSITION_SYMBOL_FEATURES,
        entity: "account_symbol",
        entity_description: "`account|SYMBOL.venue` (e.g. test_account|BTCUSDT.binance); `account|SYMBOL` when only one venue lists it",
        features: POSITION_SYMBOL,
        ttl_seconds: 0,
    },
];

/// Every feature view, in a fixed order.
pub fn views() -> &'static [FeatureView] {
    &VIEWS
}

/// The view named `name`.
pub fn view(name: &str) -> Option<&'static FeatureView> {
    VIEWS.iter().find(|v| v.name == name)
}

/// A feature value. Statistics are `f64` (inputs for ML): every one is computed from exact
/// decimals (or exact integer sums) and converted once at the end.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValue {
    F64(f64),
    I64(i64),
    Str(String),
    Null,
}

impl FeatureValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FeatureValue::F64(v) => Some(*v),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            FeatureValue::I64(v) => Some(*v),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, FeatureValue::Null)
    }
}

/// The values of one view for one entity as of `event_ts`, in the view's feature order.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    pub view: &'static str,
    pub entity: String,
    pub event_ts: Timestamp,
    pub values: Vec<(&'static str, FeatureValue)>,
}

impl FeatureRow {
    /// The value of feature `name`, if the row has it.
    pub fn get(&self, name: &str) -> Option<&FeatureValue> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A row with every feature of `view` null (the entity was unknown at `event_ts`).
    pub fn null(
        view: &'static FeatureView,
        entity: impl Into<String>,
        event_ts: Timestamp,
    ) -> Self {
        FeatureRow {
            view: view.name,
            entity: entity.into(),
            event_ts,
            values: view
                .features
                .iter()
                .map(|f| (f.name, FeatureValue::Null))
                .collect(),
        }
    }
}
