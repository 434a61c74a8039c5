//! The WHIP and WHEP endpoints read every POSTed offer and PATCHed trickle fragment before the
//! media worker sees it: never panic, whatever the text. The input is split at its first NUL
//! byte: an offer (checked for WHIP and for WHEP) and a fragment.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The parsers live in the confab binary; the file is plain std code.
#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/server/src/whip_sdp.rs"]
mod whip_sdp;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (offer, frag) = text.split_once('\0').unwrap_or((&text, ""));
    let _ = whip_sdp::usable_offer(offer, false);
    let _ = whip_sdp::usable_offer(offer, true);
    let ufrag = whip_sdp::ice_ufrag(offer);
    if let Ok(candidates) = whip_sdp::trickle(frag, ufrag.as_deref()) {
        assert!(candidates.iter().all(|c| c.starts_with("candidate:")));
    }
});
