//! The engine: a scheduler thread that runs continuous batching over the model.
//!
//! Requests wait in a bounded queue; between forward passes the scheduler admits as many as
//! the limits allow (sequences per batch, new rows per pass, reserved KV tokens, adapters that
//! fit the adapter cache) and drops the ones that finished. Every pass serves all running
//! sequences at once — prompts being prefilled and sequences decoding their next token, each
//! with its own adapter — and streams each sequence's new text to its requester.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use candle_core::{Storage, Tensor};
use tokenizers::Tokenizer;
use tokio::sync::mpsc::UnboundedSender;

use crate::adapters::{Acquire, AdapterStore, StoreError};
use crate::lora::{Hash256, LoadedAdapter, LoraBatch, LoraStacks};
use crate::metrics::Metrics;
use crate::models::gemma3::{Gemma3, SeqCache, SeqRows};
use crate::sampling::{sample_rows, Sampler, SamplingParams};
use crate::tokenizer::IncrementalDecoder;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Sequences decoded together in one forward pass.
    pub max_batch_size: usize,
    /// Token rows per forward pass: bounds how much prompt prefill joins a decode step.
    pub max_step_tokens: usize,
    /// KV-cache tokens reserved over all running sequences (prompt + max_tokens each).
    pub max_kv_tokens: usize,
    /// Requests allowed to wait; one more is refused (HTTP 429).
    pub max_queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { max_batch_size: 64, max_step_tokens: 4096, max_kv_tokens: 65_536, max_queue: 256 }
    }
}

/// A generation request, already tokenized and with its adapter resolved to a registered name.
pub struct Request {
    pub adapter: Option<String>,
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    /// Keep generating past end-of-sequence tokens (vLLM's `ignore_eos`; benchmarks use it to
    /// get exactly `max_tokens`).
    pub ignore_eos: bool,
    pub events: UnboundedSender<Event>,
}

#[derive(Debug)]
pub enum Event {
    /// New output text (may be empty when a token completes no character yet).
    Text(String),
    Finished(Finish),
    Failed(Failure),
}

#[derive(Debug)]
pub enum Failure {
    /// The request's adapter could not be loaded (broken or changed file).
    Adapter(String),
    Internal(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-sequence token or a stop sequence.
    Stop,
    /// `max_tokens` reached.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

#[derive(Debug)]
pub struct Finish {
    pub reason: FinishReason,
    pub text: String,
    pub output_tokens: Vec<u32>,
    /// The adapter that actually ran (its file hash), `None` for the base model.
    pub adapter_hash: Option<Hash256>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubmitError {
    #[error("the request queue is full ({0} waiting); retry later")]
    QueueFull(usize),
    #[error("prompt of {prompt} tokens plus max_tokens {max_tokens} exceeds the context of {context} tokens")]
    TooLong { prompt: usize, max_tokens: usize, context: usize },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the engine has stopped")]
    Stopped,
}

/// The handle the server holds. Cloning shares the same scheduler.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Command>,
    waiting: Arc<AtomicUsize>,
    config: EngineConfig,
    context: usize,
    pub metrics: Arc<Metrics>,
    pub store: Arc<Mutex<AdapterStore>>,
    pub tokenizer: Arc<Tokenizer>,
}

impl Engine {
    pub fn start(
        model: Gemma3,
        tokenizer: Arc<Tokenizer>,
        store: Arc<Mutex<AdapterStore>>,
        mut config: EngineConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let context = model.max_positions();
        // A prompt as long as the context must be able to run on its own.
        config.max_step_tokens = config.max_step_tokens.max(context);
        config.max_kv_tokens = config.max_kv_tokens.max(context);
        config.max_batch_size = config.max_batch_size.max(1);
        let (tx, rx) = mpsc::channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let eos = ["<eos>", "<end_of_turn>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        let scheduler = Scheduler {
            model,
            tokenizer: tokenizer.clone(),
            store: store.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
            waiting_count: waiting.clone(),
            rx,
            waiting: VecDeque::new(),
            running: Vec::new(),
            kv_reserved: 0,
            eos,
            lora_stacks: LoraStacks::default(),
        };
        std::thread::Builder::new()
            .name("openlora-engine".into())
            .spawn(move || scheduler.run())
            .expect("spawning the engine thread");
        Self { tx, waiting, config, context, metrics, store, tokenizer }
    }

    /// The longest sequence (prompt + output) one request may have.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Queues a request, or refuses it at once when it cannot run or the queue is full.
    pub fn submit(&self, req: Request) -> Result<(), SubmitError> {
        if req.prompt.is_empty() {
            return Err(SubmitError::EmptyPrompt);
        }
        if req.prompt.len() + req.max_tokens > self.context {
            return Err(SubmitError::TooLong {
                prompt: req.prompt.len(),
                max_tokens: req.max_tokens,
                context: self.context,
            });
        }
        let max = self.config.max_queue;
        if self
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1))
            .is_err()
        {
            self.metrics.request_rejected();
            return Err(SubmitError::QueueFull(max));
        }
        self.tx.send(Command::Generate(req)).map_err(|_| SubmitError::Stopped)
    }

    /// Loads an adapter's weights now, on the engine thread (device memory is only ever
    /// allocated and freed there: CUDA contexts are per thread). `Ok(false)`: the cache is full
    /// of adapters in use, so it stays registered and loads on its first request.
    pub async fn prefetch(&self, name: &str) -> Result<bool, StoreError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let gone = || StoreError::Unknown(name.to_string());
        self.tx.send(Command::Prefetch { name: name.to_string(), reply }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

enum Command {
    Generate(Request),
    Prefetch { name: String, reply: tokio::sync::oneshot::Sender<Result<bool, StoreError>> },
}

struct Sequence {
    events: UnboundedSender<Event>,
    adapter: Option<Arc<LoadedAdapter>>,
    cache: SeqCache,
    /// Rows for the next forward pass: the prompt at first, then the last sampled token.
    next_input: Vec<u32>,
    sampler: Sampler,
    greedy: bool,
    decoder: IncrementalDecoder,
    stops: StopScanner,
    max_tokens: usize,
    ignore_eos: bool,
    reserved: usize,
}

struct Scheduler {
    model: Gemma3,
    tokenizer: Arc<Tokenizer>,
    store: Arc<Mutex<AdapterStore>>,
    config: EngineConfig,
    metrics: Arc<Metrics>,
    waiting_count: Arc<AtomicUsize>,
    rx: mpsc::Receiver<Command>,
    waiting: VecDeque<Request>,
    running: Vec<Sequence>,
    kv_reserved: usize,
    eos: Vec<u32>,
    lora_stacks: LoraStacks,
}

impl Scheduler {
    fn run(mut self) {
        loop {
            if self.running.is_empty() && self.waiting.is_empty() {
                match self.rx.recv() {
                    Ok(c) => self.command(c),
                    Err(_) => return,
                }
            }
            while let Ok(c) = self.rx.try_recv() {
                self.command(c);
            }
            self.store.lock().unwrap_or_else(|e| e.into_inner()).drop_retired();
            self.admit();
            self.metrics.set_queue(self.waiting.len(), self.running.len());
            if !self.running.is_empty() {
                self.step();
            }
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Generate(r) => self.waiting.push_back(r),
            Command::Prefetch { name, reply } => {
                let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                let _ = reply.send(store.acquire(&name).map(|a| matches!(a, Acquire::Ready(_))));
            }
        }
    }

    fn dequeue(&mut self) -> Option<Request> {
        let r = self.waiting.pop_front()?;
        self.waiting_count.fetch_sub(1, Ordering::SeqCst);
        Some(r)
    }

    fn admit(&mut self) {
        let mut rows: usize = self.running.len();
        while self.running.len() < self.config.max_batch_size {
            let Some(front) = self.waiting.front() else { break };
            if front.events.is_closed() {
                self.dequeue();
                continue;
            }
            let need = front.prompt.len() + front.max_tokens;
            if rows + front.prompt.len() > self.config.max_step_tokens
                || self.kv_reserved + need > self.config.max_kv_tokens
            {
                break;
            }
            let adapter = match &front.adapter {
                None => None,
                Some(name) => {
                    let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                    match store.acquire(name) {
                        Ok(Acquire::Ready(a)) => Some(a),
                        Ok(Acquire::Wait) => break,
                        Err(e) => {
                            drop(store);
                            let req = self.dequeue().expect("front exists");
                            self.metrics.request_finished(false);
                            let _ = req.events.send(Event::Failed(Failure::Adapter(e.to_string())));
                            continue;
                        }
                    }
                }
            };
            let req = self.dequeue().expect("front exists");
            rows += req.prompt.len();
            self.kv_reserved += need;
            self.metrics.prompt_processed(req.prompt.len());
            self.running.push(Sequence {
                greedy: req.sampling.is_greedy(),
                sampler: Sampler::new(req.sampling),
                adapter,
                cache: self.model.new_cache(need),
                next_input: req.prompt,
                decoder: IncrementalDecoder::default(),
                stops: StopScanner::new(req.stop),
                max_tokens: req.max_tokens,
                ignore_eos: req.ignore_eos,
                reserved: need,
                events: req.events,
            });
        }
    }

    fn step(&mut self) {
        let started = Instant::now();
        let greedy = self.running.iter().all(|s| s.greedy);
        let mut rows = Vec::with_capacity(self.running.len());
        let mut lora_rows = Vec::with_capacity(self.running.len());
        for s in self.running.iter_mut() {
            lora_rows.push((s.next_input.len(), s.adapter.as_deref()));
            rows.push(SeqRows { tokens: &s.next_input, cache: &mut s.cache });
        }
        let total_rows: usize = lora_rows.iter().map(|r| r.0).sum();
        let lora = LoraBatch::new(lora_rows);
        // Accelerators: one gather per projection (see LoraStacks); the CPU's BGMV kernel
        // reads the adapters in place and needs no stacks.
        let lora = match self.model.device() {
            d if d.is_cpu() => Ok(lora),
            d => lora.gathered(&mut self.lora_stacks, &self.model.config, d),
        };
        // Tokens straight from the pass when every row is greedy, else the logits (`Err`), which
        // are sampled once the pass has let go of the sequences.
        let next = lora.and_then(|lora| match greedy {
            true => self.model.forward_greedy(&mut rows, &lora).map(Ok),
            false => self.model.forward(&mut rows, &lora).map(Err),
        });
        let next = next.and_then(|next| next.or_else(|logits| self.next_tokens(&logits)));
        let next = match next {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("forward pass failed: {e}");
                for s in self.running.drain(..) {
                    self.metrics.request_finished(false);
                    let _ = s.events.send(Event::Failed(Failure::Internal(format!("engine error: {e}"))));
                }
                self.kv_reserved = 0;
                return;
            }
        };
        let batch = self.running.len();
        let mut finished = Vec::new();
        for (i, (s, token)) in self.running.iter_mut().zip(next).enumerate() {
            if let Some(reason) = advance(&self.eos, &self.tokenizer, s, token) {
                finished.push((i, reason));
            }
        }
        for (i, reason) in finished.into_iter().rev() {
            let s = self.running.swap_remove(i);
            self.kv_reserved -= s.reserved;
            if let Some(reason) = reason {
                let finish = Finish {
                    reason,
                    text: s.stops.text,
                    output_tokens: s.decoder.tokens().to_vec(),
                    adapter_hash: s.adapter.as_ref().map(|a| a.header.hash),
                };
                self.metrics.request_finished(true);
                let _ = s.events.send(Event::Finished(finish));
            }
        }
        self.metrics.step(batch, total_rows, batch, started.elapsed());
    }

    /// Each running sequence's next token from its row of `logits`, for a batch with sampled
    /// rows (an all-greedy batch takes `forward_greedy`). On the CPU the rows are read in
    /// place, not copied out (67 MB for 64 rows of Gemma's vocabulary), and drawn in parallel.
    fn next_tokens(&mut self, logits: &Tensor) -> candle_core::Result<Vec<u32>> {
        let samplers = self.running.iter_mut().map(|s| &mut s.sampler).collect();
        if !logits.device().is_cpu() {
            return Ok(sample_rows(samplers, &logits.flatten_all()?.to_vec1::<f32>()?));
        }
        let logits = logits.contiguous()?;
        let (storage, layout) = logits.storage_and_layout();
        let Storage::Cpu(storage) = &*storage else {
            candle_core::bail!("CPU logits on {:?}", logits.device());
        };
        Ok(sample_rows(samplers, crate::cpu::contiguous_f32("sampling", storage, layout)?))
    }
}

/// Takes one sampled token. Returns `Some(reason)` when the sequence is done, and
/// `Some(None)` when its requester went away.
fn advance(eos: &[u32], tokenizer: &Tokenizer, s: &mut Sequence, token: u32) -> Option<Option<FinishReason>> {
    if !s.ignore_eos && eos.contains(&token) {
        let tail = s.stops.flush();
        if !tail.is_empty() && s.events.send(Event::Text(tail)).is_err() {
            return Some(None);
        }
        return Some(Some(FinishReason::Stop));
    }
    let piece = match s.decoder.push(tokenizer, token) {
        Ok(p) => p,
        Err(e) => {
            let _ = s.events.send(Event::Failed(Failure::Internal(format!("decoding: {e}"))));
            return Some(None);
        }
    };
    let (emit, stopped) = s.stops.push(&piece);
    let length = s.decoder.tokens().len() >= s.max_tokens;
    let emit = if length && !stopped { emit + &s.stops.flush() } else { emit };
    if (!emit.is_empty() && s.events.send(Event::Text(emit)).is_err()) || s.events.is_closed() {
        return Some(None);
    }
    if stopped {
        return Some(Some(FinishReason::Stop));
    }
    if length {
        return Some(Some(FinishReason::Length));
    }
    s.next_input.clear();
    s.next_input.push(token);
    None
}

/// Finds stop sequences in streamed text. Text that might be the start of a stop sequence is
/// held back until it is clear either way, so a stop sequence never reaches the client.
struct StopScanner {
    stops: Vec<String>,
    text: String,
    emitted: usize,
}

impl StopScanner {
    fn new(stops: Vec<String>) -> Self {
        Self { stops: stops.into_iter().filter(|s| !s.is_empty()).collect(), text: String::new(), emitted: 0 }
    }

    /// Appends `piece`; returns the text now safe to send and whether a stop sequence ended it.
    fn push(&mut self, piece: &str) -> (String, bool) {
        let from = self.emitted;
        self.text.push_str(piece);
        let hit = self.stops.iter().filter_map(|s| self.text[from..].find(s.as_str())).min();
        if let Some(at) = hit {
            self.text.truncate(from + at);
            return (self.flush(), true);
        }
        let held = self
            .stops
            .iter()
            .map(|s| {
                (1..s.len())
                    .rev()
                    .find(|&k| s.is_char_boundary(k) && self.text[from..].ends_with(&s[..k]))
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        let end = self.text.len() - held;
        let out = self.text[from..end].to_string();
        self.emitted = end;
        (out, false)
    }

    /// Everything not yet sent.
    fn flush(&mut self) -> String {
        let out = self.text[self.emitted..].to_string();
        self.emitted = self.text.len();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::StopScanner;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut s = StopScanner::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for p in pieces {
            let (e, stopped) = s.push(p);
            out += &e;
            if stopped {
                return (out, true);
            }
        }
        out += &s.flush();
        (out, false)
    }

    #[test]
    fn a_stop_split_over_pieces_is_never_sent() {
        assert_eq!(run(&["END"], &["abc E", "N", "D tail"]), ("abc ".into(), true));
        assert_eq!(run(&["END"], &["abc E", "N", "x"]), ("abc ENx".into(), false));
        assert_eq!(run(&["\n\n", "###"], &["a\n", "#", "##"]), ("a\n".into(), true));
    }

    #[test]
    fn held_back_text_is_released_when_it_is_not_a_stop() {
        let mut s = StopScanner::new(vec!["END".into()]);
        assert_eq!(s.push("x E"), ("x ".into(), false));
        assert_eq!(s.push("Z"), ("EZ".into(), false));
    }
}
