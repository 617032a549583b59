//! AWS IAM resources: the roles a stack creates, each with an inline policy generated from the
//! manifest and the ARNs of the stack's other resources.

pub mod lake_access;
pub mod policy;
pub mod role;
