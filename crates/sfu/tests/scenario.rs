//! Scenario tests: str0m peers and the SFU core in one process, on virtual time, through an
//! emulated network. No browser, no sockets.

use std::time::Duration;

use sfu::{Command, Event, LeaveReason, Signal};
use testkit::{NetemConfig, Probability, RandomLoss, Scenario};

fn perfect() -> NetemConfig {
    NetemConfig::new().latency(Duration::from_millis(10))
}

/// ada and bob in room "r", ada publishing audio and video (bob too if `bob_publishes`), with
/// media flowing for 2 s.
fn ada_and_bob(bob_publishes: bool) -> (Scenario, usize, usize) {
    let mut call = Scenario::new(perfect());
    let ada = call.join("ada", "r");
    let bob = call.join("bob", "r");
    call.publish(ada, true, true);
    if bob_publishes {
        call.publish(bob, true, true);
    }
    call.run_for(Duration::from_secs(2));
    (call, ada, bob)
}

/// Everyone in `peers` receives audio and video from every other one in `peers`.
fn all_receive_all(call: &Scenario, peers: &[usize], min_frames: usize) -> bool {
    peers.iter().all(|&r| {
        peers.iter().filter(|&&p| p != r).all(|&p| {
            call.video_frames(r, p) >= min_frames && call.audio_frames(r, p) >= min_frames
        })
    })
}

#[test]
fn three_publish_each_receives_the_others_and_a_leave_is_seen() {
    let mut call = Scenario::new(perfect());
    let peers: Vec<usize> = ["ada", "bob", "cyd"].iter().map(|n| call.join(n, "standup")).collect();
    for &p in &peers {
        call.publish(p, true, true);
    }
    let deadline = call.now + Duration::from_secs(5);
    assert!(
        call.run_until(deadline, |c| all_receive_all(c, &peers, 20)),
        "not everyone received everyone: {:?}",
        peers.iter().map(|&r| peers.iter().map(|&p| (call.video_frames(r, p), call.audio_frames(r, p))).collect::<Vec<_>>()).collect::<Vec<_>>()
    );
    assert!(call.errors.is_empty(), "{:?}", call.errors);

    // Every video stream a subscriber received starts with a keyframe, and frames of one
    // publisher arrive in order.
    for &r in &peers {
        for &p in peers.iter().filter(|&&p| p != r) {
            let (_, video) = call.peers[p].track_ids();
            let frames = call.peers[r].frames_from(&call.peers[p].id, &video.unwrap());
            assert!(frames[0].keyframe, "{} got {}'s video starting with a delta frame", r, p);
            assert!(frames.windows(2).all(|w| w[1].number > w[0].number));
            assert!(frames.iter().all(|f| f.publisher == call.peers[p].name));
        }
    }

    // cyd leaves: the others are told, and its media stops reaching them.
    let cyd = peers[2];
    let cyd_id = call.peers[cyd].id.clone();
    call.leave(cyd);
    call.run_for(Duration::from_millis(500));
    for &r in &peers[..2] {
        let signals = &call.peers[r].signals;
        let unpublished = signals
            .iter()
            .filter(|s| matches!(s, Signal::TrackUnpublished { participant, .. } if *participant == cyd_id))
            .count();
        assert_eq!(unpublished, 2, "peer {r} should see both of cyd's tracks go");
        assert!(signals.iter().any(|s| matches!(s,
            Signal::ParticipantLeft { participant, reason: LeaveReason::Left } if *participant == cyd_id)));
        // The SFU renegotiated: cyd's m-lines are no longer mapped.
        assert!(call.peers[r].mid_map.values().all(|(p, _)| *p != cyd_id));
    }
    let before: Vec<usize> = peers[..2].iter().map(|&r| call.peers[r].received.values().map(|x| x.frames.len()).sum()).collect();
    let from_cyd_before: Vec<usize> = peers[..2].iter().map(|&r| count_from(&call, r, "cyd")).collect();
    call.run_for(Duration::from_secs(2));
    for (k, &r) in peers[..2].iter().enumerate() {
        assert_eq!(count_from(&call, r, "cyd"), from_cyd_before[k], "cyd's media still arrives at {r}");
        let after: usize = call.peers[r].received.values().map(|x| x.frames.len()).sum();
        assert!(after > before[k] + 40, "ada and bob keep receiving each other");
    }
    assert_eq!(call.sfu.stats().participants, 2);
}

fn count_from(call: &Scenario, receiver: usize, publisher_name: &str) -> usize {
    call.peers[receiver]
        .received
        .values()
        .flat_map(|r| r.frames.iter())
        .filter(|f| f.publisher == publisher_name)
        .count()
}

#[test]
fn a_late_joiner_receives_existing_tracks_from_a_keyframe_at_once() {
    let mut call = Scenario::new(perfect());
    let ada = call.join("ada", "room");
    let bob = call.join("bob", "room");
    call.publish(ada, true, true);
    call.publish(bob, true, true);
    call.run_for(Duration::from_secs(4));

    let late = call.join("late", "room");
    let joined_at = call.now;
    // It publishes nothing: a receive-only participant.
    let deadline = call.now + Duration::from_secs(3);
    assert!(call.run_until(deadline, |c| c.video_frames(late, ada) > 0 && c.video_frames(late, bob) > 0));
    let waited = call.now - joined_at;
    // Keyframes come every 3 s on their own; the SFU's request must make it much faster.
    assert!(waited < Duration::from_millis(500), "first video after {waited:?}");
    for p in [ada, bob] {
        let (_, video) = call.peers[p].track_ids();
        let frames = call.peers[late].frames_from(&call.peers[p].id, &video.unwrap());
        assert!(frames[0].keyframe);
    }
    // The joined message listed both, with their tracks.
    let Some(Signal::Joined { others, .. }) = call.peers[late].signals.first() else {
        panic!("first signal is not joined");
    };
    assert_eq!(others.len(), 2);
    assert!(others.iter().all(|o| o.tracks.len() == 2));
}

#[test]
fn simultaneous_offers_never_lose_a_track() {
    // ada and bob join and publish at the same instant: the SFU's offers to each (carrying the
    // other's tracks) cross their own offers. Both collisions must resolve with all media flowing.
    for latency_ms in [0, 5, 30] {
        let mut call = Scenario::new(NetemConfig::new().latency(Duration::from_millis(latency_ms)));
        call.set_signal_delay(Duration::from_millis(latency_ms));
        let ada = call.join("ada", "r");
        call.publish(ada, true, true);
        let bob = call.join("bob", "r");
        call.publish(bob, true, true);
        let cyd = call.join("cyd", "r");
        call.publish(cyd, true, true);
        let deadline = call.now + Duration::from_secs(5);
        let peers = [ada, bob, cyd];
        assert!(call.run_until(deadline, |c| all_receive_all(c, &peers, 5)), "latency {latency_ms} ms");
        assert!(call.errors.is_empty(), "{:?}", call.errors);
    }
}

#[test]
fn a_collision_is_resolved_by_the_sfu_rolling_back() {
    let mut call = Scenario::new(perfect());
    call.set_signal_delay(Duration::from_millis(20));
    let ada = call.join("ada", "r");
    call.publish(ada, true, true);
    call.run_for(Duration::from_secs(1));
    // bob joins: the SFU offers him ada's tracks right away; bob offers his own before he has
    // seen that offer, so he ignores it (impolite) and the SFU must roll back and offer again.
    let bob = call.join("bob", "r");
    call.publish(bob, true, true);
    let deadline = call.now + Duration::from_secs(3);
    assert!(call.run_until(deadline, |c| all_receive_all(c, &[ada, bob], 5)));
    assert!(call.peers[bob].ignored_offers >= 1, "the collision did not happen");
    let offers: Vec<u64> = call.peers[bob]
        .signals
        .iter()
        .filter_map(|s| match s {
            Signal::Offer { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert!(offers.len() >= 2 && offers.windows(2).all(|w| w[1] > w[0]), "offer ids {offers:?}");
}

#[test]
fn stale_and_bad_answers_are_refused_without_harm() {
    let (mut call, ada, bob) = ada_and_bob(true);
    let id = call.peers[ada].id.clone();
    call.command(ada, Command::Answer { participant: id.clone(), id: 999, sdp: "v=0".into() });
    call.command(ada, Command::Offer { participant: id.clone(), sdp: "garbage".into(), tracks: vec![] });
    call.command(ada, Command::Candidate { participant: id.clone(), candidate: "candidate:x".into() });
    call.command(ada, Command::Mute { participant: id, track: "nope".into(), muted: true });
    let kinds: Vec<String> = call.errors.iter().map(|(_, e)| format!("{e:?}")).collect();
    assert!(matches!(call.errors[0].1, sfu::Error::StaleAnswer { got: 999, .. }), "{kinds:?}");
    assert!(matches!(call.errors[1].1, sfu::Error::InvalidSdp(_)), "{kinds:?}");
    assert!(matches!(call.errors[2].1, sfu::Error::InvalidCandidate(_)), "{kinds:?}");
    assert!(matches!(call.errors[3].1, sfu::Error::UnknownTrack(_)), "{kinds:?}");
    let before = call.video_frames(bob, ada);
    call.run_for(Duration::from_secs(1));
    assert!(call.video_frames(bob, ada) > before + 10, "media keeps flowing");
}

#[test]
fn loss_is_repaired_by_nack_and_rtx() {
    let lossy = NetemConfig::new()
        .latency(Duration::from_millis(20))
        .loss(RandomLoss::new(Probability::new(0.05)));
    let mut call = Scenario::new(lossy);
    let ada = call.join("ada", "r");
    let bob = call.join("bob", "r");
    call.publish(ada, false, true);
    call.run_for(Duration::from_secs(10));
    let (_, video) = call.peers[ada].track_ids();
    let frames = call.peers[bob].frames_from(&call.peers[ada].id, &video.unwrap());
    // 20 fps for ~10 s minus connection setup. With 5 % loss on every hop about 10 % of the
    // frames (1-5 packets each) lose a packet; NACK/RTX must repair all but the rare frame whose
    // packet and retransmissions were all lost: at most 2 % may be missing for good. (1 % failed
    // one CI run in about ten with 2 frames of 190: which packets the seeded loss hits depends on
    // str0m's random SSRCs and credentials, so the count varies from run to run.)
    assert!(frames.len() > 150, "only {} frames", frames.len());
    let first = frames[0].number;
    let last = frames[frames.len() - 1].number;
    let missing: Vec<u32> = (first..=last).filter(|n| !frames.iter().any(|f| f.number == *n)).collect();
    assert!(missing.len() * 50 <= frames.len(), "frames lost for good: {missing:?} of {}", frames.len());
    // Both hops lost packets: the SFU asked ada again and answered bob's NACKs (the counters the
    // metrics show).
    let stats = call.sfu.stats();
    assert!(stats.nacks_sent > 0 && stats.nacks_received > 0, "{stats:?}");
}

#[test]
fn mute_stops_forwarding_and_unmute_resumes_on_a_keyframe() {
    let (mut call, ada, bob) = ada_and_bob(false);
    let (_, video) = call.peers[ada].track_ids();
    let video = video.unwrap();
    let id = call.peers[ada].id.clone();
    call.command(ada, Command::Mute { participant: id.clone(), track: video.clone(), muted: true });
    call.run_for(Duration::from_millis(200));
    assert!(call.peers[bob].signals.iter().any(|s| matches!(s, Signal::TrackMuted { muted: true, track, .. } if *track == video)));
    let muted_count = call.video_frames(bob, ada);
    call.run_for(Duration::from_secs(2));
    assert_eq!(call.video_frames(bob, ada), muted_count, "video forwarded while muted");

    call.command(ada, Command::Mute { participant: id, track: video.clone(), muted: false });
    call.run_for(Duration::from_secs(1));
    let frames = call.peers[bob].frames_from(&call.peers[ada].id, &video);
    assert!(frames.len() > muted_count + 10, "video did not resume");
    assert!(frames[muted_count].keyframe, "resumed on a delta frame");
    assert!(call.peers[bob].signals.iter().any(|s| matches!(s, Signal::TrackMuted { muted: false, .. })));
}

#[test]
fn a_silent_participant_is_removed_and_its_room_told() {
    let (mut call, ada, bob) = ada_and_bob(true);
    call.cut(bob);
    let bob_id = call.peers[bob].id.clone();
    let deadline = call.now + Duration::from_secs(30);
    assert!(call.run_until(deadline, |c| c.peers[ada].signals.iter().any(|s| matches!(s,
        Signal::ParticipantLeft { participant, reason: LeaveReason::MediaFailed } if *participant == bob_id))));
    assert!(call.events.iter().any(|e| matches!(e, Event::Removed { participant, .. } if *participant == bob_id)));
    assert_eq!(call.sfu.stats().participants, 1);
}

#[test]
fn a_participant_that_never_connects_is_removed() {
    let mut call = Scenario::new(perfect());
    let ada = call.join("ada", "r");
    // Negotiates, then never sends a datagram.
    call.cut(ada);
    call.publish(ada, true, true);
    call.run_for(Duration::from_secs(40));
    assert!(call.events.iter().any(|e| matches!(e, Event::Removed { reason: LeaveReason::MediaFailed, .. })));
    assert!(call.events.iter().any(|e| matches!(e, Event::RoomClosed { room } if room == "r")));
    assert_eq!(call.sfu.stats().rooms, 0);
}

#[test]
fn unpublishing_a_track_removes_it_for_everyone() {
    let (mut call, ada, bob) = ada_and_bob(false);
    let (_, video) = call.peers[ada].track_ids();
    call.unpublish_video(ada);
    call.run_for(Duration::from_secs(1));
    let video = video.unwrap();
    assert!(call.peers[bob].signals.iter().any(|s| matches!(s, Signal::TrackUnpublished { track, .. } if *track == video)));
    assert!(call.peers[bob].mid_map.values().all(|(_, t)| *t != video));
    assert!(call.audio_frames(bob, ada) > 0);
}

#[test]
fn garbage_datagrams_are_dropped_and_counted() {
    let (mut call, ada, bob) = ada_and_bob(false);
    let now = call.now;
    let sfu_addr = testkit::SFU_ADDR.parse().unwrap();
    let ada_addr = call.peers[ada].addr;
    let stranger = "203.0.113.9:4444".parse().unwrap();
    let garbage: [&[u8]; 5] = [&[], &[0xff; 40], &[0x00, 0x01, 0x00], &[0x80; 12], &[0x16; 100]];
    for g in garbage {
        call.sfu.handle_datagram(now, stranger, sfu_addr, g);
        // From a known address, too: str0m must shrug it off.
        call.sfu.handle_datagram(now, ada_addr, sfu_addr, g);
    }
    let stats = call.sfu.stats().clone();
    assert!(stats.datagrams_unrouted >= 5, "{stats:?}");
    assert!(stats.datagrams_malformed >= 1, "{stats:?}");
    let before = call.video_frames(bob, ada);
    call.run_for(Duration::from_secs(1));
    assert!(call.video_frames(bob, ada) > before + 10, "the call goes on");
}

/// Acceptance 8 (server side): the subscriber's tile alternates between small and large, so the
/// SFU switches its layer of a simulcast camera again and again. What leaves the SFU stays one
/// continuous stream: contiguous sequence numbers and timestamps that only move forward, frame
/// after frame. (str0m's VP8 packetizer writes no PictureID, so PictureID/TL0PICIDX continuity
/// is asserted packet by packet on realistic simulcast sources in `sfu::forward`'s tests.)
#[test]
#[ignore = "open: the str0m test publisher's simulcast layers lose whole frames upstream (every \
            other frame for seconds at a time, never repaired), so egress gaps cannot yet be told \
            from SFU gaps; see the issue 9 note"]
fn forced_layer_switches_keep_the_egress_one_continuous_stream() {
    let mut call = Scenario::new(perfect());
    let ada = call.join("ada", "r");
    let bob = call.join_rtp("bob", "r");
    call.peers[ada].simulcast = true;
    call.publish(ada, true, true);
    call.run_for(Duration::from_secs(8));
    let (_, video) = call.peers[ada].track_ids();
    let video = video.unwrap();
    let (ada_id, bob_id) = (call.peers[ada].id.clone(), call.peers[bob].id.clone());
    let layers_seen = |call: &Scenario| -> Vec<Option<String>> {
        call.peers[bob]
            .signals
            .iter()
            .filter_map(|s| match s {
                Signal::StreamState { layer, active: true, .. } => Some(layer.clone()),
                _ => None,
            })
            .collect()
    };
    let before = layers_seen(&call).len();
    for i in 0..24 {
        let (width, height) = if i % 2 == 0 { (320, 180) } else { (1280, 720) };
        let subscription = Command::Subscription {
            participant: bob_id.clone(),
            publisher: ada_id.clone(),
            track: video.clone(),
            width,
            height,
        };
        call.command(bob, subscription);
        call.run_for(Duration::from_millis(1500));
    }
    let states = layers_seen(&call);
    let switches = states.len() - before;
    assert!(switches >= 20, "only {switches} switches: {states:?}");
    assert!(states.iter().any(|l| l.as_deref() == Some("q")) && states.iter().any(|l| l.as_deref() != Some("q")));

    let mid = call.peers[bob].mid_map.iter().find(|(_, (p, t))| *p == ada_id && *t == video).map(|(m, _)| m.clone());
    let rtp = &call.peers[bob].rtp[&mid.unwrap()];
    assert!(rtp.len() > 600, "{} packets", rtp.len());
    // Sequence numbers never repeat or go back, and a gap is a packet that went missing on the
    // way (it happens here to about one packet in a thousand, switches or not: the SFU's own
    // numbering is checked packet by packet in `sfu::forward`'s tests), never the SFU skipping
    // what it dropped on purpose, which would leave a gap at every switch.
    let mut frames = 0;
    let mut gaps = 0;
    for w in rtp.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert!(b.seq > a.seq, "sequence went back: {a:?} -> {b:?}");
        if b.seq != a.seq + 1 {
            gaps += 1;
        }
        let dt = b.timestamp.wrapping_sub(a.timestamp) as i32;
        assert!(dt >= 0, "timestamp went back: {a:?} -> {b:?}");
        assert!(dt < 90_000, "timestamp jumped: {a:?} -> {b:?}");
        if dt > 0 {
            frames += 1;
        }
    }
    assert!(gaps * 100 < switches, "{gaps} gaps in {} packets over {switches} switches: {:?}", rtp.len(), rtp.windows(2).filter(|w| w[1].seq != w[0].seq + 1).take(30).map(|w| (w[0].seq, w[1].seq, w[1].timestamp.wrapping_sub(w[0].timestamp))).collect::<Vec<_>>());
    assert!(frames > 500, "{frames} frames");
}

/// Frames of `name` that peer `r` received: (video, audio), told apart by their m-lines' kind
/// (the viewer's own offer put video first).
fn viewer_frames(call: &Scenario, r: usize, name: &str) -> (usize, usize) {
    let peer = &call.peers[r];
    let mut video = 0;
    let mut audio = 0;
    for (mid, received) in &peer.received {
        let n = received.frames.iter().filter(|f| f.publisher == name).count();
        let kind = peer.rtc.media(mid.as_str().into()).map(|m| m.kind());
        match kind {
            Some(str0m::media::MediaKind::Video) => video += n,
            Some(str0m::media::MediaKind::Audio) => audio += n,
            None => {}
        }
    }
    (video, audio)
}

#[test]
fn a_publish_only_participant_is_seen_and_heard_and_receives_nothing() {
    let mut call = Scenario::new(perfect());
    let whip = call.join_as("whip", "r", sfu::Role::Publisher);
    let bob = call.join("bob", "r");
    call.publish(whip, true, true);
    call.publish(bob, true, true);
    let deadline = call.now + Duration::from_secs(5);
    assert!(call.run_until(deadline, |c| c.video_frames(bob, whip) >= 20 && c.audio_frames(bob, whip) >= 20));
    call.run_for(Duration::from_secs(1));
    // The WHIP side never gets an offer, nor bob's media.
    assert!(!call.peers[whip].signals.iter().any(|s| matches!(s, Signal::Offer { .. })));
    assert_eq!(call.peers[whip].frames_of("bob").len(), 0);
    assert!(call.errors.is_empty(), "{:?}", call.errors);
    // bob was told of the WHIP publisher (once its offer was accepted); one whose offer is
    // refused is never shown.
    let joined = |call: &Scenario, name: &str| {
        call.peers[bob].signals.iter().filter(|s| matches!(s, Signal::ParticipantJoined(p) if p.name == name)).count()
    };
    assert_eq!(joined(&call, "whip"), 1);
    let ghost = call.join_as("ghost", "r", sfu::Role::Publisher);
    let id = call.peers[ghost].id.clone();
    call.command(ghost, Command::Offer { participant: id.clone(), sdp: "v=0\r\nnot sdp".into(), tracks: Vec::new() });
    call.command(ghost, Command::Leave { participant: id, reason: LeaveReason::Left });
    call.run_for(Duration::from_millis(200));
    assert_eq!(joined(&call, "ghost"), 0);
    assert!(!call.peers[bob].signals.iter().any(|s| matches!(s, Signal::ParticipantLeft { participant, .. } if participant.as_str().contains("ghost"))));
}

#[test]
fn a_viewer_gets_the_earliest_publisher_then_the_next_when_it_leaves() {
    let mut call = Scenario::new(perfect());
    let ada = call.join("ada", "r");
    call.publish(ada, true, true);
    // A viewer of a room with no publisher is refused.
    let early = call.join_as("early", "empty", sfu::Role::Viewer(None));
    assert!(call.errors.iter().any(|(i, e)| *i == early && *e == sfu::Error::NoPublisher), "{:?}", call.errors);
    call.errors.clear();
    call.run_for(Duration::from_secs(1));
    let bob = call.join("bob", "r");
    call.publish(bob, true, true);
    let viewer = call.join_as("viewer", "r", sfu::Role::Viewer(None));
    call.watch(viewer);
    let deadline = call.now + Duration::from_secs(5);
    assert!(call.run_until(deadline, |c| viewer_frames(c, viewer, "ada").0 >= 20 && viewer_frames(c, viewer, "ada").1 >= 20));
    assert_eq!(viewer_frames(&call, viewer, "bob"), (0, 0), "only the earliest publisher");
    // Its first video frame is a keyframe (one was asked for).
    let peer = &call.peers[viewer];
    let video_mid = peer.received.keys().find(|m| peer.rtc.media(m.as_str().into()).is_some_and(|m| m.kind() == str0m::media::MediaKind::Video));
    let first = video_mid.and_then(|m| peer.received[m].frames.first());
    assert!(first.is_some_and(|f| f.keyframe && f.publisher == "ada"), "{first:?}");
    // Nobody in the room is told about the viewer.
    assert!(!call.peers[ada].signals.iter().any(|s| matches!(s, Signal::ParticipantJoined(p) if p.name == "viewer")));

    // ada leaves: bob, on the same m-lines.
    call.leave(ada);
    let deadline = call.now + Duration::from_secs(5);
    assert!(call.run_until(deadline, |c| viewer_frames(c, viewer, "bob").0 >= 20 && viewer_frames(c, viewer, "bob").1 >= 20));
    assert_eq!(call.peers[viewer].received.len(), 2, "two m-lines, no renegotiation");
    assert!(!call.peers[viewer].signals.iter().any(|s| matches!(s, Signal::Offer { .. })));
    assert!(call.errors.is_empty(), "{:?}", call.errors);
}

#[test]
fn a_viewer_of_one_participant_gets_that_one() {
    let mut call = Scenario::new(perfect());
    let ada = call.join("ada", "r");
    let bob = call.join("bob", "r");
    call.publish(ada, true, true);
    call.publish(bob, true, true);
    call.run_for(Duration::from_secs(1));
    let bob_id = call.peers[bob].id.clone();
    let viewer = call.join_as("viewer", "r", sfu::Role::Viewer(Some(bob_id)));
    call.watch(viewer);
    let deadline = call.now + Duration::from_secs(5);
    assert!(call.run_until(deadline, |c| viewer_frames(c, viewer, "bob").0 >= 20));
    assert_eq!(viewer_frames(&call, viewer, "ada"), (0, 0));
    let _ = ada;
    let nobody = call.join_as("nobody", "r", sfu::Role::Viewer(Some(sfu::ParticipantId::new("Pnope"))));
    assert!(call.errors.iter().any(|(i, e)| *i == nobody && *e == sfu::Error::NoPublisher), "{:?}", call.errors);
}

#[test]
fn grants_keep_media_from_a_participant_without_publish_and_from_one_without_subscribe() {
    let mut call = Scenario::new(perfect());
    let ada = call.join("ada", "r");
    // An access token without canPublish: its offer is answered and refused, and its media
    // reaches nobody; it still receives.
    let quiet = call.join_granted("quiet", "r", sfu::Grants { publish: false, subscribe: true, publish_data: true });
    // One without canSubscribe: offered nothing; what it publishes reaches the others.
    let deaf = call.join_granted("deaf", "r", sfu::Grants { publish: true, subscribe: false, publish_data: true });
    call.publish(ada, true, true);
    call.publish(quiet, true, true);
    call.publish(deaf, true, true);
    call.run_for(Duration::from_secs(3));

    assert!(call.errors.iter().any(|(i, e)| *i == quiet && matches!(e, sfu::Error::NotAllowed(_))), "{:?}", call.errors);
    assert!(call.errors.iter().all(|(i, _)| *i == quiet), "{:?}", call.errors);
    // quiet receives ada and deaf, and nobody receives quiet.
    assert!(call.video_frames(quiet, ada) > 20 && call.audio_frames(quiet, deaf) > 20);
    assert_eq!(count_from(&call, ada, "quiet"), 0);
    assert_eq!(count_from(&call, deaf, "quiet"), 0);
    let quiet_id = call.peers[quiet].id.clone();
    assert!(!call.peers[ada].signals.iter().any(|s| matches!(s, Signal::TrackPublished { participant, .. } if *participant == quiet_id)));
    // deaf is offered nothing, and is heard and seen by ada.
    assert!(call.peers[deaf].mid_map.is_empty(), "{:?}", call.peers[deaf].mid_map);
    assert_eq!(call.peers[deaf].received.values().map(|r| r.frames.len()).sum::<usize>(), 0);
    assert!(call.video_frames(ada, deaf) > 20 && call.audio_frames(ada, deaf) > 20);
}

/// The last `speakers` message peer `i` received: (active, speaking).
fn last_speakers(call: &Scenario, i: usize) -> Option<(Option<String>, Vec<String>)> {
    call.peers[i].signals.iter().rev().find_map(|s| match s {
        Signal::Speakers { active, speaking } => {
            Some((active.as_ref().map(|p| p.to_string()), speaking.iter().map(|(p, _)| p.to_string()).collect()))
        }
        _ => None,
    })
}

#[test]
fn the_active_speaker_follows_the_one_loud_participant() {
    let mut call = Scenario::new(perfect());
    let peers = [call.join("ada", "r"), call.join("bob", "r"), call.join("cy", "r")];
    let [ada, bob, cy] = peers;
    for &p in &peers {
        call.peers[p].audio_level = Some(-100);
        call.publish(p, true, true);
    }
    call.peers[ada].audio_level = Some(-20);
    call.run_for(Duration::from_secs(3));
    let (ada_id, bob_id) = (call.peers[ada].id.to_string(), call.peers[bob].id.to_string());
    for &p in &peers {
        assert_eq!(last_speakers(&call, p), Some((Some(ada_id.clone()), vec![ada_id.clone()])), "peer {p}");
    }
    // ada falls silent, bob speaks: bob takes over within her turn's end plus a tick.
    call.peers[ada].audio_level = Some(-100);
    call.peers[bob].audio_level = Some(-25);
    call.run_for(Duration::from_secs(3));
    for &p in &peers {
        assert_eq!(last_speakers(&call, p), Some((Some(bob_id.clone()), vec![bob_id.clone()])), "peer {p}");
    }
    // A muted speaker is not speaking, however loud.
    let track = call.peers[bob].track_ids().0.expect("bob's audio track");
    call.command(bob, Command::Mute { participant: call.peers[bob].id.clone(), track, muted: true });
    call.run_for(Duration::from_secs(1));
    assert_eq!(last_speakers(&call, cy), Some((Some(bob_id.clone()), vec![])), "bob stays the last speaker, not speaking");
    // Without the extension, nobody ever speaks (no message at all).
    let mut quiet = Scenario::new(perfect());
    let a = quiet.join("a", "q");
    let b = quiet.join("b", "q");
    quiet.publish(a, true, false);
    quiet.publish(b, true, false);
    quiet.run_for(Duration::from_secs(2));
    assert_eq!(last_speakers(&quiet, a), None);
}

#[test]
fn media_comes_back_after_a_network_change_and_an_ice_restart() {
    let (mut call, ada, bob) = ada_and_bob(true);
    assert!(all_receive_all(&call, &[ada, bob], 20), "media flows before the move");
    // Each in turn moves to a new address: what it sent from the old one is lost, and without
    // the restart nothing would reach it at the new one.
    for mover in [ada, bob] {
        let before = (call.video_frames(bob, ada), call.video_frames(ada, bob));
        call.move_peer(mover);
        let back = call.run_until(call.now + Duration::from_secs(2), |c| {
            c.video_frames(bob, ada) >= before.0 + 10 && c.video_frames(ada, bob) >= before.1 + 10
        });
        assert!(back, "media did not come back within 2 s of {mover}'s move: {before:?} -> {:?}", (call.video_frames(bob, ada), call.video_frames(ada, bob)));
        assert!(call.errors.is_empty(), "{:?}", call.errors);
    }
    // Both stay in the room through a few more seconds (no media timeout from the old address).
    call.run_for(Duration::from_secs(25));
    assert!(!call.events.iter().any(|e| matches!(e, Event::Removed { .. })), "{:?}", call.events);
    let before = call.video_frames(bob, ada);
    call.run_for(Duration::from_secs(1));
    assert!(call.video_frames(bob, ada) > before + 10);
}
