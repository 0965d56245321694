//! The adapter store: registration checks, LRU eviction under the byte budget, pinning by
//! running sequences, and refusal of broken adapters.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openlora::adapters::{Acquire, AdapterStore, StoreError};
use openlora::fixtures::{write_adapter, write_model, ModelSpec};
use openlora::lora::save_peft;
use openlora::lora::{AdapterError, LoadedAdapter, WEIGHTS_FILE};
use openlora::metrics::Metrics;
use openlora::models::gemma3::{Gemma3Config, Proj};

fn tiny_config(dir: &Path) -> Gemma3Config {
    let path = write_model(&dir.join("base"), &ModelSpec::tiny(), 1).unwrap();
    Gemma3Config::from_file(&path).unwrap()
}

fn store(cfg: &Gemma3Config, budget: usize) -> (AdapterStore, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    (AdapterStore::new(cfg.clone(), 16, budget, metrics.clone()), metrics)
}

fn ready(a: Acquire) -> Arc<LoadedAdapter> {
    match a {
        Acquire::Ready(a) => a,
        Acquire::Wait => panic!("expected the adapter to load"),
    }
}

fn metric(m: &Metrics, name: &str) -> u64 {
    let text = m.render();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// `n` rank-2 adapters on q_proj, each `bytes` big.
fn many(dir: &Path, cfg: &Gemma3Config, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| write_adapter(&dir.join(format!("ad{i:04}")), cfg, 2, 4.0, &[Proj::Q], i as u64).unwrap())
        .collect()
}

/// `n` such adapters registered as `a0`, `a1`, … in a store whose budget holds `fit` of them;
/// returns the store, its metrics and the bytes of one adapter.
fn registered(dir: &Path, n: usize, fit: usize) -> (AdapterStore, Arc<Metrics>, usize) {
    let cfg = tiny_config(dir);
    let dirs = many(dir, &cfg, n);
    let one = openlora::lora::read_header(&dirs[0], &cfg, 16).unwrap().weight_bytes;
    let (mut s, m) = store(&cfg, fit * one);
    for (i, d) in dirs.iter().enumerate() {
        s.register(&format!("a{i}"), d).unwrap();
    }
    (s, m, one)
}

#[test]
fn least_recently_used_adapters_are_evicted_to_stay_under_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, m, one) = registered(tmp.path(), 5, 3);
    for name in ["a0", "a1", "a2"] {
        ready(s.acquire(name).unwrap());
    }
    ready(s.acquire("a0").unwrap()); // a1 is now the least recently used
    ready(s.acquire("a3").unwrap());
    let resident: Vec<_> = s.list().into_iter().filter(|(_, r)| *r).map(|(r, _)| r.name.clone()).collect();
    assert_eq!(resident, ["a0", "a2", "a3"]);
    assert_eq!(s.resident_bytes(), 3 * one);
    assert_eq!((metric(&m, "openlora_adapter_cache_hits_total"), metric(&m, "openlora_adapter_cache_misses_total")), (1, 4));
    assert_eq!(metric(&m, "openlora_adapter_cache_evictions_total"), 1);
    // An evicted adapter comes back as a miss.
    ready(s.acquire("a1").unwrap());
    assert_eq!(metric(&m, "openlora_adapter_cache_misses_total"), 5);
}

#[test]
fn adapters_in_use_are_never_evicted_and_newcomers_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, _, _) = registered(tmp.path(), 3, 2);
    let held0 = ready(s.acquire("a0").unwrap());
    let held1 = ready(s.acquire("a1").unwrap());
    assert!(matches!(s.acquire("a2").unwrap(), Acquire::Wait));
    // The running sequences' adapters are untouched.
    assert_eq!(s.resident_count(), 2);
    drop(held0);
    ready(s.acquire("a2").unwrap());
    assert!(s.list().iter().any(|(r, res)| r.name == "a1" && *res), "a1 is still in use");
    drop(held1);
}

#[test]
fn a_thousand_registered_adapters_stay_within_a_budget_of_sixty_four() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, m, one) = registered(tmp.path(), 1000, 64);
    assert_eq!(s.list().len(), 1000);
    // A skewed access pattern: a hot set of 32 and a long tail.
    let mut x: u64 = 12345;
    for _ in 0..3000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let i = if (x >> 33) % 4 == 0 { (x >> 40) % 1000 } else { (x >> 40) % 32 };
        ready(s.acquire(&format!("a{i}")).unwrap());
        assert!(s.resident_bytes() <= 64 * one && s.resident_count() <= 64);
    }
    assert_eq!(s.resident_count(), 64);
    let hits = metric(&m, "openlora_adapter_cache_hits_total");
    assert!(hits > 1500, "the hot set should mostly hit, got {hits} hits of 3000");
    assert!(metric(&m, "openlora_adapter_cache_evictions_total") > 100);
}

fn refused(s: &mut AdapterStore, dir: &Path) -> AdapterError {
    match s.register("bad", dir) {
        Err(StoreError::Refused { source, .. }) => source,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a broken adapter was accepted"),
    }
}

#[test]
fn broken_adapters_are_refused_with_a_clear_error_and_the_store_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_config(tmp.path());
    let (mut s, _) = store(&cfg, 1 << 30);
    let good = write_adapter(&tmp.path().join("good"), &cfg, 4, 8.0, &[Proj::Q, Proj::V], 1).unwrap();
    s.register("good", &good).unwrap();
    let (h, q) = cfg.proj_dims(Proj::Q);
    let stem = "base_model.model.model.layers.0.self_attn.q_proj";
    let pair = |a: Vec<usize>, b: Vec<usize>| {
        vec![
            (format!("{stem}.lora_A.weight"), vec![0.01f32; a.iter().product()], a),
            (format!("{stem}.lora_B.weight"), vec![0.01f32; b.iter().product()], b),
        ]
    };

    let d = tmp.path().join("shape");
    save_peft(&d, 4, 8.0, &["q_proj"], &pair(vec![4, h + 1], vec![q, 4])).unwrap();
    assert!(matches!(refused(&mut s, &d), AdapterError::Shape { found, .. } if found == vec![4, h + 1]));

    let d = tmp.path().join("rank");
    save_peft(&d, 32, 8.0, &["q_proj"], &pair(vec![32, h], vec![q, 32])).unwrap();
    assert!(matches!(refused(&mut s, &d), AdapterError::RankTooLarge { rank: 32, max: 16 }));

    let d = tmp.path().join("nan");
    let mut t = pair(vec![4, h], vec![q, 4]);
    t[1].1[7] = f32::NAN;
    save_peft(&d, 4, 8.0, &["q_proj"], &t).unwrap();
    // Shapes are fine, so registration accepts it; loading reads the values and refuses.
    s.register("nan", &d).unwrap();
    match s.acquire("nan") {
        Err(StoreError::Refused { source: AdapterError::NonFinite(name), .. }) => assert!(name.ends_with("lora_B.weight")),
        other => panic!("NaN adapter was not refused: {:?}", other.map(|_| ())),
    }

    let d = tmp.path().join("inf");
    let mut t = pair(vec![4, h], vec![q, 4]);
    t[0].1[0] = f32::INFINITY;
    save_peft(&d, 4, 8.0, &["q_proj"], &t).unwrap();
    s.register("inf", &d).unwrap();
    assert!(matches!(s.acquire("inf"), Err(StoreError::Refused { source: AdapterError::NonFinite(_), .. })));

    let d = tmp.path().join("header");
    save_peft(&d, 4, 8.0, &["q_proj"], &pair(vec![4, h], vec![q, 4])).unwrap();
    let bytes = std::fs::read(d.join(WEIGHTS_FILE)).unwrap();
    std::fs::write(d.join(WEIGHTS_FILE), &bytes[..20]).unwrap();
    assert!(matches!(refused(&mut s, &d), AdapterError::Safetensors(_)));
    let mut garbage = (u64::MAX / 2).to_le_bytes().to_vec();
    garbage.extend_from_slice(b"{not json");
    std::fs::write(d.join(WEIGHTS_FILE), garbage).unwrap();
    assert!(matches!(refused(&mut s, &d), AdapterError::Safetensors(_)));

    let d = tmp.path().join("unpaired");
    save_peft(&d, 4, 8.0, &["q_proj"], &pair(vec![4, h], vec![q, 4])[..1]).unwrap();
    assert!(matches!(refused(&mut s, &d), AdapterError::Unpaired(_)));

    let d = tmp.path().join("layer");
    let t = vec![(
        "base_model.model.model.layers.99.self_attn.q_proj.lora_A.weight".to_string(),
        vec![0f32; 4 * h],
        vec![4, h],
    )];
    save_peft(&d, 4, 8.0, &["q_proj"], &t).unwrap();
    assert!(matches!(refused(&mut s, &d), AdapterError::UnknownTensor(_)));

    let d = tmp.path().join("config");
    save_peft(&d, 4, 8.0, &["q_proj"], &pair(vec![4, h], vec![q, 4])).unwrap();
    std::fs::write(d.join("adapter_config.json"), "{\"lora_alpha\": 8}").unwrap();
    assert!(matches!(refused(&mut s, &d), AdapterError::Config(_)));

    assert!(matches!(refused(&mut s, &tmp.path().join("missing")), AdapterError::Io { .. }));

    // None of that disturbed the good adapter.
    let a = ready(s.acquire("good").unwrap());
    assert_eq!(a.rank, 4);
}

#[test]
fn an_adapter_file_replaced_after_registration_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_config(tmp.path());
    let (mut s, _) = store(&cfg, 1 << 30);
    let dir = write_adapter(&tmp.path().join("a"), &cfg, 4, 8.0, &[Proj::Q], 1).unwrap();
    s.register("a", &dir).unwrap();
    // Same shapes, different values: only the hash can tell. (The pause lets the mtime move
    // even on filesystems with coarse timestamps.)
    std::thread::sleep(std::time::Duration::from_millis(50));
    write_adapter(&dir, &cfg, 4, 8.0, &[Proj::Q], 2).unwrap();
    assert!(matches!(s.acquire("a"), Err(StoreError::Changed(_))));
    let reg = s.unregister("a").unwrap();
    assert!(s.resolve(&format!("0x{}", hex::encode(reg.header.hash))).is_none());
    s.register("a", &dir).unwrap();
    ready(s.acquire("a").unwrap());
}

#[test]
fn adapters_resolve_by_name_or_by_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_config(tmp.path());
    let (mut s, _) = store(&cfg, 1 << 30);
    let dir = write_adapter(&tmp.path().join("a"), &cfg, 4, 8.0, &[Proj::Q], 1).unwrap();
    let hash = s.register("legal-v1", &dir).unwrap().header.hash;
    assert_eq!(hash, openlora::lora::blake2_256(&std::fs::read(dir.join(WEIGHTS_FILE)).unwrap()));
    assert_eq!(s.resolve("legal-v1").unwrap().name, "legal-v1");
    assert_eq!(s.resolve(&format!("0x{}", hex::encode(hash))).unwrap().name, "legal-v1");
    assert!(s.resolve("0x1234").is_none());
    assert!(matches!(s.register("legal-v1", &dir), Err(StoreError::NameTaken(_))));
    // The same file under a second name: unregistering one leaves the hash naming the other.
    s.register("legal-copy", &dir).unwrap();
    s.unregister("legal-v1").unwrap();
    assert_eq!(s.resolve(&format!("0x{}", hex::encode(hash))).unwrap().name, "legal-copy");
}
