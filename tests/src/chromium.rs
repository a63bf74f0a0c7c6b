//! Headless Chromium (the Debian package, `/usr/bin/chromium`) for the web-page test: the DOM
//! of a page after it loaded, and a screenshot. Each run gets a fresh profile folder, and
//! everything that would reach the network on its own (updates, sync, QUIC, first-run pages)
//! is off. A missing Chromium fails the test with how to install it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the Debian package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser's path; panics with install instructions when it is missing.
pub fn chromium_path() -> PathBuf {
    let p = PathBuf::from(CHROMIUM);
    assert!(
        p.is_file(),
        "{CHROMIUM} is missing: the web-page test needs Debian's Chromium. Install it with \
         `scripts/setup-chromium` (as root: apt-get update && apt-get install -y chromium); \
         scripts/test runs it first"
    );
    p
}

/// Run Chromium headless on `url` with `extra` arguments; returns its stdout. Panics (with
/// stderr) when it fails or takes more than 90 s.
fn run(url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().expect("a profile folder");
    let out = tempfile::NamedTempFile::new().expect("an output file");
    let err = tempfile::NamedTempFile::new().expect("an error file");
    let mut child = Command::new(chromium_path())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(out.reopen().expect("stdout"))
        .stderr(err.reopen().expect("stderr"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for chromium") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish {url} within 90 s:\n{}",
                std::fs::read_to_string(err.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(out.path()).unwrap_or_default();
    assert!(
        status.success(),
        "chromium failed on {url} ({status}):\n{}",
        std::fs::read_to_string(err.path()).unwrap_or_default()
    );
    stdout
}

/// The DOM of `url` once loaded, serialized (`--dump-dom`).
pub fn dump_dom(url: &str) -> String {
    let dom = run(url, &["--dump-dom".to_string()]);
    assert!(dom.contains("<html"), "no DOM for {url}: {dom:?}");
    dom
}

/// A PNG screenshot of `url` at `width`x`height` into `path` (its folder is created).
pub fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("the screenshot folder");
    }
    let _ = std::fs::remove_file(path);
    run(
        url,
        &[
            format!("--screenshot={}", path.display()),
            format!("--window-size={width},{height}"),
        ],
    );
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 1000,
        "{} is not a PNG",
        path.display()
    );
}
