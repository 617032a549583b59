//! Every resource kind the stack can contain. Adding a kind means one file under `aws/` and one line here.

use std::sync::Arc;

use crate::aws::{self, Aws};
use crate::engine::Node;
use crate::stack::Stack;

type Kind = fn(&Stack, &Aws) -> Vec<Arc<dyn Node>>;

// One line per kind, kept vertical on purpose.
#[rustfmt::skip]
const KINDS: &[Kind] = &[
    aws::s3::bucket::nodes,
    aws::iam::role::nodes,
    aws::securitylake::data_lake::nodes,
    aws::securitylake::log_source::nodes,
    aws::securitylake::subscriber::nodes,
    aws::securitylake::notification::nodes,
    aws::lakeformation::grant::nodes,
    aws::athena::workgroup::nodes,
    aws::athena::feature_run::nodes,
    aws::sagemaker::training_job::nodes,
    aws::sagemaker::model::nodes,
    aws::sagemaker::endpoint_config::nodes,
    aws::sagemaker::endpoint::nodes,
    aws::sqs::queue::nodes,
    aws::iam::lake_access::nodes,
    aws::lambda::function::nodes,
    aws::lambda::event_source_mapping::nodes,
];

/// The nodes a stack declares, in registry order; the graph orders them by dependency.
pub fn nodes(stack: &Stack, aws: &Aws) -> Vec<Arc<dyn Node>> {
    KINDS.iter().flat_map(|kind| kind(stack, aws)).collect()
}
