//! The edge between the wire protocol (`signal`) and the SFU core (`sfu`): SFU messages become
//! JSON messages, client metadata becomes SFU values, and every error becomes a wire result in
//! one place ([`refusal`], [`removal`]).

use signal::{ErrorCode, ServerMessage, StreamActivity, TrackRef, PROTOCOL_VERSION};

/// The wire form of a message from the core.
pub(crate) fn server_message(signal: sfu::Signal) -> ServerMessage {
    match signal {
        sfu::Signal::Joined { room, mode, path: p, you, others } => ServerMessage::Joined {
            protocol: PROTOCOL_VERSION,
            room,
            mode: room_mode(mode),
            path: path(p),
            participant: participant(you),
            participants: others.into_iter().map(participant).collect(),
            ice_servers: Vec::new(),
            grants: signal::Grants::default(),
            reconnect_token: None,
            reconnected: false,
        },
        sfu::Signal::Reconnecting { participant, reconnecting: true } => ServerMessage::ParticipantReconnecting {
            participant: participant.to_string(),
        },
        sfu::Signal::Reconnecting { participant, reconnecting: false } => ServerMessage::ParticipantReconnected {
            participant: participant.to_string(),
        },
        sfu::Signal::ParticipantJoined(p) => ServerMessage::ParticipantJoined { participant: participant(p) },
        sfu::Signal::Path(p) => ServerMessage::Path { path: path(p) },
        sfu::Signal::Relayed { from, payload } => ServerMessage::Signal {
            from: from.to_string(),
            // The edge serialized it from a JSON object (ws.rs); an empty one if that ever fails.
            data: serde_json::from_str(&payload).unwrap_or_default(),
        },
        sfu::Signal::ParticipantLeft { participant, reason } => ServerMessage::ParticipantLeft {
            participant: participant.to_string(),
            reason: leave_reason(reason),
        },
        sfu::Signal::TrackPublished { participant, track: t } => ServerMessage::TrackPublished {
            participant: participant.to_string(),
            track: track(t),
        },
        sfu::Signal::TrackUnpublished { participant, track } => ServerMessage::TrackUnpublished {
            participant: participant.to_string(),
            track,
        },
        sfu::Signal::TrackMuted { participant, track, muted: true } => ServerMessage::TrackMuted {
            participant: participant.to_string(),
            track,
        },
        sfu::Signal::TrackMuted { participant, track, muted: false } => ServerMessage::TrackUnmuted {
            participant: participant.to_string(),
            track,
        },
        sfu::Signal::Offer { id, sdp, tracks } => ServerMessage::Offer {
            id,
            sdp,
            tracks: tracks
                .into_iter()
                .map(|(mid, p, t)| (mid, TrackRef { participant: p.to_string(), track: t }))
                .collect(),
        },
        sfu::Signal::Answer { sdp } => ServerMessage::Answer { sdp },
        sfu::Signal::StreamState { participant, track, active, layer, reason, estimate } => ServerMessage::StreamState {
            participant: participant.to_string(),
            track,
            state: if active { StreamActivity::Active } else { StreamActivity::Paused },
            layer,
            reason: reason.to_string(),
            estimate,
        },
        sfu::Signal::Layers { track, active } => ServerMessage::Layers { track, active },
        sfu::Signal::Speakers { active, speaking } => ServerMessage::Speakers {
            active: active.map(|p| p.to_string()),
            speaking: speaking.into_iter().map(|(p, level)| signal::Speaking { participant: p.to_string(), level }).collect(),
        },
    }
}

pub(crate) fn room_mode(mode: sfu::RoomMode) -> signal::RoomMode {
    match mode {
        sfu::RoomMode::Sfu => signal::RoomMode::Sfu,
        sfu::RoomMode::P2p => signal::RoomMode::P2p,
        sfu::RoomMode::Auto => signal::RoomMode::Auto,
    }
}

/// A room mode from the wire, for the core.
pub(crate) fn mode_of(mode: signal::RoomMode) -> sfu::RoomMode {
    match mode {
        signal::RoomMode::Sfu => sfu::RoomMode::Sfu,
        signal::RoomMode::P2p => sfu::RoomMode::P2p,
        signal::RoomMode::Auto => sfu::RoomMode::Auto,
    }
}

fn path(p: sfu::Path) -> signal::MediaPath {
    match p {
        sfu::Path::Sfu => signal::MediaPath::Sfu,
        sfu::Path::P2p => signal::MediaPath::P2p,
    }
}

pub(crate) fn participant(p: sfu::ParticipantInfo) -> signal::ParticipantInfo {
    signal::ParticipantInfo {
        id: p.id.to_string(),
        name: p.name,
        tracks: p.tracks.into_iter().map(track).collect(),
        reconnecting: p.reconnecting,
    }
}

pub(crate) fn track(t: sfu::TrackInfo) -> signal::TrackInfo {
    signal::TrackInfo {
        id: t.id,
        kind: match t.kind {
            sfu::Kind::Audio => signal::TrackKind::Audio,
            sfu::Kind::Video => signal::TrackKind::Video,
        },
        source: match t.source {
            sfu::Source::Camera => signal::TrackSource::Camera,
            sfu::Source::Microphone => signal::TrackSource::Microphone,
            sfu::Source::Screen => signal::TrackSource::Screen,
            sfu::Source::ScreenAudio => signal::TrackSource::ScreenAudio,
        },
        muted: t.muted,
    }
}

pub(crate) fn leave_reason(reason: sfu::LeaveReason) -> signal::LeaveReason {
    match reason {
        sfu::LeaveReason::Left => signal::LeaveReason::Left,
        sfu::LeaveReason::MediaFailed => signal::LeaveReason::MediaFailed,
        sfu::LeaveReason::Removed => signal::LeaveReason::Removed,
        // The others need not know a fault from a lost connection.
        sfu::LeaveReason::Disconnected | sfu::LeaveReason::Internal => signal::LeaveReason::Disconnected,
    }
}

/// Metadata a client declared with its offer, for the core.
pub(crate) fn track_meta(tracks: std::collections::BTreeMap<String, signal::PublishedTrackMeta>) -> Vec<(String, sfu::TrackMeta)> {
    tracks
        .into_iter()
        .map(|(mid, m)| {
            let source = m.source.map(|s| match s {
                signal::TrackSource::Camera => sfu::Source::Camera,
                signal::TrackSource::Microphone => sfu::Source::Microphone,
                signal::TrackSource::Screen => sfu::Source::Screen,
                signal::TrackSource::ScreenAudio => sfu::Source::ScreenAudio,
            });
            (mid, sfu::TrackMeta { source, muted: m.muted.unwrap_or(false) })
        })
        .collect()
}

/// The `error` message for a command the core refused.
pub(crate) fn refusal(request: &str, error: &sfu::Error) -> ServerMessage {
    let code = match error {
        sfu::Error::InvalidSdp(_) => ErrorCode::InvalidSdp,
        sfu::Error::StaleAnswer { .. } => ErrorCode::StaleAnswer,
        sfu::Error::InvalidCandidate(_) => ErrorCode::InvalidCandidate,
        sfu::Error::UnknownTrack(_) => ErrorCode::UnknownTrack,
        sfu::Error::NotAllowed(_) | sfu::Error::PeerToPeerRoom => ErrorCode::Forbidden,
        sfu::Error::NotInRoom(_) => ErrorCode::UnknownParticipant,
        _ => ErrorCode::Internal,
    };
    ServerMessage::error(code, error.to_string(), Some(request))
}

/// The `error` message for a participant the core removed, and the close code that follows it.
pub(crate) fn removal(reason: sfu::LeaveReason) -> (ServerMessage, u16) {
    let (code, message) = match reason {
        sfu::LeaveReason::MediaFailed => (ErrorCode::MediaFailed, "your media connection failed"),
        sfu::LeaveReason::Removed => (ErrorCode::Removed, "an administrator removed you from the room"),
        sfu::LeaveReason::Disconnected => (ErrorCode::TooSlow, "you did not read your messages fast enough"),
        sfu::LeaveReason::Left | sfu::LeaveReason::Internal => (ErrorCode::Internal, "the server hit a fault"),
    };
    (ServerMessage::error(code, message, None), crate::ws::CLOSE_REMOVED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mute_becomes_muted_or_unmuted() {
        let id = sfu::ParticipantId::new("P1");
        let m = server_message(sfu::Signal::TrackMuted { participant: id.clone(), track: "1".into(), muted: true });
        assert_eq!(m.to_json(), r#"{"type":"track_muted","participant":"P1","track":"1"}"#);
        let m = server_message(sfu::Signal::TrackMuted { participant: id, track: "1".into(), muted: false });
        assert_eq!(m.to_json(), r#"{"type":"track_unmuted","participant":"P1","track":"1"}"#);
    }

    #[test]
    fn errors_get_their_codes() {
        let e = refusal("answer", &sfu::Error::StaleAnswer { expected: Some(2), got: 1 });
        assert!(e.to_json().contains(r#""code":"stale_answer""#));
        assert!(e.to_json().contains(r#""request":"answer""#));
        let e = refusal("offer", &sfu::Error::InvalidSdp("x".into()));
        assert!(e.to_json().contains(r#""code":"invalid_sdp""#));
        let e = refusal("signal", &sfu::Error::NotInRoom("Px".into()));
        assert!(e.to_json().contains(r#""code":"unknown_participant""#));
        let (e, close) = removal(sfu::LeaveReason::MediaFailed);
        assert!(e.to_json().contains(r#""code":"media_failed""#));
        assert_eq!(close, 4002);
    }
}
