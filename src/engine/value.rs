//! Values that flow between nodes: a node publishes typed outputs when the engine observes it,
//! and a dependent reads them through typed inputs. No node re-reads another's state from the
//! cloud, so each fact has one reader.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The name and type of one output, such as a queue ARN. Declared once, by the kind that
/// publishes it.
pub struct Key<T> {
    pub name: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T> Key<T> {
    pub const fn new(name: &'static str) -> Self {
        Key { name, _type: PhantomData }
    }
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Key<T> {}

/// What one node published, by key name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outputs(BTreeMap<&'static str, serde_json::Value>);

impl Outputs {
    pub fn new() -> Self {
        Outputs::default()
    }

    /// Adds `value` under `key`; a value that cannot be represented is left out, so a dependent
    /// sees it as unknown rather than wrong.
    pub fn with<T: Serialize>(mut self, key: Key<T>, value: &T) -> Self {
        if let Ok(v) = serde_json::to_value(value) {
            self.0.insert(key.name, v);
        }
        self
    }

    pub fn get<T: DeserializeOwned>(&self, key: Key<T>) -> Option<T> {
        self.0.get(key.name).and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A value a dependent reads: known now, or only once its source has been applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Known<T> {
    Now(T),
    AfterApply,
}

impl<T> Known<T> {
    pub fn now(self) -> Option<T> {
        match self {
            Known::Now(v) => Some(v),
            Known::AfterApply => None,
        }
    }
}

impl<T: fmt::Display> Known<T> {
    /// How a plan shows the value: the value itself, or `(known after apply)` as Terraform says.
    pub fn render(&self) -> String {
        match self {
            Known::Now(v) => v.to_string(),
            Known::AfterApply => AFTER_APPLY.to_owned(),
        }
    }
}

/// How a plan shows a value not known until apply.
pub const AFTER_APPLY: &str = "(known after apply)";

/// Every node's outputs during one run. The engine writes a node's entry each time it observes
/// it; the wiring hands out [`Input`]s that read from here.
#[derive(Debug, Default)]
pub struct Values(RwLock<HashMap<String, Outputs>>);

impl Values {
    pub fn new() -> Arc<Values> {
        Arc::new(Values::default())
    }

    /// Replaces what `address` published. `None` forgets it: the node is absent, or not ours.
    pub fn publish(&self, address: &str, outputs: Option<Outputs>) {
        if let Ok(mut map) = self.0.write() {
            match outputs {
                Some(o) => map.insert(address.to_owned(), o),
                None => map.remove(address),
            };
        }
    }

    pub fn outputs_of(&self, address: &str) -> Option<Outputs> {
        self.0.read().ok().and_then(|map| map.get(address).cloned())
    }
}

/// A dependent's handle on one output of another node. Its source is a dependency of the node
/// that holds it, so the value is settled by the time that node acts.
pub struct Input<T> {
    from: String,
    key: Key<T>,
    values: Arc<Values>,
}

impl<T> Clone for Input<T> {
    fn clone(&self) -> Self {
        Input { from: self.from.clone(), key: self.key, values: Arc::clone(&self.values) }
    }
}

impl<T> fmt::Debug for Input<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.from, self.key.name)
    }
}

impl<T: DeserializeOwned> Input<T> {
    pub fn new(values: &Arc<Values>, from: impl Into<String>, key: Key<T>) -> Self {
        Input { from: from.into(), key, values: Arc::clone(values) }
    }

    /// The address of the node that publishes this value.
    pub fn source(&self) -> &str {
        &self.from
    }

    pub fn get(&self) -> Known<T> {
        match self.values.outputs_of(&self.from).and_then(|o| o.get(self.key)) {
            Some(v) => Known::Now(v),
            None => Known::AfterApply,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUE: Key<String> = Key::new("queueArn");
    const COUNT: Key<u64> = Key::new("count");

    #[test]
    fn inputs_read_what_their_source_published_and_forget_it_when_it_is_gone() {
        let values = Values::new();
        let queue = Input::new(&values, "sqs.queue/x", QUEUE);
        assert_eq!(queue.get(), Known::AfterApply);
        assert_eq!(queue.get().render(), AFTER_APPLY);
        values.publish("sqs.queue/x", Some(Outputs::new().with(QUEUE, &"arn:q".to_owned()).with(COUNT, &7)));
        assert_eq!(queue.get(), Known::Now("arn:q".to_owned()));
        assert_eq!(Input::new(&values, "sqs.queue/x", COUNT).get(), Known::Now(7));
        values.publish("sqs.queue/x", None);
        assert_eq!(queue.get(), Known::AfterApply);
    }

    #[test]
    fn a_value_of_another_type_is_unknown_not_wrong() {
        let values = Values::new();
        values.publish("a", Some(Outputs::new().with(QUEUE, &"not a number".to_owned())));
        let wrong: Input<u64> = Input::new(&values, "a", Key::new("queueArn"));
        assert_eq!(wrong.get(), Known::AfterApply);
    }
}
