//! Synthetic media frames that say who sent them.
//!
//! Test publishers write these instead of encoded media; receivers decode the tag back, so a test
//! can assert not only that media arrived but whose it is, in which order, and that a video
//! stream started on a keyframe. Video frames carry a real VP8 frame tag (RFC 6386 §9.1) so the
//! SFU's keyframe detection sees them as the codec would.

/// Marker that starts the tag inside every synthetic frame.
const MARKER: &[u8; 6] = b"CONFAB";

/// What a synthetic frame says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameTag {
    /// The publisher's name.
    pub publisher: String,
    /// Counts up from 0 per publisher and kind.
    pub number: u32,
    /// Whether it is a (video) keyframe.
    pub keyframe: bool,
}

/// A VP8-shaped video frame of `size` bytes (at least the tag).
pub fn video_frame(publisher: &str, number: u32, keyframe: bool, size: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(size.max(64));
    // Frame tag: bit 0 clear = key frame; show_frame set; then the key frame start code and a
    // 640x360 size.
    f.extend_from_slice(&[if keyframe { 0x10 } else { 0x11 }, 0x02, 0x00]);
    if keyframe {
        f.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]);
    }
    push_tag(&mut f, publisher, number);
    f.resize(size.max(f.len()), 0xab);
    f
}

/// An Opus-sized audio frame.
pub fn audio_frame(publisher: &str, number: u32) -> Vec<u8> {
    let mut f = vec![0xf9];
    push_tag(&mut f, publisher, number);
    f.resize(f.len().max(80), 0x55);
    f
}

fn push_tag(f: &mut Vec<u8>, publisher: &str, number: u32) {
    f.extend_from_slice(MARKER);
    let name = publisher.as_bytes();
    f.push(name.len().min(255) as u8);
    f.extend_from_slice(&name[..name.len().min(255)]);
    f.extend_from_slice(&number.to_be_bytes());
}

/// Read the tag of a synthetic frame.
pub fn read_tag(frame: &[u8]) -> Option<FrameTag> {
    let at = frame.windows(MARKER.len()).position(|w| w == MARKER)?;
    let rest = &frame[at + MARKER.len()..];
    let len = usize::from(*rest.first()?);
    let name = rest.get(1..1 + len)?;
    let number = rest.get(1 + len..5 + len)?;
    Some(FrameTag {
        publisher: String::from_utf8_lossy(name).into_owned(),
        number: u32::from_be_bytes(number.try_into().ok()?),
        // Only video frames start with a VP8 tag; for audio the first byte is 0xf9 (odd).
        keyframe: frame.first().is_some_and(|b| b & 0x01 == 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let k = video_frame("ada", 7, true, 1500);
        assert_eq!(k.len(), 1500);
        assert_eq!(read_tag(&k), Some(FrameTag { publisher: "ada".into(), number: 7, keyframe: true }));
        let d = video_frame("ada", 8, false, 10);
        assert_eq!(read_tag(&d).map(|t| (t.number, t.keyframe)), Some((8, false)));
        let a = audio_frame("grace", 3);
        assert_eq!(read_tag(&a).map(|t| (t.publisher, t.number, t.keyframe)), Some(("grace".into(), 3, false)));
        assert_eq!(read_tag(b"nothing"), None);
    }
}
