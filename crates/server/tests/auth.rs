//! Access tokens on the WebSocket against a real `confab` with API keys: every kind of bad token
//! is refused with `unauthorized` and a token short of a grant with `forbidden`, the socket
//! living on; a good token joins with its grants and name; a token without canPublish joins
//! but its offer of media gets `forbidden`; `confab token` mints tokens the server takes.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sfu::ParticipantId;
use testkit::{Peer, ToSfu};

mod common;

use common::ws::{Ws, connect, next_of, send};

const KEY: &str = "devkey";
const SECRET: &str = "a-secret-of-at-least-thirty-two-characters";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn token_with(claims: serde_json::Value, secret: &str, alg: Algorithm) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn join_claims(room: &str, sub: &str) -> serde_json::Value {
    serde_json::json!({"iss": KEY, "sub": sub, "exp": now() + 600, "video": {"room": room, "roomJoin": true}})
}

async fn join(ws: &mut Ws, room: &str, token: Option<&str>) -> serde_json::Value {
    let mut msg = serde_json::json!({"type": "join", "room": room, "name": "Tester", "protocol": 1});
    if let Some(t) = token {
        msg["token"] = t.into();
    }
    send(ws, msg).await;
    next_of(ws, &["joined", "error"]).await
}

#[tokio::test]
async fn bad_tokens_are_refused_and_the_socket_lives_on() {
    let (_server, _out, base) = common::server(&["--keys", &format!("{KEY}: {SECRET}")]);
    let mut ws = connect(&base).await;
    let none_alg = {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&join_claims("r", "ada").to_string()))
    };
    let mut expired = join_claims("r", "ada");
    expired["exp"] = (now() - 3600).into();
    let mut early = join_claims("r", "ada");
    early["nbf"] = (now() + 3600).into();
    let mut unknown_key = join_claims("r", "ada");
    unknown_key["iss"] = "stranger".into();
    let mut no_join = join_claims("r", "ada");
    no_join["video"]["roomJoin"] = false.into();
    let cases: Vec<(&str, Option<String>, &str, &str)> = vec![
        ("no token", None, "unauthorized", "needed"),
        ("garbage", Some("not-a-jwt".into()), "unauthorized", "malformed"),
        ("another secret", Some(token_with(join_claims("r", "ada"), "another-secret-also-thirty-two-characters", Algorithm::HS256)), "unauthorized", "signature"),
        ("alg none", Some(none_alg), "unauthorized", "only HS256"),
        ("HS512", Some(token_with(join_claims("r", "ada"), SECRET, Algorithm::HS512)), "unauthorized", "only HS256"),
        ("expired", Some(token_with(expired, SECRET, Algorithm::HS256)), "unauthorized", "expired"),
        ("not yet valid", Some(token_with(early, SECRET, Algorithm::HS256)), "unauthorized", "not valid yet"),
        ("unknown key", Some(token_with(unknown_key, SECRET, Algorithm::HS256)), "unauthorized", "unknown"),
        ("another room", Some(token_with(join_claims("elsewhere", "ada"), SECRET, Algorithm::HS256)), "forbidden", "not \"r\""),
        ("no roomJoin", Some(token_with(no_join, SECRET, Algorithm::HS256)), "forbidden", "roomJoin"),
    ];
    for (what, token, code, says) in cases {
        let reply = join(&mut ws, "r", token.as_deref()).await;
        assert_eq!(reply["type"], "error", "{what}: {reply}");
        assert_eq!(reply["code"], code, "{what}: {reply}");
        assert_eq!(reply["request"], "join", "{what}: {reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(message.contains(says), "{what}: {message}");
    }
    // Still the same socket: a good token joins on it, under the token's name.
    let mut good = join_claims("r", "ada");
    good["name"] = "Ada Lovelace".into();
    let joined = join(&mut ws, "r", Some(&token_with(good, SECRET, Algorithm::HS256))).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["participant"]["name"], "Ada Lovelace");
    assert_eq!(joined["grants"], serde_json::json!({"canPublish": true, "canSubscribe": true, "canPublishData": true}));
}

#[tokio::test]
async fn without_can_publish_a_participant_joins_but_its_media_is_refused() {
    let (_server, _out, base) = common::server(&["--keys", &format!("{KEY}: {SECRET}")]);
    let mut claims = join_claims("r", "viewer");
    claims["video"]["canPublish"] = false.into();
    let mut ws = connect(&base).await;
    let joined = join(&mut ws, "r", Some(&token_with(claims, SECRET, Algorithm::HS256))).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["grants"]["canPublish"], false);
    assert_eq!(joined["grants"]["canSubscribe"], true);

    let mut peer = Peer::new(Instant::now(), "viewer", ParticipantId::new("viewer"), "127.0.0.1:9".parse().unwrap());
    let Some(ToSfu::Offer(sdp)) = peer.publish(true, true) else { panic!("no offer") };
    send(&mut ws, serde_json::json!({"type": "offer", "sdp": sdp})).await;
    // The offer is answered (the connection still receives), and refused for its media: the
    // error comes first (the worker replies to the command before it sends what the core says).
    let first = next_of(&mut ws, &["answer", "error"]).await;
    let second = next_of(&mut ws, &["answer", "error"]).await;
    let (answer, refused) = if first["type"] == "answer" { (first, second) } else { (second, first) };
    assert_eq!(answer["type"], "answer", "{answer}");
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert_eq!(refused["request"], "offer", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("canPublish"), "{refused}");

    // Another participant of the room is never told of a track from it.
    let mut other = connect(&base).await;
    let joined = join(&mut other, "r", Some(&token_with(join_claims("r", "other"), SECRET, Algorithm::HS256))).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let viewer = joined["participants"].as_array().unwrap().iter().find(|p| p["name"] == "Tester").expect("the viewer is in the room").clone();
    assert_eq!(viewer["tracks"], serde_json::json!([]), "{joined}");
}

#[test]
fn confab_token_mints_what_the_server_takes() {
    let keys = format!("{KEY}: {SECRET}");
    let out = common::confab()
        .env("CONFAB_KEYS", &keys)
        .args(["token", "--room", "standup", "--identity", "ada", "--name", "Ada", "--ttl", "10m"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");

    let (_server, _out, base) = common::server(&["--keys", &keys]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut ws = connect(&base).await;
        let joined = join(&mut ws, "standup", Some(&token)).await;
        assert_eq!(joined["type"], "joined", "{joined}");
        assert_eq!(joined["participant"]["name"], "Ada");
    });

    // --url prints a link for the web client.
    let out = common::confab()
        .env("CONFAB_KEYS", &keys)
        .args(["token", "--room", "standup", "--identity", "bo", "--url", "https://meet.example.com/"])
        .output()
        .unwrap();
    let link = String::from_utf8(out.stdout).unwrap();
    assert!(link.starts_with("https://meet.example.com/?room=standup&token=ey"), "{link}");

    // Without keys, or with a short secret, a clear error.
    let out = common::confab().args(["token", "--room", "r", "--identity", "a"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CONFAB_KEYS"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = common::confab().env("CONFAB_KEYS", "k: short").args(["token", "--room", "r", "--identity", "a"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32"));
}

#[test]
fn the_banner_says_whether_tokens_are_needed() {
    let (_server, _out, banner) = common::server_banner(&[]);
    assert!(banner.iter().any(|l| l.contains("Open mode: anyone who can reach this server can join")), "{banner:?}");
    let (_server, _out, banner) = common::server_banner(&["--keys", &format!("{KEY}: {SECRET}")]);
    assert!(banner.iter().any(|l| l.contains("Access tokens required (API keys: devkey)")), "{banner:?}");
}
