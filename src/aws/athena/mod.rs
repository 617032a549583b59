//! Amazon Athena: the stack's workgroup and the feature runs in it.

pub mod feature_run;
pub mod workgroup;
