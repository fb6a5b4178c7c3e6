//! Log output captured in memory, for the tests that read what the code logs:
//! [`Capture`] is a `tracing_subscriber` writer (and `MakeWriter`) that keeps
//! every byte written to it, and installs itself as a plain-text subscriber
//! for the whole process ([`Capture::try_init`]) or for the current thread
//! ([`Capture::set_default`]). It can be given to any other subscriber too,
//! e.g. the service's own `publisher::telemetry::init_with`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;
use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::{DefaultFields, Format};
use tracing_subscriber::fmt::{MakeWriter, SubscriberBuilder};

use crate::fake_server::lock;

/// A writer into a shared buffer; its clones write into the same buffer.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Every byte written so far.
    pub fn bytes(&self) -> Vec<u8> {
        lock(&self.0).clone()
    }

    /// Everything written so far, as text. Panics if it is not UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8(self.bytes()).expect("log output is UTF-8")
    }

    /// Installs a plain-text subscriber (no colours) at `level` for the whole
    /// process, writing here. `false` if the process already had one.
    pub fn try_init(&self, level: Level) -> bool {
        self.subscriber(level).try_init().is_ok()
    }

    /// A plain-text subscriber (no colours) at `level`, writing here, for the
    /// current thread until the guard is dropped.
    pub fn set_default(&self, level: Level) -> DefaultGuard {
        tracing::subscriber::set_default(self.subscriber(level).finish())
    }

    fn subscriber(
        &self,
        level: Level,
    ) -> SubscriberBuilder<DefaultFields, Format, LevelFilter, Capture> {
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(self.clone())
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_default_captures_at_its_level() {
        let capture = Capture::default();
        {
            let _guard = capture.set_default(Level::INFO);
            tracing::info!(answer = 42, "captured");
            tracing::debug!("below the level");
        }
        tracing::info!("after the guard");
        let text = capture.text();
        assert!(text.contains("captured answer=42"), "{text}");
        assert!(!text.contains("below the level"), "{text}");
        assert!(!text.contains("after the guard"), "{text}");
        assert!(!text.contains('\u{1b}'), "no colours: {text}");
        assert_eq!(capture.bytes(), text.as_bytes());
    }
}
