//! Webhooks from a real `confab`: a participant joins and leaves, and a receiver on loopback (over
//! HTTP, and over HTTPS checked against the roots of SSL_CERT_FILE)
//! gets room_started, participant_joined, participant_left and room_finished, each signed (a JWT
//! of the key, whose sha256 claim is the body's digest); a 500 is retried.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

mod common;

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

const KEY: &str = "hookkey";
const SECRET: &str = "a-webhook-secret-of-at-least-thirty-two-chars";

/// (Authorization, body) of every request received; the first is answered 500.
type Received = Arc<Mutex<Vec<(String, String)>>>;

async fn receiver() -> (String, Received) {
    receiver_on(None).await
}

/// A receiver; over TLS with `tls`, at `https://localhost:PORT/...`.
async fn receiver_on(tls: Option<tokio_rustls::TlsAcceptor>) -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = if tls.is_some() { format!("https://localhost:{port}/hooks/confab") } else { format!("http://127.0.0.1:{port}/hooks/confab") };
    let received: Received = Arc::default();
    let log = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let mut s: Box<dyn Stream> = match &tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(t) => Box::new(t),
                    Err(_) => continue,
                },
                None => Box::new(tcp),
            };
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then Content-Length bytes of body.
            let (head, mut body) = loop {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (String::from_utf8_lossy(&raw[..at]).to_string(), raw[at + 4..].to_vec());
                }
            };
            let len: usize = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())).unwrap_or(0);
            while body.len() < len {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            assert!(head.starts_with("POST /hooks/confab HTTP/1.1"), "{head}");
            let auth = head.lines().find_map(|l| l.strip_prefix("authorization: ").or_else(|| l.strip_prefix("Authorization: "))).unwrap_or("").to_string();
            let first = {
                let mut r = log.lock().unwrap();
                r.push((auth, String::from_utf8(body).unwrap()));
                r.len() == 1
            };
            let status = if first { "500 Internal Server Error" } else { "200 OK" };
            let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).await;
        }
    });
    (url, received)
}

#[tokio::test]
async fn room_events_are_posted_signed_and_retried() {
    let (url, received) = receiver().await;
    let (_server, _out, base) = common::server(&["--keys", &format!("{KEY}: {SECRET}"), "--webhook", &url]);
    let token = {
        let claims = serde_json::json!({"iss": KEY, "sub": "ada", "exp": 4102444800u64, "video": {"room": "hooked", "roomJoin": true}});
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
    };
    let mut ws = tokio_tungstenite::connect_async(format!("{}/ws", base.replacen("http://", "ws://", 1))).await.unwrap().0;
    let join = serde_json::json!({"type": "join", "room": "hooked", "name": "Ada", "token": token});
    ws.send(Message::Text(join.to_string().into())).await.unwrap();
    let Some(Ok(Message::Text(joined))) = ws.next().await else { panic!() };
    assert!(joined.contains("\"joined\""), "{joined}");
    ws.send(Message::Text(r#"{"type":"leave"}"#.into())).await.unwrap();

    // Four events, one of them twice (the 500, then its retry a second later).
    let deadline = Instant::now() + Duration::from_secs(15);
    let events = loop {
        let got = received.lock().unwrap().clone();
        let events: Vec<serde_json::Value> = got.iter().map(|(_, b)| serde_json::from_str(b).unwrap()).collect();
        let names: std::collections::BTreeSet<String> = events.iter().map(|e| e["event"].as_str().unwrap().to_string()).collect();
        if names.len() == 4 && got.len() == 5 {
            break got;
        }
        assert!(Instant::now() < deadline, "received {:?}", events.iter().map(|e| e["event"].clone()).collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut names: Vec<String> = Vec::new();
    for (auth, body) in &events {
        let e: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(e["room"]["name"], "hooked", "{e}");
        names.push(e["event"].as_str().unwrap().to_string());
        // The signature: a JWT of the key over the body's SHA-256.
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(auth, &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()), &validation)
            .unwrap_or_else(|err| panic!("{err}: {auth:?}"))
            .claims;
        assert_eq!(claims["iss"], KEY);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes());
        assert_eq!(claims["sha256"], base64::engine::general_purpose::STANDARD.encode(digest.as_ref()));
        let wrong = jsonwebtoken::DecodingKey::from_secret(b"another-secret-another-secret-another");
        assert!(jsonwebtoken::decode::<serde_json::Value>(auth, &wrong, &validation).is_err());
    }
    // Deliveries run side by side: whichever came first got the 500, and came again.
    assert_eq!(names.iter().filter(|n| **n == names[0]).count(), 2, "the first delivery got a 500 and was retried: {names:?}");
    for n in ["room_started", "participant_joined", "participant_left", "room_finished"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    let joined: serde_json::Value = events.iter().map(|(_, b)| serde_json::from_str::<serde_json::Value>(b).unwrap()).find(|e| e["event"] == "participant_joined").unwrap();
    assert_eq!(joined["participant"]["name"], "Ada");
}

#[test]
fn webhooks_need_api_keys_and_http_or_https_urls() {
    let out = common::confab().args(["--webhook", "http://127.0.0.1:9/x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--keys"));
    let out = common::confab().args(["--webhook", "ftp://x/"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("http(s)://"));
}

#[tokio::test]
async fn an_https_receiver_is_checked_against_the_root_certificates() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(rustls_pki_types::PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .unwrap();
    let (url, received) = receiver_on(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await;
    // The receiver's certificate is the only root confab trusts here (SSL_CERT_FILE).
    let roots = std::env::temp_dir().join(format!("confab-hook-roots-{}.pem", std::process::id()));
    std::fs::write(&roots, common::pem("CERTIFICATE", made.cert.der())).unwrap();
    let keys = format!("{KEY}: {SECRET}");
    let (_server, _out, banner) = common::server_banner_env(&["--keys", &keys, "--webhook", &url], &[("SSL_CERT_FILE", roots.to_str().unwrap())]);
    let base = common::url_of(&banner);
    let token = {
        let claims = serde_json::json!({"iss": KEY, "sub": "tls", "exp": 4102444800u64, "video": {"room": "secure-hooks", "roomJoin": true}});
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
    };
    let mut ws = tokio_tungstenite::connect_async(format!("{}/ws", base.replacen("http://", "ws://", 1))).await.unwrap().0;
    let join = serde_json::json!({"type": "join", "room": "secure-hooks", "name": "T", "token": token});
    ws.send(Message::Text(join.to_string().into())).await.unwrap();
    // room_started and participant_joined, the first of them twice (500, then 200).
    let deadline = Instant::now() + Duration::from_secs(15);
    while received.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "received over HTTPS: {:?}", received.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(received.lock().unwrap().iter().all(|(_, b)| b.contains("secure-hooks")));
    std::fs::remove_file(roots).ok();
}
