//! Which IAM actions each AWS operation lakesight calls needs, and on which of the stack's
//! resources. Action names and resource-level support follow the AWS Service Authorization
//! Reference (the "Actions defined by ..." table of each service).
//!
//! Where the reference lists no resource type for an action, IAM only accepts `"Resource": "*"`
//! for it; those entries say so with [`Scope::Any`] and the reason. They are:
//! - the SageMaker `List*` calls (`ListTrainingJobs`, `ListModels`, `ListEndpointConfigs`,
//!   `ListEndpoints`), Athena `ListWorkGroups` and Lambda `ListEventSourceMappings`;
//! - Lambda `CreateEventSourceMapping`, which IAM narrows only through the `lambda:FunctionArn`
//!   condition key, not by resource;
//! - every Lake Formation permission call (`GrantPermissions`, `RevokePermissions`,
//!   `ListPermissions`, `GetDataAccess`): Lake Formation authorises on its own grants, not IAM ARNs;
//! - Security Lake's account-level reads (`ListDataLakes`, `ListLogSources`, `GetDataLakeSources`,
//!   `ListDataLakeExceptions`, `ListSubscribers`);
//! - `sts:GetCallerIdentity` needs no permission at all, and is not in the policy.

use crate::stack::RoleKind;

/// What an action may be performed on, resolved to ARNs by `super::build` for one stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// The artifact bucket itself: `arn:aws:s3:::<bucket>`.
    ArtifactBucket,
    /// Every object in it: lakesight's records, the feature runs, training output.
    ArtifactObjects,
    /// The roles the stack creates, by their ARNs.
    StackRoles,
    /// The scorer's dead-letter and findings queues.
    StackQueues,
    /// The `ipcheck` function.
    ScorerFunction,
    /// The function's event source mappings; their ARN ends in a UUID that Lambda chooses.
    EventSourceMappings,
    /// `training-job/lakesight-<stack>-*`
    TrainingJobs,
    /// `model/lakesight-<stack>-*`
    Models,
    /// `endpoint-config/lakesight-<stack>-*`
    EndpointConfigs,
    /// `endpoint/lakesight-<stack>-endpoint`
    Endpoint,
    /// The stack's Athena workgroup.
    Workgroup,
    /// `data-lake/default` in the stack's region and each lake region.
    DataLake,
    /// `subscriber/*` in the stack's region: its id is chosen by Security Lake.
    Subscribers,
    /// The Glue catalog, the Security Lake database and its tables in each lake region, read by
    /// Athena with the caller's credentials when it plans a feature query.
    LakeTables,
    /// What Security Lake creates with the caller's credentials: buckets, queues, functions, rules
    /// and roles named `aws-security-data-lake-*`, `AmazonSecurityLake*` and `SecurityLake_*`.
    SecurityLakeOwned,
    /// AWS allows only `*` for the action (the module documentation lists them).
    Any,
}

/// One AWS operation lakesight calls, and the IAM actions it needs.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// As the SDK names the service in its call metadata: `S3`, `SageMaker`, ...
    pub service: &'static str,
    pub operation: &'static str,
    pub actions: &'static [&'static str],
    pub scopes: &'static [Scope],
}

/// An action no SDK call of lakesight's names, which AWS checks against the caller all the same:
/// because a service acts with the caller's credentials (Athena reading tables and writing UNLOAD
/// output, Security Lake creating its buckets and queues), or a role is passed.
#[derive(Debug, Clone, Copy)]
pub struct Dependent {
    /// The `Service.Operation` that needs it.
    pub needed_by: &'static str,
    pub actions: &'static [&'static str],
    pub scope: Scope,
}

/// A role that a call hands to a service, and the service it goes to (`iam:PassedToService`).
#[derive(Debug, Clone, Copy)]
pub struct Passed {
    pub needed_by: &'static [&'static str],
    pub role: RoleKind,
    pub services: &'static [&'static str],
}

use Scope::*;

macro_rules! entries {
    ($($service:literal $operation:literal => [$($action:literal),+] on [$($scope:ident),+];)*) => {
        /// Every operation of `crate::aws::stats::resource::OPERATIONS`, and the special ones beside it.
        pub const OPERATIONS: &[Entry] = &[$(Entry {
            service: $service,
            operation: $operation,
            actions: &[$($action),+],
            scopes: &[$($scope),+],
        }),*];
    };
}

entries! {
    "S3" "CreateBucket" => ["s3:CreateBucket"] on [ArtifactBucket];
    "S3" "DeleteBucket" => ["s3:DeleteBucket"] on [ArtifactBucket];
    "S3" "HeadBucket" => ["s3:ListBucket"] on [ArtifactBucket];
    "S3" "ListObjectsV2" => ["s3:ListBucket"] on [ArtifactBucket];
    "S3" "ListObjectVersions" => ["s3:ListBucketVersions"] on [ArtifactBucket];
    "S3" "GetBucketEncryption" => ["s3:GetEncryptionConfiguration"] on [ArtifactBucket];
    "S3" "PutBucketEncryption" => ["s3:PutEncryptionConfiguration"] on [ArtifactBucket];
    "S3" "GetBucketTagging" => ["s3:GetBucketTagging"] on [ArtifactBucket];
    "S3" "PutBucketTagging" => ["s3:PutBucketTagging"] on [ArtifactBucket];
    "S3" "GetPublicAccessBlock" => ["s3:GetBucketPublicAccessBlock"] on [ArtifactBucket];
    "S3" "PutPublicAccessBlock" => ["s3:PutBucketPublicAccessBlock"] on [ArtifactBucket];
    "S3" "GetObject" => ["s3:GetObject"] on [ArtifactObjects];
    "S3" "PutObject" => ["s3:PutObject"] on [ArtifactObjects];
    "S3" "DeleteObject" => ["s3:DeleteObject"] on [ArtifactObjects];
    // Emptying the bucket deletes each version by its id, which IAM authorises as DeleteObjectVersion.
    "S3" "DeleteObjects" => ["s3:DeleteObject", "s3:DeleteObjectVersion"] on [ArtifactObjects];
    "Athena" "CreateWorkGroup" => ["athena:CreateWorkGroup"] on [Workgroup];
    "Athena" "GetWorkGroup" => ["athena:GetWorkGroup"] on [Workgroup];
    "Athena" "UpdateWorkGroup" => ["athena:UpdateWorkGroup"] on [Workgroup];
    "Athena" "DeleteWorkGroup" => ["athena:DeleteWorkGroup"] on [Workgroup];
    "Athena" "ListWorkGroups" => ["athena:ListWorkGroups"] on [Any];
    "Athena" "TagResource" => ["athena:TagResource"] on [Workgroup];
    "Athena" "ListTagsForResource" => ["athena:ListTagsForResource"] on [Workgroup];
    "Athena" "StartQueryExecution" => ["athena:StartQueryExecution"] on [Workgroup];
    "Athena" "GetQueryExecution" => ["athena:GetQueryExecution"] on [Workgroup];
    "Athena" "GetQueryResults" => ["athena:GetQueryResults"] on [Workgroup];
    "Athena" "StopQueryExecution" => ["athena:StopQueryExecution"] on [Workgroup];
    "Athena" "ListQueryExecutions" => ["athena:ListQueryExecutions"] on [Workgroup];
    "Athena" "BatchGetQueryExecution" => ["athena:BatchGetQueryExecution"] on [Workgroup];
    "IAM" "CreateRole" => ["iam:CreateRole"] on [StackRoles];
    "IAM" "GetRole" => ["iam:GetRole"] on [StackRoles];
    "IAM" "DeleteRole" => ["iam:DeleteRole"] on [StackRoles];
    "IAM" "TagRole" => ["iam:TagRole"] on [StackRoles];
    "IAM" "UpdateAssumeRolePolicy" => ["iam:UpdateAssumeRolePolicy"] on [StackRoles];
    "IAM" "PutRolePolicy" => ["iam:PutRolePolicy"] on [StackRoles];
    "IAM" "GetRolePolicy" => ["iam:GetRolePolicy"] on [StackRoles];
    "IAM" "DeleteRolePolicy" => ["iam:DeleteRolePolicy"] on [StackRoles];
    "IAM" "ListRolePolicies" => ["iam:ListRolePolicies"] on [StackRoles];
    "IAM" "ListAttachedRolePolicies" => ["iam:ListAttachedRolePolicies"] on [StackRoles];
    "IAM" "AttachRolePolicy" => ["iam:AttachRolePolicy"] on [StackRoles];
    "IAM" "DetachRolePolicy" => ["iam:DetachRolePolicy"] on [StackRoles];
    "IAM" "PutRolePermissionsBoundary" => ["iam:PutRolePermissionsBoundary"] on [StackRoles];
    "IAM" "DeleteRolePermissionsBoundary" => ["iam:DeleteRolePermissionsBoundary"] on [StackRoles];
    "LakeFormation" "GrantPermissions" => ["lakeformation:GrantPermissions"] on [Any];
    "LakeFormation" "RevokePermissions" => ["lakeformation:RevokePermissions"] on [Any];
    "LakeFormation" "ListPermissions" => ["lakeformation:ListPermissions"] on [Any];
    "Lambda" "CreateFunction" => ["lambda:CreateFunction"] on [ScorerFunction];
    "Lambda" "GetFunction" => ["lambda:GetFunction"] on [ScorerFunction];
    "Lambda" "GetFunctionConfiguration" => ["lambda:GetFunctionConfiguration"] on [ScorerFunction];
    "Lambda" "UpdateFunctionCode" => ["lambda:UpdateFunctionCode"] on [ScorerFunction];
    "Lambda" "UpdateFunctionConfiguration" => ["lambda:UpdateFunctionConfiguration"] on [ScorerFunction];
    "Lambda" "DeleteFunction" => ["lambda:DeleteFunction"] on [ScorerFunction];
    "Lambda" "CreateEventSourceMapping" => ["lambda:CreateEventSourceMapping"] on [Any];
    "Lambda" "ListEventSourceMappings" => ["lambda:ListEventSourceMappings"] on [Any];
    "Lambda" "UpdateEventSourceMapping" => ["lambda:UpdateEventSourceMapping"] on [EventSourceMappings];
    "Lambda" "DeleteEventSourceMapping" => ["lambda:DeleteEventSourceMapping"] on [EventSourceMappings];
    "Lambda" "TagResource" => ["lambda:TagResource"] on [ScorerFunction, EventSourceMappings];
    "Lambda" "ListTags" => ["lambda:ListTags"] on [ScorerFunction, EventSourceMappings];
    "SageMaker" "CreateTrainingJob" => ["sagemaker:CreateTrainingJob"] on [TrainingJobs];
    "SageMaker" "DescribeTrainingJob" => ["sagemaker:DescribeTrainingJob"] on [TrainingJobs];
    "SageMaker" "StopTrainingJob" => ["sagemaker:StopTrainingJob"] on [TrainingJobs];
    "SageMaker" "ListTrainingJobs" => ["sagemaker:ListTrainingJobs"] on [Any];
    "SageMaker" "CreateModel" => ["sagemaker:CreateModel"] on [Models];
    "SageMaker" "DeleteModel" => ["sagemaker:DeleteModel"] on [Models];
    "SageMaker" "ListModels" => ["sagemaker:ListModels"] on [Any];
    "SageMaker" "CreateEndpointConfig" => ["sagemaker:CreateEndpointConfig"] on [EndpointConfigs];
    "SageMaker" "DeleteEndpointConfig" => ["sagemaker:DeleteEndpointConfig"] on [EndpointConfigs];
    "SageMaker" "ListEndpointConfigs" => ["sagemaker:ListEndpointConfigs"] on [Any];
    "SageMaker" "CreateEndpoint" => ["sagemaker:CreateEndpoint"] on [Endpoint, EndpointConfigs];
    "SageMaker" "UpdateEndpoint" => ["sagemaker:UpdateEndpoint"] on [Endpoint, EndpointConfigs];
    "SageMaker" "DescribeEndpoint" => ["sagemaker:DescribeEndpoint"] on [Endpoint];
    "SageMaker" "DeleteEndpoint" => ["sagemaker:DeleteEndpoint"] on [Endpoint];
    "SageMaker" "ListEndpoints" => ["sagemaker:ListEndpoints"] on [Any];
    "SageMaker" "AddTags" => ["sagemaker:AddTags"] on [TrainingJobs, Models, EndpointConfigs, Endpoint];
    "SageMaker" "ListTags" => ["sagemaker:ListTags"] on [TrainingJobs, Models, EndpointConfigs, Endpoint];
    // `lakesight score`, and the calibration of a retrain, call the stack's endpoint.
    "SageMakerRuntime" "InvokeEndpoint" => ["sagemaker:InvokeEndpoint"] on [Endpoint];
    "SecurityLake" "CreateDataLake" => ["securitylake:CreateDataLake"] on [DataLake];
    "SecurityLake" "UpdateDataLake" => ["securitylake:UpdateDataLake"] on [DataLake];
    "SecurityLake" "DeleteDataLake" => ["securitylake:DeleteDataLake"] on [DataLake];
    "SecurityLake" "ListDataLakes" => ["securitylake:ListDataLakes"] on [Any];
    "SecurityLake" "ListDataLakeExceptions" => ["securitylake:ListDataLakeExceptions"] on [Any];
    "SecurityLake" "CreateAwsLogSource" => ["securitylake:CreateAwsLogSource"] on [DataLake];
    "SecurityLake" "DeleteAwsLogSource" => ["securitylake:DeleteAwsLogSource"] on [DataLake];
    "SecurityLake" "ListLogSources" => ["securitylake:ListLogSources"] on [Any];
    "SecurityLake" "GetDataLakeSources" => ["securitylake:GetDataLakeSources"] on [Any];
    "SecurityLake" "CreateSubscriber" => ["securitylake:CreateSubscriber"] on [DataLake];
    "SecurityLake" "GetSubscriber" => ["securitylake:GetSubscriber"] on [Subscribers];
    "SecurityLake" "UpdateSubscriber" => ["securitylake:UpdateSubscriber"] on [Subscribers];
    "SecurityLake" "DeleteSubscriber" => ["securitylake:DeleteSubscriber"] on [Subscribers];
    "SecurityLake" "ListSubscribers" => ["securitylake:ListSubscribers"] on [Any];
    "SecurityLake" "CreateSubscriberNotification" => ["securitylake:CreateSubscriberNotification"] on [Subscribers];
    "SecurityLake" "DeleteSubscriberNotification" => ["securitylake:DeleteSubscriberNotification"] on [Subscribers];
    "SecurityLake" "TagResource" => ["securitylake:TagResource"] on [DataLake, Subscribers];
    "SecurityLake" "ListTagsForResource" => ["securitylake:ListTagsForResource"] on [DataLake, Subscribers];
    "SQS" "CreateQueue" => ["sqs:CreateQueue"] on [StackQueues];
    "SQS" "GetQueueUrl" => ["sqs:GetQueueUrl"] on [StackQueues];
    "SQS" "GetQueueAttributes" => ["sqs:GetQueueAttributes"] on [StackQueues];
    "SQS" "SetQueueAttributes" => ["sqs:SetQueueAttributes"] on [StackQueues];
    "SQS" "TagQueue" => ["sqs:TagQueue"] on [StackQueues];
    "SQS" "ListQueueTags" => ["sqs:ListQueueTags"] on [StackQueues];
    "SQS" "DeleteQueue" => ["sqs:DeleteQueue"] on [StackQueues];
}

/// Operations that need no permission: AWS answers them for any authenticated caller.
pub const NO_PERMISSION: &[(&str, &str)] = &[("STS", "GetCallerIdentity")];

/// What AWS checks beyond the operations' own actions.
pub const DEPENDENT: &[Dependent] = &[
    // Athena reads the lake's tables through Glue and Lake Formation, and writes query results
    // and UNLOAD output to the artifact bucket, all as the caller.
    Dependent {
        needed_by: "Athena.StartQueryExecution",
        actions: &["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
        scope: LakeTables,
    },
    Dependent { needed_by: "Athena.StartQueryExecution", actions: &["lakeformation:GetDataAccess"], scope: Any },
    Dependent {
        needed_by: "Athena.StartQueryExecution",
        actions: &["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
        scope: ArtifactBucket,
    },
    Dependent {
        needed_by: "Athena.StartQueryExecution",
        actions: &["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        scope: ArtifactObjects,
    },
    // The dependent actions the reference lists for CreateDataLake, CreateAwsLogSource,
    // CreateSubscriber and CreateSubscriberNotification (and their deletes): Security Lake makes
    // its buckets, queues, partition-updater function, EventBridge rules, Glue database and the
    // subscriber's role with the caller's credentials.
    Dependent {
        needed_by: "SecurityLake.CreateDataLake",
        actions: &[
            "s3:CreateBucket",
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListBucket",
            "s3:PutBucketNotification",
            "s3:GetBucketNotification",
            "s3:PutBucketPolicy",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutBucketVersioning",
            "s3:PutEncryptionConfiguration",
            "s3:PutLifecycleConfiguration",
            "s3:PutObject",
            "sqs:CreateQueue",
            "sqs:DeleteQueue",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:SetQueueAttributes",
            "lambda:AddPermission",
            "lambda:CreateEventSourceMapping",
            "lambda:CreateFunction",
            "events:PutRule",
            "events:PutTargets",
            "events:DescribeRule",
            "events:CreateApiDestination",
            "events:CreateConnection",
            "events:ListApiDestinations",
            "events:ListConnections",
            "iam:CreateRole",
            "iam:GetRole",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
        ],
        scope: SecurityLakeOwned,
    },
    Dependent {
        needed_by: "SecurityLake.CreateAwsLogSource",
        actions: &["glue:CreateDatabase", "glue:CreateTable", "glue:GetDatabase", "glue:GetTable"],
        scope: LakeTables,
    },
    Dependent {
        needed_by: "SecurityLake.CreateDataLake",
        actions: &[
            "iam:CreateServiceLinkedRole",
            "lakeformation:GetDataLakeSettings",
            "lakeformation:PutDataLakeSettings",
            "lakeformation:RegisterResource",
            "organizations:DescribeOrganization",
            "organizations:ListDelegatedServicesForAccount",
            "ram:GetResourceShareAssociations",
            "ram:GetResourceShares",
            "ram:UpdateResourceShare",
        ],
        scope: Any,
    },
];

/// Roles handed to services: `iam:PassRole`, on that role, for that service only.
pub const PASSED: &[Passed] = &[
    Passed {
        needed_by: &["SageMaker.CreateTrainingJob", "SageMaker.CreateModel"],
        role: RoleKind::SageMakerExecution,
        services: &["sagemaker.amazonaws.com"],
    },
    Passed {
        needed_by: &["Lambda.CreateFunction", "Lambda.UpdateFunctionConfiguration"],
        role: RoleKind::Scorer,
        services: &["lambda.amazonaws.com"],
    },
    // The reference lists lambda.amazonaws.com and s3.amazonaws.com for CreateDataLake's PassRole.
    Passed {
        needed_by: &["SecurityLake.CreateDataLake", "SecurityLake.UpdateDataLake"],
        role: RoleKind::MetaStoreManager,
        services: &["lambda.amazonaws.com", "s3.amazonaws.com"],
    },
];
