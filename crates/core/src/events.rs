//! What the engine reports while it works: a closed set of typed events. The binary renders
//! them (live lines on a terminal, plain lines in logs, JSON lines with `-json`); the engine
//! never formats a sentence for a terminal.

use std::time::Duration;

/// What a step does to its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    /// A provider-proposed repair, such as "start" or "failover".
    Repair(String),
    /// Reading a data source during apply.
    Read,
}

impl Operation {
    /// "create", "update", "delete", "repair:<action>" or "read": the journal's and the
    /// JSON events' word for it.
    pub fn name(&self) -> String {
        match self {
            Operation::Create => "create".into(),
            Operation::Update => "update".into(),
            Operation::Delete => "delete".into(),
            Operation::Repair(action) => format!("repair:{action}"),
            Operation::Read => "read".into(),
        }
    }

    /// The entry of a `timeouts` block that bounds it: "create", "update" or "delete".
    pub fn timeout_key(&self) -> &'static str {
        match self {
            Operation::Delete => "delete",
            Operation::Update | Operation::Repair(_) => "update",
            Operation::Create | Operation::Read => "create",
        }
    }
}

/// Why a change that is ready to run has not started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// Another change holds this lock key ("changes with this key run one at a time").
    LockKey { key: String, holder: String },
}

/// How a crashed run's open journal entry was settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reconciled {
    /// The object was read again and its record updated.
    Refreshed { action: String, tainted: bool },
    /// The object is gone: its record was removed.
    Gone { action: String },
    /// A create that never reached the state: the object was found and adopted.
    Adopted { id: String, tainted: bool },
    /// A provider resumed a wait it had recorded (a pending task) and finished it.
    Resumed { id: String },
    /// A create whose object does not exist: nothing was left behind.
    NothingLeft,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A step was handed to its provider.
    Started {
        address: String,
        operation: Operation,
    },
    /// The provider's own account of an in-flight step.
    Progress {
        address: String,
        operation: Operation,
        message: String,
        done: Option<u64>,
        total: Option<u64>,
    },
    /// Every 10 s for each step still in flight, with the provider's last message.
    StillRunning {
        address: String,
        operation: Operation,
        elapsed: Duration,
        last_message: Option<String>,
    },
    /// A step is ready but may not start yet.
    Waiting {
        address: String,
        reason: WaitReason,
    },
    Completed {
        address: String,
        operation: Operation,
        elapsed: Duration,
        id: Option<String>,
    },
    Failed {
        address: String,
        operation: Operation,
        error: String,
    },
    /// Objects a delete removed along with its own (cascade): recorded as gone.
    Cascaded {
        address: String,
        removed: Vec<String>,
    },
    /// An open journal entry from an interrupted run was settled before planning.
    Reconciled {
        address: String,
        how: Reconciled,
    },
    /// An interrupt was received: no new step starts; in-flight ones finish or stop at a
    /// safe point.
    Interrupted {
        in_flight: usize,
    },
    Diagnostic {
        severity: Severity,
        message: String,
    },
}

/// Where events go. Implementations must be cheap: the engine calls it inline.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// A sink that drops everything (for library users that do not care).
pub struct Discard;

impl EventSink for Discard {
    fn emit(&self, _: Event) {}
}
