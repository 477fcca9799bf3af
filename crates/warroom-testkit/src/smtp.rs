//! A real SMTP server on loopback: Debian's `python3-aiosmtpd` running `smtp_sink.py`, which
//! writes every accepted message to a folder. `.ci/run` installs it; on a machine without it the
//! email tests are skipped, loudly.

use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Once,
    time::Duration,
};

const SCRIPT: &str = include_str!("smtp_sink.py");
/// Debian's interpreter, which is where `apt-get install python3-aiosmtpd` puts the module
/// (a `python3` earlier on `PATH`, e.g. pyenv's, would not see it).
const PYTHON: &str = "/usr/bin/python3";

/// What the sink should demand of clients.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// Require `AUTH` with this user and password.
    pub auth: Option<(String, String)>,
    /// Require `STARTTLS` with this certificate and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// One message as the server accepted it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `MAIL FROM`.
    pub mail_from: String,
    /// `RCPT TO`, accepted ones.
    pub rcpt_tos: Vec<String>,
    /// Whether the session was upgraded to TLS.
    pub tls: bool,
    /// Whether the client authenticated.
    pub auth: bool,
    /// The message as sent (headers and body, CRLF line ends).
    pub content: String,
}

/// A running SMTP sink, stopped on drop.
pub struct SmtpSink {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when the SMTP server can run here; otherwise says so loudly, once.
pub fn available() -> bool {
    static WARN: Once = Once::new();
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        WARN.call_once(|| {
            eprintln!(
                "\n!!!!!!!! {PYTHON} cannot import aiosmtpd: the SMTP email tests are SKIPPED on this machine. \
                 Install it with `apt-get install -y python3-aiosmtpd` (CI does, see .ci/run). !!!!!!!!\n"
            )
        });
    }
    ok
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl SmtpSink {
    /// Starts the sink on a free port; `None` (after a loud message) when aiosmtpd is missing.
    pub fn start(options: &SinkOptions) -> anyhow::Result<Option<SmtpSink>> {
        if !available() {
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        let script = dir.path().join("smtp_sink.py");
        std::fs::write(&script, SCRIPT)?;
        let inbox = dir.path().join("inbox");
        std::fs::create_dir(&inbox)?;
        let port = free_port()?;
        let mut cmd = Command::new(PYTHON);
        cmd.arg(&script).arg(port.to_string()).arg(&inbox);
        if let Some((u, p)) = &options.auth {
            cmd.arg("--auth").arg(format!("{u}:{p}"));
        }
        if let Some((cert, key)) = &options.tls {
            cmd.arg("--tls").arg(cert).arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout from the SMTP sink"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "READY" {
            let _ = child.kill();
            anyhow::bail!("the SMTP sink did not start (said {line:?})");
        }
        Ok(Some(SmtpSink { port, child, dir }))
    }

    fn inbox(&self) -> PathBuf {
        self.dir.path().join("inbox")
    }

    /// Messages accepted so far, oldest first.
    pub fn received(&self) -> anyhow::Result<Vec<Received>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.inbox())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files.iter().map(|p| read(p)).collect()
    }

    /// Waits up to 10 s for `n` messages.
    pub async fn wait_for(&self, n: usize) -> anyhow::Result<Vec<Received>> {
        for _ in 0..1000 {
            let got = self.received()?;
            if got.len() >= n {
                return Ok(got);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.received()
    }
}

fn read(p: &Path) -> anyhow::Result<Received> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p)?)?;
    Ok(Received {
        mail_from: v["mail_from"].as_str().unwrap_or_default().to_owned(),
        rcpt_tos: v["rcpt_tos"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect(),
        tls: v["tls"].as_bool().unwrap_or(false),
        auth: v["auth"].as_bool().unwrap_or(false),
        content: v["content"].as_str().unwrap_or_default().to_owned(),
    })
}

/// A self-signed certificate for `127.0.0.1` (made with the `openssl` CLI) in `dir`: returns
/// (cert, key). `None` when `openssl` is missing.
pub fn self_signed_cert(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some((cert, key))
}
