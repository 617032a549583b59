//! What each AWS call was made on: the request's own fields that name a resource (a bucket and
//! key, a role name, a queue URL, an endpoint name, an ARN, ...), read from the typed input.
//!
//! The SDK hands interceptors the input as a type-erased box, so the only exact way to read it is
//! to downcast it to each operation's input type. [`OPERATIONS`] lists every operation the control
//! plane calls, and the same list drives the downcasts; `crate::iam_policy` holds a unit test that
//! each of them has an entry in its permission table. A call whose input is none of these types
//! is still counted, with no resource, and its operation shows up as unknown to that table.
//!
//! Fields are named as in the AWS API (`Bucket`, `RoleName`, `QueueUrl`), not as the Rust getters,
//! so the record reads like the request documented in each service's API reference.

use std::collections::BTreeMap;

use aws_smithy_runtime_api::client::interceptors::context::Input;

/// The fields of one request that name what it acts on. Empty for calls on no particular
/// resource (the `List*` calls, `GetCallerIdentity`, query executions named only by their id).
pub type Fields = BTreeMap<&'static str, String>;

/// A getter's value as an optional string: the SDK returns `&str` for required members and
/// `Option<&str>` for the rest.
trait Field {
    fn value(self) -> Option<String>;
}

impl Field for &str {
    fn value(self) -> Option<String> {
        Some(self.to_owned())
    }
}

impl Field for Option<&str> {
    fn value(self) -> Option<String> {
        self.map(str::to_owned)
    }
}

macro_rules! operations {
    ($($service:literal $krate:ident :: $module:ident :: $input:ident => $operation:literal [$($name:literal : $getter:ident),*];)*) => {
        /// Every AWS operation the control plane calls, as (service, operation) the way the SDK
        /// names them in its call metadata (and `--stats` prints them).
        pub const OPERATIONS: &[(&str, &str)] = &[$(($service, $operation)),*];

        /// The resource fields of a request, when its input is one of [`OPERATIONS`].
        fn typed(input: &Input) -> Option<Vec<Fields>> {
            $(
                if let Some(_i) = input.downcast_ref::<$krate::operation::$module::$input>() {
                    #[allow(unused_mut)]
                    let mut fields = Fields::new();
                    $(if let Some(v) = Field::value(_i.$getter()) { fields.insert($name, v); })*
                    return Some(vec![fields]);
                }
            )*
            None
        }
    };
}

operations! {
    "S3" aws_sdk_s3::create_bucket::CreateBucketInput => "CreateBucket" ["Bucket": bucket];
    "S3" aws_sdk_s3::delete_bucket::DeleteBucketInput => "DeleteBucket" ["Bucket": bucket];
    "S3" aws_sdk_s3::delete_object::DeleteObjectInput => "DeleteObject" ["Bucket": bucket, "Key": key];
    "S3" aws_sdk_s3::get_bucket_encryption::GetBucketEncryptionInput => "GetBucketEncryption" ["Bucket": bucket];
    "S3" aws_sdk_s3::get_bucket_tagging::GetBucketTaggingInput => "GetBucketTagging" ["Bucket": bucket];
    "S3" aws_sdk_s3::get_object::GetObjectInput => "GetObject" ["Bucket": bucket, "Key": key];
    "S3" aws_sdk_s3::get_public_access_block::GetPublicAccessBlockInput => "GetPublicAccessBlock" ["Bucket": bucket];
    "S3" aws_sdk_s3::head_bucket::HeadBucketInput => "HeadBucket" ["Bucket": bucket];
    "S3" aws_sdk_s3::list_object_versions::ListObjectVersionsInput => "ListObjectVersions" ["Bucket": bucket];
    "S3" aws_sdk_s3::list_objects_v2::ListObjectsV2Input => "ListObjectsV2" ["Bucket": bucket];
    "S3" aws_sdk_s3::put_bucket_encryption::PutBucketEncryptionInput => "PutBucketEncryption" ["Bucket": bucket];
    "S3" aws_sdk_s3::put_bucket_tagging::PutBucketTaggingInput => "PutBucketTagging" ["Bucket": bucket];
    "S3" aws_sdk_s3::put_object::PutObjectInput => "PutObject" ["Bucket": bucket, "Key": key];
    "S3" aws_sdk_s3::put_public_access_block::PutPublicAccessBlockInput => "PutPublicAccessBlock" ["Bucket": bucket];
    "Athena" aws_sdk_athena::batch_get_query_execution::BatchGetQueryExecutionInput => "BatchGetQueryExecution" [];
    "Athena" aws_sdk_athena::create_work_group::CreateWorkGroupInput => "CreateWorkGroup" ["Name": name];
    "Athena" aws_sdk_athena::delete_work_group::DeleteWorkGroupInput => "DeleteWorkGroup" ["WorkGroup": work_group];
    "Athena" aws_sdk_athena::get_query_execution::GetQueryExecutionInput => "GetQueryExecution" [];
    "Athena" aws_sdk_athena::get_query_results::GetQueryResultsInput => "GetQueryResults" [];
    "Athena" aws_sdk_athena::get_work_group::GetWorkGroupInput => "GetWorkGroup" ["WorkGroup": work_group];
    "Athena" aws_sdk_athena::list_query_executions::ListQueryExecutionsInput => "ListQueryExecutions" ["WorkGroup": work_group];
    "Athena" aws_sdk_athena::list_tags_for_resource::ListTagsForResourceInput => "ListTagsForResource" ["ResourceARN": resource_arn];
    "Athena" aws_sdk_athena::list_work_groups::ListWorkGroupsInput => "ListWorkGroups" [];
    "Athena" aws_sdk_athena::start_query_execution::StartQueryExecutionInput => "StartQueryExecution" ["WorkGroup": work_group];
    "Athena" aws_sdk_athena::stop_query_execution::StopQueryExecutionInput => "StopQueryExecution" [];
    "Athena" aws_sdk_athena::tag_resource::TagResourceInput => "TagResource" ["ResourceARN": resource_arn];
    "Athena" aws_sdk_athena::update_work_group::UpdateWorkGroupInput => "UpdateWorkGroup" ["WorkGroup": work_group];
    "IAM" aws_sdk_iam::attach_role_policy::AttachRolePolicyInput => "AttachRolePolicy" ["RoleName": role_name];
    "IAM" aws_sdk_iam::create_role::CreateRoleInput => "CreateRole" ["RoleName": role_name];
    "IAM" aws_sdk_iam::delete_role::DeleteRoleInput => "DeleteRole" ["RoleName": role_name];
    "IAM" aws_sdk_iam::delete_role_permissions_boundary::DeleteRolePermissionsBoundaryInput => "DeleteRolePermissionsBoundary" ["RoleName": role_name];
    "IAM" aws_sdk_iam::delete_role_policy::DeleteRolePolicyInput => "DeleteRolePolicy" ["RoleName": role_name];
    "IAM" aws_sdk_iam::detach_role_policy::DetachRolePolicyInput => "DetachRolePolicy" ["RoleName": role_name];
    "IAM" aws_sdk_iam::get_role::GetRoleInput => "GetRole" ["RoleName": role_name];
    "IAM" aws_sdk_iam::get_role_policy::GetRolePolicyInput => "GetRolePolicy" ["RoleName": role_name];
    "IAM" aws_sdk_iam::list_attached_role_policies::ListAttachedRolePoliciesInput => "ListAttachedRolePolicies" ["RoleName": role_name];
    "IAM" aws_sdk_iam::list_role_policies::ListRolePoliciesInput => "ListRolePolicies" ["RoleName": role_name];
    "IAM" aws_sdk_iam::put_role_permissions_boundary::PutRolePermissionsBoundaryInput => "PutRolePermissionsBoundary" ["RoleName": role_name];
    "IAM" aws_sdk_iam::put_role_policy::PutRolePolicyInput => "PutRolePolicy" ["RoleName": role_name];
    "IAM" aws_sdk_iam::tag_role::TagRoleInput => "TagRole" ["RoleName": role_name];
    "IAM" aws_sdk_iam::update_assume_role_policy::UpdateAssumeRolePolicyInput => "UpdateAssumeRolePolicy" ["RoleName": role_name];
    "LakeFormation" aws_sdk_lakeformation::grant_permissions::GrantPermissionsInput => "GrantPermissions" [];
    "LakeFormation" aws_sdk_lakeformation::list_permissions::ListPermissionsInput => "ListPermissions" [];
    "LakeFormation" aws_sdk_lakeformation::revoke_permissions::RevokePermissionsInput => "RevokePermissions" [];
    "Lambda" aws_sdk_lambda::create_event_source_mapping::CreateEventSourceMappingInput => "CreateEventSourceMapping" ["FunctionName": function_name];
    "Lambda" aws_sdk_lambda::create_function::CreateFunctionInput => "CreateFunction" ["FunctionName": function_name, "Role": role];
    "Lambda" aws_sdk_lambda::delete_event_source_mapping::DeleteEventSourceMappingInput => "DeleteEventSourceMapping" ["UUID": uuid];
    "Lambda" aws_sdk_lambda::delete_function::DeleteFunctionInput => "DeleteFunction" ["FunctionName": function_name];
    "Lambda" aws_sdk_lambda::get_function::GetFunctionInput => "GetFunction" ["FunctionName": function_name];
    "Lambda" aws_sdk_lambda::get_function_configuration::GetFunctionConfigurationInput => "GetFunctionConfiguration" ["FunctionName": function_name];
    "Lambda" aws_sdk_lambda::list_event_source_mappings::ListEventSourceMappingsInput => "ListEventSourceMappings" ["FunctionName": function_name];
    "Lambda" aws_sdk_lambda::list_tags::ListTagsInput => "ListTags" ["Resource": resource];
    "Lambda" aws_sdk_lambda::tag_resource::TagResourceInput => "TagResource" ["Resource": resource];
    "Lambda" aws_sdk_lambda::update_event_source_mapping::UpdateEventSourceMappingInput => "UpdateEventSourceMapping" ["UUID": uuid];
    "Lambda" aws_sdk_lambda::update_function_code::UpdateFunctionCodeInput => "UpdateFunctionCode" ["FunctionName": function_name];
    "Lambda" aws_sdk_lambda::update_function_configuration::UpdateFunctionConfigurationInput => "UpdateFunctionConfiguration" ["FunctionName": function_name, "Role": role];
    "SageMaker" aws_sdk_sagemaker::add_tags::AddTagsInput => "AddTags" ["ResourceArn": resource_arn];
    "SageMaker" aws_sdk_sagemaker::create_endpoint::CreateEndpointInput => "CreateEndpoint" ["EndpointName": endpoint_name];
    "SageMaker" aws_sdk_sagemaker::create_endpoint_config::CreateEndpointConfigInput => "CreateEndpointConfig" ["EndpointConfigName": endpoint_config_name, "ExecutionRoleArn": execution_role_arn];
    "SageMaker" aws_sdk_sagemaker::create_model::CreateModelInput => "CreateModel" ["ModelName": model_name, "ExecutionRoleArn": execution_role_arn];
    "SageMaker" aws_sdk_sagemaker::create_training_job::CreateTrainingJobInput => "CreateTrainingJob" ["TrainingJobName": training_job_name, "RoleArn": role_arn];
    "SageMaker" aws_sdk_sagemaker::delete_endpoint::DeleteEndpointInput => "DeleteEndpoint" ["EndpointName": endpoint_name];
    "SageMaker" aws_sdk_sagemaker::delete_endpoint_config::DeleteEndpointConfigInput => "DeleteEndpointConfig" ["EndpointConfigName": endpoint_config_name];
    "SageMaker" aws_sdk_sagemaker::delete_model::DeleteModelInput => "DeleteModel" ["ModelName": model_name];
    "SageMaker" aws_sdk_sagemaker::describe_endpoint::DescribeEndpointInput => "DescribeEndpoint" ["EndpointName": endpoint_name];
    "SageMaker" aws_sdk_sagemaker::describe_training_job::DescribeTrainingJobInput => "DescribeTrainingJob" ["TrainingJobName": training_job_name];
    "SageMaker" aws_sdk_sagemaker::list_endpoint_configs::ListEndpointConfigsInput => "ListEndpointConfigs" [];
    "SageMaker" aws_sdk_sagemaker::list_endpoints::ListEndpointsInput => "ListEndpoints" [];
    "SageMaker" aws_sdk_sagemaker::list_models::ListModelsInput => "ListModels" [];
    "SageMaker" aws_sdk_sagemaker::list_tags::ListTagsInput => "ListTags" ["ResourceArn": resource_arn];
    "SageMaker" aws_sdk_sagemaker::list_training_jobs::ListTrainingJobsInput => "ListTrainingJobs" [];
    "SageMaker" aws_sdk_sagemaker::stop_training_job::StopTrainingJobInput => "StopTrainingJob" ["TrainingJobName": training_job_name];
    "SageMaker" aws_sdk_sagemaker::update_endpoint::UpdateEndpointInput => "UpdateEndpoint" ["EndpointName": endpoint_name];
    "SageMakerRuntime" aws_sdk_sagemakerruntime::invoke_endpoint::InvokeEndpointInput => "InvokeEndpoint" ["EndpointName": endpoint_name];
    "SecurityLake" aws_sdk_securitylake::create_aws_log_source::CreateAwsLogSourceInput => "CreateAwsLogSource" [];
    "SecurityLake" aws_sdk_securitylake::create_data_lake::CreateDataLakeInput => "CreateDataLake" ["MetaStoreManagerRoleArn": meta_store_manager_role_arn];
    "SecurityLake" aws_sdk_securitylake::create_subscriber::CreateSubscriberInput => "CreateSubscriber" [];
    "SecurityLake" aws_sdk_securitylake::create_subscriber_notification::CreateSubscriberNotificationInput => "CreateSubscriberNotification" ["SubscriberId": subscriber_id];
    "SecurityLake" aws_sdk_securitylake::delete_aws_log_source::DeleteAwsLogSourceInput => "DeleteAwsLogSource" [];
    "SecurityLake" aws_sdk_securitylake::delete_data_lake::DeleteDataLakeInput => "DeleteDataLake" [];
    "SecurityLake" aws_sdk_securitylake::delete_subscriber::DeleteSubscriberInput => "DeleteSubscriber" ["SubscriberId": subscriber_id];
    "SecurityLake" aws_sdk_securitylake::delete_subscriber_notification::DeleteSubscriberNotificationInput => "DeleteSubscriberNotification" ["SubscriberId": subscriber_id];
    "SecurityLake" aws_sdk_securitylake::get_data_lake_sources::GetDataLakeSourcesInput => "GetDataLakeSources" [];
    "SecurityLake" aws_sdk_securitylake::get_subscriber::GetSubscriberInput => "GetSubscriber" ["SubscriberId": subscriber_id];
    "SecurityLake" aws_sdk_securitylake::list_data_lake_exceptions::ListDataLakeExceptionsInput => "ListDataLakeExceptions" [];
    "SecurityLake" aws_sdk_securitylake::list_data_lakes::ListDataLakesInput => "ListDataLakes" [];
    "SecurityLake" aws_sdk_securitylake::list_log_sources::ListLogSourcesInput => "ListLogSources" [];
    "SecurityLake" aws_sdk_securitylake::list_subscribers::ListSubscribersInput => "ListSubscribers" [];
    "SecurityLake" aws_sdk_securitylake::list_tags_for_resource::ListTagsForResourceInput => "ListTagsForResource" ["ResourceArn": resource_arn];
    "SecurityLake" aws_sdk_securitylake::tag_resource::TagResourceInput => "TagResource" ["ResourceArn": resource_arn];
    "SecurityLake" aws_sdk_securitylake::update_data_lake::UpdateDataLakeInput => "UpdateDataLake" ["MetaStoreManagerRoleArn": meta_store_manager_role_arn];
    "SecurityLake" aws_sdk_securitylake::update_subscriber::UpdateSubscriberInput => "UpdateSubscriber" ["SubscriberId": subscriber_id];
    "SQS" aws_sdk_sqs::create_queue::CreateQueueInput => "CreateQueue" ["QueueName": queue_name];
    "SQS" aws_sdk_sqs::delete_queue::DeleteQueueInput => "DeleteQueue" ["QueueUrl": queue_url];
    "SQS" aws_sdk_sqs::get_queue_attributes::GetQueueAttributesInput => "GetQueueAttributes" ["QueueUrl": queue_url];
    "SQS" aws_sdk_sqs::get_queue_url::GetQueueUrlInput => "GetQueueUrl" ["QueueName": queue_name];
    "SQS" aws_sdk_sqs::list_queue_tags::ListQueueTagsInput => "ListQueueTags" ["QueueUrl": queue_url];
    "SQS" aws_sdk_sqs::set_queue_attributes::SetQueueAttributesInput => "SetQueueAttributes" ["QueueUrl": queue_url];
    "SQS" aws_sdk_sqs::tag_queue::TagQueueInput => "TagQueue" ["QueueUrl": queue_url];
    "STS" aws_sdk_sts::get_caller_identity::GetCallerIdentityInput => "GetCallerIdentity" [];
}

/// The operations whose resource is not a plain field, listed beside [`OPERATIONS`].
pub const SPECIAL_OPERATIONS: &[(&str, &str)] = &[("S3", "DeleteObjects")];

/// The resources one request names. Most name one; `DeleteObjects` names one object per key (with
/// `VersionId` when it deletes a version, which IAM authorises as another action).
pub fn of(input: &Input) -> Vec<Fields> {
    if let Some(i) = input.downcast_ref::<aws_sdk_s3::operation::delete_objects::DeleteObjectsInput>() {
        let bucket = i.bucket().unwrap_or_default();
        return i
            .delete()
            .map(|d| d.objects())
            .unwrap_or_default()
            .iter()
            .map(|o| {
                let mut fields = Fields::from([("Bucket", bucket.to_owned()), ("Key", o.key().to_owned())]);
                if let Some(version) = o.version_id() {
                    fields.insert("VersionId", version.to_owned());
                }
                fields
            })
            .collect();
    }
    typed(input).unwrap_or_else(|| vec![Fields::new()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_its_resource_by_its_api_field_names() {
        let input = aws_sdk_sqs::operation::delete_queue::DeleteQueueInput::builder()
            .queue_url("https://sqs.eu-west-1.amazonaws.com/111122223333/lakesight-demo-ipcheck-dlq")
            .build()
            .expect("input");
        let fields = of(&Input::erase(input));
        assert_eq!(
            fields,
            [Fields::from([(
                "QueueUrl",
                "https://sqs.eu-west-1.amazonaws.com/111122223333/lakesight-demo-ipcheck-dlq".to_owned()
            )])]
        );
    }

    #[test]
    fn delete_objects_names_each_object_and_its_version() {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let delete = Delete::builder()
            .objects(ObjectIdentifier::builder().key("a").build().expect("id"))
            .objects(ObjectIdentifier::builder().key("b").version_id("v1").build().expect("id"))
            .build()
            .expect("delete");
        let input = aws_sdk_s3::operation::delete_objects::DeleteObjectsInput::builder()
            .bucket("bkt")
            .delete(delete)
            .build()
            .expect("input");
        let fields = of(&Input::erase(input));
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].get("VersionId").map(String::as_str), Some("v1"));
        assert_eq!(fields[0].get("Key").map(String::as_str), Some("a"));
    }

    #[test]
    fn an_unknown_input_names_no_resource() {
        assert_eq!(of(&Input::erase("not an operation input")), [Fields::new()]);
    }
}
