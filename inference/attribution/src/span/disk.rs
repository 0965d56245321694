//! The index on disk: `index.json`, and per shard a directory of three little-endian word files
//! (8 bytes per token, 16 per document), memory-mapped when opened.
//!
//! - `tokens.bin`: u32 per position, each document's tokens as token + 1, then a 0 separator;
//! - `sa.bin`: u32 per position, the suffix array of `tokens.bin`;
//! - `docs.bin`: `(start, contribution)` u64 pairs, one per document, by start.
//!
//! Every file is written under a temporary name, synced and renamed into place, and the manifest
//! last, so a failed or interrupted build never leaves an index that lists half-written files.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::path::{Component, Path, PathBuf};

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use libsais::suffix_array::AlphabetSize;
use libsais::{SuffixArrayConstruction, ThreadCount};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::search::View;
use super::{BuildStage, Cover, Document, Result, SpanError, MAX_VOCAB};
use crate::hash::{blake2_256_file, Hash256};

// Shard files are mapped as native words.
const _: () = assert!(cfg!(target_endian = "little"), "span index files are little-endian");

const MANIFEST: &str = "index.json";
const FORMAT: u32 = 1;

/// One shard file, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub name: String,
    pub bytes: u64,
    #[serde(with = "crate::hash::serde_hex")]
    pub blake2_256: Hash256,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFiles {
    pub tokens: FileInfo,
    pub sa: FileInfo,
    pub docs: FileInfo,
}

/// One shard, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub cover: Cover,
    /// The shard's directory, inside the index directory.
    pub dir: String,
    /// Document tokens (separators not counted).
    pub tokens: u64,
    pub documents: u64,
    pub files: ShardFiles,
}

impl ShardInfo {
    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.files.tokens.bytes + self.files.sa.bytes + self.files.docs.bytes
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Manifest {
    format: u32,
    pub tokenizer: String,
    pub shards: Vec<ShardInfo>,
}

impl Manifest {
    pub fn new(tokenizer: &str) -> Self {
        Self { format: FORMAT, tokenizer: tokenizer.to_owned(), shards: Vec::new() }
    }

    /// Writes the manifest of a new index, refusing to replace one.
    pub fn create(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let path = dir.join(MANIFEST);
        if path.exists() {
            return Err(SpanError::Exists { path: dir.to_path_buf() });
        }
        self.write(dir)
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let text = fs::read_to_string(&path).map_err(io_error(&path))?;
        let manifest: Self =
            serde_json::from_str(&text).map_err(|source| SpanError::Manifest { path: path.clone(), source })?;
        let corrupt = |reason: String| SpanError::Corrupt { path: path.clone(), reason };
        if manifest.format != FORMAT {
            return Err(corrupt(format!("format {}, this build reads format {FORMAT}", manifest.format)));
        }
        for s in &manifest.shards {
            for name in [&s.dir, &s.files.tokens.name, &s.files.sa.name, &s.files.docs.name] {
                if !is_plain_name(name) {
                    return Err(corrupt(format!("{name:?} is not a plain file name")));
                }
            }
        }
        Ok(manifest)
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        write_atomic(dir, MANIFEST, |f, tmp| f.write_all(&json).map_err(io_error(tmp)))?;
        sync_dir(dir)
    }
}

/// A name the manifest may use for a directory or file: one path component, so that a crafted
/// manifest cannot point outside the index.
fn is_plain_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None))
}

/// A shard's files, mapped.
pub(super) struct Shard {
    text: Words<u32>,
    sa: Words<u32>,
    docs: Words<[u64; 2]>,
}

impl Shard {
    /// Maps the shard's files after checking their lengths against the manifest. Cheap checks
    /// only: hashing is [`verify`]'s job. Queries stay panic-free on files that pass these checks
    /// but are otherwise corrupt; they then just find wrong matches.
    pub fn open(dir: &Path, info: &ShardInfo) -> Result<Self> {
        let shard_dir = dir.join(&info.dir);
        let corrupt = |reason: String| SpanError::Corrupt { path: shard_dir.clone(), reason };
        let positions = info.tokens.checked_add(info.documents);
        let word_bytes = positions.and_then(|p| p.checked_mul(4));
        let docs_bytes = info.documents.checked_mul(16);
        let (Some(word_bytes), Some(docs_bytes)) = (word_bytes, docs_bytes) else {
            return Err(corrupt("impossible token or document count".into()));
        };
        let files = [(&info.files.tokens, word_bytes), (&info.files.sa, word_bytes), (&info.files.docs, docs_bytes)];
        for (file, bytes) in files {
            if file.bytes != bytes {
                return Err(corrupt(format!(
                    "manifest records {} bytes for {}, its token and document counts imply {bytes}",
                    file.bytes, file.name
                )));
            }
        }
        let shard = Self {
            text: Words::open(&shard_dir.join(&info.files.tokens.name), word_bytes)?,
            sa: Words::open(&shard_dir.join(&info.files.sa.name), word_bytes)?,
            docs: Words::open(&shard_dir.join(&info.files.docs.name), docs_bytes)?,
        };
        if shard.text.get().last().is_some_and(|&t| t != 0) {
            return Err(corrupt(format!("{} does not end with a document separator", info.files.tokens.name)));
        }
        if shard.docs.get().first().is_some_and(|d| d[0] != 0) {
            return Err(corrupt(format!("{} does not start at position 0", info.files.docs.name)));
        }
        Ok(shard)
    }

    pub fn view(&self) -> View<'_> {
        View { text: self.text.get(), sa: self.sa.get(), docs: self.docs.get() }
    }
}

/// Hashes a shard's files and compares with the manifest.
pub(super) fn verify(dir: &Path, info: &ShardInfo) -> Result<()> {
    for file in [&info.files.tokens, &info.files.sa, &info.files.docs] {
        let path = dir.join(&info.dir).join(&file.name);
        let found = blake2_256_file(&path).map_err(io_error(&path))?;
        if found != file.blake2_256 {
            return Err(SpanError::HashMismatch { path, found, expected: file.blake2_256 });
        }
    }
    Ok(())
}

/// Builds a shard from `docs` in `dir/name`. Returns its manifest entry; the caller records it.
pub(super) fn build_shard<'d>(
    dir: &Path,
    name: &str,
    cover: Cover,
    docs: impl IntoIterator<Item = Document<'d>>,
    vocab_size: u32,
    mut progress: impl FnMut(BuildStage),
) -> Result<ShardInfo> {
    let vocab_size = vocab_size.min(MAX_VOCAB);
    let mut text: Vec<i32> = Vec::new();
    let mut table: Vec<[u64; 2]> = Vec::new();
    let mut tokens = 0u64;
    let mut max_token = 0;
    for (document, doc) in (0u64..).zip(docs) {
        let positions = (text.len() + doc.tokens.len() + 1) as u64;
        if positions > i32::MAX as u64 {
            return Err(SpanError::ShardTooBig { document, positions });
        }
        let doc_max = doc.tokens.iter().copied().max().unwrap_or(0);
        if doc_max >= vocab_size {
            let offset = doc.tokens.iter().position(|&t| t >= vocab_size).unwrap_or_default();
            let (contribution, token) = (doc.contribution, doc.tokens[offset]);
            return Err(SpanError::TokenOutOfVocab { document, contribution, offset, token, vocab_size });
        }
        max_token = max_token.max(doc_max);
        table.push([text.len() as u64, doc.contribution]);
        // Below `MAX_VOCAB`, so token + 1 is an i32 (and `max_token + 2` below).
        text.extend(doc.tokens.iter().map(|&t| (t + 1) as i32));
        text.push(0);
        tokens += doc.tokens.len() as u64;
        progress(BuildStage::Reading { tokens });
    }

    progress(BuildStage::Sorting { positions: text.len() as u64 });
    // The tokens in use, not the vocabulary: libsais's buckets are as many as the alphabet.
    let sa = suffix_array(&mut text, max_token as i32 + 2)?;

    progress(BuildStage::Writing);
    let documents = table.len() as u64;
    let shard_dir = create_shard_dir(dir, name)?;
    let files = ShardFiles {
        tokens: write_words(&shard_dir, "tokens.bin", text.iter().map(|&t| t as u32))?,
        sa: write_words(&shard_dir, "sa.bin", sa.iter().map(|&p| p as u32))?,
        docs: write_words(&shard_dir, "docs.bin", table)?,
    };
    sync_dir(&shard_dir)?;
    Ok(ShardInfo { cover, dir: name.to_owned(), tokens, documents, files })
}

/// Copies the shard `info` of the index in `from` to `dir/name`, checking each file against the
/// hash the source manifest records as it goes, so a damaged shard is not carried over under
/// its recorded (and then wrong) identity.
pub(super) fn copy_shard(from: &Path, info: &ShardInfo, dir: &Path, name: &str) -> Result<ShardInfo> {
    let shard_dir = create_shard_dir(dir, name)?;
    for file in [&info.files.tokens, &info.files.sa, &info.files.docs] {
        let source = from.join(&info.dir).join(&file.name);
        let mut reader = File::open(&source).map_err(io_error(&source))?;
        let mut hasher = Blake2b::<U32>::new();
        write_atomic(&shard_dir, &file.name, |out, tmp| {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = reader.read(&mut buf).map_err(io_error(&source))?;
                if n == 0 {
                    return Ok(());
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io_error(tmp))?;
            }
        })?;
        let found: Hash256 = hasher.finalize().into();
        if found != file.blake2_256 {
            return Err(SpanError::HashMismatch { path: source, found, expected: file.blake2_256 });
        }
    }
    sync_dir(&shard_dir)?;
    Ok(ShardInfo { dir: name.to_owned(), ..info.clone() })
}

fn create_shard_dir(dir: &Path, name: &str) -> Result<PathBuf> {
    let shard_dir = dir.join(name);
    fs::create_dir_all(&shard_dir).map_err(io_error(&shard_dir))?;
    Ok(shard_dir)
}

/// The suffix array of `text` (values in `[0, alphabet)`), on every core.
fn suffix_array(text: &mut [i32], alphabet: i32) -> Result<Vec<i32>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let construction = SuffixArrayConstruction::for_text_mut(text)
        .in_owned_buffer32()
        .multi_threaded(ThreadCount::openmp_default());
    // SAFETY: `build_shard` stores token + 1 ≤ max token + 1, and 0 separators, so every value
    // is in [0, alphabet).
    let construction = unsafe { construction.with_alphabet_size(AlphabetSize::new(alphabet)) };
    Ok(construction.run().map_err(SpanError::SuffixArray)?.into_vec())
}

/// Words a shard file holds. Sealed by privacy: only types for which every bit pattern is a
/// value, as mapping a file as `&[T]` requires.
pub(super) trait Word: Copy {
    fn put_le(self, out: &mut Vec<u8>);
}

impl Word for u32 {
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Word for [u64; 2] {
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self[0].to_le_bytes());
        out.extend_from_slice(&self[1].to_le_bytes());
    }
}

/// Writes `words` little-endian to `dir/name`, hashing as it goes (so building never reads a
/// file back).
fn write_words<T: Word>(dir: &Path, name: &str, words: impl IntoIterator<Item = T>) -> Result<FileInfo> {
    const BLOCK: usize = 1 << 20;
    let mut hasher = Blake2b::<U32>::new();
    let mut bytes = 0u64;
    write_atomic(dir, name, |file, tmp| {
        let mut buf = Vec::with_capacity(BLOCK + 16);
        let mut flush = |buf: &mut Vec<u8>| {
            hasher.update(&buf[..]);
            bytes += buf.len() as u64;
            let written = file.write_all(buf).map_err(io_error(tmp));
            buf.clear();
            written
        };
        for w in words {
            w.put_le(&mut buf);
            if buf.len() >= BLOCK {
                flush(&mut buf)?;
            }
        }
        flush(&mut buf)
    })?;
    Ok(FileInfo { name: name.to_owned(), bytes, blake2_256: hasher.finalize().into() })
}

/// Creates `dir/name` through a synced temporary file in the same directory and a rename, so the
/// name only ever holds a complete file. `fill` writes the content to the file (whose path it is
/// given for errors). The caller syncs `dir` to make the rename durable.
fn write_atomic(dir: &Path, name: &str, fill: impl FnOnce(&mut File, &Path) -> Result<()>) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = File::create(&tmp).map_err(io_error(&tmp)).and_then(|mut f| {
        fill(&mut f, &tmp)?;
        f.sync_all().map_err(io_error(&tmp))?;
        fs::rename(&tmp, dir.join(name)).map_err(io_error(&tmp))
    });
    if written.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SpanError + '_ {
    move |source| match source.kind() {
        io::ErrorKind::NotFound => SpanError::Missing { path: path.to_path_buf() },
        _ => SpanError::Io { path: path.to_path_buf(), source },
    }
}

/// A file mapped as a slice of `T`.
struct Words<T> {
    map: Mmap,
    word: PhantomData<T>,
}

impl<T: Word> Words<T> {
    fn open(path: &Path, bytes: u64) -> Result<Self> {
        let file = File::open(path).map_err(io_error(path))?;
        let found = file.metadata().map_err(io_error(path))?.len();
        if found != bytes {
            return Err(SpanError::Length { path: path.to_path_buf(), found, expected: bytes });
        }
        // SAFETY: shard files are written once, under a temporary name, and renamed into place;
        // nothing modifies them afterwards. (A file truncated under a running reader faults any
        // mmap reader; that is outside what this can defend against.)
        let map = unsafe { Mmap::map(&file) }.map_err(io_error(path))?;
        // Binary searches touch one word per page: read-ahead would only waste I/O on a cold index.
        // A hint; the index works the same without it.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        let words = Self { map, word: PhantomData };
        if std::mem::size_of_val(words.get()) as u64 != bytes {
            // Mappings are page-aligned, so this means a length that is not a whole number of words.
            return Err(SpanError::Corrupt { path: path.to_path_buf(), reason: "not a whole number of words".into() });
        }
        Ok(words)
    }

    fn get(&self) -> &[T] {
        // SAFETY: `T` is u32 or [u64; 2] (the only `Word`s), for which every bit pattern is a
        // value, and `align_to` only yields aligned words.
        let (head, words, _) = unsafe { self.map.align_to::<T>() };
        if head.is_empty() {
            words
        } else {
            &[]
        }
    }
}

/// Serde for hashes as `0x` hex strings, the form the chain prints.

#[cfg(test)]
mod tests {
    use super::is_plain_name;

    #[test]
    fn manifest_names_stay_inside_the_index() {
        assert!(is_plain_name("shard-0") && is_plain_name("sa.bin"));
        for bad in ["", "..", "../x", "a/b", "/etc/passwd", "."] {
            assert!(!is_plain_name(bad), "{bad:?} accepted");
        }
    }
}
