//! lakesight: a declarative control plane that finds anomalous network behaviour in Amazon
//! Security Lake data with SageMaker IP Insights.
//!
//! - [`manifest`]: the stack file, parsed strictly and validated with located diagnostics.
//! - [`engine`]: graph, plan and concurrent walk; knows nothing about AWS.
//! - [`resource`]: the resource contract and the registry of kinds.
//! - [`aws`]: the SDK configuration, clients, retries, call statistics and resource kinds.
//! - [`cli`]: one module per subcommand.

pub mod aws;
pub mod cli;
pub mod engine;
pub mod manifest;
pub mod pipeline;
pub mod resource;
pub mod stack;
