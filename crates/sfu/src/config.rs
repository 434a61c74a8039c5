//! Configuration of the SFU core.

use std::net::SocketAddr;
use std::time::Duration;

use str0m::RtcConfig;
use str0m::bwe::Bitrate;
use str0m::config::DtlsCert;

use crate::error::Error;

/// How the core is set up. `candidates` is the only field without a useful default.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The addresses advertised as ICE host candidates (UDP). Datagrams handed to the core must
    /// carry one of these as their destination.
    pub candidates: Vec<SocketAddr>,
    /// The addresses advertised as passive ICE-TCP host candidates (RFC 6544), for peers whose
    /// UDP is blocked; empty for none. Frames handed to [`crate::Sfu::handle_tcp_frame`] carry
    /// one of these as their destination.
    pub tcp_candidates: Vec<SocketAddr>,
    /// A participant whose media has not connected this long after its first completed
    /// offer/answer exchange is removed.
    pub ice_connect_timeout: Duration,
    /// A participant whose ICE has been disconnected this long is removed (str0m declares a
    /// disconnect after 15 s without consent checks).
    pub ice_disconnect_grace: Duration,
    /// Keyframe requests to one publisher's track are sent at most this often.
    pub keyframe_request_interval: Duration,
    /// Estimate each subscriber's downlink (TWCC) and choose layers, pause and resume video, and
    /// pace to fit it (the default). Off: no estimation, pacing or probing; every subscriber gets
    /// the best layer its tiles can use, as on a LAN that always has room, and the load test
    /// measures forwarding alone.
    pub congestion_control: bool,
}

impl SfuConfig {
    /// A configuration advertising `candidates`, with default timeouts.
    pub fn new(candidates: Vec<SocketAddr>) -> Self {
        SfuConfig {
            candidates,
            tcp_candidates: Vec::new(),
            ice_connect_timeout: Duration::from_secs(30),
            ice_disconnect_grace: Duration::from_secs(5),
            keyframe_request_interval: Duration::from_millis(250),
            congestion_control: true,
        }
    }

    /// The ICE host candidates every participant's `Rtc` gets: UDP, then passive TCP (str0m
    /// gives TCP a lower priority, so a peer that reaches both uses UDP).
    pub(crate) fn local_candidates(&self) -> Result<Vec<str0m::Candidate>, Error> {
        let udp = self.candidates.iter().map(|addr| (addr, str0m::Candidate::host(*addr, "udp")));
        let tcp = self.tcp_candidates.iter().map(|addr| {
            (addr, str0m::Candidate::builder().tcp().host(*addr).tcptype(str0m::net::TcpType::Passive).build())
        });
        udp.chain(tcp).map(|(addr, c)| c.map_err(|e| Error::InvalidLocalCandidate(*addr, e.to_string()))).collect()
    }

    /// The str0m configuration every participant's `Rtc` is built from: ICE-lite (the SFU has
    /// reachable addresses and answers checks only), RTP mode (packets are forwarded, not
    /// reassembled into frames), one DTLS certificate shared by all, and the codecs in order of
    /// preference (publishers send the first one they support).
    pub(crate) fn rtc_config(&self) -> Result<RtcConfig, Error> {
        let provider = str0m::crypto::from_feature_flags();
        let cert: DtlsCert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| Error::Engine("could not generate a DTLS certificate".into()))?;
        Ok(RtcConfig::new()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .set_dtls_cert(cert)
            // Per-subscriber bandwidth estimation from TWCC feedback, for layer selection.
            .enable_bwe(self.congestion_control.then(|| Bitrate::bps(crate::allocate::INITIAL_ESTIMATE)))
            // Peer stats carry the downlink's loss from TWCC feedback (over the last second),
            // which the allocator weighs beside the estimate.
            .set_stats_interval(Some(std::time::Duration::from_millis(250)))
            // Room for data messages to a participant that reads a little slower than others send.
            .set_sctp_max_buffered_amount(crate::data::MAX_BUFFERED)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_vp9(true)
            .enable_h264(true)
            .enable_av1(true))
    }
}
