//! A small mutation fuzzer that runs on stable Rust, shared by the fuzz targets
//! (`crates/lang/tests/fuzz_config.rs`, `crates/state-sqlite/tests/fuzz_state.rs`).
//!
//! It takes the corpus in `testdata/fuzz/<target>/`, mutates its entries (bytes, tokens of
//! a dictionary, splices of two entries) and runs the target on each input for
//! `BALLAST_FUZZ_SECS` seconds (default 2, so that `cargo test` stays quick). A panic is a
//! crash: the input is saved to `testdata/fuzz/<target>/crashes/` and the test fails. An
//! input whose run takes longer than 5 s is saved there too (a hang). Before each run the
//! input is written to `<target dir>/fuzz-<target>.current`, so that an abort (a stack
//! overflow) leaves the input that caused it. Inputs with an outcome not seen before
//! (the target returns a short signature, such as the first words of its error) join
//! the in-memory corpus; with `BALLAST_FUZZ_SAVE=1` they are written to the corpus
//! directory at the end. `BALLAST_FUZZ_SEED` fixes the random seed.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

pub struct Report {
    pub runs: u64,
    pub corpus: usize,
    pub new_entries: usize,
    pub crashes: Vec<PathBuf>,
    pub elapsed: Duration,
}

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/fuzz")
        .join(target)
}

/// The corpus entries of `target` (every file directly in its directory, crashes included:
/// they are the regressions), after the `seeds` files that live elsewhere in the
/// repository (the examples, read where they are rather than copied).
pub fn load_corpus(target: &str, seeds: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut out: Vec<(String, Vec<u8>)> = seeds
        .iter()
        .filter_map(|p| Some((p.display().to_string(), std::fs::read(p).ok()?)))
        .collect();
    for sub in [dir.clone(), dir.join("crashes")] {
        let Ok(rd) = std::fs::read_dir(&sub) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_file() {
                if let Ok(data) = std::fs::read(&p) {
                    out.push((p.display().to_string(), data));
                }
            }
        }
    }
    out
}

pub fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], dict: &[&str]) -> Vec<u8> {
    let mut v = input.to_vec();
    let n = 1 + rng.below(4);
    for _ in 0..n {
        let len = v.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                v.insert(i, rng.next() as u8);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let k = 1 + rng.below((len - i).min(32));
                v.drain(i..i + k);
            }
            3 if len > 0 => {
                // duplicate a range (nesting, repetition)
                let i = rng.below(len);
                let k = 1 + rng.below((len - i).min(64));
                let piece = v[i..i + k].to_vec();
                let at = rng.below(len + 1);
                let most = if rng.chance(20) { 200 } else { 3 };
                let times = 1 + rng.below(most);
                for _ in 0..times {
                    v.splice(at..at, piece.iter().copied());
                }
            }
            4 if !corpus.is_empty() => {
                // splice with another entry
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let k = 1 + rng.below((other.len() - i).min(128));
                    let at = rng.below(len + 1);
                    v.splice(at..at, other[i..i + k].iter().copied());
                }
            }
            5 if len > 0 => {
                // truncate
                v.truncate(rng.below(len));
            }
            6 if len > 1 => {
                let i = rng.below(len);
                let j = rng.below(len);
                v.swap(i, j);
            }
            _ if !dict.is_empty() => {
                let tok = dict[rng.below(dict.len())];
                let at = rng.below(len + 1);
                // keep UTF-8 mostly valid: insert at a character boundary when possible
                let at = match std::str::from_utf8(&v) {
                    Ok(s) => (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0),
                    Err(_) => at,
                };
                v.splice(at..at, tok.bytes());
            }
            _ => {}
        }
    }
    if v.len() > 1 << 20 {
        v.truncate(1 << 20);
    }
    v
}

/// An outcome without its particulars (quoted names, numbers), so that one kind of error
/// counts once however many names it is said with.
fn coarse(sig: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in sig.chars() {
        match c {
            '"' | '`' | '\'' => quoted = !quoted,
            _ if quoted => {}
            c if c.is_ascii_digit() => {}
            c => out.push(c),
        }
    }
    out
}

/// Runs `target` on the corpus and on mutations of it for the configured time.
/// `target` returns a short signature of the outcome (for example the first words of an error).
pub fn run(
    name: &str,
    seeds: &[PathBuf],
    dict: &[&str],
    mut target: impl FnMut(&[u8]) -> String,
) -> Report {
    let secs: u64 = std::env::var("BALLAST_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let seed: u64 = std::env::var("BALLAST_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("fuzz {name}: seed {seed}, {secs} s");
    let mut rng = Rng::new(seed);
    let dir = corpus_dir(name);
    let current = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-{name}.current"));
    let seeds = load_corpus(name, seeds);
    let mut corpus: Vec<Vec<u8>> = seeds.iter().map(|(_, d)| d.clone()).collect();
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut fresh: Vec<Vec<u8>> = Vec::new();
    let mut crashes = Vec::new();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut runs = 0u64;
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut i = 0usize;
    loop {
        let input = if i < corpus.len() && runs < seeds.len() as u64 {
            corpus[i].clone()
        } else {
            let base = &corpus[rng.below(corpus.len())];
            mutate(&mut rng, base, &corpus, dict)
        };
        i += 1;
        let _ = std::fs::write(&current, &input);
        let t0 = Instant::now();
        let out = catch_unwind(AssertUnwindSafe(|| target(&input)));
        let took = t0.elapsed();
        runs += 1;
        let crashed = match &out {
            Err(p) => Some(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()),
            ),
            Ok(_) if took > Duration::from_secs(5) => Some(format!("slow: {took:?}")),
            Ok(_) => None,
        };
        if let Some(why) = crashed {
            let cdir = dir.join("crashes");
            let _ = std::fs::create_dir_all(&cdir);
            let p = cdir.join(format!("crash-{:016x}", fnv(&input)));
            let _ = std::fs::write(&p, &input);
            eprintln!("fuzz {name}: CRASH ({why}) saved to {}", p.display());
            crashes.push(p);
        } else if let Ok(sig) = out {
            if seen.insert(coarse(&sig)) && input.len() < 64 * 1024 {
                corpus.push(input.clone());
                fresh.push(input);
            }
        }
        if Instant::now() >= deadline || crashes.len() >= 10 {
            break;
        }
    }
    std::panic::set_hook(quiet);
    let _ = std::fs::remove_file(&current);
    if std::env::var("BALLAST_FUZZ_SAVE").as_deref() == Ok("1") {
        // The smallest of the inputs with new outcomes, so the corpus stays small.
        let keep: usize = std::env::var("BALLAST_FUZZ_KEEP")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(100);
        fresh.sort_by_key(|f| f.len());
        for f in fresh.iter().take(keep) {
            let _ = std::fs::write(dir.join(format!("gen-{:016x}", fnv(f))), f);
        }
    }
    let r = Report {
        runs,
        corpus: corpus.len(),
        new_entries: fresh.len(),
        crashes,
        elapsed: start.elapsed(),
    };
    eprintln!(
        "fuzz {name}: {} inputs in {:.1?}, corpus {} ({} new outcomes), {} crashes",
        r.runs,
        r.elapsed,
        r.corpus,
        r.new_entries,
        r.crashes.len()
    );
    r
}
