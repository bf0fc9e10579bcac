//! The background lane: a second tokio runtime, at a lower OS priority, for the work that
//! follows the journal (consumers folding events into their stores, snapshots, the log store).
//!
//! Why: the order path (HTTP, engine, group commit, acknowledger) and the consumers share the
//! machine's cores. On the same runtime, an order's task can wait in a worker's queue behind a
//! consumer's batch, and under a burst the consumers take half the CPU while the orders wait.
//! With the consumers on threads of their own under `SCHED_IDLE` (Linux; `nice` +10 where
//! that is refused), the kernel runs the order path first whenever both are runnable; the
//! consumers use what is left and catch up in batches (a consumer that falls behind takes
//! bigger batches, which costs less per event). At `nice` +10 alone the kernel still let a
//! running consumer finish its slice before a woken order-path thread: at 1000 orders/s a tenth
//! of the acks took > 1.2 ms, under `SCHED_IDLE` 0.6-0.8 ms (docs/BENCHMARKS.md). Their lag
//! is visible as always (`/health`, `consumer_lag_events`), and every read that must include an
//! order waits for its consumer as before ([`crate::ConsumerHandle::wait_for`]).
//!
//! `SCHED_IDLE` alone can starve: while any normal thread on the machine is runnable (another
//! process too) the lane gets almost nothing (CI saw a consumer stall 20 s with three platforms
//! on two cores). So a watchdog bounds the wait: a task on the lane beats every
//! [`HEARTBEAT`]; when the beat is older than [`STARVED_AFTER`], a normal-class thread raises
//! the lane's threads to the normal class (still at [`BACKGROUND_NICE`], about a tenth of a
//! busy core's share) for [`RAISED_FOR`], then lowers them again
//! (`background_lane_raises_total` counts it). Leaving `SCHED_IDLE` needs `CAP_SYS_NICE` (or an
//! `RLIMIT_NICE` that allows nice 10); where it is refused the lane stays at nice 10 alone,
//! which never starves.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Handle, Runtime};

/// `nice` of the background threads: the scheduler gives a runnable nice-0 thread about ten
/// times the CPU share of a nice-10 one, so the lane never starves but always yields.
pub const BACKGROUND_NICE: i32 = 10;

/// Threads per worker the lane may add for blocking work (a consumer's store write runs in
/// `block_in_place`, which hands the worker to another thread meanwhile). Without a bound, every
/// consumer writing at once had a thread of its own: 54 runnable nice-10 threads outweighed the
/// order path's three nice-0 ones, whose threads then waited for a core longer than they ran.
/// With the bound, more writes queue for a thread instead of for a core.
pub const BLOCKING_PER_WORKER: usize = 2;

/// How often the lane's heartbeat task runs (and the watchdog looks at it).
pub const HEARTBEAT: Duration = Duration::from_millis(50);

/// A lane whose heartbeat is older than this is starved: the watchdog raises it. Well above a
/// burst of the order path (a 1000/s run's p99.9 is milliseconds), so a quiet machine never
/// raises it.
pub const STARVED_AFTER: Duration = Duration::from_millis(250);

/// How long a raised lane stays raised before it is lowered again (and watched again).
pub const RAISED_FOR: Duration = Duration::from_secs(1);

/// The process's background runtime (started on first use, one per process, never stopped:
/// its tasks end with their services' shutdown tokens), with its heartbeat and watchdog.
/// `None` when the runtime could not be built (no threads left); callers then run the work on
/// their own runtime.
pub fn background() -> Option<Handle> {
    static LANE: OnceLock<Option<Runtime>> = OnceLock::new();
    LANE.get_or_init(|| {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        match Builder::new_multi_thread()
            .worker_threads(workers)
            .max_blocking_threads(BLOCKING_PER_WORKER * workers)
            .thread_name("background")
            .on_thread_start(idle_this_thread)
            .enable_all()
            .build()
        {
            Ok(rt) => {
                start_watchdog(rt.handle());
                Some(rt)
            }
            Err(e) => {
                tracing::warn!(error = %e, "background runtime not started; consumers share the main runtime");
                None
            }
        }
    })
    .as_ref()
    .map(|rt| rt.handle().clone())
}

/// Lowers the calling thread to [`BACKGROUND_NICE`] (Linux: per thread). Raising one's own
/// nice value needs no privilege; a failure leaves the thread as it was, which is only slower.
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority reads no memory of ours; on Linux `PRIO_PROCESS` with who = 0 is the
    // calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
    }
}

/// Puts the calling thread in the `SCHED_IDLE` class (Linux: per thread; it runs only when no
/// normal thread wants its core), after lowering it to [`BACKGROUND_NICE`], which is what stays
/// if the class is refused or could not be left again ([`can_raise`]). The thread then follows
/// the lane's watchdog: raised to the normal class while the lane is starved. Lowering one's
/// own policy needs no privilege.
///
/// The lane's threads and the log store's writer (whose capture queue drops rather than
/// blocks). Not the terminal log (a logging thread waits when its queue is full) nor the
/// journal's checkpointer (when it lags the writer checkpoints itself): with those idle too the
/// 1000/s tail got worse, not better.
pub fn idle_this_thread() {
    lower_this_thread();
    if !can_raise() {
        return;
    }
    let mut threads = lock_threads();
    if let Some(tid) = this_tid() {
        threads.push(tid);
        REGISTERED.with(|r| r.0.set(true));
    }
    if !RAISED.load(Ordering::Acquire) {
        set_idle_class(0, true);
    }
}

/// Whether a thread of this process may leave `SCHED_IDLE` again (probed once, on a thread of
/// its own). Without it the lane stays at [`BACKGROUND_NICE`] in the normal class: a watchdog
/// that cannot raise a starved lane must not let it starve.
pub fn can_raise() -> bool {
    static CAN: OnceLock<bool> = OnceLock::new();
    *CAN.get_or_init(|| {
        let probe = std::thread::Builder::new()
            .name("lane-probe".into())
            .spawn(|| {
                lower_this_thread();
                set_idle_class(0, true) && set_idle_class(0, false)
            });
        let can = probe.ok().and_then(|t| t.join().ok()).unwrap_or(false);
        if !can {
            tracing::info!(
                "background lane at nice {BACKGROUND_NICE} without SCHED_IDLE: leaving SCHED_IDLE again is not permitted here (CAP_SYS_NICE or RLIMIT_NICE)"
            );
        }
        can
    })
}

/// Whether the calling thread is in the `SCHED_IDLE` class (tests and diagnostics).
pub fn this_thread_is_idle_class() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: no memory is passed.
        unsafe { libc::sched_getscheduler(0) == libc::SCHED_IDLE }
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// The nice value of the calling thread (tests and diagnostics).
pub fn this_thread_nice() -> i32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as above; getpriority may return -1 legitimately, errno is not needed here.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// How many times the watchdog raised a starved lane since the process started.
pub fn lane_raises() -> u64 {
    RAISES.load(Ordering::Relaxed)
}

/// Whether the lane is raised now (its threads in the normal class).
pub fn lane_is_raised() -> bool {
    RAISED.load(Ordering::Acquire)
}

/// What the watchdog does at one look ([`lane_step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneStep {
    Keep,
    Raise,
    Lower,
}

/// The watchdog's policy, from when the lane last beat and since when it has been raised
/// (`None`: not raised). Pure, so it is tested without a scheduler.
pub fn lane_step(now: Instant, last_beat: Instant, raised_since: Option<Instant>) -> LaneStep {
    match raised_since {
        Some(since) if now.saturating_duration_since(since) >= RAISED_FOR => LaneStep::Lower,
        Some(_) => LaneStep::Keep,
        None if now.saturating_duration_since(last_beat) > STARVED_AFTER => LaneStep::Raise,
        None => LaneStep::Keep,
    }
}

/// Thread ids of the live threads that follow the lane's class. Bounded by the lane's threads
/// plus the log writer: a thread leaves the list when it ends.
static THREADS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static RAISED: AtomicBool = AtomicBool::new(false);
static RAISES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static REGISTERED: Registration = const { Registration(std::cell::Cell::new(false)) };
}

/// Takes the thread off [`THREADS`] when it ends (set once the thread is on it).
struct Registration(std::cell::Cell<bool>);

impl Drop for Registration {
    fn drop(&mut self) {
        if self.0.get()
            && let Some(tid) = this_tid()
        {
            lock_threads().retain(|t| *t != tid);
        }
    }
}

fn lock_threads() -> std::sync::MutexGuard<'static, Vec<i32>> {
    // A thread that panicked while holding it left only a list of ids behind.
    THREADS.lock().unwrap_or_else(|p| p.into_inner())
}

fn this_tid() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid takes no arguments and cannot fail.
        Some(unsafe { libc::gettid() })
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Moves thread `tid` (0: the caller) into `SCHED_IDLE` or back to the normal class (its nice
/// value is kept). False when refused.
fn set_idle_class(tid: i32, idle: bool) -> bool {
    #[cfg(target_os = "linux")]
    {
        let policy = if idle {
            libc::SCHED_IDLE
        } else {
            libc::SCHED_OTHER
        };
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` outlives the call; a tid of this process names one of its threads.
        unsafe { libc::sched_setscheduler(tid, policy, &param) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (tid, idle);
        false
    }
}

/// Starts the lane's heartbeat (a task on the lane) and its watchdog (a normal-class thread).
fn start_watchdog(lane: &Handle) {
    if !can_raise() {
        return;
    }
    let epoch = Instant::now();
    let beat = std::sync::Arc::new(AtomicU64::new(0));
    let beating = beat.clone();
    lane.spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            beating.store(millis_since(epoch), Ordering::Release);
        }
    });
    let watching = std::thread::Builder::new()
        .name("lane-watchdog".into())
        .spawn(move || {
            let mut raised_since = None;
            loop {
                std::thread::sleep(HEARTBEAT);
                let now = Instant::now();
                let last_beat = epoch + Duration::from_millis(beat.load(Ordering::Acquire));
                match lane_step(now, last_beat, raised_since) {
                    LaneStep::Keep => {}
                    LaneStep::Raise => {
                        set_lane_class(false);
                        RAISES.fetch_add(1, Ordering::Relaxed);
                        raised_since = Some(now);
                    }
                    LaneStep::Lower => {
                        set_lane_class(true);
                        raised_since = None;
                    }
                }
            }
        });
    if let Err(e) = watching {
        tracing::warn!(error = %e, "background lane watchdog not started; the lane stays at nice {BACKGROUND_NICE}");
        RAISED.store(true, Ordering::Release);
        set_lane_class(false);
    }
}

/// Moves every thread that follows the lane into `SCHED_IDLE` or the normal class. Under the
/// list's lock, so a thread starting meanwhile takes the class the flag says.
fn set_lane_class(idle: bool) {
    let threads = lock_threads();
    RAISED.store(!idle, Ordering::Release);
    for &tid in threads.iter() {
        set_idle_class(tid, idle);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_tasks_run_on_lowered_threads_and_the_caller_keeps_its_priority() {
        let before = this_thread_nice();
        let lane = background().expect("background runtime");
        let (nice, idle, name) = lane.block_on(async {
            tokio::spawn(async {
                (
                    this_thread_nice(),
                    this_thread_is_idle_class(),
                    std::thread::current().name().map(str::to_owned),
                )
            })
            .await
            .expect("task")
        });
        assert_eq!(nice, BACKGROUND_NICE.max(before));
        // Idle class unless it cannot be left again here, or the watchdog raised the lane
        // (a loaded test machine).
        assert!(
            idle || !can_raise() || lane_raises() > 0,
            "the lane's threads run in the SCHED_IDLE class"
        );
        assert_eq!(name.as_deref(), Some("background"));
        assert!(!this_thread_is_idle_class(), "the caller's class is kept");
        assert_eq!(
            this_thread_nice(),
            before,
            "the caller's thread is not lowered"
        );
    }

    #[test]
    fn the_watchdog_raises_a_lane_silent_past_the_bound_and_lowers_it_after_the_hold() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let bound = STARVED_AFTER.as_millis() as u64;
        let hold = RAISED_FOR.as_millis() as u64;
        assert_eq!(lane_step(at(bound), t0, None), LaneStep::Keep);
        assert_eq!(lane_step(at(bound + 1), t0, None), LaneStep::Raise);
        // A beat in the future (clock read before the beat landed) is not starvation.
        assert_eq!(lane_step(t0, at(10), None), LaneStep::Keep);
        // Raised: kept for the hold whatever the beat says, then lowered and watched again.
        assert_eq!(
            lane_step(at(hold - 1), t0, Some(t0)),
            LaneStep::Keep,
            "raised lanes stay raised for the hold"
        );
        assert_eq!(lane_step(at(hold), at(hold), Some(t0)), LaneStep::Lower);
    }

    #[test]
    fn writes_blocking_at_once_share_a_bounded_set_of_threads() {
        let lane = background().expect("background runtime");
        let threads = lane.block_on(async {
            let tasks: Vec<_> = (0..40)
                .map(|_| {
                    tokio::spawn(async {
                        tokio::task::block_in_place(|| {
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            std::thread::current().id()
                        })
                    })
                })
                .collect();
            let mut ids = std::collections::HashSet::new();
            for t in tasks {
                ids.insert(t.await.expect("task"));
            }
            ids.len()
        });
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        // The caller's thread may run tasks too (block_on), and workers hand off while blocked.
        let most = workers + BLOCKING_PER_WORKER * workers + 1;
        assert!(
            threads <= most,
            "40 blocking sections ran on {threads} threads (at most {most} expected)"
        );
    }
}
