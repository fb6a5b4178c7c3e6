//! Bounded answers: every outbound client reads an answer only up to a size
//! and within a time, and gives up on the rest. A service that answers 50 MB,
//! or one byte a second, costs one failed call, never the process's memory
//! or a request held for minutes (`docs/faults.md`).
//!
//! - Time: reqwest's per-request timeout, which runs from connecting until
//!   the last byte of the body has arrived, so a trickling body is cut off by
//!   it like a silent server.
//! - Size: [`read`] (and [`json`] over it) refuses a declared
//!   `Content-Length` above the limit without reading anything, and stops a
//!   body that passes the limit while it arrives (chunked, or lying about its
//!   length), through `http_body_util::Limited`.
//!
//! DynamoDB's SDK reads its own answers: the table handle wraps them in the
//! same `Limited` body and gives the SDK its timeouts ([`TABLE`]). lettre
//! reads SMTP replies itself (it refuses a reply over 100 000 bytes or a
//! line over 1 000); the whole mail has a time limit ([`Limits::smtp`]).
//!
//! The numbers are here, in one place, so that `docs/faults.md` has one
//! list to follow; each client takes its own through its constructor, which
//! is how tests give them short times without another code path.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// How long a call may take, its answer included, and how much of the
/// answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub time: Duration,
    pub bytes: usize,
}

/// Runtime envelopes and credential payloads are a few KB. (The time limit
/// is `ORCHESTRATOR_TIMEOUT_SECONDS` per attempt.)
pub const ORCHESTRATOR_BYTES: usize = MIB;

/// The OIDC provider's discovery document, keys, tokens and userinfo.
pub const OIDC: Bound = Bound {
    time: Duration::from_secs(10),
    bytes: MIB,
};

/// The DynamoDB client's limits: a table call must not hold a request up
/// for long, since every tier above and below DynamoDB works without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLimits {
    pub connect: Duration,
    /// One try, its answer included.
    pub attempt: Duration,
    /// The whole call, its retries included.
    pub operation: Duration,
    /// Tries per call, the first included.
    pub attempts: u32,
    /// The SDK's first wait between tries (it doubles, with jitter).
    pub backoff: Duration,
    /// The largest answer DynamoDB itself sends is a BatchGetItem's 16 MB.
    pub bytes: usize,
}

pub const TABLE: TableLimits = TableLimits {
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(2),
    operation: Duration::from_secs(4),
    attempts: 3,
    // The SDK's own default, written out so that tests can scale it with
    // the timeouts.
    backoff: Duration::from_secs(1),
    bytes: 16 * MIB,
};

/// Dropbox, per kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropboxLimits {
    /// JSON calls (token, listings of up to 2 000 entries, metadata, links,
    /// moves) and the JSON answers of uploads.
    pub rpc: Bound,
    /// Thumbnails: JPEGs of at most 1024 × 768.
    pub thumbnail: Bound,
    /// Whole files: images to publish (Telegram's photos and FetLife's
    /// attachments are far smaller; an image larger than this is not one
    /// the workflow can send) and sidecars.
    pub download: Bound,
}

/// The bounds of the clients a tenant's service set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub dropbox: DropboxLimits,
    /// One chat completion attempt (a caption is at most 600 tokens).
    pub openai: Bound,
    /// One `sendPhoto` attempt, the upload included; its answer is a
    /// message object of a few KB.
    pub telegram: Bound,
    /// One mail, from connecting to the server's last reply, the attachment
    /// included (lettre's own timeout is per read, which a trickle never
    /// trips).
    pub smtp: Duration,
}

impl Limits {
    /// What the functions run with.
    pub const PRODUCTION: Limits = Limits {
        dropbox: DropboxLimits {
            rpc: Bound {
                time: Duration::from_secs(30),
                bytes: 8 * MIB,
            },
            thumbnail: Bound {
                time: Duration::from_secs(30),
                bytes: 4 * MIB,
            },
            download: Bound {
                time: Duration::from_secs(120),
                bytes: 64 * MIB,
            },
        },
        openai: Bound {
            time: Duration::from_secs(60),
            bytes: MIB,
        },
        telegram: Bound {
            time: Duration::from_secs(60),
            bytes: 256 * KIB,
        },
        smtp: Duration::from_secs(120),
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::PRODUCTION
    }
}

/// Why an answer's body was not read to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Larger than the limit (declared, or found while reading).
    #[error("answer larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The call's time limit passed before the body ended.
    #[error("answer timed out")]
    Timeout,
    /// The connection failed before the body ended.
    #[error("answer cut short")]
    Incomplete,
    /// Read whole, but not the JSON expected.
    #[error("answer unreadable")]
    Malformed,
}

impl BodyError {
    /// Another try may get a whole answer: a timeout or a broken connection.
    /// An answer too large or unreadable would be the same again.
    pub fn is_transient(&self) -> bool {
        matches!(self, BodyError::Timeout | BodyError::Incomplete)
    }
}

/// The body of `response`, at most `limit` bytes of it.
pub async fn read(response: reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    let too_large = BodyError::TooLarge { limit };
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if response.content_length().unwrap_or(0) > limit_u64 {
        return Err(too_large);
    }
    match Limited::new(reqwest::Body::from(response), limit)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large),
        Err(error) => Err(match error.downcast_ref::<reqwest::Error>() {
            Some(error) if error.is_timeout() => BodyError::Timeout,
            _ => BodyError::Incomplete,
        }),
    }
}

/// The body of `response` as JSON, read by [`read`].
pub async fn json<T: DeserializeOwned>(
    response: reqwest::Response,
    limit: usize,
) -> Result<T, BodyError> {
    let body = read(response, limit).await?;
    serde_json::from_slice(&body).map_err(|_| BodyError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that answers every connection with `head` (the status line
    /// and headers), then `body` one chunk at a time, `pause` apart.
    async fn serve(head: &'static str, body: Vec<&'static [u8]>, pause: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    socket.write_all(head.as_bytes()).await?;
                    for chunk in body {
                        tokio::time::sleep(pause).await;
                        socket.write_all(chunk).await?;
                    }
                    socket.shutdown().await?;
                    Ok::<_, std::io::Error>(())
                });
            }
            Ok::<_, Infallible>(())
        });
        url
    }

    async fn get(url: &str, timeout: Duration) -> reqwest::Response {
        reqwest::Client::new()
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .expect("headers arrive")
    }

    const LONG: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn reads_a_body_within_the_limit() {
        let url = serve(
            "HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n",
            vec![b"{\"a\": [1]}\n"],
            Duration::ZERO,
        )
        .await;
        assert_eq!(
            &read(get(&url, LONG).await, 11).await.unwrap()[..],
            b"{\"a\": [1]}\n"
        );
        let value: serde_json::Value = json(get(&url, LONG).await, 64).await.unwrap();
        assert_eq!(value["a"][0], 1);
        let wrong: Result<Vec<u8>, _> = json(get(&url, LONG).await, 64).await;
        assert_eq!(wrong, Err(BodyError::Malformed));
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        // The body never comes (reading it would end `Incomplete`): only
        // the declaration is looked at.
        let url = serve(
            "HTTP/1.1 200 OK\r\ncontent-length: 52428800\r\n\r\n",
            vec![],
            Duration::ZERO,
        )
        .await;
        let result = read(get(&url, LONG).await, MIB).await;
        assert_eq!(result, Err(BodyError::TooLarge { limit: MIB }));
    }

    #[tokio::test]
    async fn a_chunked_body_is_stopped_once_past_the_limit() {
        let url = serve(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            vec![b"8\r\n01234567\r\n", b"8\r\n89abcdef\r\n", b"0\r\n\r\n"],
            Duration::ZERO,
        )
        .await;
        assert_eq!(
            read(get(&url, LONG).await, 12).await,
            Err(BodyError::TooLarge { limit: 12 })
        );
        assert_eq!(read(get(&url, LONG).await, 16).await.unwrap().len(), 16);
    }

    #[tokio::test]
    async fn a_trickle_is_cut_off_by_the_time_limit() {
        // The limit leaves a loaded machine ample time for the headers; the
        // body, a byte every 1.5 s, needs 7.5 s.
        let url = serve(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            vec![b"a", b"b", b"c", b"d", b"e"],
            Duration::from_millis(1500),
        )
        .await;
        let response = get(&url, Duration::from_secs(2)).await;
        let error = read(response, MIB).await.unwrap_err();
        assert_eq!(error, BodyError::Timeout);
        assert!(error.is_transient());
    }

    #[tokio::test]
    async fn a_body_shorter_than_declared_is_incomplete() {
        let url = serve(
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
            vec![b"abc"],
            Duration::ZERO,
        )
        .await;
        assert_eq!(
            read(get(&url, LONG).await, MIB).await,
            Err(BodyError::Incomplete)
        );
    }
}
