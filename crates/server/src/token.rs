//! `confab token`: mint an access token with a configured API key.

use crate::auth::{self, Claims, Keys, VideoGrant};

/// `confab token` options.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The room the token is for. A token with a room joins it (roomJoin), unless a --grant says
    /// `roomJoin=false`.
    #[arg(long, value_name = "ROOM")]
    room: Option<String>,

    /// The participant's identity (the token's `sub`) [default: the name, or "admin"].
    #[arg(long, value_name = "ID")]
    identity: Option<String>,

    /// The display name the participant appears under.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// How long the token is valid: seconds, or a number with s, m, h or d.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_ttl)]
    ttl: u64,

    /// A grant, repeatable: roomJoin, canPublish, canSubscribe, canPublishData, roomAdmin,
    /// roomCreate or roomList, optionally `=false` (e.g. `--grant canPublish=false` for a viewer;
    /// `--grant roomList --grant roomAdmin` for the admin API).
    #[arg(long = "grant", value_name = "GRANT[=BOOL]")]
    grants: Vec<String>,

    /// The API key to sign with [default: the only configured key].
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,

    /// Print a link to the web client at this address, with the room and token in it, e.g.
    /// `https://meet.example.com`.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
}

/// Run `confab token`: the token (or link) on stdout.
pub(crate) fn main(args: Args, keys: &Keys) -> Result<(), String> {
    let key = match (&args.api_key, keys.names().collect::<Vec<_>>().as_slice()) {
        (Some(k), _) => k.clone(),
        (None, [only]) => (*only).to_string(),
        (None, []) => return Err("no API key is configured: set CONFAB_KEYS=\"KEY: SECRET\" (or --keys, or [keys] in the config file)".into()),
        (None, _) => return Err("several API keys are configured: choose one with --api-key".into()),
    };
    let secret = keys.secret(&key).ok_or_else(|| format!("--api-key {key:?} is not among the configured keys"))?;
    let claims = claims(&args, &key, auth::unix_now())?;
    let token = auth::mint(&claims, secret)?;
    match &args.url {
        Some(url) => {
            let mut link = format!("{}/?", url.trim_end_matches('/'));
            if let Some(room) = &args.room {
                link.push_str(&format!("room={}&", encode(room)));
            }
            link.push_str(&format!("token={token}"));
            println!("{link}");
        }
        None => println!("{token}"),
    }
    Ok(())
}

fn claims(args: &Args, key: &str, now: u64) -> Result<Claims, String> {
    let mut video = VideoGrant { room: args.room.clone(), room_join: args.room.is_some(), ..VideoGrant::default() };
    for g in &args.grants {
        let (name, value) = match g.split_once('=') {
            Some((n, v)) => (n, v.parse::<bool>().map_err(|_| format!("--grant {g}: the value is true or false"))?),
            None => (g.as_str(), true),
        };
        match name {
            "roomJoin" => video.room_join = value,
            "canPublish" => video.can_publish = Some(value),
            "canSubscribe" => video.can_subscribe = Some(value),
            "canPublishData" => video.can_publish_data = Some(value),
            "roomAdmin" => video.room_admin = value,
            "roomCreate" => video.room_create = value,
            "roomList" => video.room_list = value,
            _ => {
                return Err(format!(
                    "--grant {g}: unknown grant; one of roomJoin, canPublish, canSubscribe, canPublishData, roomAdmin, roomCreate, roomList"
                ));
            }
        }
    }
    if video.room_join && video.room.is_none() {
        return Err("a roomJoin token needs --room".into());
    }
    if let Some(room) = &video.room {
        signal::validate_room(room).map_err(|e| format!("--room: {e}"))?;
    }
    if let Some(name) = &args.name {
        signal::validate_name(name).map_err(|e| format!("--name: {e}"))?;
    }
    let identity = args.identity.clone().or_else(|| args.name.clone()).unwrap_or_else(|| if video.room_join { String::new() } else { "admin".into() });
    if identity.is_empty() {
        return Err("a token to join a room needs --identity (or --name)".into());
    }
    Ok(Claims { iss: key.to_string(), sub: identity, name: args.name.clone(), nbf: Some(now.saturating_sub(auth::LEEWAY_SECS)), exp: now + args.ttl, video })
}

/// A token's lifetime in whole seconds: a duration (`crate::config::parse_duration`) of 1 s or more.
fn parse_ttl(s: &str) -> Result<u64, String> {
    let secs = crate::config::parse_duration(s)?.as_secs();
    if secs == 0 { Err(format!("{s:?}: a token must live at least 1 s")) } else { Ok(secs) }
}

/// Percent-encoding of a room id for a URL (room ids are A-Z a-z 0-9 - _ . already).
fn encode(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: Args,
    }

    fn claims_of(argv: &[&str]) -> Result<Claims, String> {
        let t = T::try_parse_from(std::iter::once("token").chain(argv.iter().copied())).map_err(|e| e.to_string())?;
        claims(&t.args, "k", 1000)
    }

    #[test]
    fn a_join_token_for_a_room() {
        let c = claims_of(&["--room", "standup", "--identity", "ada", "--name", "Ada Lovelace", "--ttl", "2h"]).unwrap();
        assert_eq!((c.iss.as_str(), c.sub.as_str(), c.name.as_deref()), ("k", "ada", Some("Ada Lovelace")));
        assert_eq!(c.exp, 1000 + 7200);
        assert!(c.video.room_join);
        assert_eq!(c.video.room.as_deref(), Some("standup"));
        assert_eq!(c.join("standup").unwrap().grants, sfu::Grants { publish: true, subscribe: true, publish_data: true });
    }

    #[test]
    fn grants_are_set_and_checked() {
        let c = claims_of(&["--room", "r", "--identity", "v", "--grant", "canPublish=false"]).unwrap();
        assert_eq!(c.join("r").unwrap().grants, sfu::Grants { publish: false, subscribe: true, publish_data: true });
        let c = claims_of(&["--grant", "roomList", "--grant", "roomAdmin"]).unwrap();
        assert!(c.list().is_ok());
        assert_eq!(c.sub, "admin");
        assert!(claims_of(&["--grant", "canFly"]).unwrap_err().contains("unknown grant"));
        assert!(claims_of(&["--grant", "roomList=maybe"]).unwrap_err().contains("true or false"));
        assert!(claims_of(&["--room", "r"]).unwrap_err().contains("--identity"));
        assert!(claims_of(&["--grant", "roomJoin"]).unwrap_err().contains("--room"));
        assert!(claims_of(&["--room", "no spaces", "--identity", "a"]).unwrap_err().contains("--room"));
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("90").unwrap(), 90);
        assert_eq!(parse_ttl("90s").unwrap(), 90);
        assert_eq!(parse_ttl("30m").unwrap(), 1800);
        assert_eq!(parse_ttl("6h").unwrap(), 21_600);
        assert_eq!(parse_ttl("2d").unwrap(), 172_800);
        for bad in ["", "0", "h", "-5m", "6w", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
