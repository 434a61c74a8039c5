//! The load tester's receivers read a tag from every RTP payload the server under test sends
//! them and keep per-stream statistics from it: never panic, overflow or allocate without bound,
//! whatever the bytes. The input is a run of payloads, each prefixed by its length (one byte),
//! received 1 ms apart.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The tag format lives in the confab binary (its load tester); the file is plain std code.
#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/server/src/loadtest/probe.rs"]
mod probe;

fuzz_target!(|data: &[u8]| {
    let mut stats = probe::StreamStats::default();
    let mut rest = data;
    let mut now_us = 1_700_000_000_000_000u64;
    while let Some((&len, tail)) = rest.split_first() {
        let (payload, tail) = tail.split_at(usize::from(len).min(tail.len()));
        if let Some(tag) = probe::Tag::find(payload) {
            stats.record(tag, now_us);
        }
        now_us += 1_000;
        rest = tail;
    }
    let totals = stats.totals();
    let _ = (totals.loss(), totals.jitter_ms(), stats.latencies.quantile_ms(0.99));
});
