//! Memory of a streaming engine with eviction over a long soak-like stream, measured in heap
//! bytes (a counting allocator: this file is its own test binary, with this one test) and in
//! counts. A finished order is held in full only for the late-fill grace; for the rest of its
//! realized-spread horizons (5 minutes by default) it costs a compact record.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::soak::{MAX_LIFE_MS, SOAK_T0_NS, Soak};
use execq::{ExecQuality, Params, RowChange};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as for `dealloc` and `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const MB: usize = 1_000_000;

/// 850 orders/s for 20 simulated minutes (1.02 M orders, each filled once within 200 ms, a
/// quarter partially and then cancelled within 10 s), default parameters: horizons 15 s, 1 min
/// and 5 min, late-fill grace 5 s. Before two-stage eviction every order ended within the
/// longest horizon was held in full (~255 000 orders, a 530 MB snapshot); now:
/// - orders held in full stay below rate x (grace + longest order life);
/// - settling orders stay below rate x (longest horizon + longest order life), and what the
///   engine holds, in heap bytes, is below that many orders times a few hundred bytes (plus the
///   full orders at a few KiB each);
/// - the snapshot in the steady state (minutes 7, 13 and 19, with the full orders of the last
///   seconds and five minutes of settling orders) is below 40 MB and does not grow;
/// - every order is either in a row handed out or held, and the running aggregates count them
///   all.
#[test]
fn memory_follows_live_orders_and_finished_orders_cost_a_compact_record() {
    const RATE: usize = 850;
    const MINUTES: u64 = 20;
    let p = Params::default();
    assert_eq!(p.late_fill_grace_ms, 5_000, "the streaming default");
    let grace_ms = p.late_fill_grace_ms as usize;
    let longest_horizon_ms = 300_000;
    // Full orders: received within the longest order life plus the grace (a second of slack
    // for the fill after receipt and the record that evicts).
    let full_bound = RATE * (MAX_LIFE_MS as usize + grace_ms + 1_000) / 1_000;
    // Settling orders: their last fill within the longest horizon (plus the same slack).
    let settling_bound = RATE * (longest_horizon_ms + MAX_LIFE_MS as usize + 1_000) / 1_000;
    // Heap: full orders at 4 KiB, settling orders (with their one waiting fill and their share
    // of the id index) at 400 bytes; tables grow by doubling, hence the factor 2.
    let bytes_bound = 2 * (full_bound * 4096 + settling_bound * 400);

    let mut e = ExecQuality::new(p).unwrap();
    e.set_eviction(true).unwrap();
    let soak = Soak::new(RATE as u64, MINUTES * 60, 11);
    let orders = soak.orders() as usize;
    // Heap in use before the engine holds anything (the generator's is small: records due
    // within 10 s).
    let baseline = LIVE.load(Ordering::Relaxed);
    let (mut rows, mut waiting_rows, mut updates) = (0usize, 0usize, 0usize);
    let (mut peak_full, mut peak_settling, mut peak_bytes) = (0usize, 0usize, 0usize);
    let mut snapshots = Vec::new();
    let mut snapshot_minutes = vec![7, 13, 19];
    for (i, r) in soak.enumerate() {
        // The snapshot as the minutes 7, 13 and 19 start.
        let minute = (r.ts.as_nanos() - SOAK_T0_NS) / 60_000_000_000;
        if snapshot_minutes.first() == Some(&minute) {
            snapshot_minutes.remove(0);
            snapshots.push(serde_json::to_vec(&e).unwrap().len());
        }
        e.on_record(&r);
        if i % 2_048 == 0 {
            for c in e.drain_rows() {
                match c {
                    RowChange::Row(row) => {
                        rows += 1;
                        waiting_rows += usize::from(row.pending_spreads.is_some());
                    }
                    RowChange::Update(_) => updates += 1,
                }
            }
            let s = e.state_sizes();
            assert!(s.held_orders <= full_bound, "{s:?} > {full_bound}");
            assert!(
                s.settling_orders <= settling_bound,
                "{s:?} > {settling_bound}"
            );
            assert!(
                s.pending_fills <= s.held_orders + s.settling_orders,
                "{s:?}"
            );
            let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(baseline);
            assert!(bytes <= bytes_bound, "{bytes} > {bytes_bound} bytes: {s:?}");
            peak_full = peak_full.max(s.held_orders);
            peak_settling = peak_settling.max(s.settling_orders);
            peak_bytes = peak_bytes.max(bytes);
        }
    }
    for c in e.drain_rows() {
        match c {
            RowChange::Row(row) => {
                rows += 1;
                waiting_rows += usize::from(row.pending_spreads.is_some());
            }
            RowChange::Update(_) => updates += 1,
        }
    }
    let s = e.state_sizes();
    // The stream really keeps five minutes of finished orders waiting, and they are cheap.
    assert!(peak_settling > settling_bound * 3 / 4, "{peak_settling}");
    assert!(peak_full < full_bound, "{peak_full}");
    println!(
        "{orders} orders: peak {peak_full} held in full, {peak_settling} settling, \
         {:.1} MB heap; end {s:?}; snapshots {snapshots:?} bytes",
        peak_bytes as f64 / MB as f64,
    );
    assert_eq!(snapshots.len(), 3);
    assert!(snapshots.iter().all(|&b| b < 40 * MB), "{snapshots:?}");
    assert!(
        snapshots[2] < snapshots[0] + snapshots[0] / 20,
        "{snapshots:?}"
    );
    // Every order once: in a row handed out or held in full; every waiting row completed by
    // an update or still settling.
    assert_eq!(rows + s.held_orders, orders);
    assert_eq!(updates + s.settling_orders, waiting_rows);
    assert_eq!(e.aggregates().overall.orders, orders as u64);
}
