//! Journal reconciliation: before planning, every intent a crashed run left open is
//! settled. The object it touched is read again; a create that never reached the state is
//! found (by the object the intent named, or by its ownership mark) and adopted, or
//! recorded as never made. A crash never turns into a conflict or a second object.

use crate::address::{resource_of, type_of};
use crate::engine::Engine;
use crate::events::{Event, Reconciled};
use crate::model::ResourceState;
use crate::store::{Intent, Outcome, Write};
use anyhow::{anyhow, Result};
use std::collections::HashMap;

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
        for intent in &intents {
            let mut writes = Vec::new();
            let how = match recorded.get(&intent.address) {
                Some(r) => self.reread(r, intent, &mut writes).await?,
                None if intent.action == "create" => self.adopt(intent, &mut writes).await?,
                None => None,
            };
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
        }
        Ok(intents.len())
    }

    /// The provider key of an intent (older journals did not record it).
    fn intent_provider(&self, intent: &Intent) -> Result<String> {
        if !intent.provider.is_empty() {
            return Ok(intent.provider.clone());
        }
        let explicit = self
            .ws
            .cfg
            .resource(&resource_of(&intent.address))
            .and_then(|r| r.provider.clone());
        self.provider_key_for(type_of(&intent.address), explicit.as_ref())
    }

    /// A recorded object touched by an interrupted call: read it again.
    async fn reread(
        &mut self,
        r: &ResourceState,
        intent: &Intent,
        writes: &mut Vec<Write>,
    ) -> Result<Option<Reconciled>> {
        let p = self.provider(&r.provider).await?;
        let now = p
            .instance
            .read_many(&r.type_name, std::slice::from_ref(&r.attributes))
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
        let type_name = if intent.type_name.is_empty() {
            type_of(&intent.address).to_string()
        } else {
            intent.type_name.clone()
        };
        let key = self.intent_provider(intent)?;
        let p = self.provider(&key).await?;
        let lineage = self.state.lineage();
        let found = p
            .instance
            .discover(&type_name, std::slice::from_ref(&intent.planned))
            .await
            .unwrap_or_default();
        let Some(d) = found
            .iter()
            .find(|d| d.lineage == lineage && d.address == intent.address)
        else {
            return Ok(Some(Reconciled::NothingLeft));
        };
        let v = p
            .instance
            .import(&type_name, &d.id)
            .await
            .map_err(|e| anyhow!("reconciling {}: {e}", intent.address))?;
        let id = v.get("id").as_str().unwrap_or(&d.id).to_string();
        writes.push(Write::PutResource(ResourceState {
            address: intent.address.clone(),
            type_name,
            provider: key,
            id: Some(id.clone()),
            attributes: v,
            sensitive: Vec::new(),
            dependencies: Vec::new(),
            tainted: true,
            private: Vec::new(),
        }));
        Ok(Some(Reconciled::Adopted { id, tainted: true }))
    }
}
