//! Peer-to-peer rooms against a real `confab` (docs/protocol.md, "Peer-to-peer rooms"): `signal`
//! messages reach the participant they name, in the same room only; a mesh refuses one more than
//! `--mesh-max`; a p2p room's media offers are refused and nothing is forwarded; an auto room
//! tells its members when its path changes; WHIP and WHEP cannot enter a p2p room.

use std::time::{Duration, Instant};

use sfu::ParticipantId;
use testkit::{Peer, ToSfu};

mod common;

use common::ws::{Ws, any_of, connect, next_of, send};

/// Join `room` as `name` (asking for `mode` when given): the `joined` message, or the error.
async fn join(base: &str, room: &str, name: &str, mode: Option<&str>) -> (Ws, serde_json::Value) {
    let mut ws = connect(base).await;
    let mut msg = serde_json::json!({"type": "join", "room": room, "name": name});
    if let Some(mode) = mode {
        msg["mode"] = mode.into();
    }
    send(&mut ws, msg).await;
    let reply = next_of(&mut ws, &["joined", "error"]).await;
    (ws, reply)
}

fn id(joined: &serde_json::Value) -> String {
    joined["participant"]["id"].as_str().unwrap_or_else(|| panic!("not joined: {joined}")).to_string()
}

#[tokio::test]
async fn signals_reach_the_named_participant_of_the_same_room_only() {
    let (_server, _out, base) = common::server(&[]);
    let (mut ada, joined) = join(&base, "mesh", "Ada", Some("p2p")).await;
    assert_eq!((joined["mode"].as_str(), joined["path"].as_str()), (Some("p2p"), Some("p2p")), "{joined}");
    let ada_id = id(&joined);
    // A later join asking for another mode gets the room's.
    let (mut bob, joined) = join(&base, "mesh", "Bob", Some("sfu")).await;
    assert_eq!(joined["mode"], "p2p", "{joined}");
    let bob_id = id(&joined);
    let (mut eve, joined) = join(&base, "elsewhere", "Eve", None).await;
    assert_eq!((joined["mode"].as_str(), joined["path"].as_str()), (Some("sfu"), Some("sfu")), "{joined}");
    let eve_id = id(&joined);

    let data = serde_json::json!({"description": {"type": "offer", "sdp": "v=0\r\n"}, "tracks": {"0": {"source": "camera"}}});
    send(&mut ada, serde_json::json!({"type": "signal", "to": bob_id, "data": data})).await;
    let got = next_of(&mut bob, &["signal"]).await;
    assert_eq!(got, serde_json::json!({"type": "signal", "from": ada_id, "data": data}));

    // To a participant of another room, to oneself, to nobody: refused, and nothing arrives.
    for to in [&eve_id, &ada_id, &"Pnobody".to_string()] {
        send(&mut ada, serde_json::json!({"type": "signal", "to": to, "data": {"bye": true}})).await;
        let err = next_of(&mut ada, &["error"]).await;
        assert_eq!((err["code"].as_str(), err["request"].as_str()), (Some("unknown_participant"), Some("signal")), "{err}");
    }
    send(&mut eve, serde_json::json!({"type": "signal", "to": ada_id, "data": {"bye": true}})).await;
    assert_eq!(next_of(&mut eve, &["error"]).await["code"], "unknown_participant");
    assert!(any_of(&mut eve, &["signal"], Duration::from_millis(300)).await.is_none(), "Eve got a signal");
    assert!(any_of(&mut ada, &["signal"], Duration::from_millis(300)).await.is_none(), "Ada got Eve's signal");

    // Malformed and oversized signals are errors, and the socket lives on.
    send(&mut ada, serde_json::json!({"type": "signal", "to": bob_id, "data": "text"})).await;
    assert_eq!(next_of(&mut ada, &["error"]).await["code"], "bad_message");
    let big = "x".repeat(signal::MAX_SIGNAL_DATA);
    send(&mut ada, serde_json::json!({"type": "signal", "to": bob_id, "data": {"sdp": big}})).await;
    let err = next_of(&mut ada, &["error"]).await;
    assert_eq!(err["code"], "bad_message", "{err}");
    assert!(any_of(&mut bob, &["signal"], Duration::from_millis(300)).await.is_none(), "Bob got the oversized signal");
    send(&mut ada, serde_json::json!({"type": "ping", "id": 5})).await;
    assert_eq!(next_of(&mut ada, &["pong"]).await["id"], 5);

    // After Bob leaves, a signal to him is refused.
    send(&mut bob, serde_json::json!({"type": "leave"})).await;
    next_of(&mut ada, &["participant_left"]).await;
    send(&mut ada, serde_json::json!({"type": "signal", "to": bob_id, "data": {}})).await;
    assert_eq!(next_of(&mut ada, &["error"]).await["code"], "unknown_participant");
}

#[tokio::test]
async fn a_mesh_refuses_one_more_than_its_cap_and_its_media_offers() {
    let (_server, _out, base) = common::server(&["--room-mode", "p2p", "--mesh-max", "3"]);
    let mut members = Vec::new();
    for name in ["A", "B", "C"] {
        let (ws, joined) = join(&base, "mesh", name, None).await;
        assert_eq!(joined["mode"], "p2p", "{joined}");
        members.push(ws);
    }
    let (_ws, refused) = join(&base, "mesh", "D", None).await;
    assert_eq!(refused["code"], "room_full", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("at most 3"), "{refused}");

    // An offer that sends media is answered, but refused, and nothing is forwarded.
    let ws = &mut members[0];
    let mut peer = Peer::new(Instant::now(), "A", ParticipantId::new("A"), "127.0.0.1:9".parse().unwrap());
    let Some(ToSfu::Offer(sdp)) = peer.publish(true, true) else { panic!("no offer") };
    send(ws, serde_json::json!({"type": "offer", "sdp": sdp})).await;
    let first = next_of(ws, &["answer", "error"]).await;
    let second = next_of(ws, &["answer", "error"]).await;
    let refused = if first["type"] == "error" { first } else { second };
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("peer-to-peer"), "{refused}");
    assert!(any_of(&mut members[1], &["track_published", "offer"], Duration::from_millis(500)).await.is_none());

    // WHIP and WHEP cannot enter it.
    let whip = common::http(&base, "POST", "/whip/mesh", &[("Content-Type", "application/sdp")], sdp.as_bytes());
    assert_eq!(whip.status, 409, "{}", whip.body);
    assert!(whip.body.contains("peer-to-peer"), "{}", whip.body);
    let mut viewer = Peer::new(Instant::now(), "V", ParticipantId::new("V"), "127.0.0.1:9".parse().unwrap());
    let Some(ToSfu::Offer(watch)) = viewer.watch() else { panic!("no offer") };
    let whep = common::http(&base, "POST", "/whep/mesh", &[("Content-Type", "application/sdp")], watch.as_bytes());
    assert_eq!(whep.status, 409, "{}", whep.body);

    // The admin API shows the mode.
    let list = common::http(&base, "GET", "/api/v1/rooms", &[], b"");
    assert!(list.body.contains(r#""mode":"p2p""#), "{}", list.body);
}

#[tokio::test]
async fn an_auto_room_goes_through_the_server_from_its_third_participant_and_back() {
    let (_server, _out, base) = common::server(&[]);
    let (mut a, joined) = join(&base, "auto", "A", Some("auto")).await;
    assert_eq!((joined["mode"].as_str(), joined["path"].as_str()), (Some("auto"), Some("p2p")), "{joined}");
    let (mut b, joined) = join(&base, "auto", "B", None).await;
    assert_eq!((joined["mode"].as_str(), joined["path"].as_str()), (Some("auto"), Some("p2p")), "{joined}");
    assert!(any_of(&mut a, &["path"], Duration::from_millis(300)).await.is_none(), "two is still p2p");

    let (mut c, joined) = join(&base, "auto", "C", None).await;
    assert_eq!(joined["path"], "sfu", "{joined}");
    for ws in [&mut a, &mut b] {
        assert_eq!(next_of(ws, &["path"]).await, serde_json::json!({"type": "path", "path": "sfu"}));
    }
    assert!(any_of(&mut c, &["path"], Duration::from_millis(300)).await.is_none(), "the joiner learns the path from joined");

    send(&mut c, serde_json::json!({"type": "leave"})).await;
    for ws in [&mut a, &mut b] {
        assert_eq!(next_of(ws, &["path"]).await, serde_json::json!({"type": "path", "path": "p2p"}));
    }

    // A WHIP publisher needs the server: with it in the room, the path is sfu.
    let mut publisher = Peer::new(Instant::now(), "W", ParticipantId::new("W"), "127.0.0.1:9".parse().unwrap());
    let Some(ToSfu::Offer(sdp)) = publisher.publish(true, true) else { panic!("no offer") };
    let whip = common::http(&base, "POST", "/whip/auto", &[("Content-Type", "application/sdp")], sdp.as_bytes());
    assert_eq!(whip.status, 201, "{}", whip.body);
    for ws in [&mut a, &mut b] {
        assert_eq!(next_of(ws, &["path"]).await, serde_json::json!({"type": "path", "path": "sfu"}));
    }

    // An sfu room's path is sfu, and stays so.
    let (_d, joined) = join(&base, "plain", "D", None).await;
    assert_eq!(joined["path"], "sfu");
}
