//! Counters and gauges for `GET /metrics`, in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the adapter-load histogram buckets.
const LOAD_BUCKETS: [f64; 8] = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];

#[derive(Default)]
pub struct Metrics {
    prompt_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    requests_ok: AtomicU64,
    requests_rejected: AtomicU64,
    requests_failed: AtomicU64,
    queue_depth: AtomicU64,
    running: AtomicU64,
    last_batch_size: AtomicU64,
    steps: AtomicU64,
    step_rows: AtomicU64,
    /// f32 bits of the decode rate over the last step.
    tokens_per_second: AtomicU64,
    adapter_hits: AtomicU64,
    adapter_misses: AtomicU64,
    adapter_evictions: AtomicU64,
    adapters_registered: AtomicU64,
    adapters_resident: AtomicU64,
    adapter_bytes_resident: AtomicU64,
    load: Mutex<LoadHistogram>,
}

#[derive(Default)]
struct LoadHistogram {
    buckets: [u64; LOAD_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub fn adapter_hit(&self) {
        self.adapter_hits.fetch_add(1, Relaxed);
    }
    pub fn adapter_miss(&self) {
        self.adapter_misses.fetch_add(1, Relaxed);
    }
    pub fn adapter_evicted(&self) {
        self.adapter_evictions.fetch_add(1, Relaxed);
    }
    pub fn adapter_loaded(&self, took: Duration) {
        let s = took.as_secs_f64();
        let mut h = self.load.lock().unwrap_or_else(|e| e.into_inner());
        for (b, le) in h.buckets.iter_mut().zip(LOAD_BUCKETS) {
            if s <= le {
                *b += 1;
            }
        }
        h.count += 1;
        h.sum += s;
    }
    pub fn set_registered(&self, n: usize) {
        self.adapters_registered.store(n as u64, Relaxed);
    }
    pub fn set_resident(&self, n: usize, bytes: usize) {
        self.adapters_resident.store(n as u64, Relaxed);
        self.adapter_bytes_resident.store(bytes as u64, Relaxed);
    }
    pub fn set_queue(&self, waiting: usize, running: usize) {
        self.queue_depth.store(waiting as u64, Relaxed);
        self.running.store(running as u64, Relaxed);
    }
    pub fn request_finished(&self, ok: bool) {
        if ok { &self.requests_ok } else { &self.requests_failed }.fetch_add(1, Relaxed);
    }
    pub fn request_rejected(&self) {
        self.requests_rejected.fetch_add(1, Relaxed);
    }
    pub fn prompt_processed(&self, tokens: usize) {
        self.prompt_tokens.fetch_add(tokens as u64, Relaxed);
    }
    /// One engine step: `sequences` rows decoded `generated` tokens in `took`.
    pub fn step(&self, sequences: usize, rows: usize, generated: usize, took: Duration) {
        self.steps.fetch_add(1, Relaxed);
        self.step_rows.fetch_add(rows as u64, Relaxed);
        self.last_batch_size.store(sequences as u64, Relaxed);
        self.generated_tokens.fetch_add(generated as u64, Relaxed);
        let rate = generated as f32 / took.as_secs_f32().max(1e-9);
        self.tokens_per_second.store(rate.to_bits() as u64, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let mut put = |name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        let g = |a: &AtomicU64| a.load(Relaxed).to_string();
        put("openlora_prompt_tokens_total", "counter", "Prompt tokens processed.", g(&self.prompt_tokens));
        put("openlora_generated_tokens_total", "counter", "Tokens generated.", g(&self.generated_tokens));
        put(
            "openlora_tokens_per_second",
            "gauge",
            "Tokens generated per second over the last engine step.",
            f32::from_bits(self.tokens_per_second.load(Relaxed) as u32).to_string(),
        );
        put("openlora_queue_depth", "gauge", "Requests waiting to join the batch.", g(&self.queue_depth));
        put("openlora_running_sequences", "gauge", "Sequences in the running batch.", g(&self.running));
        put("openlora_batch_size", "gauge", "Sequences in the last forward pass.", g(&self.last_batch_size));
        put("openlora_engine_steps_total", "counter", "Forward passes run.", g(&self.steps));
        put("openlora_engine_step_rows_total", "counter", "Token rows over all forward passes.", g(&self.step_rows));
        put("openlora_requests_completed_total", "counter", "Requests that finished normally.", g(&self.requests_ok));
        put("openlora_requests_failed_total", "counter", "Requests that ended in an engine error.", g(&self.requests_failed));
        put("openlora_requests_rejected_total", "counter", "Requests refused because the queue was full.", g(&self.requests_rejected));
        put("openlora_adapter_cache_hits_total", "counter", "Requests whose adapter was resident.", g(&self.adapter_hits));
        put("openlora_adapter_cache_misses_total", "counter", "Adapter loads from disk.", g(&self.adapter_misses));
        put("openlora_adapter_cache_evictions_total", "counter", "Adapters evicted from the cache.", g(&self.adapter_evictions));
        put("openlora_adapters_registered", "gauge", "Registered adapters.", g(&self.adapters_registered));
        put("openlora_adapters_resident", "gauge", "Adapters with weights in memory.", g(&self.adapters_resident));
        put("openlora_adapter_cache_bytes", "gauge", "Bytes of resident adapter weights.", g(&self.adapter_bytes_resident));
        let h = self.load.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            o,
            "# HELP openlora_adapter_load_seconds Time to load an adapter's weights.\n# TYPE openlora_adapter_load_seconds histogram"
        );
        for (b, le) in h.buckets.iter().zip(LOAD_BUCKETS) {
            let _ = writeln!(o, "openlora_adapter_load_seconds_bucket{{le=\"{le}\"}} {b}");
        }
        let _ = writeln!(o, "openlora_adapter_load_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(o, "openlora_adapter_load_seconds_sum {}", h.sum);
        let _ = writeln!(o, "openlora_adapter_load_seconds_count {}", h.count);
        o
    }
}
