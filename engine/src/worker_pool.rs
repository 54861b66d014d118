//! The node's side of the inference workers ([`crate::worker`]): [`WorkerPool`] starts
//! worker processes on demand (at most `max_workers`), keeps them warm with their models
//! loaded, sends each host-function call to one, and kills a worker whose run overruns the
//! wall-clock deadline. A worker that dies (its memory cap, its CPU budget, a crash) is
//! replaced by a fresh one on the next call; the failed call gets a named
//! [`InferenceError`] and the node goes on.
//!
//! What it must not do: wait on a worker (or for a free one) past the run deadline, or
//! reuse a worker whose last run did not end with a reply.

use crate::worker::{
    read_frame, worker_args, write_frame, ReplyFrame, WorkerLimits, WorkerReply, WorkerRequest,
    WorkerStatus,
};
use codec::{DecodeAll, Encode};
use inferchain_primitives::{
    host::{InferenceError, InferenceRunner, TraceAnswer, TraceAsk, TraceRun, TracedModel},
    io::IoSpec,
    model::NumericsProfile,
    ModelId,
};
use std::{
    collections::VecDeque,
    ffi::OsString,
    io::{self, BufRead, Read},
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, Condvar, Mutex,
    },
    thread::JoinHandle,
};

const LOG_TARGET: &str = "inferchain::worker";
/// How many recent runs a worker is remembered to hold (the moves of one game go to the
/// worker that traced its run, which answers them from its cache).
const RECENT_RUNS: usize = 32;

/// How to start a worker: a program and the arguments before the worker's own (for the
/// node: its own binary and `inference-worker`).
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    replies: mpsc::Receiver<io::Result<Option<Vec<u8>>>>,
    /// Whether the worker said an allocation failed (Rust's allocation-failure message).
    out_of_memory: Arc<AtomicBool>,
    stderr: Option<JoinHandle<()>>,
    recent: VecDeque<[u8; 32]>,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Worker>,
    live: usize,
}

/// Worker processes that run models for the node (see the module docs).
pub struct WorkerPool {
    command: WorkerCommand,
    store: PathBuf,
    limits: WorkerLimits,
    max_workers: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

impl WorkerPool {
    /// A pool of at most `max_workers` workers over the model store at `store`; none is
    /// started until the first call.
    pub fn new(
        command: WorkerCommand,
        store: PathBuf,
        limits: WorkerLimits,
        max_workers: usize,
    ) -> Self {
        WorkerPool {
            command,
            store,
            limits,
            max_workers: max_workers.max(1),
            state: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
        }
    }

    pub fn limits(&self) -> &WorkerLimits {
        &self.limits
    }

    fn spawn(&self) -> io::Result<Worker> {
        let mut child = Command::new(&self.command.program)
            .args(&self.command.args)
            .args(worker_args(&self.store, &self.limits))
            // glibc's per-thread arenas reserve address space the cap would count.
            .env("MALLOC_ARENA_MAX", "2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let pid = child.id();
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io::Error::other("the worker's pipes were not opened"));
                }
            };
        let (send, replies) = mpsc::channel();
        let out_of_memory = Arc::new(AtomicBool::new(false));
        let oom = out_of_memory.clone();
        let threads = std::thread::Builder::new()
            .name(format!("inference-worker-{pid}-out"))
            .spawn(move || {
                let mut stdout = stdout;
                loop {
                    let frame = read_frame(&mut stdout);
                    let done = !matches!(frame, Ok(Some(_)));
                    if send.send(frame).is_err() || done {
                        return;
                    }
                }
            })
            .and_then(|_| {
                std::thread::Builder::new()
                    .name(format!("inference-worker-{pid}-err"))
                    .spawn(move || log_stderr(pid, stderr, &oom))
            });
        let stderr = match threads {
            Ok(handle) => handle,
            Err(e) => {
                // No reader: the worker must not outlive this call as a zombie.
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        log::info!(
            target: LOG_TARGET,
            "started inference worker {pid} (memory cap {} MiB, {} CPU-seconds and {:?} per run)",
            self.limits.memory_bytes >> 20,
            self.limits.cpu_secs,
            self.limits.deadline
        );
        Ok(Worker {
            child,
            stdin,
            replies,
            out_of_memory,
            stderr: Some(stderr),
            recent: VecDeque::new(),
        })
    }

    /// An idle worker (the one that holds `key`'s run if any), a new one, or the next to
    /// be freed.
    /// Waits at most the run deadline for one: a node whose workers are all busy that
    /// long could not answer in time anyway (`DeadlineExceeded`).
    fn acquire(&self, key: Option<[u8; 32]>) -> Result<Worker, InferenceError> {
        let until = std::time::Instant::now() + self.limits.deadline;
        let mut state = self.state.lock().map_err(|_| InferenceError::Failed)?;
        loop {
            if !state.idle.is_empty() {
                let at = key
                    .and_then(|k| state.idle.iter().position(|w| w.recent.contains(&k)))
                    .unwrap_or(state.idle.len() - 1);
                return Ok(state.idle.swap_remove(at));
            }
            if state.live < self.max_workers {
                state.live += 1;
                drop(state);
                return self.spawn().map_err(|e| {
                    log::error!(
                        target: LOG_TARGET,
                        "cannot start an inference worker ({} {:?}): {e}",
                        self.command.program.display(),
                        self.command.args
                    );
                    self.forget_one();
                    // The node's own failure, not the model's: no limit was reached.
                    InferenceError::Failed
                });
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                log::warn!(target: LOG_TARGET, "every inference worker stayed busy past the run deadline ({:?})", self.limits.deadline);
                return Err(InferenceError::DeadlineExceeded);
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .map_err(|_| InferenceError::Failed)?
                .0;
        }
    }

    fn forget_one(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.live = state.live.saturating_sub(1);
        }
        self.freed.notify_one();
    }

    fn give_back(&self, worker: Worker) {
        if let Ok(mut state) = self.state.lock() {
            state.idle.push(worker);
        }
        self.freed.notify_one();
    }

    /// Ends a healthy `worker`: its stdin closes, it exits at the end of its input.
    fn retire(&self, mut worker: Worker) {
        drop(worker.stdin);
        let _ = worker.child.wait();
        if let Some(stderr) = worker.stderr.take() {
            let _ = stderr.join();
        }
        self.forget_one();
    }

    /// Ends `worker` (killing it if it still runs) and names why its call failed.
    fn bury(&self, mut worker: Worker, timed_out: bool) -> InferenceError {
        let pid = worker.child.id();
        // A worker that died on its own is not killed here, so its own signal names why
        // (our SIGKILL would read as the kernel's out-of-memory killer).
        let status = match worker.child.try_wait() {
            Ok(Some(status)) => Ok(status),
            _ if timed_out => {
                let _ = worker.child.kill();
                worker.child.wait()
            }
            _ => {
                // It closed its stdout or wrote a bad frame: give it a moment to exit.
                std::thread::sleep(std::time::Duration::from_millis(50));
                match worker.child.try_wait() {
                    Ok(Some(status)) => Ok(status),
                    _ => {
                        let _ = worker.child.kill();
                        let _ = worker.child.wait();
                        if let Some(stderr) = worker.stderr.take() {
                            let _ = stderr.join();
                        }
                        log::warn!(target: LOG_TARGET, "inference worker {pid} broke the protocol and was stopped");
                        self.forget_one();
                        return InferenceError::WorkerCrashed;
                    }
                }
            }
        };
        if let Some(stderr) = worker.stderr.take() {
            let _ = stderr.join();
        }
        let signal = status.as_ref().ok().and_then(|s| {
            use std::os::unix::process::ExitStatusExt;
            s.signal()
        });
        let cause = if timed_out {
            InferenceError::DeadlineExceeded
        } else if signal == Some(libc::SIGXCPU) {
            InferenceError::CpuTimeExceeded
        } else if signal == Some(libc::SIGKILL) || worker.out_of_memory.load(Ordering::Relaxed) {
            InferenceError::OutOfMemory
        } else {
            InferenceError::WorkerCrashed
        };
        log::warn!(
            target: LOG_TARGET,
            "inference worker {pid} ended ({cause:?}, exit {status:?}); the run is refused and the \
             next call starts a fresh worker"
        );
        self.forget_one();
        cause
    }

    fn call(
        &self,
        request: &WorkerRequest,
        key: Option<[u8; 32]>,
    ) -> Result<WorkerReply, InferenceError> {
        let mut worker = self.acquire(key)?;
        if write_frame(&mut worker.stdin, &request.encode()).is_err() {
            return Err(self.bury(worker, false));
        }
        match worker.replies.recv_timeout(self.limits.deadline) {
            Ok(Ok(Some(bytes))) => match ReplyFrame::decode_all(&mut bytes.as_slice()) {
                Ok(ReplyFrame {
                    reply,
                    address_space,
                }) => {
                    if address_space > self.limits.recycle_bytes {
                        log::info!(
                            target: LOG_TARGET,
                            "inference worker {} holds {} MiB after its request (over {} MiB): retired, the next call starts a fresh one",
                            worker.child.id(),
                            address_space >> 20,
                            self.limits.recycle_bytes >> 20
                        );
                        self.retire(worker);
                        return Ok(reply);
                    }
                    if let Some(k) = key {
                        worker.recent.retain(|r| *r != k);
                        if worker.recent.len() == RECENT_RUNS {
                            worker.recent.pop_front();
                        }
                        worker.recent.push_back(k);
                    }
                    self.give_back(worker);
                    Ok(reply)
                }
                Err(_) => Err(self.bury(worker, false)),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => Err(self.bury(worker, true)),
            _ => Err(self.bury(worker, false)),
        }
    }

    /// Asks a worker for its limits (starting one if none is idle).
    pub fn status(&self) -> Result<WorkerStatus, InferenceError> {
        match self.call(&WorkerRequest::Status, None)? {
            WorkerReply::Status(status) => Ok(status),
            _ => Err(InferenceError::Failed),
        }
    }
}

impl InferenceRunner for WorkerPool {
    fn run(
        &self,
        model: ModelId,
        input: &[u8],
        spec: &IoSpec,
        numerics: &NumericsProfile,
        _uri: Option<&[u8]>,
    ) -> Result<Vec<u8>, InferenceError> {
        let request = WorkerRequest::Run {
            model,
            input: input.to_vec(),
            spec: spec.clone(),
            numerics: *numerics,
        };
        match self.call(&request, None)? {
            WorkerReply::Run(result) => result,
            _ => Err(InferenceError::Failed),
        }
    }

    fn trace(
        &self,
        model: &TracedModel,
        input: &[u8],
        run: TraceRun,
        ask: TraceAsk,
    ) -> Result<TraceAnswer, InferenceError> {
        let key = inferchain_primitives::blake2_256(&(model.model, input, &run).encode());
        let request = WorkerRequest::Trace {
            model: model.clone(),
            input: input.to_vec(),
            run,
            ask,
        };
        match self.call(&request, Some(key))? {
            WorkerReply::Trace(result) => result,
            _ => Err(InferenceError::Failed),
        }
    }
}

/// The longest stderr line of a worker kept whole; longer ones are cut.
const MAX_LINE: usize = 4096;
/// The most stderr lines of one worker logged; after that they are counted, not logged.
const MAX_LOGGED_LINES: usize = 1_000;

/// Forwards a worker's stderr to the log (bounded lines, lossy UTF-8, a capped count),
/// noting Rust's allocation-failure message. Reads to the end so the worker never blocks
/// or dies on a full pipe.
fn log_stderr(pid: u32, stderr: std::process::ChildStderr, oom: &AtomicBool) {
    let mut reader = io::BufReader::new(stderr);
    let mut line = Vec::new();
    let mut logged = 0usize;
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.starts_with("memory allocation of") {
            oom.store(true, Ordering::Relaxed);
        }
        if logged < MAX_LOGGED_LINES {
            log::info!(target: LOG_TARGET, "worker {pid}: {text}");
        }
        logged += 1;
    }
    if logged > MAX_LOGGED_LINES {
        log::warn!(target: LOG_TARGET, "worker {pid}: {} more stderr lines not logged", logged - MAX_LOGGED_LINES);
    }
}
