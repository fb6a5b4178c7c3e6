//! Faults in front of the services the functions call, for the fault matrix
//! (`docs/faults.md`, `tests/tests/fault_matrix.rs`) and the soak:
//!
//! - [`FaultProxy`]: an HTTP server on 127.0.0.1 in front of any fake (or of
//!   moto's DynamoDB). While no fault is set it forwards every request to its
//!   upstream and the answer back; with a fault set it answers every request
//!   with that fault instead. It keeps its address through
//!   [`Fault::Refused`] (it stops listening on its port, keeping it bound,
//!   and listens again), so the functions under test keep their settings.
//!   No fake needs to know about it.
//! - [`SmtpFault`]: an SMTP server that answers every connection with one
//!   fault, in SMTP's terms.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{
    CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, RETRY_AFTER, TRANSFER_ENCODING,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::stream::{self, Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::fake_server::{lock, FakeServer, Received, Recorder};

/// What a failing service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Nothing listens: every connection is refused.
    Refused,
    /// Accepts the request and never answers.
    Timeout,
    /// 429 with `Retry-After` ([`RETRY_AFTER_SECONDS`]); SMTP: 421.
    RateLimited,
    /// 500; SMTP: 554.
    ServerError,
    /// 200 with a body that is not what the client asked for; SMTP: a
    /// greeting that is not SMTP.
    Malformed,
    /// 200 with a body of [`OVERSIZED_BYTES`] (chunked: no length declared
    /// in advance); SMTP: a greeting of that many bytes, in lines.
    Oversized,
    /// 200 whose body comes one byte a second; SMTP: the greeting, likewise.
    Trickle,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::Refused,
        Fault::Timeout,
        Fault::RateLimited,
        Fault::ServerError,
        Fault::Malformed,
        Fault::Oversized,
        Fault::Trickle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Refused => "connection refused",
            Fault::Timeout => "timeout",
            Fault::RateLimited => "429 Retry-After",
            Fault::ServerError => "500",
            Fault::Malformed => "malformed body",
            Fault::Oversized => "50 MB body",
            Fault::Trickle => "1 byte/s",
        }
    }
}

/// The `Retry-After` of [`Fault::RateLimited`].
pub const RETRY_AFTER_SECONDS: u64 = 2;
/// The body of [`Fault::Oversized`].
pub const OVERSIZED_BYTES: usize = 50 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// One request the proxy saw: how it answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// `None`: forwarded to the upstream.
    pub fault: Option<Fault>,
}

struct Shared {
    name: String,
    upstream: String,
    fault: Mutex<Option<Fault>>,
    /// Content type and body of a 429, in the service's own dialect.
    rate_limit_body: Mutex<(&'static str, String)>,
    seen: Recorder<Seen>,
    /// Oversized or trickling bodies sent to their very end (the client
    /// read them whole instead of cutting them off).
    finished: AtomicUsize,
    http: reqwest::Client,
}

/// An HTTP proxy that fails on demand. Stops when dropped.
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: tokio::sync::Mutex<Port>,
}

/// A proxy's port: served, or refusing connections.
enum Port {
    Serving(FakeServer),
    /// Held only; `None` if the port could not be bound again (then it is
    /// merely closed).
    Refusing {
        _held: Option<RefusingPort>,
    },
}

/// A port that refuses every connection for as long as this value lives:
/// bound, never listening, so that no other server (of a test running
/// alongside) can take it meanwhile, as it could a port merely closed or
/// found free. For a test that needs an address nothing answers on.
pub struct RefusingPort {
    _socket: TcpSocket,
    pub port: u16,
}

impl RefusingPort {
    /// A free port of 127.0.0.1.
    pub fn bind() -> RefusingPort {
        RefusingPort::at(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind 127.0.0.1:0")
    }

    fn at(addr: SocketAddr) -> Option<RefusingPort> {
        let socket = TcpSocket::new_v4().ok()?;
        socket.set_reuseaddr(true).ok()?;
        socket.bind(addr).ok()?;
        let port = socket.local_addr().ok()?.port();
        Some(RefusingPort {
            _socket: socket,
            port,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl FaultProxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `upstream`
    /// (`http://host:port`, no trailing slash).
    pub async fn start(name: &str, upstream: &str) -> FaultProxy {
        let shared = Arc::new(Shared {
            name: name.to_string(),
            upstream: upstream.trim_end_matches('/').to_string(),
            fault: Mutex::new(None),
            rate_limit_body: Mutex::new((
                "application/json",
                serde_json::json!({"error": "rate limited"}).to_string(),
            )),
            seen: Recorder::default(),
            finished: AtomicUsize::new(0),
            http: reqwest::Client::new(),
        });
        let bound = FakeServer::bind(name).await;
        let addr = bound.addr();
        let server = bound.serve(router(shared.clone()));
        FaultProxy {
            shared,
            addr,
            server: tokio::sync::Mutex::new(Port::Serving(server)),
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The 429's content type and body, in the dialect of the service
    /// behind (e.g. Telegram's `parameters.retry_after`).
    pub fn set_rate_limit_body(&self, content_type: &'static str, body: String) {
        *lock(&self.shared.rate_limit_body) = (content_type, body);
    }

    /// Sets the fault every request gets from now on (`None`: forward);
    /// forgets the requests seen so far. [`Fault::Refused`] stops listening
    /// (and waits until the port refuses); anything else listens again.
    pub async fn set(&self, fault: Option<Fault>) {
        *lock(&self.shared.fault) = fault;
        self.shared.seen.clear();
        let mut port = self.server.lock().await;
        match (fault, &*port) {
            (Some(Fault::Refused), Port::Serving(_)) => {
                if let Port::Serving(running) =
                    std::mem::replace(&mut *port, Port::Refusing { _held: None })
                {
                    // The port closes at once; connections still open may
                    // take longer to finish, which nobody waits for.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), running.shutdown_and_wait())
                            .await;
                }
                *port = Port::Refusing {
                    _held: RefusingPort::at(self.addr),
                };
            }
            (Some(Fault::Refused), Port::Refusing { .. }) | (_, Port::Serving(_)) => {}
            (_, Port::Refusing { .. }) => {
                // Frees the port for the listener.
                *port = Port::Refusing { _held: None };
                let bound = FakeServer::bind_to(self.addr)
                    .await
                    .unwrap_or_else(|e| panic!("{}: bind {}: {e}", self.shared.name, self.addr));
                *port = Port::Serving(bound.serve(router(self.shared.clone())));
            }
        }
    }

    /// The fault set now.
    pub fn fault(&self) -> Option<Fault> {
        *lock(&self.shared.fault)
    }

    /// Every request seen since the last [`FaultProxy::set`].
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.all()
    }

    /// Requests answered with a fault since the last [`FaultProxy::set`].
    pub fn faulted(&self) -> usize {
        self.shared.seen.count(|seen| seen.fault.is_some())
    }

    /// Oversized or trickling bodies the clients read to their end, ever
    /// (bounded clients read none).
    pub fn read_whole(&self) -> usize {
        self.shared.finished.load(Ordering::SeqCst)
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .fallback(handle)
        // Whatever the client sends goes through, uploads included.
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Received) -> Response {
    let finished = {
        let shared = shared.clone();
        move || {
            shared.finished.fetch_add(1, Ordering::SeqCst);
        }
    };
    let fault = *lock(&shared.fault);
    shared.seen.record(Seen {
        method: request.method.to_string(),
        path: request.uri.path().to_string(),
        fault,
    });
    match fault {
        None | Some(Fault::Refused) => forward(&shared, request).await,
        Some(Fault::Timeout) => {
            // The client gives up first; the connection then goes away and
            // this answer with it.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Some(Fault::RateLimited) => {
            let (content_type, body) = lock(&shared.rate_limit_body).clone();
            (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    (RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()),
                    (CONTENT_TYPE, content_type.to_string()),
                ],
                body,
            )
                .into_response()
        }
        Some(Fault::ServerError) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
        Some(Fault::Malformed) => (
            StatusCode::OK,
            [(CONTENT_TYPE, "application/json")],
            "<html><body>Service temporarily replaced by this page</body></html>",
        )
            .into_response(),
        Some(Fault::Oversized) => streamed(oversized(), finished),
        Some(Fault::Trickle) => streamed(trickle(b"{\"ok\": true, \"padding\": \""), finished),
    }
}

/// A 200 whose body is `body`, sent chunked (no length declared);
/// `finished` runs if the client takes the body to its very end.
fn streamed<S>(body: S, finished: impl FnOnce() + Send + 'static) -> Response
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    let end = stream::once(async move {
        finished();
        Ok(Bytes::new())
    });
    let mut response = Response::new(Body::from_stream(body.chain(end)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// [`OVERSIZED_BYTES`] of a JSON string that never ends.
fn oversized() -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    stream::once(async { Ok(Bytes::from_static(b"{\"data\": \"")) }).chain(stream::iter(
        std::iter::repeat_n(chunk, OVERSIZED_BYTES / CHUNK).map(Ok),
    ))
}

/// `start`, then spaces, one byte a second (for an hour).
fn trickle(start: &'static [u8]) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    stream::iter(start.iter().copied().chain(std::iter::repeat_n(b' ', 3600))).then(
        |byte| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(Bytes::copy_from_slice(&[byte]))
        },
    )
}

async fn forward(shared: &Shared, request: Received) -> Response {
    let path = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = shared
        .http
        .request(request.method.clone(), format!("{}{path}", shared.upstream))
        .body(request.body);
    for (name, value) in &request.headers {
        if name != HOST && name != CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = answer.bytes().await.unwrap_or_default();
    let mut response = (status, body).into_response();
    for (name, value) in &headers {
        if name != TRANSFER_ENCODING && name != CONTENT_LENGTH && name != CONNECTION {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// An SMTP server that answers every connection with one fault (for
/// [`Fault::Refused`], a port bound that nothing listens on). Stops when
/// dropped.
pub struct SmtpFault {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    /// Oversized or trickling greetings sent to their very end.
    finished: Arc<AtomicUsize>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The refusing port, held for as long as the fault lives.
    _refusing: Option<RefusingPort>,
}

impl Drop for SmtpFault {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl SmtpFault {
    pub async fn start(fault: Fault) -> SmtpFault {
        let connections = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        if fault == Fault::Refused {
            let refusing = RefusingPort::bind();
            return SmtpFault {
                port: refusing.port,
                connections,
                finished,
                task: None,
                _refusing: Some(refusing),
            };
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("SMTP fault: bind 127.0.0.1:0");
        let port = listener.local_addr().expect("SMTP fault: address").port();
        let (counted, whole) = (connections.clone(), finished.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let whole = whole.clone();
                tokio::spawn(async move {
                    if smtp_answer(socket, fault).await.is_ok()
                        && matches!(fault, Fault::Oversized | Fault::Trickle)
                    {
                        whole.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        SmtpFault {
            port,
            connections,
            finished,
            task: Some(task),
            _refusing: None,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Oversized or trickling greetings the client read to their end (and
    /// then hung up), ever.
    pub fn read_whole(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

async fn smtp_answer(mut socket: TcpStream, fault: Fault) -> std::io::Result<()> {
    match fault {
        Fault::Refused | Fault::Timeout => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Fault::RateLimited => {
            socket
                .write_all(b"421 4.7.0 Too many connections, try again in 2 seconds\r\n")
                .await?;
        }
        Fault::ServerError => {
            socket
                .write_all(b"554 5.3.2 Mail service not available\r\n")
                .await?;
        }
        Fault::Malformed => {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n\r\n<html>\r\n")
                .await?;
        }
        Fault::Oversized => {
            // Continuation lines of a greeting that never ends.
            let mut line = b"220-".to_vec();
            line.extend(std::iter::repeat_n(b'x', 994));
            line.extend_from_slice(b"\r\n");
            let mut sent = 0;
            while sent < OVERSIZED_BYTES {
                socket.write_all(&line).await?;
                sent += line.len();
            }
        }
        Fault::Trickle => {
            for byte in b"220 smtp.example.com ESMTP ready\r\n" {
                tokio::time::sleep(Duration::from_secs(1)).await;
                socket.write_all(&[*byte]).await?;
            }
        }
    }
    // Whatever the client says next goes unanswered until it leaves.
    let mut sink = [0u8; 1024];
    while socket.read(&mut sink).await? > 0 {}
    Ok(())
}
