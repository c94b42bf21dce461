//! `tls_echo` and `tls_handshake`: sockflow's echo_server with
//! `--tls-cert/--tls-key` (the sockflow column) against the same program
//! in plaintext (the baseline column: *plaintext sockflow*, not epoll C),
//! both loaded by the same generator (`gen::tls`), which speaks rustls to
//! the first and plain TCP to the second. The ratio is therefore what TLS
//! costs sockflow's server.
//!
//! The certificates (a CA and a leaf for `localhost`, made with rcgen) are
//! written at the start into a temporary directory of their own and
//! removed when the scenarios are done (or the bench panics).

use super::load::{self, Contender, Load, Spec};
use super::Ctx;
use crate::binaries::{Impl, Mode};
use crate::gen::tls::Link;
use crate::report::Row;
use crate::server::Server;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use sockflow::tls::TlsArgs;
use std::path::PathBuf;

pub const SPECS: &[Spec] = &[
    Spec {
        id: "tls_echo",
        label: "TLS lock-step echo, 16 conns / plaintext sockflow",
        mode: Mode::Line,
        load: Load::LinkEcho { conns: 16, size: 64 },
        targets: [None, None],
        gen_threads: None,
    },
    Spec {
        id: "tls_handshake",
        label: "TLS handshake+echo+close, 16 / plaintext sockflow",
        mode: Mode::Line,
        load: Load::LinkChurn { parallel: 16, size: 64 },
        targets: [None, None],
        gen_threads: None,
    },
];

/// `ca.pem`, `server.pem`, `server.key` in a directory removed on drop.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make() -> Result<Certs, String> {
        let dir = std::env::temp_dir().join(format!("sockflow-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let certs = Certs { dir };
        let ca_params = || -> Result<CertificateParams, rcgen::Error> {
            let mut p = CertificateParams::new(Vec::<String>::new())?;
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, "sockflow bench CA");
            Ok(p)
        };
        let rc = |e: rcgen::Error| format!("rcgen: {e}");
        let ca_key = KeyPair::generate().map_err(rc)?;
        let ca = ca_params().and_then(|p| p.self_signed(&ca_key)).map_err(rc)?;
        let issuer = Issuer::new(ca_params().map_err(rc)?, ca_key);
        let key = KeyPair::generate().map_err(rc)?;
        let leaf = CertificateParams::new(vec!["localhost".to_string()]).and_then(|p| p.signed_by(&key, &issuer)).map_err(rc)?;
        for (f, text) in [("ca.pem", ca.pem()), ("server.pem", leaf.pem()), ("server.key", key.serialize_pem())] {
            std::fs::write(certs.dir.join(f), text).map_err(|e| format!("write {f}: {e}"))?;
        }
        Ok(certs)
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).to_string_lossy().into_owned()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the selected `tls_*` scenarios (none selected: nothing, not even
/// the certificates).
pub fn run(ctx: &mut Ctx<'_>) -> Vec<Row> {
    let specs: Vec<&Spec> = SPECS.iter().filter(|s| ctx.cfg.wants(s.id)).collect();
    if specs.is_empty() {
        return Vec::new();
    }
    let ready = Certs::make().and_then(|c| {
        let client = TlsArgs { ca: c.path("ca.pem"), ..TlsArgs::default() }.client_config().map_err(|e| e.to_string())?;
        Ok((c, client))
    });
    let (certs, client) = match ready {
        Ok(r) => r,
        Err(e) => {
            ctx.note(format!("tls_echo, tls_handshake skipped: no certificates ({e})"));
            return Vec::new();
        }
    };
    let (exe, plain_args) = ctx.bins.server(Impl::Sockflow, Mode::Line, None).unwrap_or_else(|e| panic!("sockflow: {e}"));
    let mut tls_args = plain_args.clone();
    let port = tls_args.pop().expect("the port is the last argument");
    tls_args.extend(["--tls-cert".into(), certs.path("server.pem"), "--tls-key".into(), certs.path("server.key"), port]);
    let tls = || Server::spawn("sockflow TLS", &exe, &tls_args);
    let plain = || Server::spawn("sockflow", &exe, &plain_args);
    let (tls_link, plain_link) = (Link::Tls(client), Link::Plain);
    let servers: [Contender<'_>; 2] = [(Impl::Sockflow, "TLS", &tls, &tls_link), (Impl::Epoll, "plaintext", &plain, &plain_link)];
    ctx.note(
        "tls_echo, tls_handshake: the sockflow column is echo_server with --tls-cert/--tls-key (rustls client in the generator), \
         the baseline column the same echo_server in plaintext: ratio = TLS / plaintext sockflow (not vs epoll C)",
    );
    let threads = ctx.cfg.gen_threads;
    specs.into_iter().flat_map(|s| load::rounds(ctx, s, s.label, &servers, threads)).collect()
}
