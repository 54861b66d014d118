//! Progress bars on stderr for long reads and copies.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use inferchain_engine::store::Progress;

/// Bars are shown only for work at least this large.
const MIN_BYTES: u64 = 8 << 20;

/// A callback for the engine's progress reports that draws a bar for large work.
pub fn bar(label: &'static str) -> impl FnMut(Progress) {
    let mut bar: Option<ProgressBar> = None;
    move |p: Progress| {
        if p.total < MIN_BYTES {
            return;
        }
        let bar = bar.get_or_insert_with(|| {
            let b = ProgressBar::with_draw_target(Some(p.total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(label);
            b
        });
        bar.set_position(p.done);
        if p.done >= p.total {
            bar.finish_and_clear();
        }
    }
}
