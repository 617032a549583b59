//! AWS Lambda: the `ipcheck` scorer function and its trigger from the subscriber's queue.

pub mod event_source_mapping;
pub mod function;
