use super::*;

const KEY: &str = "APIkey1";
const SECRET: &str = "0123456789abcdef0123456789abcdef-secret";

fn keys() -> Keys {
    Keys::parse_pairs(&format!("{KEY}: {SECRET}, other: {}", "x".repeat(40))).unwrap()
}

fn claims(room: &str) -> Claims {
    Claims {
        iss: KEY.into(),
        sub: "ada".into(),
        name: Some("Ada".into()),
        nbf: Some(unix_now() - 5),
        exp: unix_now() + 3600,
        video: VideoGrant { room: Some(room.into()), room_join: true, ..VideoGrant::default() },
    }
}

fn b64(json: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

#[test]
fn a_valid_token_gives_its_claims_and_room_access() {
    let token = mint(&claims("standup"), SECRET).unwrap();
    let c = keys().verify(&token).unwrap();
    assert_eq!(c, claims("standup"));
    let access = c.join("standup").unwrap();
    assert_eq!(access.identity, "ada");
    assert_eq!(access.name.as_deref(), Some("Ada"));
    // Grants a token leaves out are allowed, as in LiveKit.
    assert_eq!(access.grants, sfu::Grants { publish: true, subscribe: true, publish_data: true });
}

#[test]
fn a_token_signed_with_another_secret_is_refused() {
    let token = mint(&claims("r"), &"y".repeat(40)).unwrap();
    assert_eq!(keys().verify(&token), Err(AuthError::Signature));
    // A payload changed after signing.
    let good = mint(&claims("r"), SECRET).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let mut c = claims("r");
    c.video.room_admin = true;
    let forged_payload = b64(&serde_json::to_string(&c).unwrap());
    let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    assert_eq!(keys().verify(&forged), Err(AuthError::Signature));
}

#[test]
fn alg_none_and_every_algorithm_but_hs256_are_refused() {
    let payload = b64(&serde_json::to_string(&claims("r")).unwrap());
    let none = format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#));
    assert_eq!(keys().verify(&none), Err(AuthError::Algorithm("none".into())));
    let none_upper = format!("{}.{payload}.", b64(r#"{"alg":"None"}"#));
    assert_eq!(keys().verify(&none_upper), Err(AuthError::Algorithm("None".into())));
    for alg in ["HS512", "HS384", "RS256", "ES256", "EdDSA"] {
        let t = format!("{}.{payload}.c2lnbmF0dXJl", b64(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)));
        assert_eq!(keys().verify(&t), Err(AuthError::Algorithm(alg.into())), "{alg}");
    }
    // A real HS512 token, signed with the right secret, is still refused.
    let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims("r"), &EncodingKey::from_secret(SECRET.as_bytes())).unwrap();
    assert_eq!(keys().verify(&hs512), Err(AuthError::Algorithm("HS512".into())));
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let mut c = claims("r");
    c.exp = unix_now() - 3600;
    assert_eq!(keys().verify(&mint(&c, SECRET).unwrap()), Err(AuthError::Expired));
    let mut c = claims("r");
    c.nbf = Some(unix_now() + 3600);
    assert_eq!(keys().verify(&mint(&c, SECRET).unwrap()), Err(AuthError::NotYetValid));
    // Within the leeway both pass: clocks differ a little.
    let mut c = claims("r");
    c.exp = unix_now() - LEEWAY_SECS / 2;
    c.nbf = Some(unix_now() + LEEWAY_SECS / 2);
    assert!(keys().verify(&mint(&c, SECRET).unwrap()).is_ok());
}

#[test]
fn unknown_keys_and_missing_claims_are_refused() {
    let mut c = claims("r");
    c.iss = "nobody".into();
    assert_eq!(keys().verify(&mint(&c, SECRET).unwrap()), Err(AuthError::UnknownKey("nobody".into())));
    // No exp at all.
    let no_exp = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"iss": KEY, "sub": "ada", "video": {"room": "r", "roomJoin": true}}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert!(matches!(keys().verify(&no_exp), Err(AuthError::Malformed(_))), "{:?}", keys().verify(&no_exp));
}

#[test]
fn malformed_tokens_get_a_clear_error() {
    assert_eq!(keys().verify(""), Err(AuthError::Missing));
    assert_eq!(keys().verify("  "), Err(AuthError::Missing));
    for bad in ["abc", "a.b", "a.b.c.d", "!!!.b.c", "e30.e30.", &format!("{}.e30.x", b64("[1]")), &"a".repeat(20_000)] {
        let e = keys().verify(bad).unwrap_err();
        assert!(matches!(e, AuthError::Malformed(_)), "{bad:.40}: {e:?}");
        assert!(e.to_string().starts_with("the access token is malformed"), "{e}");
    }
}

#[test]
fn join_needs_room_join_for_that_room_and_an_identity() {
    let mut c = claims("r");
    assert!(c.join("other").unwrap_err().to_string().contains(r#"for room "r", not "other""#));
    c.video.room_join = false;
    assert!(matches!(c.join("r"), Err(AuthError::Denied(_))));
    let mut c = claims("r");
    c.video.room = None;
    assert!(matches!(c.join("r"), Err(AuthError::Denied(_))));
    let mut c = claims("r");
    c.sub.clear();
    assert!(matches!(c.join("r"), Err(AuthError::Denied(_))));
    let mut c = claims("r");
    c.video.can_publish = Some(false);
    c.video.can_publish_data = Some(false);
    let access = c.join("r").unwrap();
    assert_eq!(access.grants, sfu::Grants { publish: false, subscribe: true, publish_data: false });
    let mut c = claims("r");
    c.video.can_subscribe = Some(false);
    assert_eq!(c.join("r").unwrap().grants, sfu::Grants { publish: true, subscribe: false, publish_data: true });
}

#[test]
fn list_needs_room_list_or_server_wide_room_admin() {
    let mut c = claims("r");
    assert!(c.list().is_err());
    c.video.room_admin = true;
    assert!(c.list().is_err(), "roomAdmin of one room does not list the server");
    c.video.room = None;
    assert!(c.list().is_ok());
    let mut c = claims("r");
    c.video.room_list = true;
    assert!(c.list().is_ok());
}

#[test]
fn a_token_as_livekit_sdks_mint_it_is_accepted() {
    // The claims of livekit-server-sdk's AccessToken.toJwt(): extra grants and claims confab
    // does not use are ignored.
    let json = serde_json::json!({
        "iss": KEY, "sub": "bob", "name": "Bob", "nbf": unix_now() - 1, "exp": unix_now() + 600,
        "jti": "bob", "metadata": "", "sha256": "",
        "video": {"room": "standup", "roomJoin": true, "canPublish": true, "canSubscribe": true,
                  "canPublishData": true, "canPublishSources": ["camera"], "hidden": false, "recorder": false},
        "kind": "standard"
    });
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &json, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap();
    let access = keys().verify(&token).unwrap().join("standup").unwrap();
    assert_eq!(access.identity, "bob");
}

#[test]
fn keys_are_parsed_from_pairs_and_short_secrets_refused() {
    let k = Keys::parse_pairs("a: 0123456789012345678901234567890123\nb:0123456789012345678901234567890123").unwrap();
    assert_eq!(k.names().collect::<Vec<_>>(), ["a", "b"]);
    assert!(k.enabled());
    assert!(!Keys::parse_pairs("").unwrap().enabled());
    let e = Keys::parse_pairs("a: short").unwrap_err();
    assert!(e.contains("at least 32"), "{e}");
    let e = Keys::parse_pairs("averylongsecretwithoutakey0123456789").unwrap_err();
    assert!(!e.contains("secretwithout"), "a malformed pair is not echoed whole: {e}");
    // Debug output never shows a secret.
    assert!(!format!("{k:?}").contains("0123456789"));
}
