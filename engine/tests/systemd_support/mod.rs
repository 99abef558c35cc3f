//! Shared by the systemd tests: the real `sluice` binary run as systemd
//! would run it, with a fake `NOTIFY_SOCKET` (a Unix datagram socket the
//! test binds), optionally `WATCHDOG_USEC`/`WATCHDOG_PID`, stderr captured
//! as the log, and the child killed when the handle drops.

#![allow(dead_code)]

pub mod unit;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");
/// How long a test waits for anything the daemon should do promptly.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// One datagram systemd would have received.
#[derive(Debug, Clone)]
pub struct Note {
    pub at: Instant,
    pub lines: Vec<String>,
}

impl Note {
    /// True if the datagram carries `line` exactly (e.g. `READY=1`).
    pub fn has(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }

    /// The `STATUS=` text, if any.
    pub fn status(&self) -> Option<&str> {
        self.lines.iter().find_map(|l| l.strip_prefix("STATUS="))
    }
}

/// A `sluice serve` child process.
pub struct Daemon {
    pub child: Child,
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    notes: Arc<Mutex<Vec<Note>>>,
    log: Arc<Mutex<String>>,
    done: Arc<AtomicBool>,
}

/// Writes a config for a test server in `dir` (data in `dir/data`, any
/// free loopback port), with `extra` TOML appended.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("sluice.toml");
    let text = format!(
        "data_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n{extra}\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

impl Daemon {
    /// Starts `sluice serve --config <dir>/sluice.toml` with its notify
    /// socket in `dir`; with `watchdog`, as under `WatchdogSec=`.
    pub fn start(dir: &Path, watchdog: Option<Duration>) -> Daemon {
        Daemon::start_wrapped(dir, watchdog, &[])
    }

    /// Like [`Daemon::start`], with `wrapper` (e.g. `strace -f -o …`) in
    /// front of the binary; [`Daemon::signal`] then reaches the wrapper.
    pub fn start_wrapped(dir: &Path, watchdog: Option<Duration>, wrapper: &[&str]) -> Daemon {
        let config_path = dir.join("sluice.toml");
        let sock_path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&sock_path);
        let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("socket timeout");
        // systemd sets WATCHDOG_PID to the service's pid; `exec` keeps the
        // shell's pid, so `$$` is the daemon's.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(r#"[ -n "$WATCHDOG_USEC" ] && export WATCHDOG_PID=$$; exec "$0" "$@""#)
            .args(wrapper)
            .arg(BIN)
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("NOTIFY_SOCKET", &sock_path)
            .env_remove("JOURNAL_STREAM")
            .env_remove("WATCHDOG_PID")
            .env_remove("WATCHDOG_USEC")
            .env_remove("SLUICE_CONFIG")
            .env_remove("SLUICE_ADMIN_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(w) = watchdog {
            cmd.env("WATCHDOG_USEC", w.as_micros().to_string());
        }
        let mut child = cmd.spawn().expect("spawn sluice");
        let done = Arc::new(AtomicBool::new(false));
        let notes = Arc::new(Mutex::new(Vec::new()));
        {
            let (notes, done) = (notes.clone(), done.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while !done.load(Ordering::Relaxed) {
                    if let Ok(n) = sock.recv(&mut buf) {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        notes.lock().unwrap().push(Note {
                            at: Instant::now(),
                            lines: text.lines().map(str::to_owned).collect(),
                        });
                    }
                }
            });
        }
        let log = Arc::new(Mutex::new(String::new()));
        {
            let log = log.clone();
            let stderr = child.stderr.take().expect("piped stderr");
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let mut d = Daemon {
            child,
            config_path,
            data_dir: dir.join("data"),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            notes,
            log,
            done,
        };
        let addr = d.wait_for("the `listening on` log line", |d| {
            let log = d.log();
            let rest = log.split("listening on ").nth(1)?;
            rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
        });
        d.addr = addr;
        d
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Every datagram so far.
    pub fn notes(&self) -> Vec<Note> {
        self.notes.lock().unwrap().clone()
    }

    /// Polls `f` until it gives `Some`; panics with the log after
    /// [`PATIENCE`], or at once if the daemon exited.
    pub fn wait_for<T>(&mut self, what: &str, mut f: impl FnMut(&Daemon) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                if let Some(v) = f(self) {
                    return v;
                }
                panic!(
                    "sluice exited ({status}) while the test waited for {what}; its log:\n{}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < PATIENCE,
                "timed out after {PATIENCE:?} waiting for {what}; the log:\n{}\nnotes: {:?}",
                self.log(),
                self.notes()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the first datagram after index `from` that satisfies `f`;
    /// returns its index.
    pub fn wait_note(&mut self, what: &str, from: usize, f: impl Fn(&Note) -> bool) -> usize {
        self.wait_for(what, |d| {
            d.notes()
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, n)| f(n))
                .map(|(i, _)| i)
        })
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let r = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(r, 0, "kill({}, {sig})", self.child.id());
    }

    /// Waits for the daemon to exit (panics with the log after [`PATIENCE`]).
    pub fn exit_status(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "sluice did not exit within {PATIENCE:?}; the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the daemon at once (as a crash or power cut would).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.done.store(true, Ordering::Relaxed);
    }
}

/// The path of a systemd tool, or `None` (after saying so loudly) when it is
/// missing. CI sets `SLUICE_REQUIRE_SYSTEMD=1`, and then a missing tool
/// fails the test instead.
pub fn systemd_tool(name: &str) -> Option<PathBuf> {
    optional_tool(name, "SLUICE_REQUIRE_SYSTEMD", "systemd")
}

/// The path of `name` on PATH (or in the usual bin dirs). When missing: a
/// failure if `require_var` is `1`, else `None` and a loud SKIPPED line
/// saying which Debian `package` brings it.
pub fn optional_tool(name: &str, require_var: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var(require_var).as_deref() != Ok("1"),
            "`{name}` is not installed but {require_var}=1: install Debian's `{package}` package"
        );
        eprintln!(
            "SKIPPED: `{name}` is not installed (apt-get install {package}); set {require_var}=1 to make this a failure"
        );
    }
    found
}

/// The repository root (the workspace, one level above `engine/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("engine/ has a parent")
        .to_owned()
}
