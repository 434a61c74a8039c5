//! WHIP and WHEP against a real `confab` on loopback: a str0m peer publishes over WHIP, another
//! plays it over WHEP, media really relayed; and every error case of the endpoints.

use std::time::{Duration, Instant};

use sfu::Signal;
use testkit::ToSfu;

mod common;

use common::http;
use common::peer::{Client, SDP, run};

#[test]
fn a_whip_publisher_is_played_over_whep_and_delete_ends_it() {
    let (_server, _out, base) = common::server(&[]);
    let mut publisher = Client::udp("whippy");
    let offer = publisher.peer.publish(true, true);
    let reply = publisher.start(&base, "/whip/studio?name=whippy", offer);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/sdp"));
    let location = reply.header("location").expect("a Location").to_string();
    assert!(location.starts_with("/sessions/"), "{location}");
    assert!(reply.header("etag").is_some_and(|e| e.starts_with('"')));
    assert!(reply.body.contains("a=candidate:"), "the answer carries the server's candidates");

    // The player trickles: its offer has no candidate, a PATCH brings its host candidate.
    let mut player = Client::udp("player");
    let Some(ToSfu::Offer(offer)) = player.peer.watch() else { panic!("no offer") };
    let candidate = offer.lines().find(|l| l.starts_with("a=candidate:")).expect("a host candidate").to_string();
    let bare: String = offer.lines().filter(|l| !l.starts_with("a=candidate:")).map(|l| format!("{l}\r\n")).collect();
    let reply = player.start(&base, "/whep/studio", Some(ToSfu::Offer(bare)));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let whep_location = reply.header("location").unwrap().to_string();
    let frag = format!("{candidate}\r\na=end-of-candidates\r\n");
    let patched = http(&base, "PATCH", &whep_location, &[("Content-Type", "application/trickle-ice-sdpfrag")], frag.as_bytes());
    assert_eq!(patched.status, 204, "{}", patched.body);
    // The answer has exactly the two m-lines the player offered, video first, sending.
    let mlines: Vec<&str> = reply.body.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(mlines.len(), 2, "{}", reply.body);
    assert!(mlines[0].starts_with("m=video") && mlines[1].starts_with("m=audio"), "{mlines:?}");
    assert_eq!(reply.body.matches("a=sendonly").count(), 2, "{}", reply.body);

    let got = run(&mut [&mut publisher, &mut player], Duration::from_secs(20), |c| {
        let frames = c[1].peer.frames_of("whippy");
        frames.iter().filter(|f| f.keyframe).count() >= 1 && frames.len() >= 60
    });
    let frames = player.peer.frames_of("whippy");
    assert!(got, "the player got {} frames of the publisher", frames.len());

    // A room member sees the WHIP publisher with its name: the stats count the sessions.
    let stats = http(&base, "GET", "/api/v1/stats", &[], b"");
    assert!(stats.body.contains("\"http_sessions\":2"), "{}", stats.body);

    // A player that asks for audio first, and one that asks for audio only: each answer carries
    // exactly what was asked, in its order, and the media comes.
    use str0m::media::MediaKind::{Audio, Video};
    for (kinds, lines) in [(&[Audio, Video][..], &["m=audio", "m=video"][..]), (&[Audio][..], &["m=audio"][..])] {
        let mut other = Client::udp("other");
        let offer = other.peer.watch_kinds(kinds);
        let reply = other.start(&base, "/whep/studio", offer);
        assert_eq!(reply.status, 201, "{}", reply.body);
        let mlines: Vec<&str> = reply.body.lines().filter(|l| l.starts_with("m=")).collect();
        assert!(mlines.len() == lines.len() && mlines.iter().zip(lines).all(|(m, want)| m.starts_with(want)), "{mlines:?}");
        let got = run(&mut [&mut publisher, &mut other], Duration::from_secs(20), |c| c[1].peer.frames_of("whippy").len() >= 20);
        assert!(got, "{kinds:?}: {} frames", other.peer.frames_of("whippy").len());
        assert_eq!(http(&base, "DELETE", reply.header("location").unwrap(), &[], b"").status, 200);
    }

    // DELETE ends the publisher; a second DELETE and a PATCH are 404.
    let reply = http(&base, "DELETE", &location, &[], b"");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(http(&base, "DELETE", &location, &[], b"").status, 404);
    let frag = [("Content-Type", "application/trickle-ice-sdpfrag")];
    assert_eq!(http(&base, "PATCH", &location, &frag, b"a=end-of-candidates\r\n").status, 404);
    // The player's session is still there until it is deleted.
    let reply = http(&base, "PATCH", &whep_location, &frag, b"a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n");
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(http(&base, "DELETE", &whep_location, &[], b"").status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = http(&base, "GET", "/api/v1/stats", &[], b"");
        if stats.body.contains("\"participants\":0") && stats.body.contains("\"http_sessions\":0") {
            break;
        }
        assert!(Instant::now() < deadline, "sessions not gone: {}", stats.body);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn whip_and_whep_errors_are_answered_with_their_status() {
    let (_server, _out, base) = common::server(&[]);
    let mut publisher = Client::udp("p");
    let Some(ToSfu::Offer(offer)) = publisher.peer.publish(true, true) else { panic!() };

    // Wrong content type.
    let r = http(&base, "POST", "/whip/r", &[("Content-Type", "text/plain")], offer.as_bytes());
    assert_eq!(r.status, 415, "{}", r.body);
    // Not SDP, an SDP that str0m refuses, an offer that sends nothing.
    let r = http(&base, "POST", "/whip/r", &[SDP], b"hello");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("v="), "{}", r.body);
    let broken = offer.replace("a=fingerprint:", "a=fingerprint:bogus ");
    let r = http(&base, "POST", "/whip/r", &[SDP], broken.as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!r.body.trim().is_empty());
    let recv_only = offer.replace("a=sendonly", "a=recvonly");
    let r = http(&base, "POST", "/whip/r", &[SDP], recv_only.as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.body.contains("sendonly"), "{}", r.body);
    // A bad room or name.
    assert_eq!(http(&base, "POST", "/whip/no%20spaces", &[SDP], offer.as_bytes()).status, 400);
    assert_eq!(http(&base, "POST", "/whip/r?name=%01", &[SDP], offer.as_bytes()).status, 400);
    // Over the size limit.
    let big = vec![b'a'; 64 * 1024 + 1];
    let r = http(&base, "POST", "/whip/r", &[SDP], &big);
    assert_eq!(r.status, 413);
    assert!(r.body.contains("64 KiB"), "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "a page can read it");
    // A method the endpoint does not have.
    let r = http(&base, "GET", "/whip/r", &[], b"");
    assert_eq!((r.status, r.header("access-control-allow-origin")), (405, Some("*")));
    // SDP that does not parse: a reason on one line, no parser internals.
    let r = http(&base, "POST", "/whip/r", &[SDP], b"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("does not parse") && !r.body.contains("PointerOffset") && r.body.trim().lines().count() == 1, "{}", r.body);

    // WHEP: no such room, no such participant.
    let mut player = Client::udp("v");
    let Some(ToSfu::Offer(watch)) = player.peer.watch() else { panic!() };
    let r = http(&base, "POST", "/whep/nobody-here", &[SDP], watch.as_bytes());
    assert_eq!(r.status, 404, "{}", r.body);
    let reply = publisher.start(&base, "/whip/r", Some(ToSfu::Offer(offer.clone())));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let r = http(&base, "POST", "/whep/r/Pnotthere", &[SDP], watch.as_bytes());
    assert_eq!(r.status, 404, "{}", r.body);
    // A WHEP offer that receives nothing.
    let r = http(&base, "POST", "/whep/r", &[SDP], watch.replace("a=recvonly", "a=sendonly").as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);

    // Sessions: unknown ones are 404; PATCH checks its type, If-Match and refuses ICE restarts.
    assert_eq!(http(&base, "DELETE", "/sessions/nope", &[], b"").status, 404);
    let frag = ("Content-Type", "application/trickle-ice-sdpfrag");
    assert_eq!(http(&base, "PATCH", "/sessions/nope", &[frag], b"").status, 404);
    let location = reply.header("location").unwrap();
    let etag = reply.header("etag").unwrap();
    assert_eq!(http(&base, "PATCH", location, &[SDP], b"a=end-of-candidates\r\n").status, 415);
    assert_eq!(http(&base, "PATCH", location, &[frag, ("If-Match", "\"other\"")], b"").status, 412);
    assert_eq!(http(&base, "PATCH", location, &[frag, ("If-Match", etag)], b"a=end-of-candidates\r\n").status, 204);
    let r = http(&base, "PATCH", location, &[frag], b"a=ice-ufrag:brandnew\r\na=ice-pwd:brandnewpasswordbrandnew\r\n");
    assert_eq!(r.status, 422, "{}", r.body);
    let r = http(&base, "PATCH", location, &[frag], b"a=candidate:garbage\r\n");
    assert_eq!(r.status, 204, "a candidate str0m cannot parse is dropped by the worker, not fatal: {}", r.body);

    // CORS preflight.
    let r = http(&base, "OPTIONS", "/whip/r", &[], b"");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("access-control-allow-methods").is_some_and(|m| m.contains("POST")));
    assert_eq!(r.header("accept-post"), Some("application/sdp"));
    let r = http(&base, "OPTIONS", location, &[], b"");
    assert!(r.header("access-control-allow-methods").is_some_and(|m| m.contains("PATCH") && m.contains("DELETE")));
    assert_eq!(http(&base, "DELETE", location, &[], b"").status, 200);
}

#[test]
fn a_full_server_answers_503_with_retry_after() {
    let (_server, _out, base) = common::server(&["--max-participants", "1"]);
    let mut first = Client::udp("first");
    let offer = first.peer.publish(true, true);
    let reply = first.start(&base, "/whip/r", offer);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let mut second = Client::udp("second");
    let Some(ToSfu::Offer(offer)) = second.peer.publish(true, true) else { panic!() };
    let r = http(&base, "POST", "/whip/r", &[SDP], offer.as_bytes());
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.header("retry-after").is_some_and(|s| s.parse::<u32>().is_ok()), "{:?}", r.headers);
    let Some(ToSfu::Offer(watch)) = second.peer.watch() else { panic!() };
    assert_eq!(http(&base, "POST", "/whep/r", &[SDP], watch.as_bytes()).status, 503);
    // Room again once the first leaves.
    assert_eq!(http(&base, "DELETE", reply.header("location").unwrap(), &[], b"").status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = http(&base, "POST", "/whip/r", &[SDP], offer.as_bytes());
        if r.status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "still {}: {}", r.status, r.body);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn with_api_keys_whip_whep_and_stats_need_a_token_that_grants_them() {
    let keys = "k1: a-secret-of-at-least-thirty-two-characters";
    let (_server, _out, base) = common::server(&["--keys", keys]);
    // Tokens from `confab token`, as an operator mints them.
    let mint = |args: &[&str]| common::bearer_token(keys, args);
    let publisher_token = mint(&["--room", "studio", "--identity", "obs", "--name", "OBS"]);
    let viewer_token = mint(&["--room", "studio", "--identity", "v", "--grant", "canPublish=false"]);
    let deaf_token = mint(&["--room", "studio", "--identity", "d", "--grant", "canSubscribe=false"]);
    let other_room = mint(&["--room", "elsewhere", "--identity", "x"]);
    let lister = mint(&["--grant", "roomList"]);

    let mut publisher = Client::udp("obs");
    let Some(ToSfu::Offer(offer)) = publisher.peer.publish(true, true) else { panic!() };
    let post = |path: &str, auth: Option<&str>, sdp: &str| {
        let mut headers = vec![SDP];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        http(&base, "POST", path, &headers, sdp.as_bytes())
    };
    let r = post("/whip/studio", None, &offer);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert!(r.body.contains("access token is needed"), "{}", r.body);
    let r = post("/whip/studio", Some("Bearer not.a.token"), &offer);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("malformed"), "{}", r.body);
    let r = post("/whip/studio", Some(&other_room), &offer);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post("/whip/studio", Some(&viewer_token), &offer);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("canPublish"), "{}", r.body);
    let r = post("/whip/studio", Some(&publisher_token), &offer);
    assert_eq!(r.status, 201, "{}", r.body);
    publisher.peer.on_signal(Signal::Answer { sdp: r.body.clone() }).unwrap();

    let mut player = Client::udp("player");
    let Some(ToSfu::Offer(watch)) = player.peer.watch() else { panic!() };
    assert_eq!(post("/whep/studio", None, &watch).status, 401);
    let r = post("/whep/studio", Some(&deaf_token), &watch);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("canSubscribe"), "{}", r.body);
    let r = post("/whep/studio", Some(&viewer_token), &watch);
    assert_eq!(r.status, 201, "{}", r.body);
    player.peer.on_signal(Signal::Answer { sdp: r.body.clone() }).unwrap();
    let got = run(&mut [&mut publisher, &mut player], Duration::from_secs(20), |c| c[1].peer.frames_of("obs").len() >= 20);
    assert!(got, "the player got {} frames", player.peer.frames_of("obs").len());

    // The statistics: a roomList token, not a join token.
    assert_eq!(http(&base, "GET", "/api/v1/stats", &[], b"").status, 401);
    assert_eq!(http(&base, "GET", "/api/v1/stats", &[("Authorization", publisher_token.as_str())], b"").status, 403);
    let r = http(&base, "GET", "/api/v1/stats", &[("Authorization", lister.as_str())], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"http_sessions\":2"), "{}", r.body);
}

#[test]
fn the_admin_api_mutes_a_publishers_track_and_forwarding_stops() {
    let keys = "k1: a-secret-of-at-least-thirty-two-characters";
    let (_server, _out, base) = common::server(&["--keys", keys]);
    let mint = |args: &[&str]| common::bearer_token(keys, args);
    let admin = mint(&["--room", "studio", "--grant", "roomJoin=false", "--grant", "roomAdmin"]);
    let join = mint(&["--room", "studio", "--identity", "obs", "--name", "obs"]);
    let mut publisher = Client::udp("obs");
    let Some(ToSfu::Offer(offer)) = publisher.peer.publish(true, true) else { panic!() };
    let r = http(&base, "POST", "/whip/studio", &[SDP, ("Authorization", join.as_str())], offer.as_bytes());
    assert_eq!(r.status, 201, "{}", r.body);
    publisher.peer.on_signal(Signal::Answer { sdp: r.body.clone() }).unwrap();
    let mut player = Client::udp("player");
    let offer = player.peer.watch();
    let Some(ToSfu::Offer(watch)) = offer else { panic!() };
    let r = http(&base, "POST", "/whep/studio", &[SDP, ("Authorization", join.as_str())], watch.as_bytes());
    assert_eq!(r.status, 201, "{}", r.body);
    player.peer.on_signal(Signal::Answer { sdp: r.body.clone() }).unwrap();
    assert!(run(&mut [&mut publisher, &mut player], Duration::from_secs(20), |c| c[1].peer.frames_of("obs").len() >= 20));

    let room = http(&base, "GET", "/api/v1/rooms/studio", &[("Authorization", admin.as_str())], b"");
    let room: serde_json::Value = serde_json::from_str(&room.body).unwrap();
    let obs = room["participants"][0].clone();
    assert_eq!(room["viewers"], 1, "{room}");
    let video = obs["tracks"].as_array().unwrap().iter().find(|t| t["kind"] == "video").unwrap()["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/rooms/studio/participants/{}/mute", obs["id"].as_str().unwrap());
    let r = http(&base, "POST", &path, &[("Authorization", admin.as_str())], format!(r#"{{"track":"{video}","muted":true}}"#).as_bytes());
    assert_eq!(r.status, 204, "{}", r.body);
    // The room shows it muted, and the player stops getting frames.
    let room = http(&base, "GET", "/api/v1/rooms/studio", &[("Authorization", admin.as_str())], b"").body;
    assert!(room.contains(r#""kind":"video","source":"camera","muted":true"#), "{room}");
    // Video frames: those of the m-line whose frames include keyframes (audio frames never are).
    let video_frames = |c: &Client| c.peer.received.values().filter(|r| r.frames.iter().any(|f| f.keyframe)).map(|r| r.frames.len()).sum::<usize>();
    let audio_frames = |c: &Client| c.peer.received.values().filter(|r| !r.frames.iter().any(|f| f.keyframe)).map(|r| r.frames.len()).sum::<usize>();
    run(&mut [&mut publisher, &mut player], Duration::from_millis(500), |_| false);
    let (video, audio) = (video_frames(&player), audio_frames(&player));
    assert!(video > 0 && audio > 0);
    run(&mut [&mut publisher, &mut player], Duration::from_secs(1), |_| false);
    assert_eq!(video_frames(&player), video, "video still forwarded while muted");
    assert!(audio_frames(&player) > audio + 20, "the audio goes on");
    // Errors: an unknown track, a bad body.
    assert_eq!(http(&base, "POST", &path, &[("Authorization", admin.as_str())], br#"{"track":"99","muted":true}"#).status, 404);
    assert_eq!(http(&base, "POST", &path, &[("Authorization", admin.as_str())], b"{}").status, 400);
}
