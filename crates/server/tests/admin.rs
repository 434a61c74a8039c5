//! The admin API against a real `confab` with API keys: listing and reading rooms, removing a
//! participant, closing a room; each with the grant it needs, and what the participants are told.
//! Muting is tested with a WHIP publisher, whose media really flows (tests/whip.rs).

use std::time::{Duration, Instant};

mod common;

use common::http;
use common::ws::{Ws, connect, next, send};

const KEYS: &str = "adm: an-admin-secret-of-at-least-thirty-two-characters";

fn mint(args: &[&str]) -> String {
    common::bearer_token(KEYS, args)
}

async fn join(base: &str, room: &str, name: &str) -> (Ws, String) {
    let token = mint(&["--room", room, "--identity", name, "--name", name]);
    let mut ws = connect(base).await;
    let msg = serde_json::json!({"type": "join", "room": room, "name": name, "token": token.trim_start_matches("Bearer ")});
    send(&mut ws, msg).await;
    let joined = next(&mut ws, |m| m["type"] == "joined").await;
    let id = joined["participant"]["id"].as_str().unwrap().to_string();
    (ws, id)
}

fn json(r: &common::Reply) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {} {}", r.status, r.body))
}

#[tokio::test]
async fn rooms_are_listed_read_emptied_and_closed_with_the_right_grants() {
    let (_server, _out, base) = common::server(&["--keys", KEYS]);
    let lister = mint(&["--grant", "roomList"]);
    let admin = mint(&["--room", "standup", "--grant", "roomJoin=false", "--grant", "roomAdmin"]);
    let other_admin = mint(&["--room", "elsewhere", "--grant", "roomJoin=false", "--grant", "roomAdmin"]);

    let (mut ada, _) = join(&base, "standup", "Ada").await;
    let (mut bob, bob_id) = join(&base, "standup", "Bob").await;

    // Reading.
    assert_eq!(http(&base, "GET", "/api/v1/rooms", &[], b"").status, 401);
    let r = http(&base, "GET", "/api/v1/rooms", &[("Authorization", &admin)], b"");
    assert_eq!(r.status, 403, "a room's admin does not list the server: {}", r.body);
    let r = http(&base, "GET", "/api/v1/rooms", &[("Authorization", &lister)], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json(&r)["rooms"], serde_json::json!([{"name": "standup", "mode": "sfu", "participants": 2, "viewers": 0, "tracks": 0}]));
    let r = http(&base, "GET", "/api/v1/rooms/standup", &[("Authorization", &admin)], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<String> = json(&r)["participants"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"Ada".to_string()) && names.contains(&"Bob".to_string()), "{names:?}");
    assert_eq!(http(&base, "GET", "/api/v1/rooms/nowhere", &[("Authorization", &lister)], b"").status, 404);
    assert_eq!(http(&base, "GET", "/api/v1/rooms/standup", &[("Authorization", &other_admin)], b"").status, 403);

    // Changing needs roomAdmin of this room.
    let bob_path = format!("/api/v1/rooms/standup/participants/{bob_id}");
    assert_eq!(http(&base, "DELETE", &bob_path, &[("Authorization", &lister)], b"").status, 403);
    assert_eq!(http(&base, "DELETE", &bob_path, &[("Authorization", &other_admin)], b"").status, 403);
    assert_eq!(http(&base, "DELETE", &bob_path, &[], b"").status, 401);

    // Removing Bob: he is told and closed; Ada sees him leave, removed.
    let r = http(&base, "DELETE", &format!("/api/v1/rooms/standup/participants/{bob_id}"), &[("Authorization", &admin)], b"");
    assert_eq!(r.status, 204, "{}", r.body);
    let removed = next(&mut bob, |m| m["type"] == "error").await;
    assert_eq!(removed["code"], "removed", "{removed}");
    assert_eq!(next(&mut bob, |m| m.get("close").is_some()).await["close"], 4002);
    let left = next(&mut ada, |m| m["type"] == "participant_left").await;
    assert_eq!((left["participant"].as_str(), left["reason"].as_str()), (Some(bob_id.as_str()), Some("removed")));
    let r = http(&base, "DELETE", &format!("/api/v1/rooms/standup/participants/{bob_id}"), &[("Authorization", &admin)], b"");
    assert_eq!(r.status, 404, "{}", r.body);

    // Closing the room removes Ada; then there is no room.
    let r = http(&base, "DELETE", "/api/v1/rooms/standup", &[("Authorization", &admin)], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json(&r)["removed"], 1);
    assert_eq!(next(&mut ada, |m| m["type"] == "error").await["code"], "removed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while http(&base, "GET", "/api/v1/rooms/standup", &[("Authorization", &lister)], b"").status != 404 {
        assert!(Instant::now() < deadline, "the room did not close");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The document of the API.
    let r = http(&base, "GET", "/api/v1/openapi.json", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(json(&r)["openapi"], "3.0.3");
}

#[tokio::test]
async fn without_api_keys_rooms_can_be_read_but_not_changed() {
    let (_server, _out, base) = common::server(&[]);
    let r = http(&base, "GET", "/api/v1/rooms", &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = http(&base, "DELETE", "/api/v1/rooms/any", &[], b"");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("needs API keys"), "{}", r.body);
}

#[tokio::test]
async fn a_room_created_ahead_has_its_own_limit_and_closes_when_empty_too_long() {
    let (_server, _out, base) = common::server(&["--keys", KEYS]);
    let creator = mint(&["--grant", "roomCreate", "--grant", "roomList", "--grant", "roomAdmin"]);
    let lister = mint(&["--grant", "roomList"]);
    let body = br#"{"name":"board","maxParticipants":1,"emptyTimeout":600}"#;
    assert_eq!(http(&base, "POST", "/api/v1/rooms", &[("Authorization", &lister)], body).status, 403);
    let r = http(&base, "POST", "/api/v1/rooms", &[("Authorization", &creator)], body);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(json(&r), serde_json::json!({"name": "board", "mode": "sfu", "participants": 0, "viewers": 0, "tracks": 0, "maxParticipants": 1, "emptyTimeout": 600}));
    assert_eq!(http(&base, "POST", "/api/v1/rooms", &[("Authorization", &creator)], body).status, 409);
    assert_eq!(http(&base, "POST", "/api/v1/rooms", &[("Authorization", &creator)], br#"{"name":"no spaces"}"#).status, 400);
    assert_eq!(http(&base, "POST", "/api/v1/rooms", &[("Authorization", &creator)], br#"{"nom":"x"}"#).status, 400);
    // Listed while empty; one participant fills it.
    let r = http(&base, "GET", "/api/v1/rooms", &[("Authorization", &lister)], b"");
    assert_eq!(json(&r)["rooms"][0]["name"], "board", "{}", r.body);
    let (_ada, _) = join(&base, "board", "Ada").await;
    let token = mint(&["--room", "board", "--identity", "bob"]);
    let url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    let mut bob = tokio_tungstenite::connect_async(url).await.unwrap().0;
    let msg = serde_json::json!({"type": "join", "room": "board", "name": "Bob", "token": token.trim_start_matches("Bearer ")});
    send(&mut bob, msg).await;
    assert_eq!(next(&mut bob, |m| m["type"] == "error").await["code"], "room_full");
    // Closing it, empty or not.
    let r = http(&base, "DELETE", "/api/v1/rooms/board", &[("Authorization", &creator)], b"");
    assert_eq!(r.status, 200, "{}", r.body);

    // A room created with a 1 s empty timeout closes on its own.
    let r = http(&base, "POST", "/api/v1/rooms", &[("Authorization", &creator)], br#"{"name":"brief","emptyTimeout":1}"#);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(http(&base, "GET", "/api/v1/rooms/brief", &[("Authorization", &lister)], b"").status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while http(&base, "GET", "/api/v1/rooms/brief", &[("Authorization", &lister)], b"").status != 404 {
        assert!(Instant::now() < deadline, "the empty room did not close");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
