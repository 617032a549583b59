//! Amazon Athena: the stack's workgroup, where the feature queries run.

pub mod workgroup;
