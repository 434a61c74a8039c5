//! The keyframe detectors and the VP8 descriptor parser read RTP payloads from publishers: never
//! panic, whatever the bytes, and agree with each other.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfu::VideoCodec;

fuzz_target!(|data: &[u8]| {
    for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264, VideoCodec::Av1] {
        let _ = codec.is_keyframe_start(data);
    }
    if let Some(d) = sfu::vp8_descriptor(data) {
        // A keyframe size is only read from the start of a keyframe.
        assert!(d.keyframe_size.is_none() || VideoCodec::Vp8.is_keyframe_start(data));
    }
});
