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

use std::sync::OnceLock;

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

/// The process's background runtime (started on first use, one per process, never stopped:
/// its tasks end with their services' shutdown tokens). `None` when the runtime could not be
/// built (no threads left); callers then run the work on their own runtime.
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
            Ok(rt) => Some(rt),
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
/// if the class is refused. Lowering one's own policy needs no privilege.
///
/// The lane's threads and the log store's writer (whose capture queue drops rather than
/// blocks). Not the terminal log (a logging thread waits when its queue is full) nor the
/// journal's checkpointer (when it lags the writer checkpoints itself): with those idle too the
/// 1000/s tail got worse, not better.
pub fn idle_this_thread() {
    lower_this_thread();
    #[cfg(target_os = "linux")]
    // SAFETY: `param` outlives the call; pid 0 is the calling thread.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
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
        assert!(idle, "the lane's threads run in the SCHED_IDLE class");
        assert_eq!(name.as_deref(), Some("background"));
        assert!(!this_thread_is_idle_class(), "the caller's class is kept");
        assert_eq!(
            this_thread_nice(),
            before,
            "the caller's thread is not lowered"
        );
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
