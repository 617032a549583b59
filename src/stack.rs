//! A validated manifest together with the facts discovered at run time (account, region,
//! partition), and the naming rules that make every resource name deterministic.

use std::collections::BTreeMap;

use crate::manifest::Manifest;
use crate::resource::OWNER_TAG;

/// Where the stack lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub account: String,
    pub region: String,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The identity running lakesight, as STS reports it.
    pub caller_arn: String,
}

#[derive(Debug, Clone)]
pub struct Stack {
    pub manifest: Manifest,
    pub env: Environment,
}

/// The IAM roles a stack may create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    SageMakerExecution,
    Scorer,
    MetaStoreManager,
}

impl RoleKind {
    pub const ALL: [RoleKind; 3] = [RoleKind::SageMakerExecution, RoleKind::Scorer, RoleKind::MetaStoreManager];

    /// The role's short name, used in its address and physical name.
    pub fn suffix(self) -> &'static str {
        match self {
            RoleKind::SageMakerExecution => "sagemaker",
            RoleKind::Scorer => "scorer",
            RoleKind::MetaStoreManager => "metastore",
        }
    }
}

impl Stack {
    pub fn name(&self) -> &str {
        &self.manifest.metadata.name
    }

    /// `lakesight-<stack>-<role>`: every physical name starts here.
    pub fn resource_name(&self, role: &str) -> String {
        physical_name(self.name(), role)
    }

    pub fn artifact_bucket(&self) -> String {
        self.manifest
            .spec
            .artifact_bucket
            .name
            .clone()
            .unwrap_or_else(|| format!("lakesight-{}-{}-{}", self.name(), self.env.account, self.env.region))
    }

    pub fn artifact_bucket_arn(&self) -> String {
        format!("arn:{}:s3:::{}", self.env.partition, self.artifact_bucket())
    }

    /// The ARN a role has, whether the manifest gives it or the stack creates it.
    pub fn role_arn(&self, role: RoleKind) -> String {
        self.given_role_arn(role).map(str::to_owned).unwrap_or_else(|| {
            format!("arn:{}:iam::{}:role/{}", self.env.partition, self.env.account, self.resource_name(role.suffix()))
        })
    }

    /// A role the manifest supplies by ARN, which the stack then never creates.
    pub fn given_role_arn(&self, role: RoleKind) -> Option<&str> {
        let iam = &self.manifest.spec.iam;
        match role {
            RoleKind::SageMakerExecution => iam.sagemaker_execution_role_arn.as_deref(),
            RoleKind::Scorer => iam.scorer_role_arn.as_deref(),
            RoleKind::MetaStoreManager => iam.meta_store_manager_role_arn.as_deref(),
        }
    }

    /// `arn:<partition>:<service>:<region>:<account>:<resource>` in the stack's own region and account.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{}:{}:{resource}", self.env.partition, self.env.region, self.env.account)
    }

    /// The manifest's tags plus the owner tag; the owner tag always wins.
    pub fn tags(&self) -> BTreeMap<String, String> {
        let mut tags = self.manifest.metadata.tags.clone();
        tags.insert(OWNER_TAG.to_owned(), self.name().to_owned());
        tags
    }

    /// Regions where the lake is enabled: `securityLake.regions`, or the stack's region.
    pub fn lake_regions(&self) -> Vec<String> {
        match &self.manifest.spec.security_lake {
            Some(lake) if !lake.regions.is_empty() => lake.regions.clone(),
            _ => vec![self.env.region.clone()],
        }
    }

    /// Accounts the lake's sources cover: `securityLake.accounts`, or the caller's account.
    pub fn lake_accounts(&self) -> Vec<String> {
        match &self.manifest.spec.security_lake {
            Some(lake) if !lake.accounts.is_empty() => lake.accounts.clone(),
            _ => vec![self.env.account.clone()],
        }
    }

    /// The subscriber's name: `subscriber.name`, or `lakesight-<stack>`.
    pub fn subscriber_name(&self) -> String {
        self.manifest
            .spec
            .subscriber
            .as_ref()
            .and_then(|s| s.name.clone())
            .unwrap_or_else(|| format!("lakesight-{}", self.name()))
    }

    /// Security Lake serialises mutations per account and region and answers concurrent ones with 409.
    pub fn security_lake_serial_key(&self) -> String {
        format!("securitylake/{}/{}", self.env.account, self.env.region)
    }

    /// The principal granted query access to the lake: the manifest's, or the caller's as IAM
    /// knows it (an assumed-role session becomes its role).
    pub fn query_principal(&self) -> String {
        let given =
            self.manifest.spec.security_lake.as_ref().and_then(|l| l.query_access.as_ref()?.principal_arn.clone());
        given.unwrap_or_else(|| iam_principal(&self.env.caller_arn))
    }

    /// The SageMaker endpoint's stable name.
    pub fn endpoint_name(&self) -> String {
        self.resource_name("endpoint")
    }

    /// The scorer Lambda function's name.
    pub fn scorer_function_name(&self) -> String {
        scorer_function_name(self.name())
    }

    /// The queue that keeps messages the scorer can never process.
    pub fn dead_letter_queue_name(&self) -> String {
        format!("{}-dlq", self.scorer_function_name())
    }

    /// The queue that receives findings, when the manifest asks for one.
    pub fn findings_queue_name(&self) -> String {
        format!("{}-findings", self.scorer_function_name())
    }
}

/// `lakesight-<stack>-<role>`, from the stack's name alone.
pub fn physical_name(stack: &str, role: &str) -> String {
    format!("lakesight-{stack}-{role}")
}

/// The scorer Lambda function's name, from the stack's name alone: what reads a deployed stack
/// without an environment (the quickstart's report) finds the function by.
pub fn scorer_function_name(stack: &str) -> String {
    physical_name(stack, "ipcheck")
}

/// `arn:aws:sts::<acct>:assumed-role/<role>/<session>` → `arn:aws:iam::<acct>:role/<role>`;
/// other ARNs keep their resource and move to the IAM service.
fn iam_principal(caller: &str) -> String {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    let [arn, partition, _service, _region, account, resource] = parts.as_slice() else {
        return caller.to_owned();
    };
    let resource = match resource.strip_prefix("assumed-role/") {
        Some(rest) => format!("role/{}", rest.split('/').next().unwrap_or(rest)),
        None => (*resource).to_owned(),
    };
    format!("{arn}:{partition}:iam::{account}:{resource}")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use super::*;

    pub(crate) fn stack(extra_spec: &str) -> Stack {
        let src = format!(
            "apiVersion: lakesight.io/v1\nkind: Stack\nmetadata:\n  name: demo\n  tags:\n    team: secops\nspec:\n  region: eu-west-1\n{extra_spec}"
        );
        let manifest = Manifest::parse(Path::new("test.yaml"), &src).expect("valid test manifest");
        Stack {
            manifest,
            env: Environment {
                account: "111122223333".into(),
                region: "eu-west-1".into(),
                partition: "aws".into(),
                caller_arn: "arn:aws:sts::111122223333:assumed-role/Deployer/ci-run-42".into(),
            },
        }
    }

    #[test]
    fn names_are_deterministic() {
        let s = stack("");
        assert_eq!(s.artifact_bucket(), "lakesight-demo-111122223333-eu-west-1");
        assert_eq!(s.role_arn(RoleKind::Scorer), "arn:aws:iam::111122223333:role/lakesight-demo-scorer");
        assert_eq!(s.tags().get(OWNER_TAG).map(String::as_str), Some("demo"));
        assert_eq!(s.tags().get("team").map(String::as_str), Some("secops"));
    }

    #[test]
    fn the_query_principal_is_the_callers_role_unless_given() {
        assert_eq!(stack("").query_principal(), "arn:aws:iam::111122223333:role/Deployer");
        assert_eq!(iam_principal("arn:aws:iam::111122223333:user/alice"), "arn:aws:iam::111122223333:user/alice");
        let given =
            stack("  securityLake:\n    queryAccess:\n      principalArn: arn:aws:iam::111122223333:role/analyst\n");
        assert_eq!(given.query_principal(), "arn:aws:iam::111122223333:role/analyst");
    }

    #[test]
    fn given_role_arn_is_used_as_is() {
        let s = stack("  iam:\n    scorerRoleArn: arn:aws:iam::444455556666:role/theirs\n");
        assert_eq!(s.role_arn(RoleKind::Scorer), "arn:aws:iam::444455556666:role/theirs");
        assert!(s.given_role_arn(RoleKind::SageMakerExecution).is_none());
    }
}
