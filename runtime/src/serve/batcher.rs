//! Dynamic batching: requests wait in a bounded queue; worker threads (one
//! per session) take the oldest request and, until the batch is full or the
//! oldest has waited the queue delay, the next ones with the same T, and
//! run them in one padded model call ([`crate::refiner::run_padded`]).
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tcanet_models::data::PreparedVideo;
use tcanet_ort::StageOutputs;
use tokio::sync::oneshot;

use super::metrics::Metrics;
use super::models::Work;
use crate::refiner::Refiner;

/// What a job's request gets back.
pub struct Answer {
    /// The job's work, moved back (its videos are needed after the model
    /// call, and are never copied to queue them).
    pub work: Work,
    /// The outputs of its videos, or the model's error message.
    pub outputs: Result<Vec<StageOutputs>, String>,
}

/// One request's videos waiting for the model.
pub struct Job {
    /// The network's inputs, one per video (all the same T).
    pub work: Work,
    /// Where the answer goes; a closed channel (the request gave up) drops the job.
    pub reply: oneshot::Sender<Answer>,
    /// When it was queued.
    pub queued: Instant,
}

impl Job {
    fn steps_key(&self) -> usize {
        self.work.item(0).map_or(0, |p| p.features.len())
    }

    /// Sends the answer; a request that gave up does not take it.
    fn answer(self, outputs: Result<Vec<StageOutputs>, String>) {
        let _ = self.reply.send(Answer {
            work: self.work,
            outputs,
        });
    }
}

/// Batching settings.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Videos per model call at most.
    pub max_batch: usize,
    /// How long the oldest request may wait for others to join it.
    pub max_delay: Duration,
    /// Requests waiting at most; more are refused.
    pub max_queue: usize,
}

struct State {
    jobs: VecDeque<Job>,
    /// Shutting down: run what is queued without waiting for the delay.
    draining: bool,
    closed: bool,
}

/// The queue shared by the HTTP handlers and the workers.
pub struct Queue {
    state: Mutex<State>,
    changed: Condvar,
    settings: BatchSettings,
    metrics: Arc<Metrics>,
}

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds `max_queue` requests.
    Full,
    /// The server is shutting down.
    Closed,
}

impl Queue {
    /// An empty queue.
    pub fn new(settings: BatchSettings, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                draining: false,
                closed: false,
            }),
            changed: Condvar::new(),
            settings,
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a job, or refuses it when the queue is full or closed.
    pub fn push(&self, job: Job) -> Result<(), Refused> {
        let mut s = self.lock();
        if s.closed {
            return Err(Refused::Closed);
        }
        if s.jobs.len() >= self.settings.max_queue {
            return Err(Refused::Full);
        }
        s.jobs.push_back(job);
        self.metrics.set_queue_depth(s.jobs.len());
        drop(s);
        self.changed.notify_all();
        Ok(())
    }

    /// Drops the jobs whose requests gave up (timed out, client gone) now,
    /// rather than when a worker next looks.
    pub fn drop_abandoned(&self) {
        let mut s = self.lock();
        s.jobs.retain(|j| !j.reply.is_closed());
        self.metrics.set_queue_depth(s.jobs.len());
    }

    /// Shutdown has begun: batches run at once instead of waiting for the
    /// queue delay (requests still arriving are taken).
    pub fn drain(&self) {
        self.lock().draining = true;
        self.changed.notify_all();
    }

    /// Stops taking jobs; the workers finish those queued, then exit.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Waits for the next batch: `None` once closed and empty.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let mut s = self.lock();
        loop {
            s.jobs.retain(|j| !j.reply.is_closed());
            self.metrics.set_queue_depth(s.jobs.len());
            let Some(first) = s.jobs.front() else {
                if s.closed {
                    return None;
                }
                s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let deadline = first.queued + self.settings.max_delay;
            let now = Instant::now();
            let waiting = !(s.closed || s.draining);
            if now < deadline && waiting && self.fill(&s) < self.settings.max_batch {
                s = self
                    .changed
                    .wait_timeout(s, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
            let batch = self.take(&mut s);
            self.metrics.set_queue_depth(s.jobs.len());
            return Some(batch);
        }
    }

    /// Videos the next batch would hold now.
    fn fill(&self, s: &State) -> usize {
        let key = s.jobs.front().map_or(0, Job::steps_key);
        let mut n = 0;
        for j in s.jobs.iter().filter(|j| j.steps_key() == key) {
            if n + j.work.len() > self.settings.max_batch {
                break;
            }
            n += j.work.len();
        }
        n
    }

    /// Takes the oldest job and the following ones of the same T that fit.
    fn take(&self, s: &mut State) -> Vec<Job> {
        let key = s.jobs.front().map_or(0, Job::steps_key);
        let (mut batch, mut rest, mut n) = (Vec::new(), VecDeque::new(), 0);
        while let Some(j) = s.jobs.pop_front() {
            if j.steps_key() == key && n + j.work.len() <= self.settings.max_batch {
                n += j.work.len();
                batch.push(j);
            } else if batch.is_empty() {
                // Cannot happen (requests hold at most max_batch videos),
                // but never leave a job behind forever.
                batch.push(j);
            } else {
                rest.push_back(j);
            }
        }
        s.jobs = rest;
        batch
    }
}

/// Runs one batch (its videos borrowed from the jobs) and answers its jobs.
fn run_batch(refiner: &Refiner, metrics: &Metrics, batch: Vec<Job>) {
    let items: Vec<&PreparedVideo> = batch.iter().flat_map(|j| j.work.items()).collect();
    let started = Instant::now();
    let outcome = refiner.run_prepared(&items).map_err(|e| e.to_string());
    metrics.observe_batch(items.len(), started.elapsed());
    let mut outputs = match outcome {
        Ok(v) => v.into_iter(),
        Err(message) => {
            for job in batch {
                job.answer(Err(message.clone()));
            }
            return;
        }
    };
    for job in batch {
        let mine: Vec<StageOutputs> = outputs.by_ref().take(job.work.len()).collect();
        job.answer(Ok(mine));
    }
}

/// Starts `workers` threads taking batches from `queue`; they exit once the
/// queue is closed and empty.
pub fn start_workers(
    queue: &Arc<Queue>,
    refiner: &Arc<Refiner>,
    workers: usize,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    (0..workers.max(1))
        .map(|i| {
            let (queue, refiner) = (queue.clone(), refiner.clone());
            std::thread::Builder::new()
                .name(format!("tcanet-batch-{i}"))
                .spawn(move || {
                    while let Some(batch) = queue.next_batch() {
                        run_batch(&refiner, &queue.metrics, batch);
                    }
                })
        })
        .collect()
}
