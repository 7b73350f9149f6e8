//! Ordered prefetching: worker threads compute jobs `0..n` ahead of the
//! consumer, which receives the results in job order. At most `capacity`
//! results are in flight, so memory stays bounded.
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    next_job: usize,
    consumed: usize,
    stop: bool,
}

/// An iterator over `f(0), f(1), ..., f(n-1)` computed by worker threads.
///
/// Dropping it stops the workers after their current job.
pub struct Prefetcher<T: Send + 'static> {
    rx: mpsc::Receiver<(usize, T)>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    buffer: BTreeMap<usize, T>,
    next: usize,
    jobs: usize,
}

impl<T: Send + 'static> Prefetcher<T> {
    /// Starts `workers` threads (at least 1) computing `f(i)` for `i` in
    /// `0..jobs`, at most `capacity` (at least 1) results ahead of the consumer.
    pub fn new<F>(jobs: usize, workers: usize, capacity: usize, f: F) -> Self
    where
        F: Fn(usize) -> T + Send + Sync + 'static,
    {
        let capacity = capacity.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_job: 0,
                consumed: 0,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let (tx, rx) = mpsc::channel();
        let f = Arc::new(f);
        let workers = (0..workers.max(1))
            .map(|_| {
                let (shared, tx, f) = (shared.clone(), tx.clone(), f.clone());
                std::thread::spawn(move || loop {
                    let job = {
                        let mut st = shared.state.lock().expect("prefetch lock");
                        loop {
                            if st.stop || st.next_job >= jobs {
                                return;
                            }
                            if st.next_job < st.consumed + capacity {
                                break;
                            }
                            st = shared.wake.wait(st).expect("prefetch lock");
                        }
                        st.next_job += 1;
                        st.next_job - 1
                    };
                    if tx.send((job, f(job))).is_err() {
                        return;
                    }
                })
            })
            .collect();
        Self {
            rx,
            shared,
            workers,
            buffer: BTreeMap::new(),
            next: 0,
            jobs,
        }
    }
}

impl<T: Send + 'static> Iterator for Prefetcher<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.next >= self.jobs {
            return None;
        }
        let item = loop {
            if let Some(item) = self.buffer.remove(&self.next) {
                break item;
            }
            // Workers only stop early when one panicked: never end the
            // sequence short silently.
            let (i, item) = self
                .rx
                .recv()
                .expect("a prefetch worker panicked before finishing its jobs");
            self.buffer.insert(i, item);
        };
        self.next += 1;
        let mut st = self.shared.state.lock().expect("prefetch lock");
        st.consumed = self.next;
        self.shared.wake.notify_all();
        Some(item)
    }
}

impl<T: Send + 'static> Drop for Prefetcher<T> {
    fn drop(&mut self) {
        {
            let mut st = self.shared.state.lock().expect("prefetch lock");
            st.stop = true;
            self.shared.wake.notify_all();
        }
        // Unblock senders by draining, then join.
        while self.rx.try_recv().is_ok() {}
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_come_in_order_and_stay_bounded() {
        let running_max = Arc::new(AtomicUsize::new(0));
        let consumed = Arc::new(AtomicUsize::new(0));
        let (m, c) = (running_max.clone(), consumed.clone());
        let p = Prefetcher::new(50, 3, 4, move |i| {
            // Jobs finish out of order; none starts more than 4 ahead.
            std::thread::sleep(std::time::Duration::from_micros(
                ((i * 7919) % 13) as u64 * 50,
            ));
            let ahead = i - c.load(Ordering::SeqCst);
            m.fetch_max(ahead, Ordering::SeqCst);
            i * i
        });
        let mut got = Vec::new();
        for v in p {
            got.push(v);
            consumed.fetch_add(1, Ordering::SeqCst);
        }
        assert_eq!(got, (0..50).map(|i| i * i).collect::<Vec<_>>());
        // `consumed` counts a result just after it was taken: a worker can
        // see it one short, so 4 ahead of the count is 3 ahead of the
        // results taken (seen on a loaded, emulated processor).
        assert!(running_max.load(Ordering::SeqCst) <= 4);
    }

    #[test]
    fn dropping_early_stops_the_workers() {
        let mut p = Prefetcher::new(1_000_000, 2, 2, |i| i);
        assert_eq!(p.next(), Some(0));
        drop(p);
    }
}
