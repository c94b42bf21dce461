//! Certificates made at test time with rcgen, shared by the TLS tests
//! (nothing committed that could expire).
#![allow(dead_code)]

use crate::common::{default_timeout, spawn_cmd, tmp_dir, which, Input, Proc, Stream};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::PathBuf;
use std::process::Command;

/// PEM files in a directory of their own: `ca.pem`, `server.pem` +
/// `server.key` (localhost, 127.0.0.1), `client.pem` + `client.key`,
/// `other-ca.pem` (a CA that signed nothing here), `elsewhere.pem` +
/// `elsewhere.key` (signed by the CA, for another name) and `expired.pem` +
/// `expired.key` (valid in 2000 only).
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn new(name: &str) -> Certs {
        let dir = tmp_dir(&format!("tls-{name}"));
        let ca_params = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, name);
            p
        };
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params("sockflow test CA").self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params("sockflow test CA"), ca_key);
        let write = |f: &str, text: String| std::fs::write(dir.join(f), text).unwrap();
        write("ca.pem", ca_cert.pem());
        let other_key = KeyPair::generate().unwrap();
        write("other-ca.pem", ca_params("another CA").self_signed(&other_key).unwrap().pem());
        let leaf = |file: &str, names: &[&str]| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
            if file == "expired" {
                (params.not_before, params.not_after) = (rcgen::date_time_ymd(2000, 1, 1), rcgen::date_time_ymd(2001, 1, 1));
            }
            let cert = params.signed_by(&key, &issuer).unwrap();
            write(&format!("{file}.pem"), cert.pem());
            write(&format!("{file}.key"), key.serialize_pem());
        };
        leaf("server", &["localhost", "127.0.0.1"]);
        leaf("client", &["sockflow test client"]);
        leaf("elsewhere", &["elsewhere.test"]);
        leaf("expired", &["localhost", "127.0.0.1"]);
        Certs { dir }
    }

    pub fn path(&self, f: &str) -> String {
        self.dir.join(f).to_string_lossy().into_owned()
    }
}

/// `openssl s_server -rev` (each line sent back reversed) on a free
/// loopback port, with `extra` options; returns it and the port.
pub fn openssl_server(c: &Certs, cert: &str, extra: &[&str]) -> (Proc, u16) {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-accept", "127.0.0.1:0", "-rev", "-cert"])
        .arg(c.path(&format!("{cert}.pem")))
        .arg("-key")
        .arg(c.path(&format!("{cert}.key")))
        .args(extra);
    let p = spawn_cmd(cmd, Input::Piped);
    let l = p.wait_for_line_matching(Stream::Stdout, |l| l.starts_with("ACCEPT "), "openssl's ACCEPT line", default_timeout());
    let port = l.rsplit(':').next().unwrap().trim().parse().unwrap();
    (p, port)
}

pub fn has_openssl() -> bool {
    which("openssl").is_some()
}
