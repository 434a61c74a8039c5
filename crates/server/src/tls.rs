//! TLS: HTTPS and WSS on the HTTP port (`--tls-cert`/`--tls-key`, or `--tls-self-signed`), and
//! the acceptor TURN over TLS uses. rustls on the aws-lc-rs crypto already in the tree; a
//! self-signed certificate is made by rcgen (also already in the tree, through str0m).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::error::Error;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the HTTP server to take them.
const READY_QUEUE: usize = 64;

/// An acceptor with the certificate chain and key of these PEM files.
pub(crate) fn acceptor_from_pem(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<TlsAcceptor, Error> {
    use rustls_pki_types::pem::PemObject;
    let bad = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("{what}: {e}"));
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(&format!("--tls-cert {}", cert.display()), &e))?;
    if chain.is_empty() {
        return Err(Error::Config(format!("--tls-cert {}: no certificate in it", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(&format!("--tls-key {}", key.display()), &e))?;
    acceptor(chain, key, alpn).map_err(|e| bad("--tls-cert/--tls-key", &e))
}

/// An acceptor with a new self-signed certificate for `names` (DNS names and IP addresses),
/// and the certificate's SHA-256 fingerprint (to compare with what a browser shows).
pub(crate) fn self_signed(names: Vec<String>, alpn: &[&[u8]]) -> Result<(TlsAcceptor, String), Error> {
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| Error::Config(format!("--tls-self-signed: {e}")))?;
    let der = made.cert.der().clone();
    let fingerprint = {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
        digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let acceptor = acceptor(vec![der], key, alpn).map_err(|e| Error::Config(format!("--tls-self-signed: {e}")))?;
    Ok((acceptor, fingerprint))
}

/// The names a self-signed certificate is made for: localhost, the host's name, and the
/// addresses of its interfaces.
pub(crate) fn machine_names(ips: &[IpAddr]) -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_string());
        }
    }
    names.extend(ips.iter().map(IpAddr::to_string));
    names
}

fn acceptor(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>, alpn: &[&[u8]]) -> Result<TlsAcceptor, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A listener of TLS connections for `axum::serve`: a task accepts TCP connections and runs each
/// handshake in a task of its own (a slow or silent client holds up nobody), and the server
/// takes the connections whose handshake succeeded.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub(crate) fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!("HTTPS accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accepting task is gone (it never ends on its own): serve nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
