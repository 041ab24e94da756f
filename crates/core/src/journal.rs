//! The engine's side of a provider call ([`ApplyContext`]): a new object's identity and a
//! provider's private data are committed to the state the moment they are reported, and
//! progress goes to the event sink.

use crate::events::{Event, EventSink, Operation};
use crate::model::ResourceState;
use crate::state::State;
use crate::store::{IntentId, Write};
use ballast_sdk::{ApplyContext, ProviderError, ResourceType, Value};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long the read after a failed create may take (it only improves the record).
const READ_AFTER_FAILURE: Duration = Duration::from_secs(30);

pub struct Journal {
    state: Arc<State>,
    /// The journal entry of the call (none for a resumed wait, which has its own).
    intent: Option<IntentId>,
    operation: Operation,
    events: Arc<dyn EventSink>,
    inner: Mutex<Inner>,
}

struct Inner {
    /// The record as it stands: the prior one, or the new object once it exists.
    record: ResourceState,
    /// Whether the record is in the state (false for a create until `created`).
    recorded: bool,
    created: bool,
    settled: bool,
    private: Option<Vec<u8>>,
}

impl Journal {
    /// `record` is the object's state entry (for a create: the entry to be, with no id);
    /// `recorded` says whether it is in the state already.
    pub fn new(
        state: Arc<State>,
        intent: Option<IntentId>,
        operation: Operation,
        events: Arc<dyn EventSink>,
        record: ResourceState,
        recorded: bool,
    ) -> Journal {
        Journal {
            state,
            intent,
            operation,
            events,
            inner: Mutex::new(Inner {
                record,
                recorded,
                created: false,
                settled: false,
                private: None,
            }),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the provider reported a new object.
    pub fn created(&self) -> bool {
        self.inner().created
    }

    /// Whether the provider said the object is applied and only a wait remained.
    pub fn settled(&self) -> bool {
        self.inner().settled
    }

    /// After a create that failed once the object existed (and not because of an interrupt
    /// or a timeout, which leave a wait to resume): records the object as a read finds it
    /// now, still tainted. The record made before the wait lacks what the failed work left
    /// (a status, a lock, disks), and the next refresh would report that as a change made
    /// outside ballast. Best effort: if the read fails or finds nothing, the record stands.
    pub async fn record_as_read(&self, rt: &dyn ResourceType) {
        let recorded = {
            let inner = self.inner();
            if !inner.created || inner.settled {
                return;
            }
            inner.record.attributes.clone()
        };
        let read = tokio::time::timeout(
            READ_AFTER_FAILURE,
            rt.read_many(std::slice::from_ref(&recorded)),
        )
        .await;
        if let Ok(Ok(found)) = read {
            if let Some(Some(now)) = found.into_iter().next() {
                if now.get("id") == recorded.get("id") {
                    // A failure to write keeps the earlier record, which is still right.
                    let _ = ApplyContext::created(self, &now);
                }
            }
        }
    }

    /// The private data the provider saved during the call, if any.
    pub fn saved_private(&self) -> Option<Vec<u8>> {
        self.inner().private.clone()
    }
}

impl ApplyContext for Journal {
    fn created(&self, object: &Value) -> Result<(), ProviderError> {
        let id = object
            .get("id")
            .as_str()
            .ok_or_else(|| {
                ProviderError::new("the provider reported a created object without an id")
            })?
            .to_string();
        let mut inner = self.inner();
        let mut r = inner.record.clone();
        r.id = Some(id.clone());
        r.attributes = object.clone();
        // Tainted until the apply call returns successfully.
        r.tainted = true;
        let mut writes = vec![Write::PutResource(r.clone())];
        if let Some(intent) = &self.intent {
            writes.push(Write::IntentObject {
                id: intent.clone(),
                object_id: id.clone(),
            });
        }
        self.state.commit(writes).map_err(|e| {
            ProviderError::new(format!("cannot record the new object {id} in state: {e:#}"))
        })?;
        inner.record = r;
        inner.recorded = true;
        inner.created = true;
        Ok(())
    }

    fn save_private(&self, private: &[u8]) -> Result<(), ProviderError> {
        let mut inner = self.inner();
        if !inner.recorded {
            return Err(ProviderError::new(
                "the provider saved private data before reporting the new object",
            ));
        }
        let mut r = inner.record.clone();
        r.private = private.to_vec();
        self.state
            .commit(vec![Write::PutResource(r.clone())])
            .map_err(|e| ProviderError::new(format!("cannot record private data: {e:#}")))?;
        inner.record = r;
        inner.private = Some(private.to_vec());
        Ok(())
    }

    fn target(&self, target: &str) -> Result<(), ProviderError> {
        let Some(intent) = &self.intent else {
            return Ok(());
        };
        self.state
            .commit(vec![Write::IntentTarget {
                id: intent.clone(),
                target: target.to_string(),
            }])
            .map_err(|e| {
                ProviderError::new(format!(
                    "cannot journal the create's target {target}: {e:#}"
                ))
            })
    }

    fn settled(&self, object: &Value) -> Result<(), ProviderError> {
        let mut inner = self.inner();
        if !inner.recorded {
            return Err(ProviderError::new(
                "the provider settled an object before reporting it created",
            ));
        }
        let mut r = inner.record.clone();
        if let Some(id) = object.get("id").as_str() {
            r.id = Some(id.to_string());
        }
        r.attributes = object.clone();
        r.tainted = false;
        self.state
            .commit(vec![Write::PutResource(r.clone())])
            .map_err(|e| ProviderError::new(format!("cannot record the applied object: {e:#}")))?;
        inner.record = r;
        inner.settled = true;
        Ok(())
    }

    fn progress(&self, p: ballast_sdk::Progress) {
        let address = self.inner().record.address.clone();
        self.events.emit(Event::Progress {
            address,
            operation: self.operation.clone(),
            message: p.message,
            done: p.done,
            total: p.total,
        });
    }
}
