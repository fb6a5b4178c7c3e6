//! A real SMTP server for tests: aiosmtpd (`tests/smtp_server.py`, from the
//! project's virtualenv) on an ephemeral 127.0.0.1 port, with STARTTLS and
//! AUTH required, its certificate issued at start by a throw-away CA that the
//! functions trust through `SMTP_TLS_CA_FILE`. Delivered messages are read
//! back and parsed; the server is stopped by its PID on drop.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::Value;

use crate::moto::{free_port, venv_bin};

/// The vermont sample's SMTP password.
pub const PASSWORD: &str = "smtp-pass-vermont-0123";

/// A message the server accepted, as the tests check it.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The SMTP envelope.
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The AUTH login used, and whether the session was under TLS.
    pub login: Option<String>,
    pub tls: bool,
    /// Headers and parts.
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts a server accepting `user` / `password`.
    pub fn start(user: &str, password: &str) -> SmtpServer {
        Self::start_on(free_port(), user, password)
    }

    /// Starts a server on `port` (a server coming back where one was down).
    pub fn start_on(port: u16, user: &str, password: &str) -> SmtpServer {
        Self::launch(port, user, password, false)
    }

    /// Starts a server that offers no STARTTLS and would take a password in
    /// plain text (see [`SmtpServer::auth_attempts`]).
    pub fn start_plain(user: &str, password: &str) -> SmtpServer {
        Self::launch(free_port(), user, password, true)
    }

    fn launch(port: u16, user: &str, password: &str, plain: bool) -> SmtpServer {
        let dir = tempfile::tempdir().expect("smtp: temp dir");
        let (ca, cert, key) = certificates();
        std::fs::write(dir.path().join("ca.pem"), ca).expect("smtp: write CA");
        std::fs::write(dir.path().join("cert.pem"), cert).expect("smtp: write cert");
        std::fs::write(dir.path().join("key.pem"), key).expect("smtp: write key");
        let mail = dir.path().join("mail");
        std::fs::create_dir(&mail).expect("smtp: mail dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_server.py");
        let mut child = Command::new(venv_bin("python"))
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path().join("cert.pem"))
            .arg(dir.path().join("key.pem"))
            .args([user, password])
            .arg(&mail)
            .args(plain.then_some("plain"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python from the virtualenv (run `make venv`)");
        let stdout = child.stdout.take().expect("smtp: stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let server = SmtpServer { child, port, dir };
        assert!(
            read.is_ok() && line.trim() == "READY",
            "aiosmtpd did not start (is aiosmtpd in the virtualenv?)"
        );
        server
    }

    /// The file that makes the functions trust this server (`SMTP_TLS_CA_FILE`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// How many AUTH commands the server has seen (each records whether it
    /// came under TLS).
    pub fn auth_attempts(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("mail").join("auth.log"))
            .map(|log| log.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Every message delivered so far, in order.
    pub fn messages(&self) -> Vec<Delivered> {
        let mail = self.dir.path().join("mail");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&mail)
            .expect("smtp: mail dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names.iter().map(|path| read_message(path)).collect()
    }

    /// Waits until at least `n` messages arrived (up to 10 s) and returns all.
    pub async fn wait_for(&self, n: usize) -> Vec<Delivered> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_message(path: &Path) -> Delivered {
    let raw = std::fs::read(path).expect("smtp: message");
    let meta: Value = serde_json::from_slice(
        &std::fs::read(path.with_extension("json")).expect("smtp: envelope"),
    )
    .expect("smtp: envelope JSON");
    let message = MessageParser::default()
        .parse(&raw)
        .expect("a parsable message");
    let addresses = |list: Option<&mail_parser::Address>| -> Vec<String> {
        list.map(|a| {
            a.iter()
                .filter_map(|addr| addr.address().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
    };
    let attachments = message
        .attachments()
        .map(|part| Attachment {
            name: part.attachment_name().unwrap_or("").to_string(),
            content_type: part
                .content_type()
                .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")))
                .unwrap_or_default(),
            bytes: part.contents().to_vec(),
        })
        .collect();
    Delivered {
        mail_from: meta["mail_from"].as_str().unwrap_or("").to_string(),
        rcpt_tos: meta["rcpt_tos"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        login: meta["login"].as_str().map(str::to_string),
        tls: meta["tls"].as_bool().unwrap_or(false),
        from: addresses(message.from()).join(", "),
        to: addresses(message.to()),
        subject: message.subject().unwrap_or("").to_string(),
        body: message
            .body_text(0)
            .map(|b| b.trim_end_matches(['\r', '\n']).replace("\r\n", "\n"))
            .unwrap_or_default(),
        attachments,
    }
}

/// A CA (PEM) and a leaf certificate for 127.0.0.1 and localhost signed by it
/// (CA:FALSE, serverAuth), with the leaf's key: made fresh for each server.
fn certificates() -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "publisher test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");
    (ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem())
}
