//! A small fuzz driver for parsers of outside input, run as ordinary tests on the stable
//! toolchain (cargo-fuzz needs a nightly compiler, which this project's toolchain is not).
//!
//! [`run`] mutates a corpus of real inputs (recorded exchange messages, CSV files, request
//! bodies) for a time budget and calls the target with each mutant. A target asserts what must
//! hold for *any* input: it never panics, errors are values, and any cheap invariant (a parsed
//! value re-serializes, a sum is conserved). Mutations that keep most of an input's structure
//! reach far deeper into a parser than random bytes do.
//!
//! * `FUZZ_SECONDS` (not `TRADE2026_`-prefixed: that prefix is the config's) — budget per target (default 1; CI sets more).
//! * `FUZZ_SEED` — the run's random seed (default: fresh, printed), to repeat a run.
//!
//! A panicking input is printed (escaped), written to `<target dir>/fuzz-failures/<name>-<n>`
//! and the panic propagates, so the test fails with the input at hand.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// Bytes that tend to sit at parser boundaries.
const INTERESTING: &[&[u8]] = &[
    b"0",
    b"-1",
    b"-0",
    b"1e309",
    b"NaN",
    b"inf",
    b"99999999999999999999999999999999",
    b"0.0000000000000000000000000001",
    b"79228162514264337593543950336",
    b"18446744073709551616",
    b"\"\"",
    b"null",
    b"[]",
    b"{}",
    b"\\u0000",
    b"\xff\xfe",
    b"\n",
    b",",
    b"\"",
    b":",
    b"true",
    b"-",
    b".",
    b"1970-01-01T00:00:00Z",
    b"9999-12-31T23:59:59.999999999Z",
];

/// Runs `target` over mutants of `seeds` for the time budget; returns the number of inputs tried.
pub fn run(name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8])) -> u64 {
    let budget = Duration::from_secs_f64(env_f64("FUZZ_SECONDS").unwrap_or(1.0));
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| StdRng::from_os_rng().next_u64());
    eprintln!(
        "fuzz {name}: seed {seed}, budget {budget:?}, {} seeds",
        seeds.len()
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let empty = [Vec::new()];
    let corpus = if seeds.is_empty() { &empty[..] } else { seeds };

    let started = Instant::now();
    let mut tried = 0u64;
    // The seeds themselves first: a parser that fails on real input is the cheapest find.
    for input in corpus {
        check(name, tried, input, &target);
        tried += 1;
    }
    while started.elapsed() < budget {
        let mut input = corpus[rng.random_range(0..corpus.len())].clone();
        let rounds = 1 + rng.random_range(0..4);
        for _ in 0..rounds {
            mutate(&mut rng, &mut input, corpus);
        }
        check(name, tried, &input, &target);
        tried += 1;
    }
    eprintln!("fuzz {name}: {tried} inputs, no panic");
    tried
}

fn check(name: &str, n: u64, input: &[u8], target: &impl Fn(&[u8])) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(input))) {
        let path = failure_dir().join(format!("{name}-{n}"));
        let saved = std::fs::create_dir_all(failure_dir())
            .and_then(|()| std::fs::write(&path, input))
            .map(|()| path.display().to_string())
            .unwrap_or_else(|e| format!("(not saved: {e})"));
        eprintln!(
            "fuzz {name}: input #{n} panicked; saved to {saved}; input: {}",
            input.escape_ascii()
        );
        resume_unwind(panic);
    }
}

fn failure_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("fuzz-failures")
}

fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name).ok()?.parse().ok()
}

/// One structural or byte-level change.
fn mutate(rng: &mut StdRng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let len = input.len();
    let at = |rng: &mut StdRng| {
        if len == 0 {
            0
        } else {
            rng.random_range(0..len)
        }
    };
    match rng.random_range(0..9) {
        // flip a bit
        0 if len > 0 => {
            let i = at(rng);
            input[i] ^= 1 << rng.random_range(0..8);
        }
        // replace a byte
        1 if len > 0 => {
            let i = at(rng);
            input[i] = rng.random();
        }
        // delete a range
        2 if len > 0 => {
            let i = at(rng);
            let n = rng.random_range(1..=(len - i).min(64));
            input.drain(i..i + n);
        }
        // duplicate a range in place
        3 if len > 0 => {
            let i = at(rng);
            let n = rng.random_range(1..=(len - i).min(256));
            let chunk = input[i..i + n].to_vec();
            let j = rng.random_range(0..=input.len());
            input.splice(j..j, chunk);
        }
        // insert an interesting token
        4 => {
            let token = INTERESTING[rng.random_range(0..INTERESTING.len())];
            let j = if len == 0 {
                0
            } else {
                rng.random_range(0..=len)
            };
            input.splice(j..j, token.iter().copied());
        }
        // replace a run of digits with an interesting token (numbers are where parsers overflow)
        5 if len > 0 => {
            let i = at(rng);
            if let Some(start) = (i..len).find(|&k| input[k].is_ascii_digit()) {
                let end = (start..len)
                    .find(|&k| !input[k].is_ascii_digit())
                    .unwrap_or(len);
                let token = INTERESTING[rng.random_range(0..INTERESTING.len())];
                input.splice(start..end, token.iter().copied());
            }
        }
        // splice with another corpus entry
        6 => {
            let other = &corpus[rng.random_range(0..corpus.len())];
            if !other.is_empty() {
                let i = if len == 0 {
                    0
                } else {
                    rng.random_range(0..=len)
                };
                let j = rng.random_range(0..other.len());
                input.truncate(i);
                input.extend_from_slice(&other[j..]);
            }
        }
        // truncate
        7 if len > 0 => input.truncate(at(rng)),
        // swap two lines (structure-preserving for line-based inputs)
        _ => {
            let lines: Vec<usize> = input
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i)
                .collect();
            if lines.len() >= 2 {
                let a = lines[rng.random_range(0..lines.len())];
                let b = lines[rng.random_range(0..lines.len())];
                let (a, b) = (a.min(b), a.max(b));
                input[a..=b].reverse();
            }
        }
    }
    // Keep inputs bounded so a run explores rather than grows.
    input.truncate(1 << 20);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_target_is_reported_with_its_input() {
        let seeds = vec![b"price=100".to_vec()];
        let result = catch_unwind(|| {
            run("selftest", &seeds, |input| {
                assert!(!input.contains(&b'='), "found it");
            })
        });
        assert!(
            result.is_err(),
            "the seed itself panics, so the run must fail"
        );
    }

    #[test]
    fn mutants_differ_from_their_seeds() {
        let mut rng = StdRng::seed_from_u64(7);
        let corpus = vec![b"{\"price\":\"101.5\",\"qty\":3}\n{\"x\":1}\n".to_vec()];
        let changed = (0..200)
            .filter(|_| {
                let mut m = corpus[0].clone();
                mutate(&mut rng, &mut m, &corpus);
                m != corpus[0]
            })
            .count();
        assert!(
            changed > 150,
            "only {changed} of 200 mutations changed the input"
        );
    }
}
