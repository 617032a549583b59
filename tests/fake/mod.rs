//! An in-memory fake provider for engine tests: resources behind the real [`Managed`] adapter
//! that publish an id, may read another's id as their input, and can be told to replace, be
//! retained, wait for data, fail, or take several reads to disappear after a delete.

#![allow(dead_code)] // each engine test binary uses a different part of the fake

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lakesight::engine::{Change, Graph, Input, Key, Known, Node, Outputs, Ownership, Readiness, Values};
use lakesight::resource::{Identity, Managed, Resource, ResourceError};

pub const ID: Key<String> = Key::new("id");

/// One resource as the fake cloud holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub spec: String,
    /// The input value it was created with.
    pub input: Option<String>,
    pub generation: u32,
    /// Reads left before a deleted resource is gone.
    pub deleting: Option<usize>,
}

#[derive(Default)]
pub struct Cloud {
    pub resources: Mutex<HashMap<String, Stored>>,
    pub generations: AtomicUsize,
    pub mutations: AtomicUsize,
    pub log: Mutex<Vec<String>>,
}

impl Cloud {
    pub fn get(&self, address: &str) -> Option<Stored> {
        self.resources.lock().unwrap().get(address).cloned()
    }
    pub fn record(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
    fn mutated(&self, entry: String) {
        self.mutations.fetch_add(1, Ordering::SeqCst);
        self.record(entry);
    }
}

pub struct Fake {
    identity: Identity,
    cloud: Arc<Cloud>,
    spec: String,
    input: Option<Input<String>>,
    retained: bool,
    waits: Option<String>,
    delete_lag: usize,
    fails: bool,
    declared: bool,
}

impl Fake {
    pub fn new(cloud: &Arc<Cloud>, address: &str, deps: &[&str]) -> Fake {
        Fake {
            identity: Identity {
                address: address.into(),
                name: address.into(),
                depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
                wait_timeout: Duration::from_secs(5),
                poll_interval: Duration::from_millis(5),
                serial_key: None,
                stack: "demo".into(),
            },
            cloud: Arc::clone(cloud),
            spec: "v1".into(),
            input: None,
            retained: false,
            waits: None,
            delete_lag: 0,
            fails: false,
            declared: true,
        }
    }
    /// Takes `from`'s id as its input, which also makes `from` a dependency.
    pub fn reading(mut self, values: &Arc<Values>, from: &str) -> Self {
        self.identity.depends_on.push(from.to_owned());
        self.input = Some(Input::new(values, from, ID));
        self
    }
    pub fn spec(mut self, spec: &str) -> Self {
        self.spec = spec.into();
        self
    }
    pub fn retained(mut self) -> Self {
        self.retained = true;
        self
    }
    pub fn waiting(mut self, reason: &str) -> Self {
        self.waits = Some(reason.into());
        self
    }
    pub fn slow_to_delete(mut self, reads: usize) -> Self {
        self.delete_lag = reads;
        self
    }
    /// The stack made it, but the manifest no longer names it.
    pub fn dropped(mut self) -> Self {
        self.declared = false;
        self
    }

    /// Its creates fail.
    pub fn failing(mut self) -> Self {
        self.fails = true;
        self
    }
    fn wanted_input(&self) -> Option<String> {
        self.input.as_ref().and_then(|i| i.get().now())
    }
}

#[async_trait]
impl Resource for Fake {
    type Observed = Stored;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Stored>, ResourceError> {
        let mut resources = self.cloud.resources.lock().unwrap();
        let address = &self.identity.address;
        match resources.get_mut(address) {
            Some(Stored { deleting: Some(0), .. }) => {
                resources.remove(address);
                drop(resources);
                self.cloud.record(format!("gone {address}"));
                Ok(None)
            }
            Some(stored) => {
                if let Some(left) = stored.deleting.as_mut() {
                    *left -= 1;
                }
                Ok(Some(stored.clone()))
            }
            None => Ok(None),
        }
    }

    fn owner(&self, _observed: &Stored) -> Ownership {
        Ownership::Owned
    }

    fn diff(&self, observed: &Stored) -> Vec<Change> {
        let mut changes = Vec::new();
        if observed.spec != self.spec {
            changes.push(Change::replacing("spec", &observed.spec, &self.spec));
        }
        if let Some(input) = &self.input
            && let Known::Now(wanted) = input.get()
            && observed.input.as_ref() != Some(&wanted)
        {
            changes.push(Change::replacing("input", observed.input.clone().unwrap_or_default(), wanted));
        }
        changes
    }

    fn id(&self, observed: &Stored) -> String {
        format!("{}@{}", self.identity.address, observed.generation)
    }

    fn absence_note(&self) -> Option<String> {
        self.input.as_ref().map(|i| format!("from {}", i.get().render()))
    }

    fn outputs(&self, observed: &Stored) -> Outputs {
        Outputs::new().with(ID, &self.id(observed))
    }

    async fn create(&self) -> Result<(), ResourceError> {
        if self.fails {
            self.cloud.record(format!("failed create {}", self.identity.address));
            return Err(ResourceError::Invalid(format!("{} exploded", self.identity.address)));
        }
        let mut resources = self.cloud.resources.lock().unwrap();
        if resources.contains_key(&self.identity.address) {
            return Err(ResourceError::Invalid(format!("{} still exists (deleted recently)", self.identity.address)));
        }
        let generation = u32::try_from(self.cloud.generations.fetch_add(1, Ordering::SeqCst)).unwrap_or(0);
        let stored = Stored { spec: self.spec.clone(), input: self.wanted_input(), generation, deleting: None };
        resources.insert(self.identity.address.clone(), stored);
        drop(resources);
        self.cloud.mutated(format!("create {} from {:?}", self.identity.address, self.wanted_input()));
        Ok(())
    }

    async fn update(&self, _observed: &Stored, _changes: &[Change]) -> Result<(), ResourceError> {
        self.cloud.mutated(format!("update {}", self.identity.address));
        Ok(())
    }

    async fn delete(&self, _observed: &Stored) -> Result<(), ResourceError> {
        if let Some(stored) = self.cloud.resources.lock().unwrap().get_mut(&self.identity.address) {
            stored.deleting = Some(self.delete_lag);
        }
        self.cloud.mutated(format!("delete {}", self.identity.address));
        Ok(())
    }

    /// Like most kinds, not ready while it does not exist.
    async fn readiness(&self) -> Result<Readiness, ResourceError> {
        if self.cloud.get(&self.identity.address).is_none() {
            return Ok(self.identity.pending("not there yet"));
        }
        Ok(match &self.waits {
            Some(reason) => Readiness::Waiting { reason: reason.clone() },
            None => Readiness::Ready,
        })
    }

    fn retain_on_destroy(&self) -> bool {
        self.retained
    }

    fn declared(&self) -> bool {
        self.declared
    }
}

pub fn graph(values: Arc<Values>, fakes: Vec<Fake>) -> Graph {
    Graph::new(fakes.into_iter().map(|f| Arc::new(Managed::new(f)) as Arc<dyn Node>).collect(), values)
        .expect("valid graph")
}
