//! The kernels' threads: the caller plus `RAYON_NUM_THREADS - 1` workers that, after a
//! parallel loop, poll for the next one for a moment ([`POLL_FOR`]) before they sleep.
//!
//! A model run is dozens to hundreds of short parallel loops (a few to a few hundred
//! microseconds each). Rayon's workers sleep soon after their queues empty, and waking a
//! sleeping thread costs microseconds to tens of microseconds (on a virtual machine, an
//! interrupt to a halted vCPU): measured on MobileNetV2 at batch 2, a second rayon thread
//! bought nothing. Workers here poll (a `pause` loop, the clock read every 64 polls)
//! between the loops of a run, as onnxruntime's do, and sleep on a condition variable
//! once the run is over; dispatching a loop to a polling worker costs ~0.6 µs. A polling
//! worker counts as CPU time, so a run's CPU seconds come close to threads × its wall
//! time (the inference worker's CPU budget counts all threads).
//!
//! Each thread first takes the tasks of its own share (thread `i` of `T`, tasks
//! `i·n/T..(i+1)·n/T`), then what is left of the others'. Neighbouring tasks are
//! neighbouring parts of an output (rows, positions), and consecutive operators split
//! their outputs alike, so a thread mostly reads what it wrote a loop before, from its
//! own cache: with one shared counter the tasks fell to the threads by turns, and half of
//! every operator's input crossed between cores.
//!
//! What this must not do: decide anything a result depends on. Tasks are independent
//! outputs; which thread runs which task never changes a bit. A call made while the
//! workers are busy (a nested loop, or a second model running at the same time) runs its
//! tasks on the calling thread.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Condvar, Mutex, MutexGuard, OnceLock,
};
use std::time::{Duration, Instant};

/// How long an idle worker polls for the next loop before it sleeps.
const POLL_FOR: Duration = Duration::from_millis(2);

/// A loop body (task `t` of `0..tasks`), as a job holds it.
type Task = dyn Fn(usize) + Sync + 'static;

/// The loop being run, open for workers to join.
struct Job {
    /// The body, its lifetime erased: [`run`] does not return (nor unwind) before every
    /// worker that joined has left, so the pointer is never used after the borrow ends.
    task: *const Task,
}

// SAFETY: `task` points to a `Sync` closure; workers only call it while `run`, which
// borrows it, waits for them.
#[allow(unsafe_code)]
unsafe impl Send for Job {}

struct State {
    generation: u64,
    job: Option<Job>,
    sleepers: usize,
}

struct Pool {
    state: Mutex<State>,
    wake: Condvar,
    /// `state.generation`, readable without the lock while polling.
    generation: AtomicU64,
    /// Per thread (the caller first): the next task of its share, and the share's end.
    shares: Box<[Share]>,
    /// Workers inside the current job.
    joined: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// Whether a call is using the workers.
    busy: AtomicBool,
    workers: usize,
}

/// One thread's share of a job's tasks. Its owner takes them from the front, and a
/// thread that has run out takes from here too: each task is taken once, by whoever's
/// `fetch_add` returns it. Each share has cache lines of its own (a line shared by two
/// threads' counters would cross between their cores on every task taken).
#[repr(align(128))]
struct Share {
    next: AtomicUsize,
    end: AtomicUsize,
}

/// A `next` past every share: no task starts after a panic.
const STOPPED: usize = usize::MAX / 2;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a task panicked; the state itself stays consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let workers = rayon::current_num_threads().saturating_sub(1);
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                sleepers: 0,
            }),
            wake: Condvar::new(),
            generation: AtomicU64::new(0),
            shares: (0..=workers)
                .map(|_| Share {
                    next: AtomicUsize::new(STOPPED),
                    end: AtomicUsize::new(0),
                })
                .collect(),
            joined: AtomicUsize::new(0),
            panic: Mutex::new(None),
            busy: AtomicBool::new(false),
            workers,
        }));
        let mut started = 0;
        for i in 0..workers {
            let spawned = std::thread::Builder::new()
                .name(format!("inferchain-kernels-{i}"))
                .spawn(move || work(pool, i + 1));
            if spawned.is_ok() {
                started += 1;
            }
        }
        if started < workers {
            log::warn!("kernel workers: started {started} of {workers}");
        }
        pool
    })
}

/// Runs tasks `0..tasks` on the calling thread and the idle workers; returns when every
/// task has run. A panic in a task is raised here once all have stopped.
pub fn run(tasks: usize, task: &(dyn Fn(usize) + Sync)) {
    let pool = pool();
    if tasks <= 1 || pool.workers == 0 || pool.busy.swap(true, Ordering::Acquire) {
        (0..tasks).for_each(task);
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: only the lifetime is erased; see `Job::task`.
    let erased: *const Task =
        unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static Task>(task) };
    let threads = pool.shares.len();
    for (i, share) in pool.shares.iter().enumerate() {
        share.next.store(i * tasks / threads, Ordering::Relaxed);
        share
            .end
            .store((i + 1) * tasks / threads, Ordering::Relaxed);
    }
    {
        let mut state = lock(&pool.state);
        state.generation += 1;
        state.job = Some(Job { task: erased });
        pool.generation.store(state.generation, Ordering::Release);
        if state.sleepers > 0 {
            pool.wake.notify_all();
        }
    }
    run_tasks(pool, task, 0);
    // Closed: no worker joins after this; wait for those inside to leave.
    lock(&pool.state).job = None;
    while pool.joined.load(Ordering::Acquire) != 0 {
        std::hint::spin_loop();
    }
    let panic = lock(&pool.panic).take();
    pool.busy.store(false, Ordering::Release);
    if let Some(panic) = panic {
        resume_unwind(panic);
    }
}

/// `f(i, &mut items[i])` for every item, the items spread over the threads as tasks.
pub fn for_each_mut<T: Send>(items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
    let items: Vec<Mutex<&mut T>> = items.iter_mut().map(Mutex::new).collect();
    run(items.len(), &|i| f(i, &mut lock(&items[i])));
}

/// `f(i, chunk)` for every `chunk`-long piece of `data` (the last may be shorter), the
/// pieces spread over the threads as tasks.
pub fn for_each_chunk_mut<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let mut pieces: Vec<&mut [T]> = data.chunks_mut(chunk.max(1)).collect();
    for_each_mut(&mut pieces, |i, piece| f(i, piece));
}

/// `f(i, row)` for every `row_len`-long row of `data` (the last may be shorter),
/// neighbouring rows grouped into at most [`threads`] × [`TASKS_PER_THREAD`] tasks.
pub fn for_each_row_mut<T: Send>(
    data: &mut [T],
    row_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let row_len = row_len.max(1);
    let per_task = rows_per_task(data.len().div_ceil(row_len));
    for_each_chunk_mut(data, per_task * row_len, |t, rows| {
        for (j, row) in rows.chunks_mut(row_len).enumerate() {
            f(t * per_task + j, row)
        }
    });
}

/// `f(out_row, in_row)` for every `out_len`-long row of `out` and the `in_len`-long row
/// of `input` at the same index (as rayon's `out.par_chunks_mut(out_len)
/// .zip(input.par_chunks(in_len))`), rows grouped as [`for_each_row_mut`] does.
pub fn for_each_row_pair<T: Send, U: Sync>(
    out: &mut [T],
    out_len: usize,
    input: &[U],
    in_len: usize,
    f: impl Fn(&mut [T], &[U]) + Sync,
) {
    let in_len = in_len.max(1);
    for_each_row_mut(out, out_len, |i, row| {
        let start = i * in_len;
        if start < input.len() {
            f(row, &input[start..(start + in_len).min(input.len())])
        }
    });
}

/// `(0..len).map(f)` collected, the values computed as tasks on the threads.
pub fn map_collect<T: Send + Default + Clone>(len: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let mut out = vec![T::default(); len];
    for_each_row_mut(&mut out, 1, |i, slot| slot[0] = f(i));
    out
}

/// Tasks per thread a loop over many small independent pieces is split into: enough to
/// even out uneven pieces, few enough that per-task set-up stays small.
pub const TASKS_PER_THREAD: usize = 4;

/// Rows a task where `rows` neighbouring rows are grouped into at most [`threads`] ×
/// [`TASKS_PER_THREAD`] tasks (at least one row a task).
pub fn rows_per_task(rows: usize) -> usize {
    rows.div_ceil(threads() * TASKS_PER_THREAD).max(1)
}

/// The threads a loop's tasks are spread over (the caller's included).
pub fn threads() -> usize {
    pool().workers + 1
}

/// Takes the tasks of thread `me`'s share, then those left in the others' (the next
/// thread's first), until none are left; a panicking task stops the loop's other tasks
/// from starting and is kept for [`run`] to raise.
fn run_tasks(pool: &Pool, task: &(dyn Fn(usize) + Sync), me: usize) {
    let threads = pool.shares.len();
    for share in (0..threads).map(|i| &pool.shares[(me + i) % threads]) {
        let end = share.end.load(Ordering::Relaxed);
        loop {
            let t = share.next.fetch_add(1, Ordering::Relaxed);
            if t >= end {
                break;
            }
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| task(t))) {
                for share in pool.shares.iter() {
                    share.next.store(STOPPED, Ordering::Relaxed);
                }
                lock(&pool.panic).get_or_insert(panic);
            }
        }
    }
}

/// Worker `me` (1 and up; the caller runs share 0).
fn work(pool: &'static Pool, me: usize) {
    let mut seen = 0u64;
    loop {
        let idle_since = Instant::now();
        let mut polls = 0u32;
        while pool.generation.load(Ordering::Acquire) == seen {
            polls = polls.wrapping_add(1);
            if !polls.is_multiple_of(64) || idle_since.elapsed() < POLL_FOR {
                std::hint::spin_loop();
                continue;
            }
            let mut state = lock(&pool.state);
            while state.generation == seen {
                state.sleepers += 1;
                state = pool.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                state.sleepers -= 1;
            }
        }
        let task = {
            let state = lock(&pool.state);
            seen = state.generation;
            match &state.job {
                Some(job) => {
                    pool.joined.fetch_add(1, Ordering::Relaxed);
                    job.task
                }
                None => continue,
            }
        };
        #[allow(unsafe_code)]
        // SAFETY: the job was open when joined, so `run` is still waiting for this worker.
        let task = unsafe { &*task };
        run_tasks(pool, task, me);
        pool.joined.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_and_nested_calls_run_inline() {
        for tasks in [0usize, 1, 2, 7, 100] {
            let counts: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            run(tasks, &|t| {
                counts[t].fetch_add(1, Ordering::Relaxed);
                // A loop inside a task runs on its thread.
                let inner = AtomicUsize::new(0);
                run(3, &|_| {
                    inner.fetch_add(1, Ordering::Relaxed);
                });
                assert_eq!(inner.load(Ordering::Relaxed), 3);
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        }
        let mut data = vec![0usize; 37];
        for_each_chunk_mut(&mut data, 5, |i, piece| {
            piece.iter_mut().for_each(|v| *v = i)
        });
        assert!(data.iter().enumerate().all(|(j, &v)| v == j / 5));
    }

    #[test]
    fn a_panicking_task_is_raised_once_all_stop_and_the_pool_stays_usable() {
        let caught = catch_unwind(|| {
            run(50, &|t| {
                if t == 17 {
                    panic!("task 17");
                }
            })
        });
        assert!(caught.is_err());
        let ran = AtomicUsize::new(0);
        run(20, &|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 20);
    }
}
