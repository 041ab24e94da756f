//! Helpers for driving the real `ballast` binary in a temporary directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub struct Work {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout then stderr, with paths, IDs and digests that vary between runs replaced.
    pub fn text(&self, w: &Work) -> String {
        w.scrub(&format!(
            "{}{}",
            self.stdout,
            if self.stderr.is_empty() {
                String::new()
            } else {
                format!("--- stderr\n{}", self.stderr)
            }
        ))
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ballast")
}

impl Default for Work {
    fn default() -> Self {
        Work::new()
    }
}

impl Work {
    pub fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) {
        let p = self.file(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("CI")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// [`Work::run`] with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out: Output = c.output().expect("run ballast");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Spawns with the output discarded (for runs that are killed and never read).
    pub fn spawn_quiet(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ballast")
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ballast")
    }

    /// Runs and asserts the exit code, printing everything on mismatch.
    pub fn ok(&self, args: &[&str], code: i32) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, code,
            "ballast {args:?} exited {}\nstdout:\n{}\nstderr:\n{}",
            r.code, r.stdout, r.stderr
        );
        r
    }

    /// Asserts that a plan now finds nothing to do.
    pub fn assert_converged(&self) {
        assert_eq!(
            self.ok(&["plan", "-detailed-exitcode"], 0).stdout.trim(),
            "No changes. The real state matches the configuration."
        );
    }

    pub fn scrub(&self, text: &str) -> String {
        let dir = self.path().display().to_string();
        let mut s = text.replace(&dir, "[DIR]");
        s = replace_matching(&s, is_uuid_at, 36, "[UUID]");
        s = replace_hex64(&s);
        // Keystone's project and user IDs.
        s = replace_matching(
            &s,
            |b| {
                b.len() >= 32
                    && b[..32]
                        .iter()
                        .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            },
            32,
            "[HEX32]",
        );
        scrub_upids(&s)
    }
}

/// Proxmox task IDs (`UPID:node:pid:pstart:starttime:type:id:user:`) → `[UPID]`.
fn scrub_upids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("UPID:") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        match tail.match_indices(':').nth(7) {
            Some((end, _)) => {
                out.push_str("[UPID]");
                rest = &tail[end + 1..];
            }
            None => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_uuid_at(b: &[u8]) -> bool {
    b.len() >= 36
        && b[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

fn replace_matching(s: &str, pred: fn(&[u8]) -> bool, len: usize, with: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if pred(&b[i..]) {
            out.push_str(with);
            i += len;
        } else {
            let ch = s[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn replace_hex64(s: &str) -> String {
    replace_matching(
        s,
        |b| b.len() >= 64 && b[..64].iter().all(|c| c.is_ascii_hexdigit()),
        64,
        "[SHA256]",
    )
}

/// Creates `dir` by building it in a fresh sibling directory and renaming it into place,
/// so that tests running at once never see it half made.
pub fn install_once(dir: &Path, ready: impl Fn(&Path) -> bool, build: impl Fn(&Path)) -> PathBuf {
    if ready(dir) {
        return dir.to_path_buf();
    }
    let staging = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    build(&staging);
    if std::fs::rename(&staging, dir).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        ready(dir),
        "{} is not usable after installing",
        dir.display()
    );
    dir.to_path_buf()
}

/// A Python that can import `module`, from a venv under the temp directory with
/// `requirement` (for example `lxml==6.0.2`) installed from PyPI on first use.
pub fn python_with(requirement: &str, module: &str) -> PathBuf {
    let venv = std::env::temp_dir().join(format!(
        "ballast-tests-venv-{}",
        requirement.replace(['=', '<', '>', ' '], "-")
    ));
    let has = |v: &Path| {
        Command::new(v.join("bin/python"))
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    let dir = install_once(&venv, has, |staging| {
        let how = format!(
            "python3 -m venv {0} && {0}/bin/pip install {requirement}",
            venv.display()
        );
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(staging)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot create a Python venv (python3 with the venv module is needed); install python3 + python3-venv, then: {how}");
        let ok = Command::new(staging.join("bin/pip"))
            .args(["install", "-q", requirement])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot install {requirement} from PyPI; run: {how}");
    });
    // A venv's scripts name its own path: use the renamed one only through its python.
    dir.join("bin/python")
}

/// Runs a command that must succeed; its standard output, trimmed.
#[allow(dead_code)]
pub fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// How many objects the test provider holds in `dir` of the work directory (its `.json`
/// files; a create stages its file under another name first).
pub fn test_objects(w: &Work, dir: &str) -> usize {
    std::fs::read_dir(w.file(dir))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().and_then(|x| x.to_str()) == Some("json"))
                .count()
        })
        .unwrap_or(0)
}

/// `n` test objects whose create waits `delay_ms` after the object exists.
pub fn slow_objects(n: usize, delay_ms: u64) -> String {
    format!(
        r#"
resource "test_object" "slow" {{
  count    = {n}
  dir      = "objects"
  name     = "slow-${{count.index}}"
  value    = count.index
  delay_ms = {delay_ms}
}}
"#
    )
}
