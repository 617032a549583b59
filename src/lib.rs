//! lakesight: a declarative control plane that finds anomalous network behaviour in Amazon
//! Security Lake data with SageMaker IP Insights.
//!
//! - [`manifest`]: the stack file, parsed strictly and validated with located diagnostics.
//! - [`engine`]: graph, plan and concurrent walk; knows nothing about AWS.
//! - [`resource`]: the resource contract and the adapter that erases its types.
//! - [`aws`]: the SDK configuration, clients, retries, call statistics, resource kinds, and the
//!   wiring that turns a stack into a graph.
//! - [`iam_policy`]: the least-privilege IAM policy of a stack's CI principal.
//! - [`ledger`]: the record of each run of a mutating command.
//! - [`cli`]: one module per subcommand.
//! - [`calibration`]: the anomaly threshold chosen on held-out scores, with its evidence and plots.
//! - [`ipinsights`]: the embedded IP Insights engine (feature `ipinsights`, part of `control-plane`).
//! - [`scorer`]: the `ipcheck` Lambda's logic, built alone with `--no-default-features --features scorer`.
//! - [`synthetic`]: a generated Security Lake for the emulator and the tests (feature `synthetic`).

#[cfg(feature = "control-plane")]
pub mod aws;
#[cfg(feature = "control-plane")]
pub mod calibration;
#[cfg(feature = "control-plane")]
pub mod cli;
#[cfg(feature = "control-plane")]
pub mod engine;
#[cfg(feature = "control-plane")]
pub mod iam_policy;
#[cfg(feature = "ipinsights")]
pub mod ipinsights;
#[cfg(feature = "control-plane")]
pub mod ledger;
#[cfg(feature = "control-plane")]
pub mod manifest;
#[cfg(feature = "control-plane")]
pub mod pipeline;
#[cfg(feature = "control-plane")]
pub mod resource;
#[cfg(feature = "scorer")]
pub mod scorer;
#[cfg(feature = "control-plane")]
pub mod stack;
#[cfg(any(feature = "synthetic", all(test, feature = "scorer")))]
pub mod synthetic;
