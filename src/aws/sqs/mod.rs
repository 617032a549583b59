//! Amazon SQS: the queues the scorer owns. The subscriber's notification queue belongs to
//! Security Lake and is only read.

pub mod queue;
