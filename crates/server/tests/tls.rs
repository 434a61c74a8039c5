//! HTTPS and WSS on the HTTP port with the operator's certificate (`--tls-cert`/`--tls-key`),
//! checked by a rustls client that trusts only that certificate; and the settings' errors.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

mod common;


async fn connect(addr: &str, root: &rustls_pki_types::CertificateDer<'static>) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("a TLS handshake with the configured certificate")
}

#[tokio::test]
async fn the_http_port_serves_https_and_wss_with_the_configured_certificate() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!("confab-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, common::pem("CERTIFICATE", made.cert.der())).unwrap();
    std::fs::write(&key, common::pem("PRIVATE KEY", &made.signing_key.serialize_der())).unwrap();
    let (_server, _out, banner) = common::server_banner(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let line = banner.iter().find(|l| l.contains("https://127.0.0.1:")).unwrap_or_else(|| panic!("no https URL in {banner:?}"));
    let addr = line.split("https://").nth(1).unwrap().split('/').next().unwrap().to_string();
    let root = made.cert.der().clone();

    // HTTPS.
    let mut tls = connect(&addr, &root).await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    tls.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("ok\n"), "{reply}");

    // WSS: a join over the same TLS.
    let tls = connect(&addr, &root).await;
    let (mut ws, _) = tokio_tungstenite::client_async(format!("wss://localhost:{}/ws", addr.rsplit(':').next().unwrap()), tls).await.unwrap();
    ws.send(Message::Text(r#"{"type":"join","room":"tls","name":"Sec"}"#.into())).await.unwrap();
    let Some(Ok(Message::Text(joined))) = ws.next().await else { panic!("no reply") };
    assert!(joined.contains(r#""type":"joined""#), "{joined}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = common::http(&format!("http://{addr}"), "GET", "/healthz", &[], b"");
    assert_eq!(plain.status, 0, "{:?}", plain.body);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn tls_settings_that_do_not_fit_are_errors() {
    for (args, says) in [
        (&["--tls-cert", "/tmp/c.pem"][..], "--tls-key"),
        (&["--tls-self-signed", "--tls-cert", "/tmp/c.pem", "--tls-key", "/tmp/k.pem"][..], "--tls-cert"),
        (&["--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem", "--http", "127.0.0.1:0", "--no-turn"][..], "/nonexistent/c.pem"),
    ] {
        let out = common::confab().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // --tls-self-signed: the banner prints https and the certificate's fingerprint.
    let (_server, _out, banner) = common::server_banner(&["--tls-self-signed"]);
    assert!(banner.iter().any(|l| l.contains("https://127.0.0.1:")), "{banner:?}");
    assert!(banner.iter().any(|l| l.contains("self-signed") && l.contains("SHA-256 ")), "{banner:?}");
}
