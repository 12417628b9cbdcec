//! Replays every fuzz target's corpus (`fuzz/corpus/<target>/`, grown by
//! `make fuzz`) through the same checks on stable: an input that once broke a
//! parser stays a regression test.

use std::path::Path;

#[test]
fn every_fuzz_corpus_passes_its_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, check) in sse_relay::fuzz::TARGETS {
        let dir = root.join(name);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let run = std::panic::catch_unwind(|| check(&data));
            assert!(run.is_ok(), "{name}: {} breaks its check", path.display());
            n += 1;
        }
        assert!(n > 0, "{name}: empty corpus in {}", dir.display());
    }
}
