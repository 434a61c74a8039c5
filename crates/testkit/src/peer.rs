//! A test participant: a str0m `Rtc` playing the browser's part.
//!
//! It follows the client side of docs/protocol.md: publishes on `sendonly` m-lines, is the
//! impolite peer (ignores an SFU offer while its own offer is outstanding), answers SFU offers
//! echoing their id, and keeps the SFU's mid -> track map. It writes synthetic frames
//! ([`crate::frames`]) and records what it receives per mid.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sfu::{ParticipantId, Signal};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::frames::{self, FrameTag};

/// Audio frames every 20 ms, video at 20 fps: like the fake devices of a test browser.
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// See [`AUDIO_INTERVAL`].
pub const VIDEO_INTERVAL: Duration = Duration::from_millis(50);
/// A video keyframe at least this often, and on every keyframe request.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(3);

/// What a peer received on one of its m-lines.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Frames in arrival order (tag of each).
    pub frames: Vec<FrameTag>,
    /// Frames the depacketizer marked as not contiguous with the previous one (loss not repaired).
    pub discontinuities: usize,
}

/// A test participant.
pub struct Peer {
    /// Display name; also written into every frame.
    pub name: String,
    /// Participant id at the SFU.
    pub id: ParticipantId,
    /// Its network address.
    pub addr: SocketAddr,
    /// UDP, or TCP for a peer that reaches the SFU over ICE-TCP only.
    pub proto: Protocol,
    /// The peer connection.
    pub rtc: Rtc,
    /// Every signaling message received, in order.
    pub signals: Vec<Signal>,
    /// mid -> (publisher, track), from the SFU's latest offer.
    pub mid_map: BTreeMap<String, (ParticipantId, String)>,
    /// What arrived, by mid.
    pub received: BTreeMap<String, Received>,
    /// SFU offers ignored because they collided with this peer's own.
    pub ignored_offers: usize,
    /// Keyframe requests received from the SFU.
    pub keyframe_requests: usize,
    /// RTP packets received, when the peer was made with [`Peer::new_rtp`]: the SFU's egress
    /// as it arrives, by mid.
    pub rtp: BTreeMap<String, Vec<RtpSeen>>,
    /// Publish video as three simulcast layers (q, h, f).
    pub simulcast: bool,
    /// The size of a single-layer video delta frame in bytes (a keyframe is 3.3 times it);
    /// [`VIDEO_FRAME_BYTES`] unless set, which is 288 kbit/s at the 20 fps of the peers.
    pub video_frame_bytes: usize,
    /// Per layer (q, h, f): a keyframe is due.
    layer_keyframe: [bool; 3],
    pending: Option<SdpPendingOffer>,
    audio: Option<Mid>,
    video: Option<Mid>,
    next_audio: Option<Instant>,
    next_video: Option<Instant>,
    audio_number: u32,
    video_number: u32,
    last_keyframe: Option<Instant>,
    force_keyframe: bool,
    pub(crate) timeout: Instant,
    connected: bool,
    /// Its data channels to the SFU, by label, once open.
    channels: BTreeMap<String, ChannelId>,
    /// Data messages received: (channel label, the SFU's frame: flags, sender, payload).
    pub data: Vec<(String, Vec<u8>)>,
    /// The audio level its audio packets carry (RFC 6464, -127 to 0 dBov); none: no extension.
    pub audio_level: Option<i8>,
}

/// One RTP packet as a subscriber received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpSeen {
    /// Extended sequence number.
    pub seq: u64,
    /// RTP timestamp.
    pub timestamp: u32,
    /// VP8 PictureID, TL0PICIDX and whether the packet starts a keyframe.
    pub picture_id: Option<u16>,
    /// TL0PICIDX.
    pub tl0_pic_idx: Option<u8>,
    /// Starts a keyframe.
    pub keyframe: bool,
}

/// The default size of a single-layer video delta frame: see [`Peer::video_frame_bytes`].
pub const VIDEO_FRAME_BYTES: usize = 1800;

/// Simulcast layer names, lowest first, and the size of their delta frames.
pub const LAYERS: [(&str, usize); 3] = [("q", 300), ("h", 600), ("f", 1000)];

/// What the peer wants to tell the SFU.
#[derive(Debug)]
pub enum ToSfu {
    /// Its offer.
    Offer(String),
    /// Its answer to SFU offer `id`.
    Answer(u64, String),
}

impl Peer {
    /// A peer at `addr` that will join as `name`.
    pub fn new(now: Instant, name: &str, id: ParticipantId, addr: SocketAddr) -> Self {
        Self::with_rtc(Rtc::builder().build(now), now, name, id, addr)
    }

    /// A peer that receives in RTP mode: what it receives is recorded packet by packet in
    /// [`Peer::rtp`], not reassembled into frames.
    pub fn new_rtp(now: Instant, name: &str, id: ParticipantId, addr: SocketAddr) -> Self {
        Self::with_rtc(Rtc::builder().set_rtp_mode(true).build(now), now, name, id, addr)
    }

    /// A peer that reaches the SFU over ICE-TCP only (RFC 6544): its one candidate is an active
    /// TCP one at `addr`, the local address of a TCP connection to the SFU's passive candidate.
    /// Its transmits are to be sent as RFC 4571 frames on that connection, and what arrives on it
    /// handed to [`Peer::receive`] frame by frame.
    pub fn new_tcp(now: Instant, name: &str, id: ParticipantId, addr: SocketAddr) -> Self {
        let mut rtc = Rtc::builder().build(now);
        if let Ok(c) = Candidate::builder().tcp().host(addr).tcptype(TcpType::Active).build() {
            rtc.add_local_candidate(c);
        }
        Self::with_candidate(rtc, now, name, id, addr, Protocol::Tcp)
    }

    fn with_rtc(mut rtc: Rtc, now: Instant, name: &str, id: ParticipantId, addr: SocketAddr) -> Self {
        if let Ok(c) = Candidate::host(addr, "udp") {
            rtc.add_local_candidate(c);
        }
        Self::with_candidate(rtc, now, name, id, addr, Protocol::Udp)
    }

    fn with_candidate(rtc: Rtc, now: Instant, name: &str, id: ParticipantId, addr: SocketAddr, proto: Protocol) -> Self {
        Peer {
            name: name.to_string(),
            id,
            addr,
            proto,
            rtc,
            signals: Vec::new(),
            mid_map: BTreeMap::new(),
            received: BTreeMap::new(),
            ignored_offers: 0,
            rtp: BTreeMap::new(),
            simulcast: false,
            video_frame_bytes: VIDEO_FRAME_BYTES,
            layer_keyframe: [true; 3],
            keyframe_requests: 0,
            pending: None,
            audio: None,
            video: None,
            next_audio: None,
            next_video: None,
            audio_number: 0,
            video_number: 0,
            last_keyframe: None,
            force_keyframe: true,
            timeout: now,
            connected: false,
            channels: BTreeMap::new(),
            data: Vec::new(),
            audio_level: None,
        }
    }

    /// Start publishing audio and/or video: returns the offer to send.
    pub fn publish(&mut self, audio: bool, video: bool) -> Option<ToSfu> {
        let mut api = self.rtc.sdp_api();
        if audio && self.audio.is_none() {
            self.audio = Some(api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        }
        if video && self.video.is_none() {
            let simulcast = self.simulcast.then(|| {
                let mut s = Simulcast::new();
                for (rid, _) in LAYERS {
                    s.add_send_layer(SimulcastLayer::new(rid));
                }
                s
            });
            self.video = Some(api.add_media(MediaKind::Video, Direction::SendOnly, None, None, simulcast));
        }
        let (offer, pending) = api.apply()?;
        self.pending = Some(pending);
        Some(ToSfu::Offer(offer.to_sdp_string()))
    }

    /// Open the two data channels of docs/protocol.md (`confab`, reliable and ordered;
    /// `confab-lossy`, unordered without retransmissions): returns the offer to send.
    pub fn open_data(&mut self) -> Option<ToSfu> {
        let mut api = self.rtc.sdp_api();
        api.add_channel(sfu::data::RELIABLE.into());
        api.add_channel_with_config(ChannelConfig {
            label: sfu::data::LOSSY.into(),
            ordered: false,
            reliability: Reliability::MaxRetransmits { retransmits: 0 },
            ..Default::default()
        });
        let (offer, pending) = api.apply()?;
        self.pending = Some(pending);
        Some(ToSfu::Offer(offer.to_sdp_string()))
    }

    /// Whether its data channel `label` is open.
    pub fn data_open(&self, label: &str) -> bool {
        self.channels.contains_key(label)
    }

    /// Send a frame (as docs/protocol.md describes it) on data channel `label`; false if the
    /// channel is not open or did not take it.
    pub fn send_data(&mut self, label: &str, frame: &[u8]) -> bool {
        let Some(id) = self.channels.get(label).copied() else { return false };
        self.rtc.channel(id).is_some_and(|mut ch| matches!(ch.write(true, frame), Ok(true)))
    }

    /// Offer to receive video and audio on m-lines of its own (a WHEP player): returns the offer.
    pub fn watch(&mut self) -> Option<ToSfu> {
        self.watch_kinds(&[MediaKind::Video, MediaKind::Audio])
    }

    /// Offer to receive `kinds`, in that order, on m-lines of its own: returns the offer.
    pub fn watch_kinds(&mut self, kinds: &[MediaKind]) -> Option<ToSfu> {
        let mut api = self.rtc.sdp_api();
        for kind in kinds {
            api.add_media(*kind, Direction::RecvOnly, None, None, None);
        }
        let (offer, pending) = api.apply()?;
        self.pending = Some(pending);
        Some(ToSfu::Offer(offer.to_sdp_string()))
    }

    /// Frames received from the publisher named `name`, on any m-line.
    pub fn frames_of(&self, name: &str) -> Vec<FrameTag> {
        self.received.values().flat_map(|r| r.frames.iter().filter(|f| f.publisher == name).cloned()).collect()
    }

    /// Stop publishing video (the m-line goes inactive): returns the offer to send.
    pub fn unpublish_video(&mut self) -> Option<ToSfu> {
        let mid = self.video.take()?;
        let mut api = self.rtc.sdp_api();
        api.set_direction(mid, Direction::Inactive);
        let (offer, pending) = api.apply()?;
        self.pending = Some(pending);
        Some(ToSfu::Offer(offer.to_sdp_string()))
    }

    /// The mids this peer publishes on, as track ids.
    pub fn track_ids(&self) -> (Option<String>, Option<String>) {
        (self.audio.map(|m| m.to_string()), self.video.map(|m| m.to_string()))
    }

    /// Whether ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The peer's network changed: from now on it is at `addr` (a UDP host candidate), and it
    /// restarts ICE, as a browser does after a network change. Returns the offer to send.
    pub fn move_to(&mut self, addr: SocketAddr) -> Option<ToSfu> {
        self.addr = addr;
        if let Ok(c) = Candidate::host(addr, "udp") {
            self.rtc.add_local_candidate(c);
        }
        let mut api = self.rtc.sdp_api();
        api.ice_restart(true);
        let (offer, pending) = api.apply()?;
        self.pending = Some(pending);
        Some(ToSfu::Offer(offer.to_sdp_string()))
    }

    /// Handle a message from the SFU; may return a reply.
    pub fn on_signal(&mut self, signal: Signal) -> Result<Option<ToSfu>, String> {
        self.signals.push(signal.clone());
        match signal {
            Signal::Offer { id, sdp, tracks } => {
                if self.pending.is_some() {
                    // Impolite: our own offer wins; the SFU will offer again.
                    self.ignored_offers += 1;
                    return Ok(None);
                }
                self.mid_map = tracks.into_iter().map(|(mid, p, t)| (mid, (p, t))).collect();
                // Answer like a browser: browsers take the active DTLS role (they are the DTLS
                // client) when answering, str0m takes the passive one. Telling str0m the offerer
                // is passive makes it active, so the SFU is the DTLS server, as with browsers.
                let sdp = sdp.replace("a=setup:actpass", "a=setup:passive");
                let offer = SdpOffer::from_sdp_string(&sdp).map_err(|e| e.to_string())?;
                let answer = self.rtc.sdp_api().accept_offer(offer).map_err(|e| e.to_string())?;
                Ok(Some(ToSfu::Answer(id, answer.to_sdp_string())))
            }
            Signal::Answer { sdp } => {
                let pending = self.pending.take().ok_or("answer without an offer")?;
                let answer = SdpAnswer::from_sdp_string(&sdp).map_err(|e| e.to_string())?;
                self.rtc.sdp_api().accept_answer(pending, answer).map_err(|e| e.to_string())?;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Hand the peer a datagram.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, contents: &[u8]) {
        let Ok(receive) = Receive::new(self.proto, source, self.addr, contents) else { return };
        let _ = self.rtc.handle_input(Input::Receive(now, receive));
    }

    /// Advance time: write due media frames, feed the timeout.
    pub fn tick(&mut self, now: Instant) {
        let _ = self.rtc.handle_input(Input::Timeout(now));
        if !self.connected {
            return;
        }
        if self.next_audio.is_some_and(|t| t <= now) {
            self.next_audio = Some(now + AUDIO_INTERVAL);
            if let Some(mid) = self.audio {
                let data = frames::audio_frame(&self.name, self.audio_number);
                let time = MediaTime::new(u64::from(self.audio_number) * 960, Frequency::FORTY_EIGHT_KHZ);
                if self.write(mid, now, time, data) {
                    self.audio_number += 1;
                }
            }
        }
        if self.next_video.is_some_and(|t| t <= now) {
            self.next_video = Some(now + VIDEO_INTERVAL);
            if let Some(mid) = self.video {
                let periodic = self.last_keyframe.is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_INTERVAL);
                let time = MediaTime::new(u64::from(self.video_number) * 4500, Frequency::NINETY_KHZ);
                let mut written = false;
                if self.simulcast {
                    for (i, (rid, size)) in LAYERS.iter().enumerate() {
                        let keyframe = periodic || self.layer_keyframe[i];
                        let data = frames::video_frame(&self.name, self.video_number, keyframe, if keyframe { size + 100 } else { *size });
                        if self.write_rid(mid, Some(Rid::from(*rid)), now, time, data) {
                            written = true;
                            self.layer_keyframe[i] &= !keyframe;
                        }
                    }
                } else {
                    let keyframe = periodic || self.force_keyframe;
                    let size = if keyframe { self.video_frame_bytes * 10 / 3 } else { self.video_frame_bytes };
                    let data = frames::video_frame(&self.name, self.video_number, keyframe, size);
                    written = self.write(mid, now, time, data);
                    if written && keyframe {
                        self.force_keyframe = false;
                        self.last_keyframe = Some(now);
                    }
                }
                if written {
                    self.video_number += 1;
                    if periodic {
                        self.last_keyframe = Some(now);
                    }
                }
            }
        }
    }

    fn write(&mut self, mid: Mid, now: Instant, time: MediaTime, data: Vec<u8>) -> bool {
        self.write_rid(mid, None, now, time, data)
    }

    fn write_rid(&mut self, mid: Mid, rid: Option<Rid>, now: Instant, time: MediaTime, data: Vec<u8>) -> bool {
        let Some(writer) = self.rtc.writer(mid) else { return false };
        let Some(pt) = writer.payload_params().next().map(|p| p.pt()) else { return false };
        let writer = match rid {
            Some(rid) => writer.rid(rid),
            None => writer,
        };
        let writer = match self.audio_level {
            Some(level) if Some(mid) == self.audio => writer.audio_level(level, level > -60),
            _ => writer,
        };
        writer.write(pt, now, time, data).is_ok()
    }

    /// Drain the peer connection: datagrams to send; records received media and state.
    pub fn poll(&mut self, now: Instant, transmits: &mut Vec<(SocketAddr, SocketAddr, Vec<u8>)>) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => transmits.push((t.source, t.destination, t.contents.into())),
                Ok(Output::Event(e)) => self.on_event(now, e),
                Err(_) => return,
            }
        }
    }

    fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                self.next_audio = Some(now);
                self.next_video = Some(now);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => self.connected = false,
            Event::ChannelOpen(id, label) => {
                self.channels.insert(label, id);
            }
            Event::ChannelData(d) => {
                if let Some((label, _)) = self.channels.iter().find(|(_, c)| **c == d.id) {
                    self.data.push((label.clone(), d.data));
                }
            }
            Event::MediaData(data) => {
                let entry = self.received.entry(data.mid.to_string()).or_default();
                if !data.contiguous {
                    entry.discontinuities += 1;
                }
                if let Some(tag) = frames::read_tag(&data.data) {
                    entry.frames.push(tag);
                }
            }
            Event::KeyframeRequest(req) => {
                self.keyframe_requests += 1;
                self.force_keyframe = true;
                match req.rid.and_then(|rid| LAYERS.iter().position(|(r, _)| **r == *rid)) {
                    Some(i) => self.layer_keyframe[i] = true,
                    None => self.layer_keyframe = [true; 3],
                }
            }
            Event::RtpPacket(p) => {
                // Repaired packets may come with their RTX stream's SSRC.
                let ssrc = p.header.ssrc;
                let mut api = self.rtc.direct_api();
                let mid = api.stream_rx(&ssrc).map(|s| s.mid()).or(p.header.ext_vals.mid);
                let Some(mid) = mid else { return };
                let d = sfu::vp8_descriptor(&p.payload);
                self.rtp.entry(mid.to_string()).or_default().push(RtpSeen {
                    seq: *p.seq_no,
                    timestamp: p.header.timestamp,
                    picture_id: d.and_then(|d| d.picture_id).map(|(id, _)| id),
                    tl0_pic_idx: d.and_then(|d| d.tl0_pic_idx),
                    keyframe: sfu::VideoCodec::Vp8.is_keyframe_start(&p.payload),
                });
            }
            _ => {}
        }
    }

    /// The next instant this peer needs attention at.
    pub fn next_deadline(&self) -> Instant {
        let mut t = self.timeout;
        if self.connected {
            for next in [self.next_audio, self.next_video].into_iter().flatten() {
                t = t.min(next);
            }
        }
        t
    }

    /// Frames received on the m-line that carries `publisher`'s track `track` (by the SFU's
    /// latest mid map).
    pub fn frames_from(&self, publisher: &ParticipantId, track: &str) -> Vec<FrameTag> {
        self.mid_map
            .iter()
            .filter(|(_, (p, t))| p == publisher && t == track)
            .filter_map(|(mid, _)| self.received.get(mid))
            .flat_map(|r| r.frames.iter().cloned())
            .collect()
    }
}
