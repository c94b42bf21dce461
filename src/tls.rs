//! TLS (rustls, ring provider): the options a command line or a program
//! gives, the configurations built from them, and the errors.
//!
//! Files are read when the options are checked ([`TlsArgs::check`], at
//! parse time) so a bad certificate or key is a usage error naming the file
//! before anything starts, and read again when a config is built (the files
//! are small; this keeps [`TlsArgs`] plain data that C can fill too).
//!
//! Verification is never off: a client trusts the system roots, or the CA
//! file it was given instead, and checks the host name it connected to.

pub mod stream;

use crate::error::{Code, Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::sync::Arc;
use std::time::Duration;

/// How long a handshake may take when the caller set no timeout: a peer
/// that stalls mid-handshake is dropped after this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest path accepted for a TLS file (C holds it in a fixed field).
pub const PATH_MAX: usize = 1023;

/// The TLS part of a command line (or of `sockflow_args`): file paths.
/// All empty = plaintext.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsArgs {
    /// `--tls` (clients): encrypt, verifying the server against the system
    /// roots (or `ca`). Implied by any other client TLS option.
    pub enabled: bool,
    /// `--tls-ca FILE` (clients): trust this CA instead of the system roots.
    pub ca: String,
    /// `--tls-cert FILE`: the certificate chain presented (a server's own;
    /// a client's for client authentication).
    pub cert: String,
    /// `--tls-key FILE`: the private key of `cert`.
    pub key: String,
    /// `--tls-client-ca FILE` (servers): require a client certificate
    /// signed by this CA.
    pub client_ca: String,
}

/// Which end of a connection a configuration is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

impl TlsArgs {
    /// True when connections are to be encrypted.
    pub fn on(&self, side: Side) -> bool {
        match side {
            Side::Server => !self.cert.is_empty(),
            Side::Client => self.enabled || !self.ca.is_empty() || !self.cert.is_empty(),
        }
    }

    /// Checks the combination and loads every file once, so a mistake is
    /// reported (as `Usage`, naming the file) before anything starts.
    pub fn check(&self, side: Side) -> Result<()> {
        self.check_options(side)?;
        if !self.on(side) {
            return Ok(());
        }
        match side {
            Side::Server => self.server_config().map(drop),
            Side::Client => self.client_config().map(drop),
        }
        .map_err(|e| Error::new(Code::Usage, e.msg))
    }

    /// [`check`](TlsArgs::check) without reading the files: the
    /// combination and the lengths only.
    pub fn check_options(&self, side: Side) -> Result<()> {
        let usage = |m: &str| Err(Error::new(Code::Usage, m));
        if [&self.ca, &self.cert, &self.key, &self.client_ca].iter().any(|p| p.len() > PATH_MAX) {
            return Err(Error::new(Code::Usage, format!("a TLS file path is longer than {PATH_MAX} bytes")));
        }
        if self.cert.is_empty() != self.key.is_empty() {
            return usage("--tls-cert and --tls-key go together");
        }
        match side {
            Side::Server if !self.ca.is_empty() || self.enabled => {
                return usage("--tls and --tls-ca are client options (a server takes --tls-cert/--tls-key)")
            }
            Side::Server if !self.client_ca.is_empty() && self.cert.is_empty() => {
                return usage("--tls-client-ca needs --tls-cert and --tls-key")
            }
            Side::Client if !self.client_ca.is_empty() => return usage("--tls-client-ca is a server option"),
            _ => {}
        }
        Ok(())
    }

    /// For the UDP flows, which have no TLS: a TLS option there is a usage
    /// error rather than plaintext the user did not ask for.
    pub fn refuse(&self, side: Side) -> Result<()> {
        match self.on(side) || !self.client_ca.is_empty() {
            true => Err(Error::new(Code::Usage, "TLS is for TCP: UDP takes no --tls options")),
            false => Ok(()),
        }
    }

    /// The server's configuration (with client authentication when
    /// `client_ca` is set).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>> {
        let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(tls_setup)?;
        let builder = if self.client_ca.is_empty() {
            builder.with_no_client_auth()
        } else {
            let roots = Arc::new(roots_from(&self.client_ca)?);
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| Error::new(Code::Tls, format!("{}: {e}", self.client_ca)))?;
            builder.with_client_cert_verifier(v)
        };
        let (chain, key) = self.identity()?;
        let cfg = builder.with_single_cert(chain, key).map_err(|e| Error::new(Code::Tls, format!("{} / {}: {e}", self.cert, self.key)))?;
        Ok(Arc::new(cfg))
    }

    /// The client's configuration: the system roots, or `ca` instead; a
    /// client certificate when `cert` is set.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>> {
        let roots = if self.ca.is_empty() { system_roots()? } else { roots_from(&self.ca)? };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_setup)?
            .with_root_certificates(roots);
        let cfg = if self.cert.is_empty() {
            builder.with_no_client_auth()
        } else {
            let (chain, key) = self.identity()?;
            builder.with_client_auth_cert(chain, key).map_err(|e| Error::new(Code::Tls, format!("{} / {}: {e}", self.cert, self.key)))?
        };
        Ok(Arc::new(cfg))
    }

    fn identity(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let chain = certs_from(&self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| pem_error(&self.key, "private key", e))?;
        Ok((chain, key))
    }
}

/// A started connection's TLS side: the configuration and, for a client,
/// the name the server must prove (also sent as SNI).
#[derive(Clone, Debug)]
pub enum Setup {
    Server(Arc<ServerConfig>),
    Client(Arc<ClientConfig>, ServerName<'static>),
}

impl Setup {
    /// A client's setup for `host` as given on the command line.
    pub fn client(a: &TlsArgs, host: &str) -> Result<Setup> {
        Setup::named(a.client_config()?, host)
    }

    /// A client's setup with `cfg` for `host`. A local (`unix:`) socket
    /// has no host name to verify: its server proves `localhost`, the name
    /// a local service's certificate carries.
    pub fn named(cfg: Arc<ClientConfig>, host: &str) -> Result<Setup> {
        let host = if host.starts_with(crate::unix::PREFIX) { "localhost" } else { crate::net::strip_brackets(host) };
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| Error::new(Code::Usage, format!("tls: host \"{host}\" is not a valid server name: {e}")))?;
        Ok(Setup::Client(cfg, name))
    }

    /// A new connection's state machine.
    pub fn connection(&self) -> Result<rustls::Connection> {
        match self {
            Setup::Server(c) => rustls::ServerConnection::new(c.clone()).map(Into::into),
            Setup::Client(c, name) => rustls::ClientConnection::new(c.clone(), name.clone()).map(Into::into),
        }
        .map_err(tls_setup)
    }
}

/// Client configurations, each built once per distinct [`TlsArgs`]: a
/// loop that opens many TLS connections with the same options (a proxy,
/// one per client) reads their files and the system roots once, not per
/// connection. A file changed later is not read again by this cache (a new
/// server has a new one). At most `KEEP_CLIENT_CONFIGS` (16) are kept:
/// past that the oldest is built again when asked for.
#[derive(Default)]
pub struct ClientConfigs(std::sync::Mutex<Vec<(TlsArgs, Arc<ClientConfig>)>>);

const KEEP_CLIENT_CONFIGS: usize = 16;

impl ClientConfigs {
    /// The configuration for `a`, built now if it is not kept yet.
    pub fn get(&self, a: &TlsArgs) -> Result<Arc<ClientConfig>> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, cfg)) = kept.iter().find(|(k, _)| k == a) {
            return Ok(cfg.clone());
        }
        a.check_options(Side::Client)?;
        let cfg = a.client_config()?;
        if kept.len() >= KEEP_CLIENT_CONFIGS {
            kept.remove(0);
        }
        kept.push((a.clone(), cfg.clone()));
        Ok(cfg)
    }
}

/// The one provider: ring (no OpenSSL, builds with the C compiler here).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_setup(e: rustls::Error) -> Error {
    Error::new(Code::Tls, format!("tls setup: {e}"))
}

/// `tls handshake with 127.0.0.1:5000: invalid peer certificate: UnknownIssuer`.
///
/// One failure gets a hint: a self-signed certificate made with a bare
/// `openssl req -x509` is marked as a CA, and webpki (unlike OpenSSL)
/// refuses a CA certificate as the server's own even when it is the one
/// trusted with `--tls-ca`; the fix is one flag when making it.
pub fn handshake_error(peer: &str, e: &rustls::Error) -> Error {
    let hint = match e {
        rustls::Error::InvalidCertificate(c) if format!("{c:?}").contains("CaUsedAsEndEntity") => {
            " (the peer's certificate is a CA certificate: make a self-signed one with \
             `-addext basicConstraints=critical,CA:FALSE`, or sign it with a CA)"
        }
        _ => "",
    };
    Error::new(Code::Tls, format!("tls handshake with {peer}: {e}{hint}"))
}

fn pem_error(file: &str, what: &str, e: rustls::pki_types::pem::Error) -> Error {
    use rustls::pki_types::pem::Error as P;
    let why = match e {
        P::Io(e) => e.to_string(),
        P::NoItemsFound => format!("no {what} in PEM form found"),
        other => format!("not a valid PEM file ({other:?})"),
    };
    Error::new(Code::Tls, format!("{file}: {why}"))
}

fn certs_from(file: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(|e| pem_error(file, "certificate", e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error(file, "certificate", e))?;
    if certs.is_empty() {
        return Err(pem_error(file, "certificate", rustls::pki_types::pem::Error::NoItemsFound));
    }
    Ok(certs)
}

fn roots_from(file: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in certs_from(file)? {
        roots.add(c).map_err(|e| Error::new(Code::Tls, format!("{file}: not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(Error::new(Code::Tls, "tls: no system root certificates found (give the server's CA with --tls-ca FILE)"));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_are_checked() {
        let t = |cert: &str, key: &str| TlsArgs { cert: cert.into(), key: key.into(), ..TlsArgs::default() };
        assert!(TlsArgs::default().check(Side::Server).is_ok());
        assert_eq!(t("c.pem", "").check(Side::Server).unwrap_err().code, Code::Usage);
        let e = t("/nonexistent/c.pem", "/nonexistent/k.pem").check(Side::Server).unwrap_err();
        assert_eq!(e.code, Code::Usage);
        assert!(e.msg.starts_with("/nonexistent/c.pem: "), "{}", e.msg);
        let e = TlsArgs { ca: "/dev/null".into(), ..TlsArgs::default() }.check(Side::Client).unwrap_err();
        assert_eq!(e.msg, "/dev/null: no certificate in PEM form found");
    }
}
