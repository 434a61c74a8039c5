//! One load-test participant: a WebSocket for signaling, a UDP socket and a str0m peer
//! connection in RTP mode, driven by one tokio task.
//!
//! It follows the client side of docs/protocol.md as a browser would (join, offer its sending
//! m-lines, answer every server offer, ignore a server offer while its own is outstanding,
//! ping every 10 s). A publisher writes paced synthetic RTP ([`super::probe`]): video frames at
//! the given rate and bitrate, split into packets of at most [`MAX_PAYLOAD`] bytes, a keyframe at
//! the start and on every keyframe request; Opus-sized audio every 20 ms. Every packet received
//! is recorded in [`StreamStats`] while the test measures.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use signal::{ClientMessage, ServerMessage};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

use super::probe::{Kind, StreamStats, Tag, audio_payload, vp8_payload};

/// Largest RTP payload a publisher writes (as browsers keep packets under a 1200-byte MTU).
pub(crate) const MAX_PAYLOAD: usize = 1100;
/// Audio: one 20 ms Opus frame of about 32 kbit/s.
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
const AUDIO_BYTES: usize = 80;
/// A keyframe is this many times a delta frame.
const KEYFRAME_FACTOR: usize = 4;
/// Keyframe requests closer together than this are served by one keyframe.
const MIN_KEYFRAME_GAP: Duration = Duration::from_millis(300);
const PING_EVERY: Duration = Duration::from_secs(10);

/// What a publisher sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Publish {
    pub(crate) audio: bool,
    /// Video bit/s and frames per second; `None`: no video.
    pub(crate) video: Option<(u64, u32)>,
}

/// Phases of a run, shared by all participants (it starts at 0: warming up, nothing counted).
pub(crate) const MEASURING: u8 = 1;
pub(crate) const STOPPING: u8 = 2;
/// The window has closed; packets sent in it that are still on their way are counted.
pub(crate) const DRAINING: u8 = 3;

/// Counters shared by all participants, read by the progress line.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) phase: AtomicU8,
    /// When measuring started, µs of the Unix clock: packets sent earlier are not counted.
    pub(crate) measure_from_us: AtomicU64,
    /// When measuring ended (0 while it goes on): packets sent later are not counted.
    pub(crate) measure_to_us: AtomicU64,
    pub(crate) joined: AtomicU64,
    pub(crate) connected: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// RTP packets written by publishers while measuring.
    pub(crate) sent: AtomicU64,
    /// Tagged RTP packets received while measuring.
    pub(crate) received: AtomicU64,
    pub(crate) keyframe_requests: AtomicU64,
    /// Streams (a publisher's audio or video at one receiver) that have delivered a packet.
    pub(crate) streams_flowing: AtomicU64,
}

/// What one participant brings back.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) stats: StreamStats,
    pub(crate) error: Option<String>,
}

/// One participant's settings.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) ws_url: String,
    pub(crate) room: String,
    pub(crate) name: String,
    pub(crate) index: u32,
    pub(crate) publish: Option<Publish>,
    /// The local address to bind media to (one the server can reach).
    pub(crate) local_ip: IpAddr,
    /// The access token to join with, for a server with API keys.
    pub(crate) token: Option<String>,
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Run one participant until the shared phase says stop.
pub(crate) async fn run(setup: Setup, shared: Arc<Shared>) -> Outcome {
    let mut stats = StreamStats::default();
    let error = match participate(&setup, &shared, &mut stats).await {
        Ok(()) => None,
        Err(e) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            Some(format!("{}: {e}", setup.name))
        }
    };
    Outcome { stats, error }
}

async fn participate(setup: &Setup, shared: &Shared, stats: &mut StreamStats) -> Result<(), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(setup.ws_url.as_str()).await.map_err(|e| format!("connect {}: {e}", setup.ws_url))?;
    let join = ClientMessage::Join(signal::Join { room: setup.room.clone(), name: setup.name.clone(), protocol: Some(1), token: setup.token.clone(), mode: None, reconnect: None });
    send(&mut ws, &join).await?;
    let socket = UdpSocket::bind(SocketAddr::new(setup.local_ip, 0)).await.map_err(|e| format!("udp bind: {e}"))?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let mut peer = Peer::new(Instant::now(), local, setup)?;
    let mut joined = false;
    let mut buf = vec![0u8; 2048];
    let mut next_ping = Instant::now() + PING_EVERY;
    loop {
        if shared.phase.load(Ordering::Relaxed) == STOPPING {
            let _ = send(&mut ws, &ClientMessage::Leave).await;
            let _ = ws.close(None).await;
            return Ok(());
        }
        let now = Instant::now();
        if now >= next_ping {
            next_ping = now + PING_EVERY;
            send(&mut ws, &ClientMessage::Ping(signal::Ping { id: None })).await?;
        }
        peer.tick(now, shared);
        peer.drain(&socket, shared, stats).await?;
        // Wake at the next deadline, and at least every 50 ms to notice the end of the run.
        let deadline = peer.next_deadline().min(next_ping).min(Instant::now() + Duration::from_millis(50));
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, from) = r.map_err(|e| format!("udp receive: {e}"))?;
                peer.receive(Instant::now(), from, &buf[..n]);
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(c))) => return Err(format!("server closed the socket: {c:?}")),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("websocket: {e}")),
                    None => return Err("server closed the socket".into()),
                };
                let msg = ServerMessage::from_json(&text).map_err(|e| format!("bad server message: {e}"))?;
                match msg {
                    ServerMessage::Joined { .. } if !joined => {
                        joined = true;
                        shared.joined.fetch_add(1, Ordering::Relaxed);
                        if let Some(offer) = peer.publish() {
                            send(&mut ws, &offer).await?;
                        }
                    }
                    ServerMessage::Error { code, message, .. } => return Err(format!("server error {code:?}: {message}")),
                    other => {
                        if let Some(reply) = peer.on_signal(other)? {
                            send(&mut ws, &reply).await?;
                        }
                    }
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

async fn send(ws: &mut Ws, msg: &ClientMessage) -> Result<(), String> {
    ws.send(Message::Text(msg.to_json().into())).await.map_err(|e| format!("websocket send: {e}"))
}

/// Microseconds of the Unix clock now.
pub(crate) fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The peer connection and the synthetic media of one participant.
struct Peer {
    rtc: Rtc,
    local: SocketAddr,
    index: u32,
    publish: Option<Publish>,
    pending: Option<SdpPendingOffer>,
    audio: Option<(Mid, u64)>,
    video: Option<(Mid, u64)>,
    next_audio: Option<Instant>,
    next_video: Option<Instant>,
    audio_number: u32,
    video_number: u32,
    frames: u32,
    keyframe_due: bool,
    last_keyframe: Option<Instant>,
    timeout: Instant,
    connected: bool,
    /// The streams (publisher, kind) this participant has received a packet of.
    flowing: HashSet<(u32, Kind)>,
}

impl Peer {
    fn new(now: Instant, local: SocketAddr, setup: &Setup) -> Result<Self, String> {
        let mut rtc = Rtc::builder().set_rtp_mode(true).build(now);
        let candidate = Candidate::host(local, "udp").map_err(|e| format!("candidate {local}: {e}"))?;
        rtc.add_local_candidate(candidate);
        Ok(Peer {
            rtc,
            local,
            index: setup.index,
            publish: setup.publish,
            pending: None,
            audio: None,
            video: None,
            next_audio: None,
            next_video: None,
            audio_number: 0,
            video_number: 0,
            frames: 0,
            keyframe_due: true,
            last_keyframe: None,
            timeout: now,
            connected: false,
            flowing: HashSet::new(),
        })
    }

    /// The offer of a publisher's sending m-lines (after `joined`).
    fn publish(&mut self) -> Option<ClientMessage> {
        let publish = self.publish?;
        let mut api = self.rtc.sdp_api();
        let audio = publish.audio.then(|| api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        let video = publish.video.map(|_| api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
        let (offer, pending) = api.apply()?;
        self.pending = Some(pending);
        self.audio = audio.map(|m| (m, 1000));
        self.video = video.map(|m| (m, 1000));
        Some(ClientMessage::Offer(signal::Offer { sdp: offer.to_sdp_string(), tracks: Default::default() }))
    }

    fn on_signal(&mut self, msg: ServerMessage) -> Result<Option<ClientMessage>, String> {
        match msg {
            ServerMessage::Offer { id, sdp, .. } => {
                if self.pending.is_some() {
                    // Impolite: our own offer wins; the server offers again.
                    return Ok(None);
                }
                // Take the DTLS client role, as browsers do when they answer.
                let sdp = sdp.replace("a=setup:actpass", "a=setup:passive");
                let offer = SdpOffer::from_sdp_string(&sdp).map_err(|e| format!("server offer: {e}"))?;
                let answer = self.rtc.sdp_api().accept_offer(offer).map_err(|e| format!("server offer: {e}"))?;
                Ok(Some(ClientMessage::Answer(signal::Answer { id, sdp: answer.to_sdp_string() })))
            }
            ServerMessage::Answer { sdp } => {
                let pending = self.pending.take().ok_or("an answer without an offer")?;
                let answer = SdpAnswer::from_sdp_string(&sdp).map_err(|e| format!("server answer: {e}"))?;
                self.rtc.sdp_api().accept_answer(pending, answer).map_err(|e| format!("server answer: {e}"))?;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn receive(&mut self, now: Instant, source: SocketAddr, contents: &[u8]) {
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, contents) else { return };
        let _ = self.rtc.handle_input(Input::Receive(now, receive));
    }

    fn next_deadline(&self) -> Instant {
        let mut t = self.timeout;
        if self.connected {
            for next in [self.next_audio, self.next_video].into_iter().flatten() {
                t = t.min(next);
            }
        }
        t
    }

    /// Feed the clock and write the media that is due.
    fn tick(&mut self, now: Instant, shared: &Shared) {
        let _ = self.rtc.handle_input(Input::Timeout(now));
        if !self.connected {
            return;
        }
        let measuring = shared.phase.load(Ordering::Relaxed) == MEASURING;
        let mut written = 0;
        while let Some(t) = self.next_audio.filter(|t| *t <= now) {
            self.next_audio = Some(t + AUDIO_INTERVAL);
            written += self.write_audio(now);
        }
        while let Some(t) = self.next_video.filter(|t| *t <= now) {
            let fps = self.publish.and_then(|p| p.video).map_or(30, |(_, fps)| fps.max(1));
            self.next_video = Some(t + Duration::from_secs(1) / fps);
            written += self.write_video_frame(now);
        }
        if measuring && written > 0 {
            shared.sent.fetch_add(written, Ordering::Relaxed);
        }
    }

    fn pt(&self, mid: Mid, codec: Codec) -> Option<Pt> {
        let media = self.rtc.media(mid)?;
        self.rtc
            .codec_config()
            .params()
            .iter()
            .filter(|p| p.spec().codec == codec)
            .map(|p| p.pt())
            .find(|pt| media.remote_pts().is_empty() || media.remote_pts().contains(pt))
    }

    fn write_audio(&mut self, now: Instant) -> u64 {
        let Some((mid, seq)) = self.audio else { return 0 };
        let Some(pt) = self.pt(mid, Codec::Opus) else { return 0 };
        let tag = Tag { publisher: self.index, kind: Kind::Audio, number: self.audio_number, sent_us: unix_us() };
        let time = self.audio_number.wrapping_mul(960);
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else { return 0 };
        tx.write_rtp(RtpWrite::new(pt, seq.into(), time, now, audio_payload(&tag, AUDIO_BYTES)).marker(true));
        self.audio = Some((mid, seq + 1));
        self.audio_number += 1;
        1
    }

    fn write_video_frame(&mut self, now: Instant) -> u64 {
        let Some((mid, mut seq)) = self.video else { return 0 };
        let Some((bitrate, fps)) = self.publish.and_then(|p| p.video) else { return 0 };
        let Some(pt) = self.pt(mid, Codec::Vp8) else { return 0 };
        let keyframe = self.keyframe_due;
        let delta_bytes = (bitrate / 8 / u64::from(fps.max(1))).max(100) as usize;
        let bytes = if keyframe { delta_bytes * KEYFRAME_FACTOR } else { delta_bytes };
        let packets = bytes.div_ceil(MAX_PAYLOAD);
        let size = bytes.div_ceil(packets);
        let time = (u64::from(self.frames) * 90_000 / u64::from(fps.max(1))) as u32;
        let picture_id = (self.frames & 0x7fff) as u16;
        let index = self.index;
        let first_number = self.video_number;
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else { return 0 };
        for i in 0..packets {
            let tag = Tag { publisher: index, kind: Kind::Video, number: first_number + i as u32, sent_us: unix_us() };
            let payload = vp8_payload(&tag, picture_id, i == 0, keyframe, size);
            tx.write_rtp(RtpWrite::new(pt, seq.into(), time, now, payload).marker(i + 1 == packets).nackable(true));
            seq += 1;
        }
        self.video = Some((mid, seq));
        self.video_number += packets as u32;
        self.frames += 1;
        if keyframe {
            self.keyframe_due = false;
            self.last_keyframe = Some(now);
        }
        packets as u64
    }

    /// Send what str0m has to send, and handle its events.
    async fn drain(&mut self, socket: &UdpSocket, shared: &Shared, stats: &mut StreamStats) -> Result<(), String> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return Ok(());
                }
                Ok(Output::Transmit(t)) => {
                    // A full socket buffer drops the datagram, as a network would.
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => self.on_event(e, shared, stats)?,
                Err(e) => return Err(format!("peer connection: {e}")),
            }
        }
    }

    fn on_event(&mut self, event: Event, shared: &Shared, stats: &mut StreamStats) -> Result<(), String> {
        match event {
            Event::Connected => {
                self.connected = true;
                shared.connected.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                self.next_audio = self.audio.map(|_| now);
                self.next_video = self.video.map(|_| now);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                return Err("ICE disconnected".into());
            }
            Event::KeyframeRequest(_) => {
                shared.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                if self.last_keyframe.is_none_or(|t| t.elapsed() >= MIN_KEYFRAME_GAP) {
                    self.keyframe_due = true;
                }
            }
            Event::RtpPacket(p) => {
                let Some(tag) = Tag::find(&p.payload) else { return Ok(()) };
                if self.flowing.insert((tag.publisher, tag.kind)) {
                    shared.streams_flowing.fetch_add(1, Ordering::Relaxed);
                }
                // Packets sent before measuring started are not counted.
                let phase = shared.phase.load(Ordering::Relaxed);
                let to = shared.measure_to_us.load(Ordering::Relaxed);
                if (phase == MEASURING || phase == DRAINING)
                    && tag.sent_us >= shared.measure_from_us.load(Ordering::Relaxed)
                    && (to == 0 || tag.sent_us < to)
                {
                    stats.record(tag, unix_us());
                    shared.received.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
        Ok(())
    }
}
