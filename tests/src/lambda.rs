//! The functions as Lambda runs them: `cargo lambda watch` (cargo-lambda from
//! the project's virtualenv) on the workspace, on an ephemeral loopback port,
//! serving the Lambda runtime API to the functions' binaries and taking
//! invocations through its Lambda API and its function-URL HTTP path.
//!
//! The binaries are built first and started here (`--only-lambda-apis`)
//! rather than by the watch's own `cargo run`: a tree that changes between
//! build and run would otherwise be rebuilt inside the first invocation and
//! run out its deadline, and starting them here measures their cold start.
//! Every process is stopped by PID on drop.
//!
//! [`make`] and [`MakeRun`] run the documented commands themselves (`make
//! watch`, `make invoke-*`, `make run-tenants`), as a user types them.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::moto::{free_port, venv_bin, venv_dir};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A command run from a test as from a shell: without the variables cargo
/// gives the test process about its own package. A build script that
/// watches one (ring's watches `CARGO_MANIFEST_DIR`) would otherwise see a
/// change, and the build would start over from there, twice: in the test
/// and at the next build from a shell.
fn as_from_a_shell(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let of_the_test = name.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
            ]
            .contains(&name.as_ref());
        if of_the_test {
            command.env_remove(name.as_ref());
        }
    }
    command
}

/// Builds the function binary `bin` (debug) and answers its path.
pub fn build_bin(bin: &str) -> PathBuf {
    let status = as_from_a_shell(&mut Command::new(
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
    ))
    .args(["build", "--quiet", "--bin", bin])
    .current_dir(workspace())
    .status()
    .expect("cargo runs");
    assert!(status.success(), "cargo build --bin {bin}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join("debug").join(bin)
}

pub struct Watch {
    child: Child,
    functions: Vec<Child>,
    pub port: u16,
    http: reqwest::Client,
    log: PathBuf,
    env: Vec<(String, String)>,
}

/// One answer of a function and how long it took.
pub struct Invocation {
    pub status: u16,
    pub json: Value,
    pub elapsed: Duration,
}

impl Watch {
    /// Starts `cargo lambda watch`; the functions started later get `env`.
    /// Everything they print goes to `log`.
    pub async fn start(env: &[(&str, String)], log: &Path) -> Watch {
        let port = free_port();
        // Append mode for every writer, so that none overwrites another.
        let output = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(log)
            .and_then(|_| std::fs::OpenOptions::new().append(true).open(log))
            .expect("watch log file");
        let mut command = Command::new(venv_bin("cargo-lambda"));
        command
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address"])
            .args(["127.0.0.1", "--invoke-port", &port.to_string()])
            .args(["--timeout", "120"])
            .current_dir(workspace())
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log file"))
            .stderr(output);
        let child = command
            .spawn()
            .expect("cargo-lambda from the virtualenv (run `make venv`)");
        let watch = Watch {
            child,
            functions: Vec::new(),
            port,
            http: reqwest::Client::new(),
            log: log.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not start: {}",
                watch.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        watch
    }

    /// How the function processes are doing (for failure messages).
    pub fn function_states(&mut self) -> String {
        self.functions
            .iter_mut()
            .map(|f| format!("pid {}: {:?}", f.id(), f.try_wait()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Stops the functions started so far.
    pub fn stop_functions(&mut self) {
        for mut function in self.functions.drain(..) {
            let _ = function.kill();
            let _ = function.wait();
        }
    }

    /// Starts `binary` as the function `name`, against the watch's runtime
    /// API, with the variables Lambda sets.
    pub fn start_function(&mut self, name: &str, binary: &Path) {
        let output = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .expect("watch log file");
        let child = Command::new(binary)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt/{name}", self.port),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log file"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary:?}: {e}"));
        self.functions.push(child);
    }

    /// What the watch and the functions printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Invokes `function` with `event` through the Lambda API (what `cargo
    /// lambda invoke` does).
    pub async fn invoke(&self, function: &str, event: &Value) -> Invocation {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations",
            self.port
        );
        self.send(self.http.post(url).json(event)).await
    }

    /// Sends `GET path` with `Host: host` through the function-URL path of
    /// `function`.
    pub async fn get(&self, function: &str, host: &str, path: &str) -> Invocation {
        let url = format!("http://127.0.0.1:{}/lambda-url/{function}{path}", self.port);
        self.send(self.http.get(url).header("host", host)).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Invocation {
        let started = Instant::now();
        let response = request
            .timeout(Duration::from_secs(620))
            .send()
            .await
            .unwrap_or_else(|e| panic!("invocation failed: {e}\n{}", self.log()));
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("answer body");
        Invocation {
            status,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            elapsed: started.elapsed(),
        }
    }
}

/// Sends `signal` to `target`: a pid, or `-<pgid>` for a process group.
fn signal(target: &str, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", target])
        .stderr(Stdio::null())
        .status();
}

/// `child`'s exit status, when it ends within `within`: polled, since std
/// gives a child process no exit event to wait on with a deadline.
fn exited_within(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops `child` through `target` (its pid, or its group): SIGTERM, then
/// SIGKILL after `grace` whatever is left, then reaps it.
fn stop(child: &mut Child, target: &str, grace: Duration) {
    signal(target, "-TERM");
    exited_within(child, grace);
    signal(target, "-KILL");
    let _ = child.wait();
}

/// `make <args>` in the workspace, as a user runs it: with the virtualenv
/// the tests use, and none of the make flags of a `make test` around the
/// tests (its jobserver is not ours).
fn make_command(args: &[&str]) -> Command {
    let mut command = Command::new("make");
    as_from_a_shell(&mut command)
        .args(["--no-print-directory", "-C"])
        .arg(workspace())
        .arg(format!("VENV={}", venv_dir().display()))
        .args(args)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .stdin(Stdio::null());
    command
}

/// How long a `make` command may take: an invocation that its function
/// never answers (one that could not start: `cargo lambda watch` then keeps
/// the invocation waiting) fails the test instead of hanging it.
const MAKE_DEADLINE: Duration = Duration::from_secs(300);

/// Runs `make -s <args>` to its end, in a process group of its own that is
/// stopped if it outlives [`MAKE_DEADLINE`].
pub fn make(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let file = |path: &Path| std::fs::File::create(path).expect("an output file");
    let mut child = make_command(&[&["-s"], args].concat())
        .stdout(file(&out))
        .stderr(file(&err))
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("make {args:?}: {e}"));
    let read = |path: &Path| std::fs::read(path).unwrap_or_default();
    let Some(status) = exited_within(&mut child, MAKE_DEADLINE) else {
        signal(&format!("-{}", child.id()), "-KILL");
        let _ = child.wait();
        panic!(
            "make {args:?} did not end within {} s:\n{}",
            MAKE_DEADLINE.as_secs(),
            String::from_utf8_lossy(&read(&err))
        );
    };
    Output {
        status,
        stdout: read(&out),
        stderr: read(&err),
    }
}

/// A `make` command's answer: its stdout as JSON, once it succeeded
/// (`context`, e.g. the emulator's output, goes into the failure message).
pub fn answered(out: &Output, context: &str) -> Value {
    assert!(
        out.status.success(),
        "{}\n{context}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Builds the three functions as `cargo lambda watch` builds them, so that
/// its own `cargo run` of each finds it up to date and a first invocation
/// is not a build.
pub fn build_functions() {
    for bin in ["web", "publish", "warmup"] {
        build_bin(bin);
    }
}

/// What a run printed after `label` (`Admin password:`) in its banner.
pub fn printed(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|| panic!("no {label:?} printed:\n{output}"))
}

/// `POST <base>/api/admin/login` with `password` and `Host: host` (`base`:
/// the web function's root, locally or through the emulator): the status.
pub async fn login(base: &str, host: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/api/admin/login"))
        .header("host", host)
        .json(&serde_json::json!({ "password": password }))
        .send()
        .await
        .expect("the web function answers")
        .status()
        .as_u16()
}

/// A `make` target that keeps running (`make watch`, `make run-tenants`), in
/// a process group of its own, so that everything it starts is stopped with
/// it on drop: SIGTERM to the group, then SIGKILL.
pub struct MakeRun {
    child: Child,
    log: PathBuf,
}

impl MakeRun {
    /// Starts `make <args>`, its output (both streams) into `log`.
    pub fn start(args: &[&str], log: &Path) -> MakeRun {
        let output = std::fs::File::create(log).expect("make log file");
        let child = make_command(args)
            .stdout(output.try_clone().expect("log file"))
            .stderr(output)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("make {args:?}: {e}"));
        MakeRun {
            child,
            log: log.to_path_buf(),
        }
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until something listens on 127.0.0.1:`port` (builds included).
    pub async fn wait_for_port(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(600);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "make ended ({status}) before 127.0.0.1:{port} answered:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nothing on 127.0.0.1:{port}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for MakeRun {
    fn drop(&mut self) {
        // The group's id is the child's: `process_group(0)`.
        let group = format!("-{}", self.child.id());
        stop(&mut self.child, &group, Duration::from_secs(10));
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop_functions();
        let pid = self.child.id().to_string();
        stop(&mut self.child, &pid, Duration::from_secs(5));
    }
}
