//! What every fake server of this crate shares, so that each fake keeps only
//! its own routes and state:
//!
//! - [`FakeServer`]: an axum app on an ephemeral port of 127.0.0.1, served on
//!   the current tokio runtime until [`FakeServer::shutdown`] or until the
//!   handle is dropped; [`FakeServer::shutdown_and_wait`] also waits until the
//!   port is closed. [`FakeServer::bind`] gives the address before the app is
//!   built, for fakes whose answers carry their own URL.
//! - [`Fake`]: a server and its state, for fakes whose whole state is one
//!   value behind a lock.
//! - [`Received`]: a whole request, for fakes that route it themselves.
//! - [`Recorder`]: the requests a fake saw, in arrival order, each of which can
//!   be completed later (e.g. with its status) through its [`Ticket`].
//! - [`lock`]: a mutex lock that a panicking test cannot poison for the others.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, Uri};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Locks `mutex`, even when a panicking test poisoned it: a fake must go on
/// serving the other tests.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A port bound on 127.0.0.1 and not served yet.
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `app` on this port, on the current tokio runtime.
    pub fn serve(self, app: Router) -> FakeServer {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let signal = async move {
                // Ends on `shutdown()` or when the handle drops the sender.
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            let _ = axum::serve(self.listener, app)
                .with_graceful_shutdown(signal)
                .await;
        });
        FakeServer {
            addr: self.addr,
            stop,
            task: Mutex::new(Some(task)),
        }
    }
}

/// Handle on a running server; the server stops when it is dropped.
pub struct FakeServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        // Dropping the sender also ends the server; be explicit anyway.
        self.stop.send_replace(true);
    }
}

impl FakeServer {
    /// Binds 127.0.0.1:0 and serves `app` there.
    ///
    /// Panics (test helper) if the port cannot be bound; `name` says which
    /// fake it was.
    pub async fn start(name: &str, app: Router) -> FakeServer {
        FakeServer::bind(name).await.serve(app)
    }

    /// Binds 127.0.0.1:0 without serving yet: [`Bound::serve`] starts.
    ///
    /// Panics (test helper) if the port cannot be bound.
    pub async fn bind(name: &str) -> Bound {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        FakeServer::bind_to(loopback)
            .await
            .unwrap_or_else(|e| panic!("{name}: bind 127.0.0.1:0: {e}"))
    }

    /// Binds `addr` without serving yet, for a server whose address is
    /// chosen (the local orchestrator's); an error when it is taken.
    pub async fn bind_to(addr: SocketAddr) -> std::io::Result<Bound> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(Bound { listener, addr })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections; in-flight requests are allowed to finish.
    /// Returns at once: [`FakeServer::shutdown_and_wait`] waits until the port
    /// is closed.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// [`FakeServer::shutdown`], then waits until the server task has ended
    /// (the listener is closed and every connection has finished).
    pub async fn shutdown_and_wait(&self) {
        self.shutdown();
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// A server whose handlers share one `D` (their state is
/// `State<Arc<Mutex<D>>>`) with the handle. The server stops when the handle is
/// dropped.
pub struct Fake<D> {
    data: Arc<Mutex<D>>,
    server: FakeServer,
}

impl<D: Send + 'static> Fake<D> {
    /// Serves `routes` on 127.0.0.1:0 with `data` as their state.
    pub async fn start(name: &str, data: D, routes: Router<Arc<Mutex<D>>>) -> Fake<D> {
        let data = Arc::new(Mutex::new(data));
        let server = FakeServer::start(name, routes.with_state(data.clone())).await;
        Fake { data, server }
    }

    /// The state, locked.
    pub fn data(&self) -> MutexGuard<'_, D> {
        lock(&self.data)
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        self.server.url()
    }
}

/// A whole request as a handler receives it: what a fake that routes by
/// itself (a `fallback`) looks at and records.
pub struct Received {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// The header `name`, if it is there and visible ASCII.
    pub fn header(&self, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl<S: Send + Sync> FromRequest<S> for Received {
    type Rejection = BytesRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state).await?;
        Ok(Received {
            method,
            uri,
            headers,
            body,
        })
    }
}

/// Names one recorded entry, to complete it once the answer is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// What a fake saw, in arrival order. Counters are best derived from it
/// ([`Recorder::count`]), so that [`Recorder::clear`] resets them all at once.
pub struct Recorder<T> {
    log: Mutex<Log<T>>,
}

struct Log<T> {
    next: u64,
    entries: Vec<(Ticket, T)>,
}

impl<T> Default for Recorder<T> {
    fn default() -> Self {
        Recorder {
            log: Mutex::new(Log {
                next: 0,
                entries: Vec::new(),
            }),
        }
    }
}

impl<T> Recorder<T> {
    /// Appends `entry`.
    pub fn record(&self, entry: T) -> Ticket {
        let mut log = lock(&self.log);
        let ticket = Ticket(log.next);
        log.next += 1;
        log.entries.push((ticket, entry));
        ticket
    }

    /// Changes the entry `ticket` names; nothing if it was cleared since.
    pub fn update(&self, ticket: Ticket, change: impl FnOnce(&mut T)) {
        let mut log = lock(&self.log);
        if let Some((_, entry)) = log.entries.iter_mut().rev().find(|(t, _)| *t == ticket) {
            change(entry);
        }
    }

    /// How many entries satisfy `matches`.
    pub fn count(&self, matches: impl Fn(&T) -> bool) -> usize {
        lock(&self.log)
            .entries
            .iter()
            .filter(|(_, entry)| matches(entry))
            .count()
    }

    /// Forgets every entry (tickets given before stay unique).
    pub fn clear(&self) {
        lock(&self.log).entries.clear();
    }
}

impl<T: Clone> Recorder<T> {
    /// Every entry since start or the last [`Recorder::clear`], in order.
    pub fn all(&self) -> Vec<T> {
        lock(&self.log)
            .entries
            .iter()
            .map(|(_, entry)| entry.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    #[tokio::test]
    async fn serves_until_shutdown_and_wait_closes_the_port() {
        let bound = FakeServer::bind("test server").await;
        let url = bound.url();
        assert_eq!(url, format!("http://{}", bound.addr()));
        let server = bound.serve(Router::new().route("/", get(|| async { "hello" })));
        assert_eq!(server.url(), url);
        let answer = reqwest::get(&url).await.unwrap();
        assert_eq!(answer.text().await.unwrap(), "hello");
        server.shutdown_and_wait().await;
        assert!(reqwest::get(&url).await.is_err());
        // A second wait returns at once.
        server.shutdown_and_wait().await;
    }

    #[test]
    fn recorder_updates_counts_and_clears() {
        let recorder = Recorder::default();
        let first = recorder.record(("a", 0));
        recorder.record(("b", 0));
        recorder.update(first, |(_, status)| *status = 200);
        assert_eq!(recorder.all(), vec![("a", 200), ("b", 0)]);
        assert_eq!(recorder.count(|(name, _)| *name == "b"), 1);
        recorder.clear();
        assert!(recorder.all().is_empty());
        let third = recorder.record(("c", 0));
        assert_ne!(third, first);
        // An entry cleared away is not brought back nor confused with another.
        recorder.update(first, |(_, status)| *status = 500);
        assert_eq!(recorder.all(), vec![("c", 0)]);
    }
}
