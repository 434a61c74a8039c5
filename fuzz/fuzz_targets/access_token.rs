//! Every join, WHIP/WHEP request and admin call with API keys configured hands its token to
//! `Keys::verify`: never panic, whatever the bytes; and what verifies must carry the key's
//! issuer and give grants without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The token code lives in the confab binary; the file needs only its crate's dependencies.
#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/server/src/auth.rs"]
mod auth;

fuzz_target!(|data: &[u8]| {
    let keys = auth::Keys::parse_pairs("fuzzkey: a-secret-of-at-least-thirty-two-characters").unwrap();
    let text = String::from_utf8_lossy(data);
    if let Ok(claims) = keys.verify(&text) {
        assert_eq!(claims.iss, "fuzzkey");
        let _ = claims.join("r");
        let _ = claims.list();
    }
    let _ = auth::Keys::parse_pairs(&text);
});
