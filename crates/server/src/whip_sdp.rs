//! The SDP the WHIP and WHEP endpoints read before handing an offer to the media worker: whether
//! an offer has the media its endpoint needs, and the candidates (or an ICE restart) in a trickle
//! fragment (RFC 8840). Plain std code, fuzzed by `fuzz/fuzz_targets/whip_sdp.rs`.

/// Whether an offer can make a session: it has audio or video m-lines that send (WHIP) or
/// receive (WHEP). Anything else str0m itself refuses (400 with its reason).
pub(crate) fn usable_offer(sdp: &str, whep: bool) -> Result<(), String> {
    // (is audio or video, direction) of each m-line; no direction attribute means sendrecv.
    let mut sections: Vec<(bool, &str)> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            sections.push((m.starts_with("audio ") || m.starts_with("video "), "sendrecv"));
        } else if let Some(d) = line.strip_prefix("a=").filter(|d| matches!(*d, "sendrecv" | "sendonly" | "recvonly" | "inactive")) {
            if let Some(last) = sections.last_mut() {
                last.1 = d;
            }
        }
    }
    let wanted = if whep { "recvonly" } else { "sendonly" };
    let media = sections.iter().filter(|(av, _)| *av).count();
    let usable = sections.iter().filter(|(av, d)| *av && (*d == "sendrecv" || *d == wanted)).count();
    if !sdp.trim_start().starts_with("v=") {
        return Err("the body is not an SDP offer (it must start with v=)".into());
    }
    if media == 0 {
        return Err("the offer has no audio or video m-line".into());
    }
    if usable == 0 {
        return Err(if whep {
            "the offer receives no audio or video: a WHEP offer has recvonly (or sendrecv) m-lines".into()
        } else {
            "the offer sends no audio or video: a WHIP offer has sendonly (or sendrecv) m-lines".into()
        });
    }
    Ok(())
}

/// The first `a=ice-ufrag` of an SDP.
pub(crate) fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines().find_map(|l| l.trim().strip_prefix("a=ice-ufrag:")).map(|u| u.trim().to_string())
}

/// Why a trickle fragment is refused.
#[derive(Debug, PartialEq)]
pub(crate) enum Trickle {
    /// It names another ICE ufrag: an ICE restart.
    Restart,
    /// It is not an SDP fragment.
    Bad(String),
}

/// The candidate lines of a trickle fragment; an ICE restart if it names another ufrag than
/// `ufrag`.
pub(crate) fn trickle(frag: &str, ufrag: Option<&str>) -> Result<Vec<String>, Trickle> {
    if let (Some(new), Some(old)) = (ice_ufrag(frag), ufrag) {
        if new != old {
            return Err(Trickle::Restart);
        }
    }
    let mut out = Vec::new();
    for line in frag.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(c) = line.strip_prefix("a=candidate:") {
            out.push(format!("candidate:{c}"));
        } else if !(line.starts_with("a=") || line.starts_with("m=")) {
            return Err(Trickle::Bad(format!("not an SDP fragment line: {:?}", truncate(line))));
        }
    }
    Ok(out)
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(60) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n";

    #[test]
    fn offers_are_checked_for_the_media_the_endpoint_needs() {
        assert_eq!(usable_offer(OFFER, false), Ok(()));
        assert!(usable_offer(OFFER, true).unwrap_err().contains("recvonly"));
        let recv = OFFER.replace("a=sendonly", "a=recvonly");
        assert_eq!(usable_offer(&recv, true), Ok(()));
        assert!(usable_offer(&recv, false).unwrap_err().contains("sendonly"));
        // No direction attribute means sendrecv: fine for both.
        let both = OFFER.replace("a=sendonly\r\n", "");
        assert_eq!((usable_offer(&both, false), usable_offer(&both, true)), (Ok(()), Ok(())));
        assert!(usable_offer("hello", false).unwrap_err().contains("v="));
        assert!(usable_offer("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", false).unwrap_err().contains("no audio or video"));
    }

    #[test]
    fn trickle_fragments_give_candidates_and_restarts_are_seen() {
        let frag = "a=ice-ufrag:abcd\r\na=ice-pwd:x\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
            a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n";
        assert_eq!(trickle(frag, Some("abcd")), Ok(vec!["candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host".to_string()]));
        assert_eq!(trickle(&frag.replace("ufrag:abcd", "ufrag:efgh"), Some("abcd")), Err(Trickle::Restart));
        assert!(matches!(trickle("rm -rf /", None), Err(Trickle::Bad(_))));
        assert_eq!(ice_ufrag(OFFER).as_deref(), Some("abcd"));
    }
}
