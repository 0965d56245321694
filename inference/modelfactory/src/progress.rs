//! Progress on stderr: a bar redrawn in place on a terminal, a line every few percent in logs.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    label: String,
    total: u64,
    started: Instant,
    tty: bool,
    last_logged_pct: u64,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Self {
        Self { label: label.into(), total: total.max(1), started: Instant::now(), tty: std::io::stderr().is_terminal(), last_logged_pct: 0 }
    }

    /// `done` of `total` finished; `detail` is appended (loss, tokens/s, …).
    pub fn update(&mut self, done: u64, detail: &str) {
        let pct = done * 100 / self.total;
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = if done > 0 { elapsed * (self.total - done.min(self.total)) as f64 / done as f64 } else { 0.0 };
        let width = 24;
        let filled = (done.min(self.total) * width / self.total) as usize;
        let bar = format!("[{}{}]", "=".repeat(filled), " ".repeat(width as usize - filled));
        let line = format!("{} {bar} {done}/{} {detail} | {:.0}s elapsed, eta {:.0}s", self.label, self.total, elapsed, eta);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            if done >= self.total {
                let _ = writeln!(err);
            }
        } else if pct >= self.last_logged_pct + 5 || done >= self.total || done == 1 {
            self.last_logged_pct = pct;
            let _ = writeln!(err, "{line}");
        }
    }
}
