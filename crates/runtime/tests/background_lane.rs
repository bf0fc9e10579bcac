//! The background lane under CPU starvation. A test binary of its own: it keeps every core busy
//! with normal-class threads for a while, which would slow the tests beside it.
//!
//! Under `SCHED_IDLE` alone the lane gets a fraction of a percent of a core while normal threads
//! are runnable: 200 ms of consumer work would take minutes. The watchdog raises the lane when
//! its heartbeat goes stale, so the same work finishes, and lowers it once the machine is quiet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use runtime::background::{
    BACKGROUND_NICE, background, can_raise, lane_is_raised, lane_raises, this_thread_is_idle_class,
    this_thread_nice,
};

/// Keeps `n` normal-class threads spinning until dropped.
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hogs {
    fn start(n: usize) -> Hogs {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Hogs { stop, threads }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Spins for `total` of this thread's time in slices, yielding to the lane's other tasks
/// between them, as a consumer folding batches does.
async fn consumer_like_work(total: Duration) -> (bool, i32) {
    let slice = Duration::from_millis(2);
    let mut done = Duration::ZERO;
    while done < total {
        let start = Instant::now();
        while start.elapsed() < slice {
            std::hint::spin_loop();
        }
        // Wall time, not CPU time: a descheduled slice counts as done, which only makes the
        // work smaller; the point is that it finishes at all.
        done += slice;
        tokio::task::yield_now().await;
    }
    (this_thread_is_idle_class(), this_thread_nice())
}

fn run_on_lane(work: Duration, within: Duration) -> Option<(bool, i32)> {
    let lane = background().expect("background lane");
    let (tx, rx) = std::sync::mpsc::channel();
    lane.spawn(async move {
        let _ = tx.send(consumer_like_work(work).await);
    });
    rx.recv_timeout(within).ok()
}

#[test]
fn a_lane_starved_by_normal_threads_is_raised_finishes_its_work_and_is_lowered_again() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // A process started above nice 10 cannot lower its threads' nice value back to it.
    let lane_nice = BACKGROUND_NICE.max(this_thread_nice());
    // The lane and its watchdog run before the load starts.
    assert!(run_on_lane(Duration::from_millis(1), Duration::from_secs(30)).is_some());
    let raises_before = lane_raises();

    let hogs = Hogs::start(2 * cores);
    let finished = run_on_lane(Duration::from_millis(200), Duration::from_secs(90));
    let raises_during = lane_raises();
    drop(hogs);

    let (_, nice) = finished.expect("consumer work on the lane finished while every core was busy");
    assert_eq!(nice, lane_nice, "lane threads keep their nice value");
    if !can_raise() {
        // Nice 10 alone: the lane was never idle class, so never starved.
        let (idle, _) = run_on_lane(Duration::from_millis(1), Duration::from_secs(30)).unwrap();
        assert!(!idle, "a lane that cannot leave SCHED_IDLE never enters it");
        return;
    }
    assert!(
        raises_during > raises_before,
        "the watchdog raised the starved lane ({raises_before} -> {raises_during})"
    );

    // Quiet again: the watchdog lowers the lane after its hold, and new work runs idle class.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (idle, _) = run_on_lane(Duration::from_millis(1), Duration::from_secs(30))
            .expect("lane answers once quiet");
        if idle && !lane_is_raised() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lane went back to SCHED_IDLE once the machine was quiet (raised: {})",
            lane_is_raised()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
