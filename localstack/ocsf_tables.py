"""The Glue tables Security Lake creates for its natively supported sources, as the emulator creates them.

When a source is enabled (CreateAwsLogSource), Security Lake registers one Glue table per source, version and
region in the database `amazon_security_lake_glue_db_<region>` (dashes as underscores), named
`amazon_security_lake_table_<region>_<source>_<major>_<minor>`, over the objects under
`s3://aws-security-data-lake-<region>-<id>/aws/<SOURCE>/<version>/`, which are Parquet files in Hive partitions
`region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/`. Glue lowercases the partition keys: `region`,
`accountid`, `eventday`, all strings. Removing a source stops collection but keeps the table and the data that
subscribers can still read, so nothing here is ever dropped.

Sources:
  * Amazon Security Lake User Guide, "Open Cybersecurity Schema Framework (OCSF) in Security Lake"
    (open-cybersecurity-schema-framework.html): source version 1 is OCSF 1.0.0-rc.2, version 2 is OCSF 1.1.0;
    VPC Flow Logs map to the Network Activity class, Route 53 Resolver query logs to DNS Activity.
  * "Security Lake queries for AWS source version 1 (OCSF 1.0.0-rc.2)" (subscriber-query-examples1.html) and
    "Example Security Lake queries for Amazon VPC Flow Logs" for version 1 (vpc-query-examples.html) and version 2
    (vpc-query-examples-sourceversion2.html): table and database names, `eventDay` filters on version 1 tables,
    `time_dt` and `region` on version 2 tables, `src_endpoint.ip`, `src_endpoint.port`, `dst_endpoint.ip`.
  * DeleteAwsLogSource (Security Lake API reference): "subscribers can still consume data that Security Lake
    collected from the source before removal".
  * The version 1 VPC flow column types follow an AWS sample that reproduces Security Lake's table
    (`struct<port:int,svc_name:string,ip:string,...>` and so on). OCSF 1.1 renames `cloud.account_uid` to
    `cloud.account.uid`, replaces `connection_info.protocol_ver` by `protocol_ver_id`, adds `action`/`action_id`
    and the `*_dt` timestamps of its datetime profile; version 2 tables carry them.

Types are Glue (Hive) type strings, exactly what GetTable returns. Struct fields are listed in order; a Parquet
writer that matches these names and types produces objects the emulator's Athena reads as Athena would.
"""


def struct(**fields):
    """A Glue struct type string from field names and types, in order."""
    return "struct<" + ",".join(f"{name}:{kind}" for name, kind in fields.items()) + ">"


def array(kind):
    return f"array<{kind}>"


PARTITION_KEYS = [("region", "string"), ("accountid", "string"), ("eventday", "string")]

# -- shared column types -------------------------------------------------------------------------------------

METADATA_V1 = struct(
    product=struct(version="string", name="string", feature=struct(name="string"), vendor_name="string"),
    profiles=array("string"),
    version="string",
)
METADATA_V2 = struct(
    product=struct(version="string", name="string", feature=struct(name="string"), vendor_name="string"),
    profiles=array("string"),
    version="string",
    uid="string",
)
CLOUD_V1 = struct(account_uid="string", region="string", zone="string", provider="string")
CLOUD_V2 = struct(account=struct(uid="string"), region="string", zone="string", provider="string")
NETWORK_ENDPOINT = struct(
    port="int",
    svc_name="string",
    ip="string",
    intermediate_ips=array("string"),
    interface_uid="string",
    vpc_uid="string",
    instance_uid="string",
    subnet_uid="string",
)
CONNECTION_V1 = struct(
    protocol_num="int", tcp_flags="int", protocol_ver="string", boundary_id="int", boundary="string",
    direction_id="int", direction="string",
)
CONNECTION_V2 = struct(
    protocol_num="int", tcp_flags="int", protocol_ver_id="int", boundary_id="int", boundary="string",
    direction_id="int", direction="string",
)
TRAFFIC = struct(packets="bigint", bytes="bigint")
DNS_SOURCE = struct(vpc_uid="string", ip="string", port="int", instance_uid="string")
DNS_DESTINATION = struct(instance_uid="string", interface_uid="string")
DNS_QUERY = struct(hostname="string", type="string", **{"class": "string"})
DNS_ANSWERS = array(struct(type="string", rdata="string", **{"class": "string"}))
DNS_CONNECTION = struct(protocol_name="string", direction="string", direction_id="int")

CLASSIFICATION = [
    ("severity_id", "int"),
    ("severity", "string"),
    ("class_name", "string"),
    ("class_uid", "int"),
    ("category_name", "string"),
    ("category_uid", "int"),
    ("activity_name", "string"),
    ("activity_id", "int"),
    ("type_uid", "bigint"),
    ("type_name", "string"),
]

# -- the tables ----------------------------------------------------------------------------------------------

COLUMNS = {
    ("VPC_FLOW", "1.0"): [
        ("metadata", METADATA_V1),
        ("cloud", CLOUD_V1),
        ("src_endpoint", NETWORK_ENDPOINT),
        ("dst_endpoint", NETWORK_ENDPOINT),
        ("connection_info", CONNECTION_V1),
        ("traffic", TRAFFIC),
        ("time", "bigint"),
        ("start_time", "bigint"),
        ("end_time", "bigint"),
        ("status_code", "string"),
        *CLASSIFICATION,
        ("disposition", "string"),
        ("disposition_id", "int"),
        ("unmapped", "map<string,string>"),
    ],
    ("VPC_FLOW", "2.0"): [
        ("metadata", METADATA_V2),
        ("cloud", CLOUD_V2),
        ("src_endpoint", NETWORK_ENDPOINT),
        ("dst_endpoint", NETWORK_ENDPOINT),
        ("connection_info", CONNECTION_V2),
        ("traffic", TRAFFIC),
        ("time", "bigint"),
        ("time_dt", "timestamp"),
        ("start_time", "bigint"),
        ("start_time_dt", "timestamp"),
        ("end_time", "bigint"),
        ("end_time_dt", "timestamp"),
        ("status_code", "string"),
        *CLASSIFICATION,
        ("action", "string"),
        ("action_id", "int"),
        ("disposition", "string"),
        ("disposition_id", "int"),
        ("unmapped", "map<string,string>"),
    ],
    ("ROUTE53", "1.0"): [
        ("metadata", METADATA_V1),
        ("cloud", CLOUD_V1),
        ("src_endpoint", DNS_SOURCE),
        ("time", "bigint"),
        ("query", DNS_QUERY),
        ("rcode_id", "int"),
        ("rcode", "string"),
        ("answers", DNS_ANSWERS),
        ("connection_info", DNS_CONNECTION),
        ("dst_endpoint", DNS_DESTINATION),
        *CLASSIFICATION,
        ("disposition", "string"),
        ("disposition_id", "int"),
        ("unmapped", "map<string,string>"),
    ],
    ("ROUTE53", "2.0"): [
        ("metadata", METADATA_V2),
        ("cloud", CLOUD_V2),
        ("src_endpoint", DNS_SOURCE),
        ("time", "bigint"),
        ("time_dt", "timestamp"),
        ("query", DNS_QUERY),
        ("rcode_id", "int"),
        ("rcode", "string"),
        ("answers", DNS_ANSWERS),
        ("connection_info", DNS_CONNECTION),
        ("dst_endpoint", DNS_DESTINATION),
        *CLASSIFICATION,
        ("action", "string"),
        ("action_id", "int"),
        ("disposition", "string"),
        ("disposition_id", "int"),
        ("unmapped", "map<string,string>"),
    ],
}


def database_name(region):
    return f"amazon_security_lake_glue_db_{region.replace('-', '_')}"


def table_name(region, source, version):
    return f"amazon_security_lake_table_{region.replace('-', '_')}_{source.lower()}_{version.replace('.', '_')}"


def location(bucket, source, version):
    return f"s3://{bucket}/aws/{source}/{version}/"


def table_input(region, source, version, bucket):
    """Glue CreateTable's TableInput for one source version, or None for a source this module does not describe."""
    columns = COLUMNS.get((source, version))
    if columns is None:
        return None
    return {
        "Name": table_name(region, source, version),
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": n, "Type": t} for n, t in PARTITION_KEYS],
        "StorageDescriptor": {
            "Columns": [{"Name": n, "Type": t} for n, t in columns],
            "Location": location(bucket, source, version),
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
    }


def register(account, region, source, version, bucket):
    """Creates the database and the table in the emulator's Glue (moto) unless they exist already."""
    from moto.glue.models import glue_backends

    spec = table_input(region, source, version, bucket)
    if spec is None:
        return
    glue = glue_backends[account][region]
    db = database_name(region)
    if db not in glue.databases:
        glue.create_database(db, {"Name": db, "Description": "Amazon Security Lake"})
    if spec["Name"] not in glue.databases[db].tables:
        glue.create_table(db, spec["Name"], spec)
