//! Every text frame a client can send: parsing and validation never panic, and whatever parses
//! serializes back to an equal message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(msg) = signal::parse_client_message(text) {
        let again = signal::parse_client_message(&msg.to_json()).expect("our own JSON parses");
        assert_eq!(again, msg);
        if let signal::ClientMessage::Join(join) = &msg {
            let _ = signal::validate_room(&join.room);
            let _ = signal::validate_name(&join.name);
        }
    }
    let _ = signal::validate_room(text);
    let _ = signal::validate_name(text);
});
