//! The demo's progress display: each stage's command line and output on
//! stderr, a spinner on a terminal, the training step followed in
//! `train.jsonl`.
use std::io::{BufRead, BufReader, IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;

/// What a finished stage gives back.
pub struct StageResult {
    /// Wall time of the stage.
    pub seconds: f64,
    /// What it printed on stdout.
    pub stdout: String,
}

/// Progress display: one spinner per stage on stderr (hidden when stderr is
/// not a terminal), with the stage's own output printed above it.
pub struct Ui {
    tty: bool,
}

/// Number of numbered stages.
pub const STAGES: usize = 6;

enum Event {
    Stdout(String),
    Stderr(String),
    Done,
}

impl Default for Ui {
    fn default() -> Self {
        Self::new()
    }
}

impl Ui {
    /// A display on this process's stderr.
    pub fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Prints a line of the demo's own.
    pub fn line(&self, s: String) {
        eprintln!("{s}");
    }

    /// Runs `cmd` as stage `index`, showing its output and progress, and
    /// fails with the command line and exit status when it fails.
    /// `train_log` is a train.jsonl to follow for a step progress bar.
    pub fn stage(
        &self,
        index: usize,
        name: &str,
        cmd: &mut Command,
        train_log: Option<&Path>,
    ) -> Result<StageResult> {
        let shown = format!("{} {}", cmd.get_program().to_string_lossy(), join_args(cmd));
        eprintln!("[{index}/{STAGES}] {name}: {shown}");
        let bar = self.spinner(index, name);
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {shown}"))?;
        let stdout = pump(&mut child, &bar, train_log);
        let status = child
            .wait()
            .with_context(|| format!("waiting for {shown}"))?;
        let seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if !status.success() {
            bail!("stage {name} failed ({status}): {shown}");
        }
        eprintln!("      {name} done in {seconds:.1} s");
        if !name.starts_with("evaluate") {
            for l in stdout.lines() {
                eprintln!("      {l}");
            }
        }
        Ok(StageResult { seconds, stdout })
    }

    /// A spinner for stage `index` (hidden when stderr is not a terminal).
    fn spinner(&self, index: usize, name: &str) -> ProgressBar {
        let bar = if self.tty {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{prefix}] {elapsed:>4} {msg}") {
            bar.set_style(style);
        }
        bar.set_prefix(format!("{index}/{STAGES} {name}"));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// Shows a child's stderr above the spinner and the training progress of
/// `train_log` until the child closes its streams; returns its stdout.
fn pump(child: &mut Child, bar: &ProgressBar, train_log: Option<&Path>) -> String {
    let (tx, rx) = mpsc::channel();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(spawn_reader(out, tx.clone(), Event::Stdout));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(spawn_reader(err, tx, Event::Stderr));
    }
    let mut stdout = String::new();
    let mut follower = train_log.map(TrainLogFollower::new);
    let mut done = 0;
    while done < readers.len() {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(Event::Stdout(l)) => {
                stdout.push_str(&l);
                stdout.push('\n');
            }
            Ok(Event::Stderr(l)) if !l.trim().is_empty() => show(bar, &format!("      {l}")),
            Ok(Event::Stderr(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(Event::Done) => done += 1,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(p) = follower.as_mut().and_then(TrainLogFollower::poll) {
            match (bar.is_hidden(), p.epoch_line) {
                (true, Some(l)) => eprintln!("      {l}"),
                (true, None) => {}
                (false, _) => bar.set_message(p.message),
            }
        }
    }
    for r in readers {
        let _ = r.join();
    }
    stdout
}

/// A line above the spinner, or on stderr when there is none.
fn show(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn join_args(cmd: &Command) -> String {
    cmd.get_args()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Forwards the lines of a child's stream (split on `\n` and `\r`, so that
/// progress redraws arrive as lines) to the stage loop.
fn spawn_reader<R: Read + Send + 'static>(
    stream: R,
    tx: mpsc::Sender<Event>,
    wrap: fn(String) -> Event,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match read_until_any(&mut r, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_string();
                    if tx.send(wrap(line)).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(Event::Done);
    })
}

/// Reads up to and including the next `\n` or `\r`.
pub(crate) fn read_until_any<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut n = 0;
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(n);
        }
        if let Some(i) = available.iter().position(|&b| b == b'\n' || b == b'\r') {
            buf.extend_from_slice(&available[..=i]);
            r.consume(i + 1);
            return Ok(n + i + 1);
        }
        let len = available.len();
        buf.extend_from_slice(available);
        r.consume(len);
        n += len;
    }
}

/// The fields of a `train.jsonl` record the progress line shows.
#[derive(Deserialize)]
struct LogLine {
    event: String,
    total_steps: Option<u64>,
    global_step: Option<u64>,
    epoch: Option<u64>,
    loss: Option<f64>,
}

/// Follows the trainer's `train.jsonl` for the demo's progress line.
struct TrainLogFollower {
    path: PathBuf,
    offset: u64,
    partial: String,
    total_steps: Option<u64>,
    last_epoch: u64,
}

struct TrainProgress {
    message: String,
    /// Set when a new epoch started (for a non-terminal stderr).
    epoch_line: Option<String>,
}

impl TrainLogFollower {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
            partial: String::new(),
            total_steps: None,
            last_epoch: 0,
        }
    }

    fn poll(&mut self) -> Option<TrainProgress> {
        let mut f = std::fs::File::open(&self.path).ok()?;
        f.seek(SeekFrom::Start(self.offset)).ok()?;
        let mut new = String::new();
        let n = f.read_to_string(&mut new).ok()?;
        if n == 0 {
            return None;
        }
        self.offset += n as u64;
        self.partial.push_str(&new);
        let mut last_step: Option<LogLine> = None;
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            let Ok(v) = serde_json::from_str::<LogLine>(&line) else {
                continue;
            };
            match v.event.as_str() {
                "start" => self.total_steps = v.total_steps,
                "step" => last_step = Some(v),
                _ => {}
            }
        }
        let v = last_step?;
        let (step, epoch) = (v.global_step.unwrap_or(0), v.epoch.unwrap_or(0));
        let loss = v.loss.unwrap_or(f64::NAN);
        let total = self.total_steps.map_or("?".to_string(), |t| t.to_string());
        let message = format!("step {step}/{total}  epoch {epoch}  loss {loss:.4}");
        let epoch_line = (epoch != self.last_epoch).then(|| format!("train: {message}"));
        self.last_epoch = epoch;
        Some(TrainProgress {
            message,
            epoch_line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_newlines_and_carriage_returns() {
        let mut r = BufReader::new(&b"a\rbc\nd"[..]);
        let mut got = Vec::new();
        loop {
            let mut buf = Vec::new();
            if read_until_any(&mut r, &mut buf).unwrap() == 0 {
                break;
            }
            got.push(String::from_utf8(buf).unwrap());
        }
        assert_eq!(got, ["a\r", "bc\n", "d"]);
    }
}
