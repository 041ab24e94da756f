//! Journal reconciliation: before planning, every intent a crashed run left open is
//! settled, so that a crash never turns into a conflict, a duplicate or a lost record.
//!
//! - A recorded object an interrupted call touched is read again. If its provider left
//!   private data (a pending task), the provider first gets to resume that wait.
//! - A create that never reached the state is looked for: by the object the intent named
//!   before the call (the ID `import` takes), else by its ownership mark. Found, it is
//!   adopted (tainted: the next apply replaces it); not found, it is looked for once more
//!   after a moment (a server may still carry out a call whose client died), then nothing
//!   was left behind.

use crate::address::{resource_of, type_of};
use crate::engine::{Configured, Engine};
use crate::events::{Event, Operation, Reconciled, Severity};
use crate::journal::Journal;
use crate::model::ResourceState;
use crate::store::{Intent, Outcome, Write};
use anyhow::{anyhow, Result};
use ballast_sdk::{ResourceType, ResumeRequest, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long after the first look a create that an interrupted run sent is looked for again.
const LATE_CREATE_GRACE: Duration = Duration::from_secs(2);

impl Engine {
    /// Settles intents left open by a run that crashed. Returns how many there were.
    pub async fn reconcile(&mut self) -> Result<usize> {
        let intents = self.state.open_intents()?;
        if intents.is_empty() {
            return Ok(0);
        }
        let recorded: HashMap<String, ResourceState> = self
            .state
            .resources()?
            .into_iter()
            .map(|r| (r.address.clone(), r))
            .collect();
        // Creates whose object is not there (yet): looked for once more, all together.
        let mut missing = Vec::new();
        for intent in &intents {
            let mut writes = Vec::new();
            let how = match recorded.get(&intent.address) {
                Some(r) => self.settle_recorded(r, intent, &mut writes).await?,
                None if intent.action == "create" => self.adopt(intent, &mut writes).await?,
                None => None,
            };
            if how == Some(Reconciled::NothingLeft) {
                missing.push(intent);
                continue;
            }
            self.settled(intent, writes, how)?;
        }
        if !missing.is_empty() {
            // A server may still carry out a create whose client was killed (libvirtd's
            // worker pool had queued it): look again after a moment, so that such an object
            // is adopted, not found by the plan as a conflict.
            tokio::select! {
                _ = tokio::time::sleep(LATE_CREATE_GRACE) => {}
                _ = self.interrupt.stop.cancelled() => {}
            }
            for intent in missing {
                let mut writes = Vec::new();
                let how = self.adopt(intent, &mut writes).await?;
                self.settled(intent, writes, how)?;
            }
        }
        Ok(intents.len())
    }

    /// Closes a settled intent together with what settling it wrote, and says how.
    fn settled(
        &self,
        intent: &Intent,
        mut writes: Vec<Write>,
        how: Option<Reconciled>,
    ) -> Result<()> {
        writes.push(Write::CloseIntent {
            id: intent.id.clone(),
            outcome: Outcome::Reconciled,
        });
        self.state.commit(writes)?;
        if let Some(how) = how {
            self.emit(Event::Reconciled {
                address: intent.address.clone(),
                how,
            });
        }
        Ok(())
    }

    /// The configured provider and resource type of an intent (older journals did not
    /// record the provider and type).
    async fn intent_type(
        &mut self,
        intent: &Intent,
    ) -> Result<(String, Arc<Configured>, Arc<dyn ResourceType>)> {
        let type_name = if intent.type_name.is_empty() {
            type_of(&intent.address).to_string()
        } else {
            intent.type_name.clone()
        };
        let key = if intent.provider.is_empty() {
            match self.ws.cfg.resource(&resource_of(&intent.address)) {
                Some(r) => self.resource_provider_key(r)?,
                None => self.provider_key_for(&type_name, None)?,
            }
        } else {
            intent.provider.clone()
        };
        let p = self.provider(&key).await?;
        let rt = p.resource(&type_name)?.clone();
        Ok((key, p, rt))
    }

    /// A recorded object touched by an interrupted call: resume its provider's wait if it
    /// left one, else read it again.
    async fn settle_recorded(
        &mut self,
        r: &ResourceState,
        intent: &Intent,
        writes: &mut Vec<Write>,
    ) -> Result<Option<Reconciled>> {
        let p = self.provider(&r.provider).await?;
        let rt = p.resource(&r.type_name)?.clone();
        if !r.private.is_empty() {
            let journal = Journal::new(
                self.state.clone(),
                None,
                Operation::Create,
                self.events.clone(),
                r.clone(),
                true,
            );
            let req = ResumeRequest {
                object: &r.attributes,
                private: &r.private,
                address: &r.address,
                cancel: self.interrupt.stop.clone(),
                // The timeout of the operation that was interrupted.
                deadline: Instant::now() + rt.schema().timeouts.get(&intent.action),
            };
            match rt.resume(req, &journal).await {
                Ok(Some(applied)) => {
                    if let Some(v) = applied.object {
                        let id = v.get("id").as_str().unwrap_or_default().to_string();
                        writes.push(Write::PutResource(ResourceState {
                            id: Some(id.clone()),
                            attributes: v,
                            tainted: false,
                            private: applied.private.unwrap_or_default(),
                            ..r.clone()
                        }));
                        return Ok(Some(Reconciled::Resumed { id }));
                    }
                }
                Ok(None) => {}
                Err(e) => self.emit(Event::Diagnostic {
                    severity: Severity::Warning,
                    message: format!(
                        "{}: could not resume the wait an interrupted run left: {e}",
                        r.address
                    ),
                }),
            }
        }
        let now = rt
            .read_many(std::slice::from_ref(&r.attributes))
            .await
            .map_err(|e| anyhow!("reconciling {}: {e}", r.address))?;
        Ok(Some(match now.into_iter().next().flatten() {
            None => {
                writes.push(Write::RemoveResource(r.address.clone()));
                Reconciled::Gone {
                    action: intent.action.clone(),
                }
            }
            Some(v) => {
                let mut r = r.clone();
                r.attributes = v;
                let tainted = r.tainted;
                writes.push(Write::PutResource(r));
                Reconciled::Refreshed {
                    action: intent.action.clone(),
                    tainted,
                }
            }
        }))
    }

    /// A create that never reached the state: the object may exist all the same.
    async fn adopt(
        &mut self,
        intent: &Intent,
        writes: &mut Vec<Write>,
    ) -> Result<Option<Reconciled>> {
        let (key, _, rt) = self.intent_type(intent).await?;
        let found: Option<Value> = match (&intent.object_id, &intent.target) {
            // The provider reported the object: read exactly that one.
            (Some(id), _) => match rt.import(id).await {
                Ok(v) => Some(v),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(anyhow!("reconciling {}: {e}", intent.address)),
            },
            // The intent named its target before the call: that object, if it is ours.
            (None, Some(target)) => rt
                .adopt(target, &intent.address)
                .await
                .map_err(|e| anyhow!("reconciling {}: {e}", intent.address))?,
            // Else the object's ownership mark says whose it is.
            (None, None) => {
                let lineage = self.state.lineage();
                let marked = rt
                    .discover(&[&intent.planned])
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .find(|d| d.lineage == lineage && d.address == intent.address);
                match marked {
                    Some(d) => Some(
                        rt.import(&d.id)
                            .await
                            .map_err(|e| anyhow!("reconciling {}: {e}", intent.address))?,
                    ),
                    None => None,
                }
            }
        };
        let Some(v) = found else {
            return Ok(Some(Reconciled::NothingLeft));
        };
        let id = v.get("id").as_str().unwrap_or_default().to_string();
        writes.push(Write::PutResource(ResourceState {
            address: intent.address.clone(),
            type_name: rt.schema().type_name.to_string(),
            provider: key,
            id: Some(id.clone()),
            attributes: v,
            sensitive: rt.schema().sensitive_paths(),
            dependencies: Vec::new(),
            tainted: true,
            private: Vec::new(),
        }));
        Ok(Some(Reconciled::Adopted { id, tainted: true }))
    }
}
