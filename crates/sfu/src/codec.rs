//! Just enough of each video payload format to tell where a keyframe starts.
//!
//! A forwarder may only start (or restart) a video stream on the first packet of a keyframe: a
//! decoder handed anything else shows garbage or nothing until the next one. These parsers read
//! untrusted network input, so they never index out of bounds and are fuzzed
//! (`fuzz/fuzz_targets/keyframe.rs`).

/// The video payload formats the SFU forwards (audio needs no keyframes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// VP8, RFC 7741.
    Vp8,
    /// VP9, RFC 9628.
    Vp9,
    /// H.264, RFC 6184.
    H264,
    /// AV1, the AOM RTP payload format.
    Av1,
}

impl VideoCodec {
    /// Whether `payload` (an RTP payload, without the RTP header) is the first packet of a
    /// keyframe, i.e. a point where a decoder can start.
    pub fn is_keyframe_start(self, payload: &[u8]) -> bool {
        match self {
            VideoCodec::Vp8 => vp8_keyframe_start(payload),
            VideoCodec::Vp9 => vp9_keyframe_start(payload),
            VideoCodec::H264 => h264_keyframe_start(payload),
            VideoCodec::Av1 => av1_keyframe_start(payload),
        }
    }
}

/// The fields of a VP8 payload descriptor (RFC 7741 §4.2) a forwarder rewrites or reads to
/// switch layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    /// PictureID and whether it is the 15-bit form.
    pub picture_id: Option<(u16, bool)>,
    /// TL0PICIDX.
    pub tl0_pic_idx: Option<u8>,
    /// Temporal layer index and its layer-sync (Y) bit.
    pub temporal: Option<(u8, bool)>,
    /// KEYIDX.
    pub key_idx: Option<u8>,
    /// Start of a partition-0 packet of a VP8 frame.
    pub frame_start: bool,
    /// Width and height, when this packet starts a keyframe.
    pub keyframe_size: Option<(u16, u16)>,
}

/// Parse the VP8 payload descriptor of `p` (and, on a keyframe start, the frame size); `None`
/// when it is truncated.
pub fn vp8_descriptor(p: &[u8]) -> Option<Vp8Descriptor> {
    let b0 = *p.first()?;
    let mut d = Vp8Descriptor { frame_start: b0 & 0x10 != 0 && b0 & 0x07 == 0, ..Default::default() };
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let x = *p.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            let m = *p.get(i)?;
            if m & 0x80 != 0 {
                let lo = *p.get(i + 1)?;
                d.picture_id = Some(((u16::from(m & 0x7f) << 8) | u16::from(lo), true));
                i += 2;
            } else {
                d.picture_id = Some((u16::from(m), false));
                i += 1;
            }
        }
        if x & 0x40 != 0 {
            d.tl0_pic_idx = Some(*p.get(i)?);
            i += 1;
        }
        if x & 0x30 != 0 {
            let tk = *p.get(i)?;
            if x & 0x20 != 0 {
                d.temporal = Some((tk >> 6, tk & 0x20 != 0));
            }
            if x & 0x10 != 0 {
                d.key_idx = Some(tk & 0x1f);
            }
            i += 1;
        }
    }
    // A keyframe's frame tag (3 bytes, inverse key bit clear), start code 9d 01 2a, then
    // 14-bit width and height (RFC 6386 §9.1).
    if d.frame_start {
        if let Some(h) = p.get(i..i + 10) {
            if h[0] & 0x01 == 0 && h[3..6] == [0x9d, 0x01, 0x2a] {
                let w = u16::from_le_bytes([h[6], h[7]]) & 0x3fff;
                let ht = u16::from_le_bytes([h[8], h[9]]) & 0x3fff;
                d.keyframe_size = Some((w, ht));
            }
        }
    }
    Some(d)
}

/// VP8 payload descriptor (RFC 7741 §4.2), then the VP8 frame tag's inverse key frame bit.
fn vp8_keyframe_start(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let extended = b0 & 0x80 != 0;
    let start = b0 & 0x10 != 0;
    let partition = b0 & 0x07;
    if !start || partition != 0 {
        return false;
    }
    let mut i = 1;
    if extended {
        let Some(&x) = p.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            // I: picture id, 7 or 15 bits (M bit).
            let Some(&pid) = p.get(i) else { return false };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // T or K: TID/Y/KEYIDX
        }
    }
    // Frame tag: bit 0 is the inverse key frame flag (0 = key frame).
    p.get(i).is_some_and(|tag| tag & 0x01 == 0)
}

/// VP9 payload descriptor (RFC 9628 §4.2): B (start of frame), P (inter-predicted), and the
/// spatial layer when layer indices are present.
fn vp9_keyframe_start(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let has_picture_id = b0 & 0x80 != 0;
    let inter_predicted = b0 & 0x40 != 0;
    let has_layers = b0 & 0x20 != 0;
    let begins_frame = b0 & 0x08 != 0;
    if !begins_frame || inter_predicted {
        return false;
    }
    if !has_layers {
        return true;
    }
    let mut i = 1;
    if has_picture_id {
        let Some(&pid) = p.get(i) else { return false };
        i += if pid & 0x80 != 0 { 2 } else { 1 };
    }
    // Layer indices: TID(3) U(1) SID(3) D(1); a keyframe starts at spatial layer 0.
    p.get(i).is_some_and(|l| (l >> 1) & 0x07 == 0)
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;

/// H.264 (RFC 6184 §5): a single NAL unit, a STAP-A aggregate or the first FU-A fragment that
/// holds an SPS or an IDR slice.
fn h264_keyframe_start(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let is_key = |nal_type: u8| nal_type == H264_IDR || nal_type == H264_SPS;
    match b0 & 0x1f {
        H264_STAP_A => {
            let mut i = 1;
            while let (Some(&hi), Some(&lo)) = (p.get(i), p.get(i + 1)) {
                let size = usize::from(hi) << 8 | usize::from(lo);
                let Some(&nal) = p.get(i + 2) else { return false };
                if size == 0 {
                    return false;
                }
                if is_key(nal & 0x1f) {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        H264_FU_A => p.get(1).is_some_and(|fu| fu & 0x80 != 0 && is_key(fu & 0x1f)),
        nal_type => is_key(nal_type),
    }
}

/// AV1 aggregation header: N (first packet of a coded video sequence) without Z (continuation).
fn av1_keyframe_start(p: &[u8]) -> bool {
    p.first().is_some_and(|h| h & 0x08 != 0 && h & 0x80 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8() {
        // S=1, PID=0, no extension, frame tag with key frame bit clear.
        assert!(VideoCodec::Vp8.is_keyframe_start(&[0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]));
        // Delta frame.
        assert!(!VideoCodec::Vp8.is_keyframe_start(&[0x10, 0x11, 0x02, 0x00]));
        // Not the start of a partition.
        assert!(!VideoCodec::Vp8.is_keyframe_start(&[0x00, 0x10, 0x02]));
        // Extended: I with 15-bit picture id, L, T: 1 + 1 + 2 + 1 + 1 bytes, then tag.
        let ext = [0x90, 0xe0, 0x80 | 0x12, 0x34, 0x05, 0x20, 0x50];
        assert!(VideoCodec::Vp8.is_keyframe_start(&ext));
        let ext_delta = [0x90, 0xe0, 0x80 | 0x12, 0x34, 0x05, 0x20, 0x51];
        assert!(!VideoCodec::Vp8.is_keyframe_start(&ext_delta));
        // Truncated.
        assert!(!VideoCodec::Vp8.is_keyframe_start(&[0x90, 0xe0, 0x80]));
        assert!(!VideoCodec::Vp8.is_keyframe_start(&[0x10]));
        assert!(!VideoCodec::Vp8.is_keyframe_start(&[]));
    }

    #[test]
    fn vp9() {
        // B=1, P=0, no layers.
        assert!(VideoCodec::Vp9.is_keyframe_start(&[0x08, 0xaa]));
        // Inter-predicted.
        assert!(!VideoCodec::Vp9.is_keyframe_start(&[0x48, 0xaa]));
        // Not the beginning of a frame.
        assert!(!VideoCodec::Vp9.is_keyframe_start(&[0x00, 0xaa]));
        // I + L: 15-bit picture id, layer byte with SID 0, then SID 1.
        assert!(VideoCodec::Vp9.is_keyframe_start(&[0xa8, 0x81, 0x02, 0x00]));
        assert!(!VideoCodec::Vp9.is_keyframe_start(&[0xa8, 0x81, 0x02, 0x02]));
        assert!(!VideoCodec::Vp9.is_keyframe_start(&[0xa8, 0x81]));
    }

    #[test]
    fn h264() {
        // Single NAL units.
        assert!(VideoCodec::H264.is_keyframe_start(&[0x65, 0x88]));
        assert!(VideoCodec::H264.is_keyframe_start(&[0x67, 0x42]));
        assert!(!VideoCodec::H264.is_keyframe_start(&[0x41, 0x9a]));
        // STAP-A: SPS (2 bytes), PPS (2 bytes).
        assert!(VideoCodec::H264.is_keyframe_start(&[0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce]));
        // STAP-A of non-key NALs, and a truncated one.
        assert!(!VideoCodec::H264.is_keyframe_start(&[0x78, 0, 2, 0x41, 0x9a, 0, 2, 0x06, 0x05]));
        assert!(!VideoCodec::H264.is_keyframe_start(&[0x78, 0, 9, 0x41]));
        assert!(!VideoCodec::H264.is_keyframe_start(&[0x78, 0, 0, 0x41]));
        // FU-A: start of an IDR; a middle fragment; start of a non-IDR slice.
        assert!(VideoCodec::H264.is_keyframe_start(&[0x7c, 0x85, 0x88]));
        assert!(!VideoCodec::H264.is_keyframe_start(&[0x7c, 0x05, 0x88]));
        assert!(!VideoCodec::H264.is_keyframe_start(&[0x7c, 0x81, 0x88]));
        assert!(!VideoCodec::H264.is_keyframe_start(&[0x7c]));
    }

    #[test]
    fn av1() {
        assert!(VideoCodec::Av1.is_keyframe_start(&[0x18, 0x00]));
        assert!(!VideoCodec::Av1.is_keyframe_start(&[0x10, 0x00]));
        assert!(!VideoCodec::Av1.is_keyframe_start(&[0x88, 0x00]));
        assert!(!VideoCodec::Av1.is_keyframe_start(&[]));
    }

    #[test]
    fn vp8_descriptor_reads_ids_and_keyframe_size() {
        // X, S, PID 0; I L T K; 15-bit picture id 0x1234; TL0PICIDX 7; TID 2, Y, KEYIDX 5.
        let mut p = vec![0x90, 0xf0, 0x80 | 0x12, 0x34, 7, (2 << 6) | 0x20 | 5];
        // Keyframe tag, start code, 1280x720.
        p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02, 0xaa]);
        let d = vp8_descriptor(&p).unwrap();
        assert_eq!(d.picture_id, Some((0x1234, true)));
        assert_eq!(d.tl0_pic_idx, Some(7));
        assert_eq!(d.temporal, Some((2, true)));
        assert_eq!(d.key_idx, Some(5));
        assert_eq!(d.keyframe_size, Some((1280, 720)));
        for n in 0..p.len() {
            let _ = vp8_descriptor(&p[..n]);
        }
        assert_eq!(vp8_descriptor(&p[..3]), None, "truncated picture id");
    }
}
