//! Recording kernel calls (with `std`): while a trace is on, every call through this
//! crate's public functions is kept as a [`Call`] with the output it produced, so that a
//! model run can be replayed call by call elsewhere (the determinism matrix replays it
//! under a wasm engine on the scalar reference). Off, a call costs one atomic load.

extern crate std;

use crate::call::Call;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One recorded call and the output this process computed for it.
#[derive(Clone, Debug)]
pub struct Record {
    pub call: Call,
    pub output: Vec<f32>,
}

static ON: AtomicBool = AtomicBool::new(false);
static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());

/// Starts recording (dropping anything recorded before). Calls from every thread are
/// recorded, in the order they finish.
pub fn start() {
    if let Ok(mut r) = RECORDS.lock() {
        r.clear();
    }
    ON.store(true, Ordering::SeqCst);
}

/// Stops recording and returns what was recorded.
pub fn finish() -> Vec<Record> {
    ON.store(false, Ordering::SeqCst);
    RECORDS
        .lock()
        .map(|mut r| core::mem::take(&mut *r))
        .unwrap_or_default()
}

/// Whether calls are being recorded now (a caller with a faster form of several calls
/// uses the recorded form while this is so).
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

pub(crate) fn push(call: Call, output: &[f32]) {
    if let Ok(mut r) = RECORDS.lock() {
        r.push(Record {
            call,
            output: output.to_vec(),
        });
    }
}
