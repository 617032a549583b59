//! An IAM role owned by the stack: trust policy, one generated inline policy, managed policies,
//! optional permissions boundary, and tags. Every field updates in place.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use serde_json::Value;

use super::policy;
use crate::aws::error::service_error;
use crate::engine::{Change, Node, Ownership};
use crate::resource::{Identity, Managed, Resource, ResourceError, ownership_from_tags, tag_change};
use crate::stack::{RoleKind, Stack};

/// The inline policy's name on every role lakesight creates.
pub const INLINE_POLICY_NAME: &str = "lakesight";

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub trust: Value,
    pub inline: BTreeMap<String, Value>,
    pub managed: BTreeSet<String>,
    pub boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
}

pub struct Role {
    identity: Identity,
    client: Client,
    trust: Value,
    inline: Option<Value>,
    managed: BTreeSet<String>,
    boundary: Option<String>,
    tags: BTreeMap<String, String>,
    description: String,
}

/// The nodes of this kind, for `aws::wiring`: one node per role the stack creates (roles given by ARN are used as is).
pub fn nodes(stack: &Stack, aws: &crate::aws::Aws) -> Vec<Arc<dyn Node>> {
    RoleKind::ALL
        .into_iter()
        .filter(|&kind| stack.given_role_arn(kind).is_none() && needed(stack, kind))
        .map(|kind| Arc::new(Managed::new(Role::new(stack, kind, aws.iam.clone()))) as Arc<dyn Node>)
        .collect()
}

fn needed(stack: &Stack, kind: RoleKind) -> bool {
    match kind {
        RoleKind::MetaStoreManager => stack.manifest.spec.security_lake.as_ref().is_some_and(|l| l.manage),
        RoleKind::SageMakerExecution => stack.manifest.spec.training.is_some(),
        RoleKind::Scorer => stack.manifest.spec.scorer.is_some(),
    }
}

pub fn address(kind: RoleKind) -> String {
    format!("iam.role/{}", kind.suffix())
}

impl Role {
    pub fn new(stack: &Stack, kind: RoleKind, client: Client) -> Self {
        Role {
            identity: Identity::new(stack, address(kind), stack.resource_name(kind.suffix())),
            client,
            trust: policy::trust_policy(kind),
            inline: policy::inline_policy(stack, kind),
            managed: policy::managed_policies(stack, kind).into_iter().collect(),
            boundary: stack.manifest.spec.iam.permissions_boundary_arn.clone(),
            tags: stack.tags(),
            description: format!("lakesight stack {}: {} role", stack.name(), kind.suffix()),
        }
    }

    fn name(&self) -> &str {
        &self.identity.name
    }

    fn wanted_inline(&self) -> BTreeMap<String, Value> {
        self.inline.iter().map(|doc| (INLINE_POLICY_NAME.to_owned(), doc.clone())).collect()
    }

    async fn read_inline(&self) -> Result<BTreeMap<String, Value>, ResourceError> {
        let mut names = Vec::new();
        let mut pages = self.client.list_role_policies().role_name(self.name()).into_paginator().send();
        while let Some(page) = pages.next().await {
            names.extend(page.map_err(|e| service_error("ListRolePolicies", e))?.policy_names().iter().cloned());
        }
        let mut policies = BTreeMap::new();
        // The lake-access policy is a resource of its own, reconciled from the subscriber.
        for name in names.into_iter().filter(|n| n != super::lake_access::POLICY_NAME) {
            let out = self
                .client
                .get_role_policy()
                .role_name(self.name())
                .policy_name(&name)
                .send()
                .await
                .map_err(|e| service_error("GetRolePolicy", e))?;
            policies.insert(name, decode_document(out.policy_document())?);
        }
        Ok(policies)
    }

    async fn read_managed(&self) -> Result<BTreeSet<String>, ResourceError> {
        let mut arns = BTreeSet::new();
        let mut pages = self.client.list_attached_role_policies().role_name(self.name()).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| service_error("ListAttachedRolePolicies", e))?;
            arns.extend(page.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_owned)));
        }
        Ok(arns)
    }

    async fn put_inline(&self, observed: &BTreeMap<String, Value>) -> Result<(), ResourceError> {
        let wanted = self.wanted_inline();
        for (name, doc) in &wanted {
            if observed.get(name) != Some(doc) {
                self.client
                    .put_role_policy()
                    .role_name(self.name())
                    .policy_name(name)
                    .policy_document(doc.to_string())
                    .send()
                    .await
                    .map_err(|e| service_error("PutRolePolicy", e))?;
            }
        }
        for name in observed.keys().filter(|n| !wanted.contains_key(*n)) {
            self.client
                .delete_role_policy()
                .role_name(self.name())
                .policy_name(name)
                .send()
                .await
                .map_err(|e| service_error("DeleteRolePolicy", e))?;
        }
        Ok(())
    }

    async fn sync_managed(&self, observed: &BTreeSet<String>) -> Result<(), ResourceError> {
        for arn in self.managed.difference(observed) {
            self.client
                .attach_role_policy()
                .role_name(self.name())
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| service_error("AttachRolePolicy", e))?;
        }
        for arn in observed.difference(&self.managed) {
            self.detach(arn).await?;
        }
        Ok(())
    }

    async fn detach(&self, arn: &str) -> Result<(), ResourceError> {
        match self.client.detach_role_policy().role_name(self.name()).policy_arn(arn).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(()),
            Err(e) => Err(service_error("DetachRolePolicy", e)),
        }
    }

    fn tag_list(&self) -> Result<Vec<Tag>, ResourceError> {
        self.tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| ResourceError::Invalid(e.to_string())))
            .collect()
    }

    async fn sync_boundary(&self) -> Result<(), ResourceError> {
        match &self.boundary {
            Some(arn) => self
                .client
                .put_role_permissions_boundary()
                .role_name(self.name())
                .permissions_boundary(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| service_error("PutRolePermissionsBoundary", e)),
            None => self
                .client
                .delete_role_permissions_boundary()
                .role_name(self.name())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| service_error("DeleteRolePermissionsBoundary", e)),
        }
    }
}

/// IAM returns policy documents URL-encoded.
pub(crate) fn decode_document(raw: &str) -> Result<Value, ResourceError> {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    serde_json::from_str(&decoded)
        .map_err(|e| ResourceError::Invalid(format!("IAM returned a policy document that is not JSON: {e}")))
}

fn render_policy_names(policies: &BTreeMap<String, Value>) -> String {
    if policies.is_empty() { "none".into() } else { policies.keys().cloned().collect::<Vec<_>>().join(", ") }
}

#[async_trait]
impl Resource for Role {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let role = match self.client.get_role().role_name(self.name()).send().await {
            Ok(out) => out.role,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => return Ok(None),
            Err(e) => return Err(service_error("GetRole", e)),
        };
        let Some(role) = role else { return Ok(None) };
        Ok(Some(Observed {
            arn: role.arn().to_owned(),
            trust: role.assume_role_policy_document().map(decode_document).transpose()?.unwrap_or(Value::Null),
            boundary: role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(str::to_owned),
            tags: role.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect(),
            inline: self.read_inline().await?,
            managed: self.read_managed().await?,
        }))
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let mut changes = Vec::new();
        if observed.trust != self.trust {
            changes.push(Change::in_place("trustPolicy", observed.trust.to_string(), self.trust.to_string()));
        }
        let wanted = self.wanted_inline();
        if observed.inline != wanted {
            let from = render_policy_names(&observed.inline);
            let to = render_policy_names(&wanted);
            let note = if from == to { " (document differs)" } else { "" };
            changes.push(Change::in_place("inlinePolicy", from, format!("{to}{note}")));
        }
        if observed.managed != self.managed {
            let render = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
            changes.push(Change::in_place("managedPolicies", render(&observed.managed), render(&self.managed)));
        }
        if observed.boundary != self.boundary {
            let render = |b: &Option<String>| b.clone().unwrap_or_else(|| "none".into());
            changes.push(Change::in_place("permissionsBoundary", render(&observed.boundary), render(&self.boundary)));
        }
        changes.extend(tag_change(&self.tags, &observed.tags));
        changes
    }

    fn id(&self, observed: &Observed) -> String {
        observed.arn.clone()
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let mut request = self
            .client
            .create_role()
            .role_name(self.name())
            .assume_role_policy_document(self.trust.to_string())
            .description(&self.description)
            .set_tags(Some(self.tag_list()?));
        if let Some(boundary) = &self.boundary {
            request = request.permissions_boundary(boundary);
        }
        match request.send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_already_exists_exception()) => {
                return Err(ResourceError::Invalid(format!(
                    "role {} appeared while lakesight was creating it; run apply again",
                    self.name()
                )));
            }
            Err(e) => return Err(service_error("CreateRole", e)),
        }
        self.put_inline(&BTreeMap::new()).await?;
        self.sync_managed(&BTreeSet::new()).await
    }

    async fn update(&self, observed: &Observed, changes: &[Change]) -> Result<(), ResourceError> {
        for change in changes {
            match change.field.as_str() {
                "trustPolicy" => {
                    self.client
                        .update_assume_role_policy()
                        .role_name(self.name())
                        .policy_document(self.trust.to_string())
                        .send()
                        .await
                        .map_err(|e| service_error("UpdateAssumeRolePolicy", e))?;
                }
                "inlinePolicy" => self.put_inline(&observed.inline).await?,
                "managedPolicies" => self.sync_managed(&observed.managed).await?,
                "permissionsBoundary" => self.sync_boundary().await?,
                "tags" => {
                    self.client
                        .tag_role()
                        .role_name(self.name())
                        .set_tags(Some(self.tag_list()?))
                        .send()
                        .await
                        .map_err(|e| service_error("TagRole", e))?;
                }
                other => return Err(ResourceError::Invalid(format!("role field {other} cannot be updated"))),
            }
        }
        Ok(())
    }

    async fn delete(&self, observed: &Observed) -> Result<(), ResourceError> {
        for arn in &observed.managed {
            self.detach(arn).await?;
        }
        for name in observed.inline.keys() {
            match self.client.delete_role_policy().role_name(self.name()).policy_name(name).send().await {
                Ok(_) => {}
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => {}
                Err(e) => return Err(service_error("DeleteRolePolicy", e)),
            }
        }
        match self.client.delete_role().role_name(self.name()).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(()),
            Err(e) => Err(service_error("DeleteRole", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::operation::create_role::CreateRoleOutput;
    use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
    use aws_sdk_iam::operation::get_role_policy::GetRolePolicyOutput;
    use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
    use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesOutput;
    use aws_sdk_iam::operation::put_role_policy::PutRolePolicyOutput;
    use aws_sdk_iam::operation::tag_role::TagRoleOutput;
    use aws_sdk_iam::types::error::NoSuchEntityException;
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_types::error::ErrorMetadata;
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

    use super::*;
    use crate::aws::mocked_client;
    use crate::engine::{Action, Intent, Refusal, plan_action};
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    const NAME: &str = "lakesight-demo-scorer";

    fn node(rules: &[&Rule]) -> Managed<Role> {
        Managed::new(Role::new(&stack(""), RoleKind::Scorer, mocked_client!(aws_sdk_iam, rules)))
    }

    fn encoded(doc: &Value) -> String {
        utf8_percent_encode(&doc.to_string(), NON_ALPHANUMERIC).to_string()
    }

    fn role(tags: &'static [(&'static str, &'static str)]) -> Rule {
        mock!(Client::get_role).match_requests(|r| r.role_name() == Some(NAME)).then_output(move || {
            let mut role = aws_sdk_iam::types::Role::builder()
                .path("/")
                .role_name(NAME)
                .role_id("AROAEXAMPLE")
                .arn(format!("arn:aws:iam::111122223333:role/{NAME}"))
                .create_date(aws_smithy_types::DateTime::from_secs(0))
                .assume_role_policy_document(encoded(&policy::trust_policy(RoleKind::Scorer)));
            for (k, v) in tags {
                role = role.tags(Tag::builder().key(*k).value(*v).build().expect("tag"));
            }
            GetRoleOutput::builder().role(role.build().expect("role")).build()
        })
    }

    fn inline(doc: fn() -> Value) -> [Rule; 3] {
        [
            mock!(Client::list_role_policies).then_output(|| {
                ListRolePoliciesOutput::builder()
                    .policy_names(INLINE_POLICY_NAME)
                    .is_truncated(false)
                    .build()
                    .expect("list")
            }),
            mock!(Client::get_role_policy).then_output(move || {
                GetRolePolicyOutput::builder()
                    .role_name(NAME)
                    .policy_name(INLINE_POLICY_NAME)
                    .policy_document(encoded(&doc()))
                    .build()
                    .expect("get")
            }),
            mock!(Client::list_attached_role_policies)
                .then_output(|| ListAttachedRolePoliciesOutput::builder().is_truncated(false).build()),
        ]
    }

    fn wanted() -> Value {
        policy::inline_policy(&stack(""), RoleKind::Scorer).expect("scorer policy")
    }

    const OWNED: &[(&str, &str)] = &[("lakesight:stack", "demo"), ("team", "secops")];

    #[tokio::test]
    async fn absent_role_is_created_with_owner_tag_and_policy() {
        let get = mock!(Client::get_role)
            .then_error(|| GetRoleError::NoSuchEntityException(NoSuchEntityException::builder().message("no").build()));
        let create = mock!(Client::create_role)
            .match_requests(|r| {
                r.role_name() == Some(NAME)
                    && r.tags().iter().any(|t| t.key() == "lakesight:stack" && t.value() == "demo")
                    && r.assume_role_policy_document().is_some_and(|d| d.contains("lambda.amazonaws.com"))
            })
            .then_output(|| CreateRoleOutput::builder().build());
        let put = mock!(Client::put_role_policy)
            .match_requests(|r| {
                r.policy_name() == Some(INLINE_POLICY_NAME)
                    && r.policy_document().is_some_and(|d| d.contains("sagemaker:InvokeEndpoint"))
            })
            .then_output(|| PutRolePolicyOutput::builder().build());
        let n = node(&[&get, &create, &put]);
        created_as_planned(&n).await;
        assert_eq!((create.num_calls(), put.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn role_in_sync_is_a_noop() {
        let get = role(OWNED);
        let [list, doc, attached] = inline(wanted);
        let observed = node(&[&get, &list, &doc, &attached]).observe().await.expect("observe");
        assert_eq!(observed.ownership, Some(Ownership::Owned));
        assert_eq!(observed.changes, vec![]);
    }

    #[tokio::test]
    async fn drifted_policy_and_tags_are_repaired_in_place() {
        let get = role(&[("lakesight:stack", "demo")]);
        let [list, doc, attached] = inline(|| serde_json::json!({"Version": "2012-10-17", "Statement": []}));
        let put = mock!(Client::put_role_policy).then_output(|| PutRolePolicyOutput::builder().build());
        let tag = mock!(Client::tag_role).then_output(|| TagRoleOutput::builder().build());
        let n = node(&[&get, &list, &doc, &attached, &put, &tag]);
        let observed = n.observe().await.expect("observe");
        let fields: Vec<&str> = observed.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["inlinePolicy", "tags"]);
        assert_eq!(plan_action(Intent::Present, &observed, None).map(|a| a.0), Ok(Action::Update));
        n.apply(Action::Update).await.expect("update");
        assert_eq!((put.num_calls(), tag.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn role_of_another_stack_is_refused_even_with_adopt() {
        let get = role(&[("lakesight:stack", "other")]);
        let [list, doc, attached] = inline(wanted);
        let observed = node(&[&get, &list, &doc, &attached]).observe().await.expect("observe");
        assert_eq!(plan_action(Intent::Present, &observed, None), Err(Refusal::OwnedBy("other".into())));
    }

    #[tokio::test]
    async fn throttled_reads_are_retried() {
        let get = mock!(Client::get_role)
            .sequence()
            .error(|| {
                GetRoleError::generic(ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build())
            })
            .times(2)
            .output(|| GetRoleOutput::builder().build())
            .build();
        let observed = node(&[&get]).observe().await.expect("retried to success");
        assert_eq!(get.num_calls(), 3);
        assert_eq!(observed.ownership, None, "an empty GetRole body reads as absent");
    }
}
