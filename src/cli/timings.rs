//! A reporter for apply and destroy that times each node's action for the run ledger, and tells
//! the stack's lease when the artifact bucket that holds it starts being deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::aws::s3::bucket;
use crate::aws::s3::lock::Removal;
use crate::engine::{Action, Outcome, Reporter};

pub struct Timings {
    inner: Arc<dyn Reporter>,
    removal: Option<Removal>,
    started: Mutex<HashMap<String, Instant>>,
    took: Mutex<HashMap<String, Duration>>,
}

impl Timings {
    /// Passes every event on to `inner`; `removal` is the lease to tell, if the run holds one.
    pub fn new(inner: Arc<dyn Reporter>, removal: Option<Removal>) -> Self {
        Timings { inner, removal, started: Mutex::default(), took: Mutex::default() }
    }

    /// How long each node that acted took, by address.
    pub fn durations(&self) -> HashMap<String, Duration> {
        self.took.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl Reporter for Timings {
    fn started(&self, address: &str, action: Action) {
        if address == bucket::ADDRESS
            && action == Action::Delete
            && let Some(removal) = &self.removal
        {
            removal.announce();
        }
        if let Ok(mut started) = self.started.lock() {
            started.insert(address.to_owned(), Instant::now());
        }
        self.inner.started(address, action);
    }

    fn waiting(&self, address: &str, status: &str, elapsed: Duration) {
        self.inner.waiting(address, status, elapsed);
    }

    fn finished(&self, address: &str, outcome: &Outcome) {
        let began = self.started.lock().ok().and_then(|mut s| s.remove(address));
        if let (Some(began), Ok(mut took)) = (began, self.took.lock()) {
            took.insert(address.to_owned(), began.elapsed());
        }
        self.inner.finished(address, outcome);
    }
}
