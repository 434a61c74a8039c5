//! The STUN username extraction that routes datagrams reads every datagram from the internet.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(ufrag) = sfu::stun_local_ufrag(data) {
        assert!(ufrag.len() <= data.len());
    }
});
