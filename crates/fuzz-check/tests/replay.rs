//! Replays the committed fuzz corpus (`fuzz/corpus/`) through the fuzz targets' own checks: a
//! regression of anything the fuzzers once found fails here, in seconds, on a stable toolchain.

use std::fs;
use std::path::{Path, PathBuf};

/// The corpus folder of one fuzz target.
fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Runs `check` on every file of the target's corpus; fails when the corpus is missing or
/// empty, so the test never passes by finding nothing.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = corpus(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut n_inputs = 0;
    for entry in entries {
        let path = entry.expect("a corpus entry").path();
        let data = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its check", path.display());
        n_inputs += 1;
    }
    assert!(n_inputs > 0, "{} holds no inputs", dir.display());
}

#[test]
fn every_framing_input_of_the_corpus_passes_its_model_check() {
    replay("framing", fuzz_check::framing::check);
}

#[test]
fn every_delay_spec_of_the_corpus_passes_its_check() {
    replay("delay_spec", fuzz_check::delay_spec::check);
}
