//! FetLife, by e-mail: the image attached to a mail to the tenant's upload
//! address, sent with lettre over STARTTLS (implicit TLS on port 465), and an
//! optional confirmation mail to the sender with the image's tags.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use email_encoding::body::base64;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::PublishResult;
use crate::config::{CaptionTarget, Confirmation, EmailServer, FetlifeConfig, SubjectMode};
use crate::static_config::{PlatformLimits, StaticConfig};

const IMPLICIT_TLS_PORT: u16 = 465;

/// Subject and body of the upload mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub body: String,
}

/// The upload mail for a caption already formatted for FetLife. Where the
/// tenant's publisher does not say, the static e-mail defaults apply.
pub fn email(config: &FetlifeConfig, limits: &PlatformLimits, caption: &str) -> Email {
    let prefix = match config.subject_mode.unwrap_or(limits.email_subject_mode) {
        SubjectMode::Normal => "",
        SubjectMode::Private => "Private: ",
        SubjectMode::Avatar => "Avatar: ",
    };
    let subject = match config.caption_target.unwrap_or(limits.email_caption_target) {
        CaptionTarget::Subject | CaptionTarget::Both => format!("{prefix}{caption}"),
        CaptionTarget::Body => format!("{prefix}Photo upload"),
    };
    Email {
        subject,
        body: caption.to_string(),
    }
}

/// The confirmation mail's body: the upload body, a separator and the tags.
pub fn confirmation_body(body: &str, tags: &[String], count: u32) -> String {
    format!(
        "{body}\n\n---\nImage Tags (FetLife context): {}",
        confirmation_tags(tags, count)
    )
}

/// Tags trimmed, lower-cased, without a leading `#`, other non-alphanumerics
/// as spaces, whitespace collapsed, de-duplicated, the first `count`;
/// `(none)` when nothing is left.
pub fn confirmation_tags(tags: &[String], count: u32) -> String {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let lowered = tag.trim().to_lowercase();
        let bare = lowered.trim_start_matches('#');
        let spaced: String = bare
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let clean = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
        if !clean.is_empty() && !out.contains(&clean) {
            out.push(clean);
        }
    }
    out.truncate(count as usize);
    if out.is_empty() {
        "(none)".to_string()
    } else {
        out.join(", ")
    }
}

/// The image to attach, under its original file name.
pub struct Upload {
    pub file_name: String,
    pub bytes: Bytes,
}

/// A tenant's FetLife upload address and the mail server that reaches it.
pub struct Fetlife {
    pub server: EmailServer,
    pub config: FetlifeConfig,
    pub confirmation: Confirmation,
    pub password: SecretString,
    /// An extra CA to trust besides the system roots (`SMTP_TLS_CA_FILE`).
    pub extra_ca: Option<PathBuf>,
    /// The e-mail defaults, the tag count and the SMTP timeout.
    pub statics: Arc<StaticConfig>,
    /// How long one mail may take, from connecting to the last reply.
    pub mail_timeout: Duration,
}

impl Fetlife {
    /// Sends the upload mail, then (when configured) the confirmation; only
    /// the upload decides success.
    pub async fn send(
        &self,
        upload: Upload,
        caption: &str,
        tags: &[String],
        request_id: &str,
    ) -> PublishResult {
        let transport = match self.transport() {
            Ok(transport) => transport,
            Err(error) => return PublishResult::failed(error, false),
        };
        let email = email(&self.config, &self.statics.platforms, caption);
        let message = match self.upload_message(&email, upload) {
            Ok(message) => message,
            Err(error) => return PublishResult::failed(error, false),
        };
        match deliver(&transport, message, self.mail_timeout).await {
            Ok(response) => {
                tracing::info!(request_id, smtp_code = %response.code(), "fetlife upload mail sent");
            }
            Err(error) => {
                if let Undelivered::Smtp(smtp) = &error {
                    if refused_plain_text(smtp) {
                        tracing::warn!(request_id, server = %self.server.host, "fetlife: the mail server offers no STARTTLS; the password was not sent");
                        return PublishResult::failed(SMTP_TLS_REQUIRED, false);
                    }
                }
                let transient = error.is_transient();
                tracing::warn!(request_id, %error, transient, "fetlife upload mail failed");
                return PublishResult::failed(format!("E-mail not sent: {error}"), transient);
            }
        }
        if self.confirmation.confirmation_to_sender {
            let count = self
                .confirmation
                .confirmation_tags_count
                .unwrap_or(self.statics.prompts.confirmation_tags_count);
            let body = confirmation_body(&email.body, tags, count);
            let sent = match self.message(&self.server.from_email, &email.subject) {
                Ok(builder) => builder
                    .singlepart(SinglePart::plain(body))
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error),
            };
            let result = match sent {
                Ok(message) => within(self.mail_timeout, transport.send(message))
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                tracing::warn!(request_id, %error, "fetlife confirmation mail failed; the upload was sent");
            }
        }
        PublishResult::published(None)
    }

    fn message(&self, to: &str, subject: &str) -> Result<lettre::message::MessageBuilder, String> {
        let mailbox = |address: &str| {
            address
                .parse::<Mailbox>()
                .map_err(|e| format!("invalid e-mail address {address:?}: {e}"))
        };
        Ok(Message::builder()
            .from(mailbox(&self.server.from_email)?)
            .to(mailbox(to)?)
            .subject(subject))
    }

    fn upload_message(&self, email: &Email, upload: Upload) -> Result<Message, String> {
        let content_type = if upload.file_name.to_lowercase().ends_with(".png") {
            ContentType::parse("image/png")
        } else {
            ContentType::parse("image/jpeg")
        }
        .map_err(|e| e.to_string())?;
        // Encoded straight from the shared bytes: a copy of a 20 MB image
        // for lettre to encode would be one more copy alive at once.
        let mut encoded = String::with_capacity(base64::encoded_len(upload.bytes.len()));
        base64::encode(&upload.bytes, &mut encoded).map_err(|e| e.to_string())?;
        drop(upload.bytes);
        let body =
            Body::dangerous_pre_encoded(encoded.into_bytes(), ContentTransferEncoding::Base64);
        let attachment = Attachment::new(upload.file_name).body(body, content_type);
        self.message(&self.config.recipient, &email.subject)?
            .multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain(email.body.clone()))
                    .singlepart(attachment),
            )
            .map_err(|e| e.to_string())
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let mut tls = TlsParameters::builder(self.server.host.clone());
        if let Some(path) = &self.extra_ca {
            let pem = std::fs::read(path)
                .map_err(|e| format!("SMTP_TLS_CA_FILE {}: {e}", path.display()))?;
            let ca = Certificate::from_pem(&pem)
                .map_err(|e| format!("SMTP_TLS_CA_FILE {}: {e}", path.display()))?;
            tls = tls.add_root_certificate(ca);
        }
        let tls = tls.build_rustls().map_err(|e| format!("TLS setup: {e}"))?;
        Ok(
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.server.host.as_str())
                .port(self.server.port)
                .tls(tls_mode(self.server.port, tls))
                .credentials(Credentials::new(
                    self.server.username.clone(),
                    self.password.expose_secret().to_string(),
                ))
                .timeout(Some(self.statics.services.smtp_timeout))
                .build(),
        )
    }
}

/// Sends `message`, dropping it once formatted: with a large attachment the
/// message, its formatted text and the wire copy would otherwise all be alive.
/// The whole exchange must end within `timeout`: lettre's own timeout is per
/// read, which a server answering one byte a second never trips.
async fn deliver(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    message: Message,
    timeout: Duration,
) -> Result<lettre::transport::smtp::response::Response, Undelivered> {
    let envelope = message.envelope().clone();
    let raw = message.formatted();
    drop(message);
    within(timeout, transport.send_raw(&envelope, &raw)).await
}

/// `sending`, given up after `timeout`.
async fn within<T>(
    timeout: Duration,
    sending: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, Undelivered> {
    match tokio::time::timeout(timeout, sending).await {
        Ok(sent) => sent.map_err(Undelivered::Smtp),
        Err(_) => Err(Undelivered::TimedOut(timeout)),
    }
}

/// Why a mail did not go out.
#[derive(Debug, thiserror::Error)]
enum Undelivered {
    #[error(transparent)]
    Smtp(lettre::transport::smtp::Error),
    #[error("no answer within {} s", .0.as_secs())]
    TimedOut(Duration),
}

impl Undelivered {
    /// May another try succeed? Not after the server refused for good, nor
    /// with a TLS or client-side failure, which would fail the same way.
    fn is_transient(&self) -> bool {
        match self {
            Undelivered::Smtp(error) => {
                !(error.is_permanent() || error.is_tls() || error.is_client())
            }
            Undelivered::TimedOut(_) => true,
        }
    }
}

/// Implicit TLS on 465; elsewhere STARTTLS, always required: the password
/// is only ever sent over TLS, whatever the tenant's `use_tls` says.
fn tls_mode(port: u16, tls: TlsParameters) -> Tls {
    if port == IMPLICIT_TLS_PORT {
        Tls::Wrapper(tls)
    } else {
        Tls::Required(tls)
    }
}

/// The FetLife result when the server offers no TLS: nothing was sent, not
/// even the login.
pub const SMTP_TLS_REQUIRED: &str = "smtp_tls_required";

/// Did lettre stop before `AUTH` because the server offers no STARTTLS?
/// (lettre reports it as a client error with this text and no kind of its
/// own.)
fn refused_plain_text(error: &lettre::transport::smtp::Error) -> bool {
    error.is_client() && error.to_string().contains("STARTTLS is not supported")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetlife(target: Option<CaptionTarget>, mode: Option<SubjectMode>) -> FetlifeConfig {
        FetlifeConfig {
            recipient: "upload@example.com".into(),
            caption_target: target,
            subject_mode: mode,
        }
    }

    #[test]
    fn subject_and_body_rules() {
        use CaptionTarget::*;
        use SubjectMode::*;
        let cases = [
            (Subject, Normal, "Dusk rope", "Dusk rope"),
            (Both, Normal, "Dusk rope", "Dusk rope"),
            (Subject, Private, "Private: Dusk rope", "Dusk rope"),
            (Both, Avatar, "Avatar: Dusk rope", "Dusk rope"),
            (Body, Normal, "Photo upload", "Dusk rope"),
            (Body, Private, "Private: Photo upload", "Dusk rope"),
            (Body, Avatar, "Avatar: Photo upload", "Dusk rope"),
        ];
        let defaults = &StaticConfig::defaults().platforms;
        for (target, mode, subject, body) in cases {
            let mail = email(&fetlife(Some(target), Some(mode)), defaults, "Dusk rope");
            assert_eq!(
                (mail.subject.as_str(), mail.body.as_str()),
                (subject, body),
                "{target:?} {mode:?}"
            );
        }
    }

    #[test]
    fn the_tenants_rules_win_over_the_static_defaults() {
        let mut limits = StaticConfig::defaults().platforms.clone();
        let unset = fetlife(None, None);
        let mail = email(&unset, &limits, "Dusk");
        assert_eq!(mail.subject, "Dusk", "embedded default: subject, normal");
        limits.email_caption_target = CaptionTarget::Body;
        limits.email_subject_mode = SubjectMode::Avatar;
        let mail = email(&unset, &limits, "Dusk");
        assert_eq!(
            (mail.subject.as_str(), mail.body.as_str()),
            ("Avatar: Photo upload", "Dusk")
        );
        let tenant = fetlife(Some(CaptionTarget::Subject), Some(SubjectMode::Private));
        assert_eq!(email(&tenant, &limits, "Dusk").subject, "Private: Dusk");
    }

    #[test]
    fn confirmation_tags_rules() {
        let tags: Vec<String> = [
            " #Rope ",
            "SHIBARI",
            "rope",
            "black-and-white",
            "fine_art!",
            "",
            "##",
            "Café Noir",
            "extra",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            confirmation_tags(&tags, 5),
            "rope, shibari, black and white, fine art, café noir"
        );
        assert_eq!(confirmation_tags(&tags, 2), "rope, shibari");
        assert_eq!(confirmation_tags(&tags, 0), "(none)");
        assert_eq!(confirmation_tags(&[], 5), "(none)");
        assert_eq!(
            confirmation_body("Dusk rope", &tags[..2], 5),
            "Dusk rope\n\n---\nImage Tags (FetLife context): rope, shibari"
        );
    }

    #[test]
    fn tls_mode_by_port() {
        let tls = || TlsParameters::new("smtp.example.com".into()).unwrap();
        assert!(matches!(tls_mode(465, tls()), Tls::Wrapper(_)));
        assert!(matches!(tls_mode(587, tls()), Tls::Required(_)));
        assert!(
            matches!(tls_mode(25, tls()), Tls::Required(_)),
            "never plain text"
        );
    }
}
