//! Risk limits: what the config file and the admin endpoint set.
//!
//! YAML (the `risk:` section of the config file); every key is optional:
//!
//! ```yaml
//! defaults:                 # on top of the built-in defaults (LimitSet::builtin)
//!   price_collar_pct: 5     # percent
//!   max_open_orders: 200
//!   max_position: ~         # null = no limit at this scope
//! accounts:
//!   test_account:
//!     daily_loss_limit: 2500
//! symbols:
//!   BTCUSDT:
//!     max_order_quantity: "10"
//!   LUNAUSDT:
//!     restricted: true
//! account_symbols:
//!   test_account:
//!     BTCUSDT:
//!       max_position: 2
//! ```
//!
//! Resolution per limit, most specific first: account+symbol > symbol > account > defaults >
//! built-in. A key that is absent inherits from the next level; `null` (`~`) means "no limit"
//! and stops the lookup. Account-wide limits (`max_gross_exposure`, `max_open_orders`,
//! `max_orders_per_sec`, `daily_loss_limit`) only exist at account, defaults and built-in
//! level; setting them at a symbol scope is refused by [`RiskLimits::validate`].
//! Symbols are matched by name on any venue. Unknown keys are ignored by serde here; the
//! config crate reports them (serde_ignored) when it loads the file.

use std::collections::BTreeMap;

use model::{AccountId, Decimal, Symbol};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::RiskError;

/// One limit at one scope: inherit from the next scope, explicitly off, or a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Setting<T> {
    /// Not set here: ask the next, less specific scope. Absent key in YAML/JSON.
    #[default]
    Inherit,
    /// No limit. `null` in YAML/JSON.
    Off,
    /// This value.
    Set(T),
}

impl<T> Setting<T> {
    pub fn is_inherit(&self) -> bool {
        matches!(self, Setting::Inherit)
    }
}

impl<T: Serialize> Serialize for Setting<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // Fields are skipped when Inherit; should one be serialized on its own, null is
            // the closest meaning-preserving value available.
            Setting::Inherit | Setting::Off => s.serialize_none(),
            Setting::Set(v) => v.serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Setting<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only reached when the key is present (absent keys take `Default` = Inherit).
        Ok(Option::<T>::deserialize(d)?.map_or(Setting::Off, Setting::Set))
    }
}

/// The limits at one scope. All decimal limits are exact (`rust_decimal`): quantities in
/// instrument units, notionals and P&L in the quote currency.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LimitSet {
    /// Largest quantity of one order.
    #[serde(default, skip_serializing_if = "Setting::is_inherit")]
    pub max_order_quantity: Setting<Decimal>,
    /// Largest notional of one order (quantity x reference price).
    #[serde(default, skip_serializing_if = "Setting::is_inherit")]
    pub max_order_notional: Setting<Decimal>,
    /// Fat-finger collar, in percent of the mid (`5` = 5 %).
    #[serde(default, skip_serializing_if = "Setting::is_inherit")]
    pub price_collar_pct: Setting<Decimal>,
    /// Largest absolute position in one instrument after the order fills completely.
    #[serde(default, skip_serializing_if = "Setting::is_inherit")]
    pub max_position: Setting<Decimal>,
    /// Account-wide: largest gross exposure (sum of |position| x price over instruments).
    #[serde(default, skip_serializing_if = "Setting::is_inherit")]
    pub max_gross_exposure: Setting<Decimal>,
    /// Account-wide: most open orders at once.
    #[serde(default, skip_serializing_if = "Setting::is_inherit")]
    pub max_open_orders: Setting<u32>,
    /// Account-wide: most orders within any sliding one-second window.
    #[serde(default, skip_serializing_if = "Setting::is_inherit")]
    pub max_orders_per_sec: Setting<u32>,
    /// Account-wide: the loss (a positive amount) at which the kill switch engages.
    #[serde(default, skip_serializing_if = "Setting::is_inherit")]
    pub daily_loss_limit: Setting<Decimal>,
    /// The symbol may not be traded (at symbol scope: by anyone; at account+symbol scope: by
    /// that account; `false` there lifts a symbol-wide restriction for that account).
    #[serde(default, skip_serializing_if = "Setting::is_inherit")]
    pub restricted: Setting<bool>,
}

impl LimitSet {
    /// The built-in defaults, chosen for a paper-trading platform: generous enough not to
    /// get in the way of normal use, tight enough to stop a fat finger or a runaway loop.
    ///
    /// | limit | default |
    /// |---|---|
    /// | max_order_quantity | 1 000 000 units |
    /// | max_order_notional | 1 000 000 (quote currency) |
    /// | price_collar_pct | 5 % of mid |
    /// | max_position | 1 000 000 units per instrument |
    /// | max_gross_exposure | 10 000 000 (quote currency) |
    /// | max_open_orders | 1 000 |
    /// | max_orders_per_sec | 1 000 |
    /// | daily_loss_limit | 100 000 (quote currency) |
    /// | restricted | no symbol |
    pub fn builtin() -> LimitSet {
        LimitSet {
            max_order_quantity: Setting::Set(Decimal::from(1_000_000)),
            max_order_notional: Setting::Set(Decimal::from(1_000_000)),
            price_collar_pct: Setting::Set(Decimal::from(5)),
            max_position: Setting::Set(Decimal::from(1_000_000)),
            max_gross_exposure: Setting::Set(Decimal::from(10_000_000)),
            max_open_orders: Setting::Set(1_000),
            max_orders_per_sec: Setting::Set(1_000),
            daily_loss_limit: Setting::Set(Decimal::from(100_000)),
            restricted: Setting::Off,
        }
    }

    /// Every field at `Inherit`: this scope adds nothing.
    pub fn is_empty(&self) -> bool {
        *self == LimitSet::default()
    }

    /// Overwrite the fields `patch` sets (Off or a value); keep the ones it inherits.
    pub fn merge(&mut self, patch: &LimitSet) {
        fn m<T: Copy>(dst: &mut Setting<T>, src: &Setting<T>) {
            if !src.is_inherit() {
                *dst = *src;
            }
        }
        m(&mut self.max_order_quantity, &patch.max_order_quantity);
        m(&mut self.max_order_notional, &patch.max_order_notional);
        m(&mut self.price_collar_pct, &patch.price_collar_pct);
        m(&mut self.max_position, &patch.max_position);
        m(&mut self.max_gross_exposure, &patch.max_gross_exposure);
        m(&mut self.max_open_orders, &patch.max_open_orders);
        m(&mut self.max_orders_per_sec, &patch.max_orders_per_sec);
        m(&mut self.daily_loss_limit, &patch.daily_loss_limit);
        m(&mut self.restricted, &patch.restricted);
    }

    fn validate(&self, scope: &str, symbol_scope: bool) -> Result<(), RiskError> {
        let non_negative = |field: &'static str, s: &Setting<Decimal>| match s {
            Setting::Set(v) if *v < Decimal::ZERO => Err(RiskError::InvalidLimit {
                scope: scope.to_owned(),
                field,
                reason: format!("must not be negative (got {v})"),
            }),
            _ => Ok(()),
        };
        non_negative("max_order_quantity", &self.max_order_quantity)?;
        non_negative("max_order_notional", &self.max_order_notional)?;
        non_negative("price_collar_pct", &self.price_collar_pct)?;
        non_negative("max_position", &self.max_position)?;
        non_negative("max_gross_exposure", &self.max_gross_exposure)?;
        non_negative("daily_loss_limit", &self.daily_loss_limit)?;
        if symbol_scope {
            let account_wide = [
                ("max_gross_exposure", self.max_gross_exposure.is_inherit()),
                ("max_open_orders", self.max_open_orders.is_inherit()),
                ("max_orders_per_sec", self.max_orders_per_sec.is_inherit()),
                ("daily_loss_limit", self.daily_loss_limit.is_inherit()),
            ];
            if let Some((field, _)) = account_wide.iter().find(|(_, inherit)| !inherit) {
                return Err(RiskError::AccountWideLimitAtSymbolScope {
                    scope: scope.to_owned(),
                    field,
                });
            }
        }
        Ok(())
    }
}

/// Where a limit applies. No account and no symbol = the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<Symbol>,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.account, &self.symbol) {
            (None, None) => f.write_str("defaults"),
            (Some(a), None) => write!(f, "account {a}"),
            (None, Some(s)) => write!(f, "symbol {s}"),
            (Some(a), Some(s)) => write!(f, "account {a} symbol {s}"),
        }
    }
}

/// All configured limits (the `risk` section of the config file).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RiskLimits {
    #[serde(default, skip_serializing_if = "LimitSet::is_empty")]
    pub defaults: LimitSet,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accounts: BTreeMap<AccountId, LimitSet>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub symbols: BTreeMap<Symbol, LimitSet>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub account_symbols: BTreeMap<AccountId, BTreeMap<Symbol, LimitSet>>,
}

impl RiskLimits {
    /// Range checks and scope rules; call after loading the config file.
    pub fn validate(&self) -> Result<(), RiskError> {
        self.defaults.validate("defaults", false)?;
        for (a, set) in &self.accounts {
            set.validate(&format!("account {a}"), false)?;
        }
        for (s, set) in &self.symbols {
            set.validate(&format!("symbol {s}"), true)?;
        }
        for (a, by_symbol) in &self.account_symbols {
            for (s, set) in by_symbol {
                set.validate(&format!("account {a} symbol {s}"), true)?;
            }
        }
        Ok(())
    }

    /// The set stored at `scope`, if any.
    pub fn at(&self, scope: &Scope) -> Option<&LimitSet> {
        match (&scope.account, &scope.symbol) {
            (None, None) => Some(&self.defaults),
            (Some(a), None) => self.accounts.get(a),
            (None, Some(s)) => self.symbols.get(s),
            (Some(a), Some(s)) => self.account_symbols.get(a).and_then(|m| m.get(s)),
        }
    }

    /// Replace the set at `scope`; an empty set removes the override (defaults are reset).
    pub fn replace(&mut self, scope: &Scope, set: LimitSet) {
        let empty = set.is_empty();
        match (&scope.account, &scope.symbol) {
            (None, None) => self.defaults = set,
            (Some(a), None) => {
                if empty {
                    self.accounts.remove(a);
                } else {
                    self.accounts.insert(a.clone(), set);
                }
            }
            (None, Some(s)) => {
                if empty {
                    self.symbols.remove(s);
                } else {
                    self.symbols.insert(s.clone(), set);
                }
            }
            (Some(a), Some(s)) => {
                if empty {
                    if let Some(m) = self.account_symbols.get_mut(a) {
                        m.remove(s);
                        if m.is_empty() {
                            self.account_symbols.remove(a);
                        }
                    }
                } else {
                    self.account_symbols
                        .entry(a.clone())
                        .or_default()
                        .insert(s.clone(), set);
                }
            }
        }
    }

    /// Merge `patch` into the set at `scope` (see [`LimitSet::merge`]).
    pub fn merge(&mut self, scope: &Scope, patch: &LimitSet) {
        let mut set = self.at(scope).cloned().unwrap_or_default();
        set.merge(patch);
        self.replace(scope, set);
    }
}

/// Where a resolved limit came from, for messages ("max_position 5 (account+symbol)").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    AccountSymbol,
    Symbol,
    Account,
    Defaults,
    Builtin,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::AccountSymbol => "account+symbol",
            Source::Symbol => "symbol",
            Source::Account => "account",
            Source::Defaults => "defaults",
            Source::Builtin => "built-in",
        }
    }
}

/// The scopes that apply to one (account, symbol), most specific first.
pub(crate) struct Layers<'l> {
    layers: [(Option<&'l LimitSet>, Source); 5],
}

impl<'l> Layers<'l> {
    pub(crate) fn new(
        limits: &'l RiskLimits,
        builtin: &'l LimitSet,
        account: &AccountId,
        symbol: &Symbol,
    ) -> Layers<'l> {
        // Skip the symbol lookups entirely when no symbol scope is configured (the common
        // case), which keeps the hot path at one map lookup.
        let account_symbol = if limits.account_symbols.is_empty() {
            None
        } else {
            limits
                .account_symbols
                .get(account)
                .and_then(|m| m.get(symbol))
        };
        let sym = if limits.symbols.is_empty() {
            None
        } else {
            limits.symbols.get(symbol)
        };
        let acct = if limits.accounts.is_empty() {
            None
        } else {
            limits.accounts.get(account)
        };
        Layers {
            layers: [
                (account_symbol, Source::AccountSymbol),
                (sym, Source::Symbol),
                (acct, Source::Account),
                (Some(&limits.defaults), Source::Defaults),
                (Some(builtin), Source::Builtin),
            ],
        }
    }

    /// A per-symbol limit: all five scopes. `None` = no limit.
    pub(crate) fn get<T: Copy>(&self, f: fn(&LimitSet) -> &Setting<T>) -> Option<(T, Source)> {
        self.resolve(&self.layers, f)
    }

    /// An account-wide limit: account, defaults, built-in.
    pub(crate) fn account_wide<T: Copy>(
        &self,
        f: fn(&LimitSet) -> &Setting<T>,
    ) -> Option<(T, Source)> {
        self.resolve(&self.layers[2..], f)
    }

    fn resolve<T: Copy>(
        &self,
        layers: &[(Option<&'l LimitSet>, Source)],
        f: fn(&LimitSet) -> &Setting<T>,
    ) -> Option<(T, Source)> {
        for (set, source) in layers {
            match set.map(f) {
                None | Some(Setting::Inherit) => continue,
                Some(Setting::Off) => return None,
                Some(Setting::Set(v)) => return Some((*v, *source)),
            }
        }
        None
    }
}

/// The limits in force for one account and symbol (`None` = no limit), for the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveLimits {
    pub max_order_quantity: Option<Decimal>,
    pub max_order_notional: Option<Decimal>,
    pub price_collar_pct: Option<Decimal>,
    pub max_position: Option<Decimal>,
    pub max_gross_exposure: Option<Decimal>,
    pub max_open_orders: Option<u32>,
    pub max_orders_per_sec: Option<u32>,
    pub daily_loss_limit: Option<Decimal>,
    pub restricted: bool,
}

impl EffectiveLimits {
    pub(crate) fn from_layers(l: &Layers<'_>) -> EffectiveLimits {
        EffectiveLimits {
            max_order_quantity: l.get(|s| &s.max_order_quantity).map(|v| v.0),
            max_order_notional: l.get(|s| &s.max_order_notional).map(|v| v.0),
            price_collar_pct: l.get(|s| &s.price_collar_pct).map(|v| v.0),
            max_position: l.get(|s| &s.max_position).map(|v| v.0),
            max_gross_exposure: l.account_wide(|s| &s.max_gross_exposure).map(|v| v.0),
            max_open_orders: l.account_wide(|s| &s.max_open_orders).map(|v| v.0),
            max_orders_per_sec: l.account_wide(|s| &s.max_orders_per_sec).map(|v| v.0),
            daily_loss_limit: l.account_wide(|s| &s.daily_loss_limit).map(|v| v.0),
            restricted: l.get(|s| &s.restricted).is_some_and(|v| v.0),
        }
    }
}
