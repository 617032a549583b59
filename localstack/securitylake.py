"""An Amazon Security Lake backend for the emulator (rest-json, API version 2018-05-10).

Requests are checked against the service model that botocore ships (required members, lengths,
patterns, enums), as the real service does. Statuses move asynchronously: a new or updated data
lake reports INITIALIZED/PENDING and a new subscriber PENDING for a configurable number of polls.
Subscriber notifications are backed by a real queue in the emulator's SQS. Enabling a log source registers its
Glue table (ocsf_tables.py), which stays when the source is removed, as Security Lake's does.
"""

import gzip
import json
import os
import re
import secrets
import string
import threading
import uuid
from urllib.parse import unquote

import botocore
from werkzeug.wrappers import Response

import ocsf_tables

ACCOUNT = "123456789012"
MODEL_PATH = os.path.join(os.path.dirname(botocore.__file__), "data", "securitylake", "2018-05-10", "service-2.json.gz")


def lake_bucket_name(region):
    """The lake's bucket: `aws-security-data-lake-<region>-` and lowercase letters and digits up to S3's 63
    characters, as the service names it (30 random characters after a 9-character region such as
    us-east-1, 25 after ap-northeast-1), so the name fits in every region."""
    prefix = f"aws-security-data-lake-{region}-"
    return prefix + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(63 - len(prefix)))


def response(status, body, error_type=None):
    r = Response(json.dumps(body), status=status, content_type="application/json")
    if error_type:
        r.headers["x-amzn-errortype"] = error_type
    return r


class ServiceError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(what):
    return ServiceError(404, "ResourceNotFoundException", f"{what} not found")


def conflict(message):
    return ServiceError(409, "ConflictException", message)


def invalid(message):
    return ServiceError(400, "ValidationException", message)


class Model:
    """Routes and input validation from the service model."""

    def __init__(self):
        with gzip.open(MODEL_PATH) as f:
            model = json.load(f)
        self.shapes = model["shapes"]
        self.routes = []
        for name, op in model["operations"].items():
            uri = op["http"]["requestUri"]
            pattern = "^" + re.sub(r"\{(\w+)\+?\}", r"(?P<\1>[^?]+?)", uri) + "$"
            self.routes.append((op["http"]["method"], re.compile(pattern), name, op.get("input", {}).get("shape")))
        # Longer literal paths first, so /v1/datalake/delete does not match a {param}.
        self.routes.sort(key=lambda r: -len(r[1].pattern.replace("(?P<", "")))

    def match(self, method, path):
        for m, pattern, name, shape in self.routes:
            found = pattern.match(path)
            if m == method and found:
                return name, shape, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def validate(self, shape_name, value, path="input"):
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            if not isinstance(value, dict):
                raise invalid(f"{path} must be an object")
            for member in shape.get("required", []):
                if value.get(member) is None:
                    raise invalid(f"{path}.{member} is required")
            for member, v in value.items():
                spec = shape["members"].get(member)
                if spec is None:
                    raise invalid(f"{path}.{member} is not a known member")
                if v is not None:
                    self.validate(spec["shape"], v, f"{path}.{member}")
        elif kind == "list":
            if not isinstance(value, list):
                raise invalid(f"{path} must be a list")
            self._length(shape, len(value), path)
            for i, item in enumerate(value):
                self.validate(shape["member"]["shape"], item, f"{path}[{i}]")
        elif kind == "string":
            if not isinstance(value, str):
                raise invalid(f"{path} must be a string")
            self._length(shape, len(value), path)
            if "enum" in shape and value not in shape["enum"]:
                raise invalid(f"{path} must be one of {', '.join(shape['enum'])}")
            if "pattern" in shape and not re.search(shape["pattern"], value):
                raise invalid(f"{path} does not match {shape['pattern']}")
        elif kind in ("integer", "long"):
            if not isinstance(value, int):
                raise invalid(f"{path} must be an integer")
            if "min" in shape and value < shape["min"] or "max" in shape and value > shape["max"]:
                raise invalid(f"{path} is out of range")

    @staticmethod
    def _length(shape, n, path):
        if "min" in shape and n < shape["min"] or "max" in shape and n > shape["max"]:
            raise invalid(f"{path} length {n} is outside {shape.get('min', 0)}..{shape.get('max', 'any')}")


class SecurityLake:
    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.model = Model()
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.lakes = {}  # region -> lake
            self.tags = {}  # arn -> {key: value}
            self.sources = {}  # (account, region, name) -> version
            self.recreate_conflicts = {}  # (account, region, name) -> 409s left for a re-create
            self.subscribers = {}  # id -> subscriber
            self.polls = {}  # (kind, id) -> polls seen while settling
            self.exceptions = []  # failures ListDataLakeExceptions reports

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, request, region):
        route = self.model.match(request.method, request.path)
        if route is None:
            return response(404, {"message": f"{request.method} {request.path} is not an operation"}, "ResourceNotFoundException")
        name, shape, params = route
        try:
            body = json.loads(request.get_data() or b"{}")
            query = {k: (v if len(v) > 1 else v[0]) for k, v in request.args.lists()}
            if shape:
                members = self.model.shapes[shape]["members"]
                for k, v in list(query.items()):
                    key = next((m for m, spec in members.items() if spec.get("locationName") == k), k)
                    body[key] = [v] if self.model.shapes[members[key]["shape"]]["type"] == "list" and isinstance(v, str) else v
                body.update(params)
                self.model.validate(shape, body)
            mutating = request.method != "GET" and not name.startswith(("List", "Get"))
            with self.lock:
                if mutating:
                    self.check_conflicts(name)
                handler = getattr(self, "op_" + re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower(), None)
                if handler is None:
                    raise ServiceError(501, "NotImplemented", f"{name} is not emulated")
                return response(200, handler(body, region) or {})
        except ServiceError as e:
            return response(e.status, {"message": e.message}, e.code)

    def check_conflicts(self, name):
        if self.behaviour.conflict():
            raise conflict("a previous write did not have time to propagate")
        if self.behaviour.setting("conflictWhilePending") and name != "DeleteDataLake":
            for lake in self.lakes.values():
                if self.lake_status(lake, peek=True) != "COMPLETED":
                    raise conflict(f"the data lake in {lake['region']} is still being configured")

    # -- asynchronous status ------------------------------------------------------------------

    def settling(self, kind, key, peek=False):
        """True while a resource is still settling: the first N polls after it changed."""
        polls = self.polls.get((kind, key), 0)
        if not peek:
            self.polls[(kind, key)] = polls + 1
        return polls < int(self.behaviour.setting("pendingPolls", {}).get(kind, 0))

    def lake_status(self, lake, peek=False):
        if lake.get("failure"):
            return "FAILED"
        return "PENDING" if self.settling("dataLake", lake["region"], peek) else "COMPLETED"

    def restart(self, kind, key):
        self.polls.pop((kind, key), None)

    # -- data lakes ----------------------------------------------------------------------------

    def lake_view(self, lake, peek=False):
        """The lake as ListDataLakes shows it; a poll unless `peek` (the create and update answers)."""
        status = self.lake_status(lake, peek)
        view = {k: v for k, v in lake.items() if k not in ("failure", "updated")}
        if lake.get("updated"):
            view["createStatus"] = "COMPLETED"
            view["updateStatus"] = {"status": status, "requestId": lake["updated"]}
            if status == "FAILED":
                view["updateStatus"]["exception"] = lake["failure"]
        else:
            view["createStatus"] = "INITIALIZED" if status == "PENDING" and self.polls.get(("dataLake", lake["region"]), 0) <= 1 else status
        return view

    def configure(self, config, role):
        failure = self.behaviour.setting("failDataLake")
        bucket = lake_bucket_name(config["region"])
        # Security Lake creates the lake's bucket; objects the scorer reads land there.
        from moto.s3.models import s3_backends

        s3_backends[ACCOUNT]["aws"].create_bucket(bucket, config["region"])
        return {
            "dataLakeArn": f"arn:aws:securitylake:{config['region']}:{ACCOUNT}:data-lake/default",
            "region": config["region"],
            "s3BucketArn": f"arn:aws:s3:::{bucket}",
            "encryptionConfiguration": config.get("encryptionConfiguration") or {"kmsKeyId": "S3_MANAGED_KEY"},
            "lifecycleConfiguration": config.get("lifecycleConfiguration") or {},
            "replicationConfiguration": config.get("replicationConfiguration") or {},
            "metaStoreManagerRoleArn": role,
            "failure": failure,
        }

    def op_create_data_lake(self, body, region):
        created = []
        for config in body["configurations"]:
            r = config["region"]
            if r in self.lakes:
                # Calling create on an enabled region updates it, as the service does.
                created.append(self.update_lake(r, config, body["metaStoreManagerRoleArn"]))
                continue
            lake = self.configure(config, body["metaStoreManagerRoleArn"])
            if lake["failure"]:
                self.exceptions.append({
                    "region": r,
                    "exception": f"{lake['failure']['code']}: {lake['failure']['reason']}",
                    "remediation": "fix the cause, then call CreateDataLake again",
                    "timestamp": "2026-01-01T00:00:00Z",
                })
            self.lakes[r] = lake
            self.tags[lake["dataLakeArn"]] = {t["key"]: t["value"] for t in body.get("tags", [])}
            self.restart("dataLake", r)
            created.append(self.lake_view(lake, peek=True))
        return {"dataLakes": created}

    def update_lake(self, r, config, role):
        lake = self.lakes[r]
        for key in ("encryptionConfiguration", "lifecycleConfiguration", "replicationConfiguration"):
            if key in config:
                lake[key] = config[key]
        if role:
            lake["metaStoreManagerRoleArn"] = role
        lake["updated"] = uuid.uuid4().hex
        lake["failure"] = self.behaviour.setting("failDataLake")
        self.restart("dataLake", r)
        return self.lake_view(lake, peek=True)

    def op_update_data_lake(self, body, region):
        updated = []
        for config in body["configurations"]:
            if config["region"] not in self.lakes:
                raise not_found(f"data lake in {config['region']}")
            updated.append(self.update_lake(config["region"], config, body.get("metaStoreManagerRoleArn")))
        return {"dataLakes": updated}

    def op_list_data_lakes(self, body, region):
        regions = body.get("regions") or list(self.lakes)
        return {"dataLakes": [self.lake_view(self.lakes[r]) for r in regions if r in self.lakes]}

    def op_list_data_lake_exceptions(self, body, region):
        regions = body.get("regions")
        return {"exceptions": [e for e in self.exceptions if not regions or e["region"] in regions]}

    def op_delete_data_lake(self, body, region):
        for r in body["regions"]:
            lake = self.lakes.pop(r, None)
            if lake:
                self.tags.pop(lake["dataLakeArn"], None)
        return {}

    # -- log sources ---------------------------------------------------------------------------

    def source_keys(self, source):
        accounts = source.get("accounts") or [ACCOUNT]
        return [(a, r, source["sourceName"]) for a in accounts for r in source["regions"]]

    def op_create_aws_log_source(self, body, region):
        failed = []
        for source in body["sources"]:
            version = source.get("sourceVersion") or "latest"
            if version == "latest":
                version = "2.0"
            for key in self.source_keys(source):
                if key[1] not in self.lakes:
                    raise invalid(f"Security Lake is not enabled in {key[1]}")
                left = self.recreate_conflicts.get(key, 0)
                if left:
                    self.recreate_conflicts[key] = left - 1
                    raise conflict(f"{key[2]} in {key[0]}/{key[1]} is still being deleted")
            for key in self.source_keys(source):
                self.sources[key] = version
            # Security Lake registers the source's Glue table in each region, over the lake's bucket.
            for r in source["regions"]:
                bucket = self.lakes[r]["s3BucketArn"].rsplit(":", 1)[-1]
                ocsf_tables.register(ACCOUNT, r, source["sourceName"], version, bucket)
        return {"failed": failed}

    def op_delete_aws_log_source(self, body, region):
        delay = int(self.behaviour.setting("recreateConflicts", 0))
        for source in body["sources"]:
            for key in self.source_keys(source):
                if self.sources.pop(key, None) is not None and delay:
                    self.recreate_conflicts[key] = delay
        return {"failed": []}

    def op_list_log_sources(self, body, region):
        accounts, regions = body.get("accounts"), body.get("regions")
        grouped = {}
        for (a, r, name), version in sorted(self.sources.items()):
            if (accounts and a not in accounts) or (regions and r not in regions):
                continue
            grouped.setdefault((a, r), []).append({"awsLogSource": {"sourceName": name, "sourceVersion": version}})
        return {"sources": [{"account": a, "region": r, "sources": s} for (a, r), s in grouped.items()]}

    def op_get_data_lake_sources(self, body, region):
        statuses = self.behaviour.setting("sourceStatus", {})
        accounts = body.get("accounts")
        grouped = {}
        for (a, r, name), version in sorted(self.sources.items()):
            if accounts and a not in accounts:
                continue
            resource = f"aws/{name}/{version}/region={r}/accountId={a}"
            grouped.setdefault((a, name), []).append({"resource": resource, "status": statuses.get(name, "COLLECTING")})
        lake = self.lakes.get(region)
        return {
            "dataLakeArn": lake["dataLakeArn"] if lake else None,
            "dataLakeSources": [{"account": a, "sourceName": n, "sourceStatuses": s} for (a, n), s in grouped.items()],
        }

    # -- subscribers ---------------------------------------------------------------------------

    def subscriber(self, subscriber_id):
        sub = self.subscribers.get(subscriber_id)
        if sub is None:
            raise not_found(f"subscriber {subscriber_id}")
        return sub

    def subscriber_view(self, sub, peek=False):
        view = dict(sub)
        view["subscriberStatus"] = "PENDING" if self.settling("subscriber", sub["subscriberId"], peek) else "ACTIVE"
        return view

    def op_create_subscriber(self, body, region):
        if any(s["subscriberName"] == body["subscriberName"] for s in self.subscribers.values()):
            raise conflict(f"subscriber {body['subscriberName']} already exists")
        sid = str(uuid.uuid4())
        lake = self.lakes.get(region)
        if lake is None:
            raise invalid(f"Security Lake is not enabled in {region}")
        sub = {
            "subscriberId": sid,
            "subscriberArn": f"arn:aws:securitylake:{region}:{ACCOUNT}:subscriber/{sid}",
            "subscriberName": body["subscriberName"],
            "subscriberIdentity": body["subscriberIdentity"],
            "subscriberDescription": body.get("subscriberDescription", ""),
            "sources": body["sources"],
            "accessTypes": body.get("accessTypes") or ["S3"],
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/AmazonSecurityLake-{sid[:8]}",
            "s3BucketArn": lake["s3BucketArn"],
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
            "region": region,
        }
        self.subscribers[sid] = sub
        self.tags[sub["subscriberArn"]] = {t["key"]: t["value"] for t in body.get("tags", [])}
        self.restart("subscriber", sid)
        return {"subscriber": self.subscriber_view(sub, peek=True)}

    def op_get_subscriber(self, body, region):
        return {"subscriber": self.subscriber_view(self.subscriber(body["subscriberId"]))}

    def op_list_subscribers(self, body, region):
        return {"subscribers": [self.subscriber_view(s) for s in self.subscribers.values()]}

    def op_update_subscriber(self, body, region):
        sub = self.subscriber(body["subscriberId"])
        for key in ("sources", "subscriberDescription", "subscriberIdentity", "subscriberName"):
            if key in body:
                sub[key] = body[key]
        return {"subscriber": self.subscriber_view(sub)}

    def op_delete_subscriber(self, body, region):
        sub = self.subscribers.pop(body["subscriberId"], None)
        if sub is not None:
            self.delete_queue(sub)
            self.tags.pop(sub["subscriberArn"], None)
        return {}

    # -- notifications -------------------------------------------------------------------------

    @staticmethod
    def sqs(region):
        from moto.sqs.models import sqs_backends

        return sqs_backends[ACCOUNT][region]

    def op_create_subscriber_notification(self, body, region):
        sub = self.subscriber(body["subscriberId"])
        if sub.get("subscriberEndpoint"):
            raise conflict("the subscriber already has a notification")
        if "sqsNotificationConfiguration" not in body["configuration"]:
            raise invalid("only SQS notifications are emulated")
        name = f"AmazonSecurityLake-{sub['subscriberId']}-Main-Queue"
        queue = self.sqs(sub["region"]).create_queue(name)
        sub["subscriberEndpoint"] = queue.queue_arn
        return {"subscriberEndpoint": queue.queue_arn}

    def op_update_subscriber_notification(self, body, region):
        sub = self.subscriber(body["subscriberId"])
        if not sub.get("subscriberEndpoint"):
            raise not_found("notification")
        return {"subscriberEndpoint": sub["subscriberEndpoint"]}

    def delete_queue(self, sub):
        endpoint = sub.pop("subscriberEndpoint", None)
        if endpoint:
            try:
                self.sqs(sub["region"]).delete_queue(endpoint.rsplit(":", 1)[-1])
            except Exception:  # noqa: BLE001 - already gone is fine
                pass

    def op_delete_subscriber_notification(self, body, region):
        self.delete_queue(self.subscriber(body["subscriberId"]))
        return {}

    # -- tags ----------------------------------------------------------------------------------

    def tagged(self, arn):
        if arn not in self.tags:
            raise not_found(arn)
        return self.tags[arn]

    def op_list_tags_for_resource(self, body, region):
        return {"tags": [{"key": k, "value": v} for k, v in self.tagged(body["resourceArn"]).items()]}

    def op_tag_resource(self, body, region):
        self.tagged(body["resourceArn"]).update({t["key"]: t["value"] for t in body["tags"]})
        return {}

    def op_untag_resource(self, body, region):
        tags = self.tagged(body["resourceArn"])
        for key in body["tagKeys"]:
            tags.pop(key, None)
        return {}
