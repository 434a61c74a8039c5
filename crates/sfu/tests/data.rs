//! Data messages through the SFU, on virtual time: str0m peers open the two data channels of
//! docs/protocol.md and what they send reaches the room, or the participants they name, tagged
//! with the sender; nothing crosses rooms; limits and grants hold.

use std::time::Duration;

use sfu::data::{LOSSY, PRIVATE, RELIABLE, TEXT};
use testkit::{NetemConfig, Scenario};

/// A frame to the room (`to` empty) or to the named ids.
fn frame(flags: u8, to: &[&str], payload: &[u8]) -> Vec<u8> {
    let mut f = vec![flags, to.len() as u8];
    for id in to {
        f.push(id.len() as u8);
        f.extend_from_slice(id.as_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// What `peer` received on `label`, as (flags, sender, payload).
fn received(call: &Scenario, peer: usize, label: &str) -> Vec<(u8, String, Vec<u8>)> {
    call.peers[peer]
        .data
        .iter()
        .filter(|(l, _)| l == label)
        .map(|(_, f)| {
            let len = usize::from(f[1]);
            (f[0], String::from_utf8(f[2..2 + len].to_vec()).unwrap(), f[2 + len..].to_vec())
        })
        .collect()
}

/// ada, bob and cy in room "r", dan in room "s", each with its data channels open.
fn four() -> (Scenario, [usize; 4]) {
    let mut call = Scenario::new(NetemConfig::new().latency(Duration::from_millis(10)));
    let peers = [call.join("ada", "r"), call.join("bob", "r"), call.join("cy", "r"), call.join("dan", "s")];
    for &p in &peers {
        call.open_data(p);
    }
    let end = call.now + Duration::from_secs(10);
    let open = call.run_until(end, |c| peers.iter().all(|&p| c.peers[p].data_open(RELIABLE) && c.peers[p].data_open(LOSSY)));
    assert!(open, "every peer's data channels open");
    (call, peers)
}

fn id(call: &Scenario, peer: usize) -> String {
    call.peers[peer].id.to_string()
}

#[test]
fn a_message_reaches_the_room_or_the_named_participants_tagged_with_its_sender() {
    let (mut call, [ada, bob, cy, dan]) = four();
    let (ada_id, bob_id, dan_id) = (id(&call, ada), id(&call, bob), id(&call, dan));

    // To the room, reliable: bob and cy, not ada herself, not dan in another room.
    assert!(call.peers[ada].send_data(RELIABLE, &frame(TEXT, &[], b"hello <b>room</b>")));
    // To bob only.
    assert!(call.peers[ada].send_data(RELIABLE, &frame(TEXT, &[&bob_id], b"psst")));
    // Binary, lossy, from cy to the room.
    assert!(call.peers[cy].send_data(LOSSY, &frame(0, &[], &[1, 2, 3])));
    // To someone in another room: nobody gets it.
    assert!(call.peers[ada].send_data(RELIABLE, &frame(TEXT, &[&dan_id], b"across rooms")));
    call.run_for(Duration::from_secs(1));

    assert_eq!(
        received(&call, bob, RELIABLE),
        vec![(TEXT, ada_id.clone(), b"hello <b>room</b>".to_vec()), (TEXT | PRIVATE, ada_id.clone(), b"psst".to_vec())]
    );
    assert_eq!(received(&call, cy, RELIABLE), vec![(TEXT, ada_id.clone(), b"hello <b>room</b>".to_vec())]);
    assert!(received(&call, ada, RELIABLE).is_empty());
    assert!(call.peers[dan].data.is_empty(), "{:?}", call.peers[dan].data);
    let cy_id = id(&call, cy);
    for p in [ada, bob] {
        assert_eq!(received(&call, p, LOSSY), vec![(0, cy_id.clone(), vec![1, 2, 3])]);
    }
    let stats = call.sfu.stats();
    assert_eq!((stats.data_in, stats.data_out), (4, 5), "{stats:?}");
    assert_eq!(stats.data_dropped, 1, "the message across rooms: {stats:?}");
}

#[test]
fn malformed_messages_and_senders_without_the_grant_are_dropped() {
    let mut call = Scenario::new(NetemConfig::new().latency(Duration::from_millis(10)));
    let ada = call.join("ada", "r");
    let mute = call.join_granted("mute", "r", sfu::Grants { publish: true, subscribe: true, publish_data: false });
    call.open_data(ada);
    call.open_data(mute);
    let end = call.now + Duration::from_secs(10);
    assert!(call.run_until(end, |c| c.peers[ada].data_open(RELIABLE) && c.peers[mute].data_open(RELIABLE)));

    // Without canPublishData: nothing it sends arrives; it still receives.
    assert!(call.peers[mute].send_data(RELIABLE, &frame(TEXT, &[], b"let me speak")));
    // Truncated headers, too many recipients: dropped.
    assert!(call.peers[ada].send_data(RELIABLE, &[TEXT]));
    assert!(call.peers[ada].send_data(RELIABLE, &[0, 3, 9, b'x']));
    assert!(call.peers[ada].send_data(RELIABLE, &[0, 200]));
    assert!(call.peers[ada].send_data(RELIABLE, &frame(TEXT, &[], b"still here")));
    call.run_for(Duration::from_secs(1));

    assert!(call.peers[ada].data.is_empty(), "{:?}", call.peers[ada].data);
    assert_eq!(received(&call, mute, RELIABLE), vec![(TEXT, id(&call, ada), b"still here".to_vec())]);
    assert_eq!(call.sfu.stats().data_dropped, 4, "{:?}", call.sfu.stats());
    assert_eq!(call.sfu.stats().participants, 2, "nobody was removed for it");
}

#[test]
fn a_sender_over_the_rate_limit_loses_what_is_over_it() {
    let (mut call, [ada, bob, ..]) = four();
    // 3,000 messages at once: the burst is 1,000 messages, and 2,000 a second come back.
    let mut sent = 0;
    for n in 0..3000u32 {
        if call.peers[ada].send_data(LOSSY, &frame(0, &[], &n.to_be_bytes())) {
            sent += 1;
        }
    }
    call.run_for(Duration::from_secs(2));
    let got = received(&call, bob, LOSSY).len();
    let stats = call.sfu.stats().clone();
    assert_eq!(sent, 3000);
    assert!((1000..3000).contains(&got), "bob got {got} of {sent}: {stats:?}");
    assert!(stats.data_dropped > 0 && stats.data_in >= stats.data_dropped, "{stats:?}");
    // Later, at a sane rate, everything arrives again.
    let before = got;
    for n in 0..10u32 {
        assert!(call.peers[ada].send_data(RELIABLE, &frame(0, &[], &n.to_be_bytes())));
        call.run_for(Duration::from_millis(20));
    }
    call.run_for(Duration::from_millis(500));
    assert_eq!(received(&call, bob, RELIABLE).len(), 10);
    assert_eq!(received(&call, bob, LOSSY).len(), before);
}
