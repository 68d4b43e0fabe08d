//! TLS for `rediss://`: the rustls client configuration a connection uses.
//!
//! rustls (with the `ring` provider) through `futures-rustls`, which wraps any futures-io
//! stream — glommio's `TcpStream` is one — so TLS needs no runtime either. Trusted roots are
//! the system's (`rustls-native-certs`) plus, optionally, a PEM file of private CAs. The
//! configuration is built once per connection handle (reading the system roots is file IO)
//! and shared by its reconnections.

use std::path::Path;
use std::sync::Arc;

use futures_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use futures_rustls::rustls::crypto::{self, CryptoProvider};
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use futures_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};

use super::config::RedisConfig;
use super::error::Error;

/// The rustls client configuration for `config` (which must have `tls` set).
pub(super) fn client_config(config: &RedisConfig) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    let tls = if config.tls_insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(roots(config.tls_ca_file.as_deref())?)
            .with_no_client_auth()
    };
    Ok(Arc::new(tls))
}

/// The name the server's certificate must carry: the configured host (an IP address is
/// checked against the certificate's IP entries).
pub(super) fn server_name(config: &RedisConfig) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(config.host.clone())
        .map_err(|e| Error::Config(format!("TLS: bad server name {:?}: {e}", config.host)))
}

/// The system's trusted roots, plus the certificates in `ca_file`.
fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: a private CA file may be all we need.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| Error::Config(format!("TLS: cannot read {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "TLS: no certificate in {}",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| Error::Config(format!("TLS: {}: {e}", path.display())))?;
        }
    }
    if roots.is_empty() {
        return Err(Error::Config(
            "TLS: no trusted root certificate (none in the system store, no CA file)".to_owned(),
        ));
    }
    Ok(roots)
}

/// `rediss://...#insecure`: any certificate, any name. Signatures are still checked, so the
/// handshake is real; only who the server is goes unverified.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
