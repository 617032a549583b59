"""Athena runs the SQL over the Glue tables Security Lake registers.

Each check enables Security Lake sources through the Security Lake API, puts small Parquet objects (written here
with DuckDB, gzip pages, `.gz.parquet` names) under the tables' locations in real partition paths, and compares
what Athena answers with what the check computes from the same rows in Python."""

import gzip
import os
import re
import tempfile
import time
import unittest
from datetime import datetime

import botocore.exceptions
import duckdb

from checks.support import ACCOUNT, client, control

REGION = "us-east-1"
DB = "amazon_security_lake_glue_db_us_east_1"
VPC2 = "amazon_security_lake_table_us_east_1_vpc_flow_2_0"
VPC1 = "amazon_security_lake_table_us_east_1_vpc_flow_1_0"
DNS2 = "amazon_security_lake_table_us_east_1_route53_2_0"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/metastore"
IPV4 = r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$"
OTHER_ACCOUNT = "444455556666"
DAY1, DAY2 = datetime(2026, 11, 18, 8), datetime(2026, 11, 19, 8)

# (account, day, instance_uid, ip, port): what the VPC flow tables hold in every check.
FLOWS = [
    (ACCOUNT, DAY1, "i-0000000000000000a", "10.0.0.1", 443),
    (ACCOUNT, DAY1, "i-0000000000000000a", "10.0.0.2", 443),
    (ACCOUNT, DAY1, "i-0000000000000000b", "10.0.1.1", 22),
    (ACCOUNT, DAY1, None, "10.0.9.9", 80),
    (ACCOUNT, DAY1, "-", "10.0.9.8", 80),
    (ACCOUNT, DAY1, "i-0000000000000000c", "-", 80),
    (ACCOUNT, DAY1, "i-0000000000000000c", "2001:db8::1", 80),
    (ACCOUNT, DAY1, "i-0000000000000000c", "256.1.1.1", 80),
    (ACCOUNT, DAY2, "i-0000000000000000c", "10.0.2.1", 8080),
    (ACCOUNT, DAY2, "i-0000000000000000a", "10.0.0.1", 443),
    (OTHER_ACCOUNT, DAY2, "i-0000000000000000d", "192.168.1.1", 53),
]
# (day, instance_uid, ip) in the Route 53 table.
QUERIES = [(DAY1, "i-0000000000000000e", "10.0.3.1"), (DAY2, "i-0000000000000000a", "10.0.0.9"), (DAY2, None, "10.0.3.2")]

VPC_COLUMNS = """src_endpoint STRUCT(port INTEGER, ip VARCHAR, instance_uid VARCHAR, vpc_uid VARCHAR),
    dst_endpoint STRUCT(port INTEGER, ip VARCHAR), connection_info STRUCT(direction VARCHAR, direction_id INTEGER),
    traffic STRUCT(packets BIGINT, bytes BIGINT), time BIGINT, time_dt TIMESTAMP, class_uid INTEGER,
    metadata STRUCT(version VARCHAR)"""


def parquet(columns, rows):
    """A Parquet object with gzip-compressed pages, as Security Lake writes them."""
    conn = duckdb.connect()
    conn.execute(f"CREATE TABLE t ({columns})")
    names = [c.split()[0] for c in re.split(r",\s*(?![^()]*\))", columns)]
    conn.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in names)})", rows)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.gz.parquet")
        conn.execute(f"COPY t TO '{path}' (FORMAT PARQUET, COMPRESSION GZIP)")
        return open(path, "rb").read()


def flow_row(day, entity, ip, port, version="1.1.0"):
    millis = int(day.timestamp() * 1000)
    return (
        {"port": port, "ip": ip, "instance_uid": entity, "vpc_uid": "vpc-1"},
        {"port": 49152, "ip": "172.16.0.1"},
        {"direction": "Outbound", "direction_id": 2},
        {"packets": 3, "bytes": 120},
        millis,
        day,
        4001,
        {"version": version},
    )


def wanted(entity, ip):
    """The product's filter, computed independently of the emulator."""
    return entity not in (None, "-") and ip not in (None, "-") and re.search(IPV4, ip) is not None


def pairs_sql(table, where):
    return f"""SELECT src_endpoint.instance_uid AS entity, src_endpoint.ip AS ip
  FROM "{DB}"."{table}"
  WHERE src_endpoint.instance_uid IS NOT NULL
    AND src_endpoint.instance_uid <> '-'
    AND src_endpoint.ip IS NOT NULL
    AND src_endpoint.ip <> '-'
    AND regexp_like(src_endpoint.ip, '{IPV4}')
    AND {where}"""


V2_WINDOW = "time_dt >= TIMESTAMP '2026-11-18 00:00:00' AND time_dt < TIMESTAMP '2026-11-20 00:00:00'"


class AthenaTest(unittest.TestCase):
    def setUp(self):
        control("reset")
        self.athena, self.s3, self.glue = client("athena"), client("s3"), client("glue")
        sl = client("securitylake")
        sl.create_data_lake(configurations=[{"region": REGION}], metaStoreManagerRoleArn=ROLE)
        for name, version in (("VPC_FLOW", "2.0"), ("VPC_FLOW", "1.0"), ("ROUTE53", "2.0")):
            sl.create_aws_log_source(sources=[{"sourceName": name, "sourceVersion": version, "regions": [REGION]}])
        self.lake = sl.list_data_lakes(regions=[REGION])["dataLakes"][0]["s3BucketArn"].rsplit(":", 1)[-1]
        self.s3.create_bucket(Bucket="results")
        self.athena.create_work_group(Name="wg", Configuration={
            "ResultConfiguration": {"OutputLocation": "s3://results/athena/"}, "EnforceWorkGroupConfiguration": True})
        by_partition = {}
        for account, day, entity, ip, port in FLOWS:
            by_partition.setdefault((account, day), []).append(flow_row(day, entity, ip, port))
        for (account, day), rows in by_partition.items():
            self.put("VPC_FLOW", "2.0", account, day, parquet(VPC_COLUMNS, rows))
            self.put("VPC_FLOW", "1.0", account, day, parquet(VPC_COLUMNS, [r[:-1] + ({"version": "1.0.0-rc.2"},) for r in rows]))
        for day, entity, ip in QUERIES:
            row = ({"ip": ip, "instance_uid": entity, "port": 53, "vpc_uid": "vpc-1"}, {"hostname": "example.com."},
                   int(day.timestamp() * 1000), day)
            data = parquet("src_endpoint STRUCT(ip VARCHAR, instance_uid VARCHAR, port INTEGER, vpc_uid VARCHAR), "
                           "query STRUCT(hostname VARCHAR), time BIGINT, time_dt TIMESTAMP", [row])
            self.put("ROUTE53", "2.0", ACCOUNT, day, data, name=f"{entity}.gz.parquet")

    def put(self, source, version, account, day, data, name="part-0.gz.parquet"):
        key = f"aws/{source}/{version}/region={REGION}/accountId={account}/eventDay={day:%Y%m%d}/{name}"
        self.s3.put_object(Bucket=self.lake, Key=key, Body=data)

    def run_query(self, sql, workgroup="wg", expect="SUCCEEDED"):
        qid = self.athena.start_query_execution(QueryString=sql, WorkGroup=workgroup,
                                                QueryExecutionContext={"Database": DB})["QueryExecutionId"]
        deadline = time.monotonic() + 60
        while True:
            execution = self.athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            if execution["Status"]["State"] not in ("QUEUED", "RUNNING") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(execution["Status"]["State"], expect, execution["Status"].get("StateChangeReason"))
        return qid, execution

    def failure(self, sql):
        _, execution = self.run_query(sql, expect="FAILED")
        status = execution["Status"]
        self.assertEqual(status["AthenaError"]["ErrorMessage"], status["StateChangeReason"])
        return status["StateChangeReason"]

    def rows(self, qid):
        result = self.athena.get_query_results(QueryExecutionId=qid)["ResultSet"]
        return [[d.get("VarCharValue") for d in r["Data"]] for r in result["Rows"]], result["ResultSetMetadata"]["ColumnInfo"]

    # -- Glue ------------------------------------------------------------------------------------------------

    def test_enabling_a_source_registers_its_glue_table_as_security_lake_does(self):
        table = self.glue.get_table(DatabaseName=DB, Name=VPC2)["Table"]
        self.assertEqual([(k["Name"], k["Type"]) for k in table["PartitionKeys"]],
                         [("region", "string"), ("accountid", "string"), ("eventday", "string")])
        columns = dict((c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"])
        self.assertTrue(columns["src_endpoint"].startswith("struct<port:int,"))
        self.assertIn("instance_uid:string", columns["src_endpoint"])
        self.assertIn("direction:string", columns["connection_info"])
        self.assertEqual(columns["time_dt"], "timestamp")
        self.assertEqual(table["StorageDescriptor"]["Location"], f"s3://{self.lake}/aws/VPC_FLOW/2.0/")
        v1 = dict((c["Name"], c["Type"]) for c in self.glue.get_table(DatabaseName=DB, Name=VPC1)["Table"]["StorageDescriptor"]["Columns"])
        self.assertNotIn("time_dt", v1)
        self.assertIn("account_uid:string", v1["cloud"])
        self.assertIn("account:struct<uid:string>", columns["cloud"])
        # Removing the source stops collection; the table and its data stay for subscribers.
        client("securitylake").delete_aws_log_source(sources=[{"sourceName": "ROUTE53", "sourceVersion": "2.0", "regions": [REGION]}])
        self.glue.get_table(DatabaseName=DB, Name=DNS2)

    # -- answers ---------------------------------------------------------------------------------------------

    def test_the_count_query_counts_the_rows_the_filters_keep(self):
        sql = ("SELECT COUNT(*) AS pairs, COUNT(DISTINCT entity) AS entities FROM (\n"
               + pairs_sql(VPC2, V2_WINDOW) + "\n  UNION ALL\n" + pairs_sql(DNS2, V2_WINDOW) + "\n)")
        qid, _ = self.run_query(sql)
        rows, info = self.rows(qid)
        kept = [(e, ip) for _, _, e, ip, _ in FLOWS if wanted(e, ip)] + [(e, ip) for _, e, ip in QUERIES if wanted(e, ip)]
        self.assertEqual(rows, [["pairs", "entities"], [str(len(kept)), str(len({e for e, _ in kept}))]])
        self.assertEqual([(c["Name"], c["Type"]) for c in info], [("pairs", "bigint"), ("entities", "bigint")])
        csv = self.s3.get_object(Bucket="results", Key=f"athena/{qid}.csv")["Body"].read().decode()
        self.assertEqual(csv, f'"pairs","entities"\n"{len(kept)}","{len(set(e for e, _ in kept))}"\n')

    def test_version_1_tables_filter_on_event_day_partitions(self):
        sql = pairs_sql(VPC1, "eventDay >= '20261119' AND eventDay < '20261120' AND accountid IN ('%s')" % ACCOUNT)
        qid, _ = self.run_query(sql)
        rows, _ = self.rows(qid)
        expected = sorted([e, ip] for a, d, e, ip, _ in FLOWS if a == ACCOUNT and d == DAY2 and wanted(e, ip))
        self.assertEqual(rows[0], ["entity", "ip"])
        self.assertEqual(sorted(rows[1:]), expected)

    def test_unload_writes_the_rows_as_headerless_text_and_never_into_a_non_empty_prefix(self):
        inner = f"SELECT entity, ip FROM (\n{pairs_sql(VPC2, V2_WINDOW)}\n) ORDER BY rand()"
        sql = f"UNLOAD (\n{inner}\n) TO 's3://results/features/run1/train/'\nWITH (format = 'TEXTFILE', field_delimiter = ',', compression = 'NONE')"
        qid, execution = self.run_query(sql)
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket="results", Prefix="features/run1/train/")["Contents"]]
        lines = b"".join(self.s3.get_object(Bucket="results", Key=k)["Body"].read() for k in keys).decode().splitlines()
        self.assertEqual(sorted(lines), sorted(f"{e},{ip}" for _, _, e, ip, _ in FLOWS if wanted(e, ip)))
        manifest = self.s3.get_object(Bucket="results", Key=f"athena/{qid}-manifest.csv")["Body"].read().decode()
        self.assertEqual(manifest.split(), [f"s3://results/{k}" for k in keys])
        self.assertEqual(execution["Statistics"]["DataManifestLocation"], f"s3://results/athena/{qid}-manifest.csv")
        reason = self.failure(sql)
        self.assertTrue(reason.startswith("HIVE_PATH_ALREADY_EXISTS: Target directory for table"), reason)
        self.assertIn("s3://results/features/run1/train/", reason)
        # TEXTFILE is gzip unless the WITH clause says otherwise; the delimiter defaults to \001.
        self.run_query(f"UNLOAD ({inner}) TO 's3://results/features/run2/' WITH (format = 'TEXTFILE')")
        [key] = [o["Key"] for o in self.s3.list_objects_v2(Bucket="results", Prefix="features/run2/")["Contents"]]
        self.assertTrue(key.endswith(".gz"), key)
        text = gzip.decompress(self.s3.get_object(Bucket="results", Key=key)["Body"].read()).decode()
        self.assertIn("i-0000000000000000a\x0110.0.0.1\n", text)

    def test_unload_parquet_holds_the_same_rows(self):
        self.run_query(f"UNLOAD ({pairs_sql(VPC2, V2_WINDOW)}) TO 's3://results/pq/' WITH (format = 'PARQUET')")
        [key] = [o["Key"] for o in self.s3.list_objects_v2(Bucket="results", Prefix="pq/")["Contents"]]
        with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
            f.write(self.s3.get_object(Bucket="results", Key=key)["Body"].read())
            f.flush()
            got = duckdb.connect().execute(f"SELECT entity, ip FROM read_parquet('{f.name}')").fetchall()
        self.assertEqual(sorted(got), sorted((e, ip) for _, _, e, ip, _ in FLOWS if wanted(e, ip)))

    def test_select_answers_typed_columns_header_first(self):
        sql = (f'SELECT src_endpoint.port AS port, time, time_dt, src_endpoint.ip = \'10.0.0.1\' AS first, '
               f'traffic.bytes / 8.0 AS words, eventday, accountid FROM "{DB}"."{VPC2}" '
               f"WHERE src_endpoint.ip = '10.0.1.1'")
        qid, _ = self.run_query(sql)
        rows, info = self.rows(qid)
        self.assertEqual([(c["Name"], c["Type"]) for c in info],
                         [("port", "integer"), ("time", "bigint"), ("time_dt", "timestamp"), ("first", "boolean"),
                          ("words", "double"), ("eventday", "varchar"), ("accountid", "varchar")])
        self.assertEqual(rows, [["port", "time", "time_dt", "first", "words", "eventday", "accountid"],
                                ["22", str(int(DAY1.timestamp() * 1000)), "2026-11-18 08:00:00.000", "false", "15.0",
                                 "20261118", ACCOUNT]])

    def test_partition_pruning_reads_less_and_projection_matters(self):
        def scanned(sql):
            return self.run_query(sql)[1]["Statistics"]["DataScannedInBytes"]

        table = f'"{DB}"."{VPC2}"'
        everything = scanned(f"SELECT src_endpoint.ip FROM {table}")
        one_day = scanned(f"SELECT src_endpoint.ip FROM {table} WHERE eventday = '20261118'")
        one_account = scanned(f"SELECT src_endpoint.ip FROM {table} WHERE accountid = '{OTHER_ACCOUNT}' AND eventday = '20261119'")
        wider = scanned(f"SELECT src_endpoint.ip, dst_endpoint, traffic, metadata FROM {table}")
        self.assertGreater(everything, one_day)
        self.assertGreater(one_day, one_account)
        self.assertGreater(one_account, 0)
        self.assertGreater(wider, everything)
        self.assertEqual(scanned(f"SELECT src_endpoint.ip FROM {table} WHERE eventday = '20250101'"), 0)
        qid, _ = self.run_query(f"SELECT count(*) FROM {table} WHERE eventday = '20261119' AND accountid = '{ACCOUNT}'")
        self.assertEqual(self.rows(qid)[0][1], [str(sum(1 for a, d, *_ in FLOWS if a == ACCOUNT and d == DAY2))])

    def test_the_workgroup_cutoff_fails_a_query_that_scans_more(self):
        # BytesScannedCutoffPerQuery is at least 10 MB (Athena API reference), so one partition holds more.
        big = duckdb.connect()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "big.gz.parquet")
            big.execute("COPY (SELECT {'ip': md5(random()::VARCHAR) || md5(random()::VARCHAR)} AS src_endpoint, "
                        f"i AS time FROM range(400000) t(i)) TO '{path}' (FORMAT PARQUET, COMPRESSION GZIP)")
            self.put("VPC_FLOW", "2.0", ACCOUNT, datetime(2026, 11, 1), open(path, "rb").read(), name="big.gz.parquet")
        self.athena.create_work_group(Name="capped", Configuration={
            "ResultConfiguration": {"OutputLocation": "s3://results/capped/"}, "BytesScannedCutoffPerQuery": 10_000_000})
        table = f'"{DB}"."{VPC2}"'
        _, execution = self.run_query(f"SELECT count(src_endpoint.ip) FROM {table}", workgroup="capped", expect="FAILED")
        self.assertEqual(execution["Status"]["StateChangeReason"], "EXCEEDED_SCANNED_LIMIT: Bytes scanned limit was exceeded")
        self.assertGreater(execution["Statistics"]["DataScannedInBytes"], 10_000_000)
        # The same table within the limit: the big partition pruned away, or its big column not read.
        self.run_query(f"SELECT count(src_endpoint.ip) FROM {table} WHERE eventday = '20261118'", workgroup="capped")
        qid, _ = self.run_query(f"SELECT max(time) FROM {table} WHERE eventday = '20261101'", workgroup="capped")
        self.assertEqual(self.rows(qid)[0][1], ["399999"])

    # -- rejections ------------------------------------------------------------------------------------------

    def test_queries_athena_rejects_fail_with_its_reasons(self):
        table = f'"{DB}"."{VPC2}"'
        self.assertEqual(self.failure(f"SELECT nope FROM {table}"),
                         "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved or requester is not authorized "
                         "to access requested resources")
        self.assertTrue(self.failure(f"SELECT src_endpoint.nope FROM {table}").startswith(
            "COLUMN_NOT_FOUND: line 1:8: Column 'src_endpoint.nope' cannot be resolved"))
        self.assertEqual(self.failure(f'SELECT 1 FROM "{DB}"."missing"'),
                         f"TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.{DB}.missing' does not exist")
        self.assertEqual(self.failure('SELECT 1 FROM "nodb"."t"'), "SCHEMA_NOT_FOUND: line 1:15: Schema 'nodb' does not exist")
        self.assertTrue(self.failure(f"SELECT * FORM {table}").startswith("SYNTAX_ERROR: line 1:"))
        self.assertEqual(self.failure(f"SELECT 1 FROM {table} WHERE time_dt >= '2026-11-18'"),
                         "TYPE_MISMATCH: line 1:{}: Cannot apply operator: timestamp(3) >= varchar(10)".format(len(f"SELECT 1 FROM {table} WHERE ") + 1))
        self.assertIn("TYPE_MISMATCH", self.failure(f"SELECT 1 FROM {table} WHERE src_endpoint.port = 'x'"))
        self.assertTrue(self.failure(f"SELECT no_such_function(1) FROM {table}").startswith("FUNCTION_NOT_FOUND: line 1:8:"))
        self.assertTrue(self.failure("CREATE TABLE x AS SELECT 1").startswith("NOT_SUPPORTED:"))
        qid, _ = self.run_query(f"SELECT nope FROM {table}", expect="FAILED")
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.athena.get_query_results(QueryExecutionId=qid)
        self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidRequestException")

    def test_a_query_needs_a_result_location(self):
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.athena.start_query_execution(QueryString="SELECT 1")
        self.assertIn("No output location provided", caught.exception.response["Error"]["Message"])

    # -- asynchrony and faults -------------------------------------------------------------------------------

    def test_queries_run_asynchronously_and_can_be_held_running(self):
        control("config", {"pendingPolls": {"query": 2}})
        qid = self.athena.start_query_execution(QueryString="SELECT 1 AS one", WorkGroup="wg")["QueryExecutionId"]
        states = [self.athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] for _ in range(2)]
        self.assertEqual(states, ["RUNNING", "RUNNING"])
        _, execution = self.run_query("SELECT 1 AS one")
        self.assertEqual(execution["Status"]["State"], "SUCCEEDED")

    def test_a_workgroups_executions_are_listed_and_described_in_batches_with_their_text(self):
        qid, _ = self.run_query("SELECT 2 AS two")
        other, _ = self.run_query("SELECT 3 AS three")
        listed = self.athena.list_query_executions(WorkGroup="wg")["QueryExecutionIds"]
        self.assertTrue({qid, other} <= set(listed), listed)
        out = self.athena.batch_get_query_execution(QueryExecutionIds=[qid, other, "unknown-id"])
        texts = {e["QueryExecutionId"]: e["Query"] for e in out["QueryExecutions"]}
        self.assertEqual(texts, {qid: "SELECT 2 AS two", other: "SELECT 3 AS three"})
        self.assertEqual([u["QueryExecutionId"] for u in out["UnprocessedQueryExecutionIds"]], ["unknown-id"])

    def test_fail_queries_is_a_named_fault(self):
        control("config", {"failQueries": "injected"})
        _, execution = self.run_query("SELECT 1", expect="FAILED")
        self.assertEqual(execution["Status"]["StateChangeReason"], "injected")


if __name__ == "__main__":
    unittest.main()
