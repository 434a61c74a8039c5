//! The data-channel frame parser (docs/protocol.md, "Data channels"): any bytes either parse
//! into recipients and a payload that lie inside the input, or are refused; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = sfu::data::parse_frame(data) {
        assert!(frame.to.len() <= sfu::data::MAX_RECIPIENTS);
        assert!(frame.payload.len() <= data.len());
        let header: usize = 2 + frame.to.iter().map(|id| 1 + id.len()).sum::<usize>();
        assert_eq!(header + frame.payload.len(), data.len());
        if let Some(id) = frame.to.first() {
            let out = sfu::data::relayed_frame(frame.flags, id, frame.payload).unwrap();
            assert_eq!(out.len(), 2 + id.len() + frame.payload.len());
        }
    }
});
