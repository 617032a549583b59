//! The reconcile engine: graph, plan and concurrent walk. It knows nothing about any cloud;
//! resources reach it only through the [`Node`] trait.

mod executor;
mod graph;
mod node;
mod plan;
mod value;

pub use executor::{ExecOptions, Outcome, Replanned, Report, Reporter, Silent, execute};
pub use graph::{Direction, Graph, GraphError};
pub use node::{Decorated, Decoration, Node, NodeError, Observation, Ownership, Readiness, Undeclared};
pub use plan::{
    Action, Change, Intent, Plan, PlanError, PlanFailure, PlannedNode, Refusal, UNSET, observe_all, plan, plan_action,
};
pub use value::{AFTER_APPLY, Input, Key, Known, Outputs, Values};
