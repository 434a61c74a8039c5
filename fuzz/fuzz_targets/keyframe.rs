//! The keyframe detectors read RTP payloads from publishers: never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfu::VideoCodec;

fuzz_target!(|data: &[u8]| {
    for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264, VideoCodec::Av1] {
        let _ = codec.is_keyframe_start(data);
    }
});
