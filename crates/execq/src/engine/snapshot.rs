//! Snapshot of the engine (serde). The parameters travel with the state and are resolved again
//! on restore; the id indexes are rebuilt from the order table. A snapshot is checked on
//! restore (version, parameters, every internal index in range, the waiting lookups matching
//! their orders' counts), so a damaged one is an error, not a later panic.
//!
//! Settling orders and waiting fills, most of a busy engine's state, are written as arrays
//! (see `settle`), about 130 bytes of JSON per finished order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use foldhash::fast::FixedState;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::incremental::{CellKey, Groups, LinForm, pairs};
use super::index::IdIndex;
use super::settle::{Lookups, Slot, Undrained};
use super::{Due, ExecQuality, NO_ACCOUNT, Observation, OrderState, SymState};
use crate::params::Params;
use crate::report::SIZE_BUCKETS;

/// Version of the snapshot layout; a snapshot with another version is refused.
/// 2: settling orders and one queue of waiting fills (two-stage eviction).
pub const SNAPSHOT_VERSION: u32 = 2;

type Ends = VecDeque<(i64, u32, u32)>;

#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    params: &'a Params,
    syms: &'a [SymState],
    accounts: &'a [String],
    orders: &'a [Option<Slot>],
    free: &'a [u32],
    lookups: &'a Lookups,
    ends: &'a Ends,
    evictions: &'a BTreeSet<Due>,
    next_serial: u64,
    issues: &'a BTreeMap<String, u64>,
    records: u64,
    last_ts: Option<i64>,
    observe: bool,
    #[serde(serialize_with = "obs_ser")]
    obs: &'a [Observation],
    evict: bool,
    undrained: &'a [Undrained],
    track: bool,
    groups: &'a Groups,
    #[serde(serialize_with = "live_pairs")]
    live: &'a BTreeMap<CellKey, LinForm>,
    pass: &'a BTreeSet<u32>,
}

fn live_pairs<S: Serializer>(m: &&BTreeMap<CellKey, LinForm>, s: S) -> Result<S::Ok, S::Error> {
    pairs::serialize(m, s)
}

/// An observation with its value as text: Rust prints the shortest string that parses back to
/// the same `f64` (serde_json's own float parsing does not always), and NaN survives.
#[derive(Serialize, Deserialize)]
struct ObsSnap {
    ts: model::Timestamp,
    symbol: String,
    order_id: String,
    order_class: crate::report::OrderClass,
    metric: super::Metric,
    value: String,
}

fn obs_ser<S: Serializer>(obs: &&[Observation], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(obs.iter().map(|o| ObsSnap {
        ts: o.ts,
        symbol: o.symbol.clone(),
        order_id: o.order_id.clone(),
        order_class: o.order_class,
        metric: o.metric,
        value: o.value.to_string(),
    }))
}

fn obs_de<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Observation>, D::Error> {
    Vec::<ObsSnap>::deserialize(d)?
        .into_iter()
        .map(|o| {
            Ok(Observation {
                value: o.value.parse().map_err(serde::de::Error::custom)?,
                ts: o.ts,
                symbol: o.symbol,
                order_id: o.order_id,
                order_class: o.order_class,
                metric: o.metric,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct Snapshot {
    version: u32,
    params: Params,
    syms: Vec<SymState>,
    accounts: Vec<String>,
    orders: Vec<Option<Slot>>,
    free: Vec<u32>,
    lookups: Lookups,
    ends: Ends,
    evictions: BTreeSet<Due>,
    next_serial: u64,
    issues: BTreeMap<String, u64>,
    records: u64,
    last_ts: Option<i64>,
    observe: bool,
    #[serde(deserialize_with = "obs_de")]
    obs: Vec<Observation>,
    evict: bool,
    undrained: Vec<Undrained>,
    track: bool,
    groups: Groups,
    #[serde(with = "pairs")]
    live: BTreeMap<CellKey, LinForm>,
    pass: BTreeSet<u32>,
}

impl Serialize for ExecQuality {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SnapshotRef {
            version: SNAPSHOT_VERSION,
            params: &self.r.p,
            syms: &self.syms,
            accounts: &self.accounts,
            orders: &self.orders,
            free: &self.free,
            lookups: &self.lookups,
            ends: &self.ends,
            evictions: &self.evictions,
            next_serial: self.next_serial,
            issues: &self.issues,
            records: self.records,
            last_ts: self.last_ts,
            observe: self.observe,
            obs: &self.obs,
            evict: self.evict,
            undrained: &self.undrained,
            track: self.track,
            groups: &self.groups,
            live: &self.live,
            pass: &self.pass,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ExecQuality {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let snap = Snapshot::deserialize(d)?;
        restore(snap).map_err(serde::de::Error::custom)
    }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("execq snapshot: {what}"))
    }
}

fn restore(s: Snapshot) -> Result<ExecQuality, String> {
    check(
        s.version == SNAPSHOT_VERSION,
        &format!("version {} (expected {SNAPSHOT_VERSION})", s.version),
    )?;
    let r = s.params.resolve().map_err(|e| e.to_string())?;
    let n = r.horizons_ns.len();
    check(s.lookups.done.len() == n, "one lookup cursor per horizon")?;
    check(
        s.lookups.done.iter().all(|&d| d <= s.lookups.fills.len()),
        "lookup cursor beyond the waiting fills",
    )?;
    let mut sym_ix = HashMap::with_hasher(FixedState::default());
    for (i, sym) in s.syms.iter().enumerate() {
        check(
            sym_ix.insert(sym.name.clone(), i as u32).is_none(),
            "duplicate symbol",
        )?;
    }
    let mut acct_ix = HashMap::with_hasher(FixedState::default());
    for (i, a) in s.accounts.iter().enumerate() {
        check(
            acct_ix.insert(a.clone(), i as u32).is_none(),
            "duplicate account",
        )?;
    }
    let order_ok = |o: &OrderState| {
        (o.sym as usize) < s.syms.len()
            && o.account.is_none_or(|a| (a as usize) < s.accounts.len())
            && usize::from(o.size_bucket) < SIZE_BUCKETS.len()
            && o.sums.horizons_ok(n)
            && (o.pend.is_empty() || o.pend.len() == n)
    };
    let cell_ok = |c: &CellKey| {
        (c.sym as usize) < s.syms.len()
            && (c.account == NO_ACCOUNT || (c.account as usize) < s.accounts.len())
            && usize::from(c.bucket) < SIZE_BUCKETS.len()
    };
    let mut order_ix = IdIndex::default();
    let mut settling_n = 0;
    // Lookups each held order waits for, to compare with the waiting fills.
    let mut waits: Vec<u64> = vec![0; s.orders.len()];
    for (ix, slot) in s.orders.iter().enumerate() {
        match slot {
            None => continue,
            Some(Slot::Full(o)) => {
                check(order_ok(o), "order out of range")?;
                waits[ix] = u64::from(o.pending_n);
            }
            Some(Slot::Settling(st)) => {
                check(
                    cell_ok(&st.cell)
                        && st.mid_q.len() == n
                        && (st.missed.is_empty() || st.missed.len() == n),
                    "settling order out of range",
                )?;
                settling_n += 1;
                waits[ix] = u64::from(st.left);
            }
        }
        check(order_ix.insert(ix as u32, &s.orders), "duplicate order id")?;
    }
    check(
        s.undrained.iter().all(|u| match u {
            Undrained::Row(o) => order_ok(o),
            Undrained::Update(_) => true,
        }),
        "undrained order out of range",
    )?;
    let mut free = HashSet::new();
    for &f in &s.free {
        check(
            s.orders.get(f as usize).is_some_and(Option::is_none) && free.insert(f),
            "free slot in use",
        )?;
    }
    let held = |ix: u32| s.orders.get(ix as usize).is_some_and(Option::is_some);
    check(
        s.lookups.fills.iter().all(|f| held(f.slot)),
        "lookup for an order not held",
    )?;
    for k in 0..n {
        for f in s.lookups.waiting_for(k) {
            if let Some(w) = waits.get_mut(f.slot as usize) {
                *w = w.wrapping_sub(1);
            }
        }
    }
    check(
        waits.iter().all(|&w| w == 0),
        "waiting lookups differ from their orders' counts",
    )?;
    check(s.pass.iter().all(|&ix| held(ix)), "measured order not held")?;
    check(
        s.live.keys().all(|c| (c.sym as usize) < s.syms.len()),
        "live cell symbol out of range",
    )?;
    Ok(ExecQuality {
        r,
        syms: s.syms,
        sym_ix,
        accounts: s.accounts,
        acct_ix,
        names: Default::default(),
        orders: s.orders,
        free: s.free,
        settling_n,
        order_ix,
        lookups: s.lookups,
        ends: s.ends,
        evictions: s.evictions,
        next_serial: s.next_serial,
        issues: s.issues,
        records: s.records,
        last_ts: s.last_ts,
        observe: s.observe,
        obs: s.obs,
        evict: s.evict,
        undrained: s.undrained,
        track: s.track,
        groups: s.groups,
        live: s.live,
        pass: s.pass,
    })
}

/// An order's [`crate::Sums`] in a snapshot: only the fields that differ from the default (an
/// order's fill-level sums leave most fields zero), each written exactly as the full form
/// writes it, so a restored copy serializes to the same bytes.
pub(super) mod sparse_sums {
    use std::sync::LazyLock;

    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::{Map, Value};

    use crate::stats::Sums;

    static DEFAULT: LazyLock<Map<String, Value>> =
        LazyLock::new(|| match serde_json::to_value(Sums::default()) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        });

    pub fn serialize<S: Serializer>(v: &Sums, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(full) = serde_json::to_value(v).map_err(S::Error::custom)? else {
            return Err(S::Error::custom("sums are not an object"));
        };
        let sparse: Map<String, Value> = full
            .into_iter()
            .filter(|(k, v)| DEFAULT.get(k) != Some(v))
            .collect();
        sparse.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Box<Sums>, D::Error> {
        let sparse = Map::<String, Value>::deserialize(d)?;
        let mut full = DEFAULT.clone();
        for (k, v) in sparse {
            if !full.contains_key(&k) {
                return Err(D::Error::custom(format!("unknown sums field `{k}`")));
            }
            full.insert(k, v);
        }
        Sums::deserialize(Value::Object(full))
            .map(Box::new)
            .map_err(D::Error::custom)
    }
}
