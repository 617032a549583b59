//! One invocation's messages, the objects they name, and what failed for which message. Objects
//! are listed once with every message that named them, since SQS may deliver a notification
//! twice; a failure is recorded against every message behind the object or pair it hit.

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::event::sqs::SqsEvent;

use super::event::{self, Notice, ObjectRef};

/// Why a message did not succeed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Retrying cannot help: dead-letter it.
    Permanent(String),
    /// Retrying may help: leave it on the queue.
    Transient(String),
}

pub struct Message<'a> {
    pub id: &'a str,
    pub body: &'a str,
}

#[derive(Default)]
pub struct Batch<'a> {
    pub messages: Vec<Message<'a>>,
    /// Each object once, with the indices of the messages that named it.
    pub objects: Vec<(Vec<usize>, ObjectRef)>,
    /// By message index.
    pub failures: BTreeMap<usize, Failure>,
    /// Messages with nothing to score: test events, other event types, other keys.
    pub skipped: usize,
}

impl<'a> Batch<'a> {
    /// Reads every record's body; a body that is not a notification fails its message for good.
    pub fn of(event: &'a SqsEvent) -> Batch<'a> {
        let mut batch = Batch::default();
        let mut listed: HashMap<ObjectRef, usize> = HashMap::new();
        for record in &event.records {
            let Some(id) = record.message_id.as_deref() else {
                tracing::warn!("an SQS record without a message id cannot be acknowledged; ignored");
                continue;
            };
            let m = batch.messages.len();
            let body = record.body.as_deref().unwrap_or_default();
            batch.messages.push(Message { id, body });
            match event::parse(body) {
                Ok(Notice::Objects(found)) => {
                    for object in found {
                        match listed.get(&object) {
                            Some(&source) => batch.objects[source].0.push(m),
                            None => {
                                listed.insert(object.clone(), batch.objects.len());
                                batch.objects.push((vec![m], object));
                            }
                        }
                    }
                }
                Ok(Notice::Skip(reason)) => {
                    batch.skipped += 1;
                    tracing::info!(message = id, %reason, "skipped");
                }
                Err(e) => batch.fail(m, Failure::Permanent(e.to_string())),
            }
        }
        batch
    }

    /// Records a failure; a permanent one wins, since retrying the message cannot help it.
    pub fn fail(&mut self, message: usize, failure: Failure) {
        if !matches!(self.failures.get(&message), Some(Failure::Permanent(_))) {
            self.failures.insert(message, failure);
        }
    }

    /// Fails every message that named object `source`.
    pub fn fail_object(&mut self, source: usize, failure: &Failure) {
        for m in self.objects[source].0.clone() {
            self.fail(m, failure.clone());
        }
    }

    /// Fails every message that named the object shown as `s3://bucket/key`.
    pub fn fail_object_shown_as(&mut self, shown: &str, failure: &Failure) {
        let sources: Vec<usize> = (0..self.objects.len()).filter(|&s| self.objects[s].1.to_string() == shown).collect();
        for source in sources {
            self.fail_object(source, failure);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{s3_notification, sqs_event};

    #[test]
    fn an_object_named_twice_is_listed_once_and_a_permanent_failure_wins() {
        let event: SqsEvent = serde_json::from_value(sqs_event(&[
            ("a", s3_notification("lake", "x.parquet")),
            ("b", s3_notification("lake", "x.parquet")),
            ("c", "[]".to_owned()),
        ]))
        .expect("event");
        let mut batch = Batch::of(&event);
        assert_eq!(batch.objects.len(), 1);
        assert_eq!(batch.objects[0].0, vec![0, 1]);
        assert!(matches!(batch.failures.get(&2), Some(Failure::Permanent(_))));
        batch.fail_object_shown_as("s3://lake/x.parquet", &Failure::Transient("throttled".into()));
        batch.fail(0, Failure::Permanent("gone".into()));
        batch.fail(0, Failure::Transient("throttled again".into()));
        assert!(matches!(batch.failures.get(&0), Some(Failure::Permanent(reason)) if reason == "gone"));
        assert!(matches!(batch.failures.get(&1), Some(Failure::Transient(_))));
    }
}
