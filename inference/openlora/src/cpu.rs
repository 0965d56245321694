//! CPU threads: the engine's parallel loops run on candle's worker pool, the one its own CPU
//! ops use, so that two pools never compete for the same cores.

/// Call first in `main`, before any other thread starts. candle asks for its thread count
/// before many CPU ops and, unless `RAYON_NUM_THREADS` is set, answers by parsing
/// `/proc/cpuinfo` every time: 5 % of the engine's CPU time at batch 64, and half of it at
/// batch 1. Setting it once, to the same answer, removes that.
pub fn set_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", candle_core::utils::get_num_threads().to_string());
    }
}

/// Runs `f(i, chunk)` for every `chunk_len`-long chunk `i` of `out` (the last may be shorter)
/// on candle's worker pool.
pub fn for_each_chunk(out: &mut [f32], chunk_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let chunk_len = chunk_len.max(1);
    let (len, chunks) = (out.len(), out.len().div_ceil(chunk_len));
    let base = SharedOut(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(chunks, |range| {
        let base = base;
        for i in range {
            let start = i * chunk_len;
            // SAFETY: chunk `i` lies inside `out`, and the pool hands each index to one worker
            // only, so no two live slices overlap.
            let chunk = unsafe { std::slice::from_raw_parts_mut(base.0.add(start), chunk_len.min(len - start)) };
            f(i, chunk);
        }
    });
}

/// The values of the contiguous f32 CPU tensor a custom op's `cpu_fwd` is given.
pub fn contiguous_f32<'a>(
    op: &str,
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
) -> candle_core::Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (candle_core::CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => candle_core::bail!("{op} takes contiguous f32 inputs"),
    }
}

/// A pointer into an output buffer whose disjoint parts are written by different workers.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub(crate) *mut f32);
// SAFETY: every user writes only the part it was handed; see `for_each_chunk` and `q8`.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}
