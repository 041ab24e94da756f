//! All terminal output goes through here: primary output (plans, listings, JSON) to stdout,
//! progress and errors to stderr. Colour only on a terminal, never with -no-color or NO_COLOR.

use crate::engine::Events;
use crate::render::Style;
use ballast_sdk::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

pub struct Ui {
    pub style: Style,
    tty: bool,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Ui {
    pub fn new(no_color: bool) -> Ui {
        let tty = std::io::stderr().is_terminal();
        let color =
            !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
        Ui {
            style: Style { color },
            tty,
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Primary output.
    pub fn out(&self, text: &str) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = o.write_all(b"\n");
        }
        let _ = o.flush();
    }

    /// Status lines, to stderr (suppressed in JSON mode only for noise, never for errors).
    pub fn status(&self, line: &str) {
        if self.tty && !self.bars.lock().map(|b| b.is_empty()).unwrap_or(true) {
            let _ = self.multi.println(line);
        } else {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{line}");
        }
    }

    pub fn error(&self, msg: &str) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{} {msg}", self.style_err());
    }

    fn style_err(&self) -> String {
        if std::io::stderr().is_terminal() && self.style.color {
            "\x1b[31merror:\x1b[0m".into()
        } else {
            "error:".into()
        }
    }

    fn finish_bar(&self, address: &str) {
        if let Ok(mut bars) = self.bars.lock() {
            if let Some(b) = bars.remove(address) {
                b.finish_and_clear();
            }
        }
    }
}

impl Events for Ui {
    fn info(&self, line: &str) {
        if let Some((addr, rest)) = line.split_once(": ") {
            if rest.contains("complete") {
                self.finish_bar(addr);
            }
        }
        self.status(line);
    }

    fn progress(&self, address: &str, p: &Progress) {
        let counts = match (p.done, p.total) {
            (Some(d), Some(t)) => format!(" ({d}/{t})"),
            _ => String::new(),
        };
        if !self.tty {
            self.status(&format!("{address}: {}{counts}", p.message));
            return;
        }
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(address.to_string()).or_insert_with(|| {
            let b = self.multi.add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_prefix(address.to_string());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        bar.set_message(format!("{}{counts}", p.message));
    }
}
