"""Strict requests: every AWS request is checked against its service's botocore model before a backend sees
it, and a violation is answered the way that service answers it.

What is checked, for the operation's input (wire.py says how each protocol's request is read):
  * required members ("Member must not be null"), at every depth;
  * types: a string where a number is expected, an object where a list is, and so on;
  * enums, lengths (min/max of strings, blobs, lists and maps), ranges (min/max of numbers) and
    patterns (javaregex.py says how Java patterns are read, and which cannot be).

What is not checked: members the model does not know (AWS ignores them too), timestamps' format, blob
contents, the `document` type, and rules that live outside the model (for example that a policy is valid
JSON, or IAM's path rules beyond its pattern). Requests whose operation the model does not have, or whose
service has no botocore model, pass through for moto to decide. S3 CreateBucket also gets S3's bucket
naming rules, which are S3's own and not in the model.

How a violation is answered:
  * json and rest-json services: 400 `ValidationException`, with Coral's message, for example
    `1 validation error detected: Value 'x y' at 'roleName' failed to satisfy constraint: Member must
    satisfy regular expression pattern: [\\w+=,.@-]+`. Member paths are lowerCamel, list items
    `name.N.member.sub`; a sensitive member's value is not shown. A value of the wrong JSON type is 400
    `SerializationException`, as Coral's JSON reader answers. SageMaker runtime answers `ValidationError`.
  * SQS (json with awsQueryCompatible): SQS's own codes, carried in `x-amzn-query-error` as the SDKs read
    them: `MissingParameter`, `InvalidAttributeName` for an attribute name outside the model's enum, and
    `InvalidParameterValue` for anything else, with SQS's wording.
  * query services (IAM, STS): `<ErrorResponse>` with `<Type>Sender</Type><Code>ValidationError</Code>` and
    the same Coral message. (A value of the wrong type is answered the same way; AWS's exact wording for it
    was not confirmed.)
  * S3: `InvalidBucketName` for a bucket name S3 does not allow, `KeyTooLongError` for a key over 1024
    bytes, `InvalidStorageClass` and `InvalidLocationConstraint` for those enums, `MissingRequestBodyError`
    for a missing XML body, `MalformedXML` for a body that breaks the model, `InvalidArgument` for another
    header or query value that does.

Every refusal is also kept (the last 100) for GET /lakesight-emulator/strict, so that a test that fails on
one can show it.
"""

import json
import re
import threading
import uuid
from xml.sax.saxutils import escape

import botocore.session
from werkzeug.wrappers import Response

import wire
from javaregex import Patterns

# The scope's signing name and the botocore models that sign with it (SageMaker runtime signs as "sagemaker").
MODELS_BY_SIGNING_NAME = {"sagemaker": ["sagemaker", "sagemaker-runtime"]}


class Violation:
    def __init__(self, path, value, constraint, kind, shown=True):
        self.path, self.value, self.constraint, self.kind, self.shown = path, value, constraint, kind, shown

    def coral(self):
        if self.kind == "required":
            return f"Value null at '{self.path}' failed to satisfy constraint: {self.constraint}"
        value = f" '{render(self.value)}'" if self.shown else ""
        return f"Value{value} at '{self.path}' failed to satisfy constraint: {self.constraint}"


def render(value):
    """A value as Coral's messages show it (Java's toString)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={render(v)}" for k, v in value.items()) + "}"
    return str(value)


def lower_camel(name):
    return name[:1].lower() + name[1:]


class Validator:
    """Collects the violations of one input against its shape."""

    JSON_TYPES = {"structure": dict, "list": list, "map": dict, "string": str, "boolean": bool}

    def __init__(self, patterns):
        self.patterns = patterns
        self.violations = []
        self.type_errors = []

    def check(self, shape, value, path):
        kind = shape.type_name
        if not self.type_ok(kind, value):
            self.type_errors.append((path, kind, value))
            return
        shown = not shape.metadata.get("sensitive")
        if kind == "structure":
            for name in shape.required_members:
                if value.get(name) is None:
                    self.violations.append(Violation(join(path, name), None, "Member must not be null", "required"))
            for name, member_value in value.items():
                member = shape.members.get(name)
                if member is not None and member_value is not None:
                    self.check(member, member_value, join(path, name))
        elif kind == "list":
            self.length(shape, len(value), value, path, shown)
            for i, item in enumerate(value, 1):
                self.item(shape.member, item, value, path, f"{path}.{i}.member", "Member must satisfy constraint")
        elif kind == "map":
            self.length(shape, len(value), value, path, shown)
            for key, item in value.items():
                self.item(shape.key, key, value, path, None, "Map keys must satisfy constraint")
                if item is not None:
                    self.item(shape.value, item, value, path, f"{path}.{key}", "Map value must satisfy constraint")
        elif kind == "string":
            for constraint in self.string_constraints(shape, value):
                self.violations.append(Violation(path, value, constraint, "enum" if "enum value" in constraint else "value", shown))
        elif kind in ("integer", "long", "float", "double"):
            if "min" in shape.metadata and value < shape.metadata["min"]:
                self.violations.append(Violation(path, value, f"Member must have value greater than or equal to {shape.metadata['min']}", "range", shown))
            if "max" in shape.metadata and value > shape.metadata["max"]:
                self.violations.append(Violation(path, value, f"Member must have value less than or equal to {shape.metadata['max']}", "range", shown))
        elif kind == "blob":
            self.length(shape, wire.blob_size(value), value, path, False)

    def item(self, shape, value, whole, path, deeper, wrapper):
        """A list item or map key/value: a scalar's violations are reported on the collection, as Coral
        does ("Member must satisfy constraint: [...]"); a structure's inside it."""
        if shape.type_name == "string" and isinstance(value, str):
            inner = self.string_constraints(shape, value)
            if inner:
                kind = "enum" if any("enum value" in c for c in inner) else "value"
                self.violations.append(Violation(path, whole, f"{wrapper}: [{', '.join(inner)}]", kind, not shape.metadata.get("sensitive")))
        elif deeper is not None:
            self.check(shape, value, deeper)

    def string_constraints(self, shape, value):
        found = []
        md = shape.metadata
        if "min" in md and len(value) < md["min"]:
            found.append(f"Member must have length greater than or equal to {md['min']}")
        if "max" in md and len(value) > md["max"]:
            found.append(f"Member must have length less than or equal to {md['max']}")
        if shape.enum and value not in shape.enum:
            found.append(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        if "pattern" in md:
            compiled = self.patterns.get(md["pattern"])
            if compiled is not None and not compiled.fullmatch(value):
                found.append(f"Member must satisfy regular expression pattern: {md['pattern']}")
        return found

    def length(self, shape, n, value, path, shown):
        md = shape.metadata
        if "min" in md and n < md["min"]:
            self.violations.append(Violation(path, value, f"Member must have length greater than or equal to {md['min']}", "length", shown))
        if "max" in md and n > md["max"]:
            self.violations.append(Violation(path, value, f"Member must have length less than or equal to {md['max']}", "length", shown))

    @classmethod
    def type_ok(cls, kind, value):
        if kind in cls.JSON_TYPES:
            return isinstance(value, cls.JSON_TYPES[kind])
        if kind in ("integer", "long"):
            return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()
        if kind in ("float", "double"):
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "timestamp":
            return isinstance(value, (int, float, str)) and not isinstance(value, bool)
        if kind == "blob":
            return isinstance(value, (str, bytes, wire.Blob))
        return True


def join(path, name):
    return f"{path}.{lower_camel(name)}" if path else lower_camel(name)


JACKSON = {"string": "STRING_VALUE", "integer": "NUMBER_VALUE", "long": "NUMBER_VALUE", "float": "NUMBER_VALUE",
           "double": "NUMBER_VALUE", "boolean": "VALUE_TRUE", "list": "START_ARRAY", "structure": "START_OBJECT", "map": "START_OBJECT"}
JAVA_TYPE = {"string": "String", "integer": "Integer", "long": "Long", "float": "Float", "double": "Double", "boolean": "Boolean",
             "timestamp": "Date", "blob": "ByteBuffer"}


def serialization_message(kind, value):
    """The message Coral's JSON reader gives for a value of the wrong type."""
    if isinstance(value, dict) and kind != "structure":
        return "Start of structure or map found where not expected."
    if isinstance(value, list):
        return "Start of list found where not expected"
    if kind in ("structure", "map"):
        return f"{'STRING_VALUE' if isinstance(value, str) else 'NUMBER_VALUE'} can not be converted to a structure"
    wire_kind = "STRING_VALUE" if isinstance(value, str) else "VALUE_TRUE" if value is True else "VALUE_FALSE" if value is False else "NUMBER_VALUE"
    return f"{wire_kind} can not be converted to {'an' if JAVA_TYPE.get(kind, 'x')[0] in 'AEIOU' else 'a'} {JAVA_TYPE.get(kind, kind)}"


# -- bucket names ------------------------------------------------------------------------------------------

IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def bucket_name_ok(name):
    """S3's rules for general purpose bucket names (S3 User Guide, "General purpose bucket naming rules")."""
    return (
        3 <= len(name) <= 63
        and re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name) is not None
        and ".." not in name
        and not IP_ADDRESS.match(name)
        and not name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        and not name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))
    )


# -- answers --------------------------------------------------------------------------------------------------

def request_id():
    return str(uuid.uuid4())


def coral_message(violations):
    n = len(violations)
    return f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(v.coral() for v in violations)


def json_error(status, code, message, content_type, query_error=None, type_name=None):
    body = {"__type": type_name or code, "message": message}
    response = Response(json.dumps(body), status=status, content_type=content_type)
    response.headers["x-amzn-errortype"] = code
    response.headers["x-amzn-RequestId"] = request_id()
    if query_error:
        response.headers["x-amzn-query-error"] = f"{query_error};Sender"
    return response


def query_error(model, code, message):
    namespace = model.metadata.get("xmlNamespace", "")
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{request_id()}</RequestId></ErrorResponse>"
    )
    return Response(body, status=400, content_type="text/xml")


def s3_error(code, message, extra=None):
    fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in (extra or {}).items())
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
        f"{fields}<RequestId>{request_id()}</RequestId><HostId>{request_id()}</HostId></Error>"
    )
    return Response(body, status=400, content_type="application/xml")


def sqs_refusal(model, violations, type_errors):
    """SQS's own codes (SQS API Reference, Common Errors), carried as its JSON protocol carries them."""
    content_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"
    if type_errors:
        path, kind, value = type_errors[0]
        return json_error(400, "InvalidParameterValue", f"Value {render(value)} for parameter {upper_camel(path)} is invalid. Reason: must be a {JAVA_TYPE.get(kind, kind)}.", content_type, "InvalidParameterValue")
    first = violations[0]
    parameter = upper_camel(first.path)
    if first.kind == "required":
        code, message = "MissingParameter", f"The request must contain the parameter {parameter}."
    elif first.kind == "enum" and parameter.split(".")[0] in ("AttributeNames", "Attributes"):
        bad = first.value if isinstance(first.value, str) else next(
            (v for v in first.value if v not in model.shape_for("QueueAttributeName").enum), first.value)
        code, message = "InvalidAttributeName", f"Unknown Attribute {render(bad)}."
    else:
        code, message = "InvalidParameterValue", f"Value {render(first.value)} for parameter {parameter} is invalid. Reason: {first.constraint}."
    return json_error(400, code, message, content_type, code, type_name=f"com.amazonaws.sqs#{code}")


def upper_camel(path):
    return ".".join(p[:1].upper() + p[1:] for p in path.split("."))


def s3_refusal(op, params, violations, type_errors):
    payload = op.input_shape.serialization.get("payload")
    for v in violations:
        if payload and v.kind == "required" and v.path == lower_camel(payload):
            return s3_error("MissingRequestBodyError", "Request Body is empty")
    body_paths = {lower_camel(payload)} if payload else set()
    for v in violations:
        if v.path == "storageClass":
            return s3_error("InvalidStorageClass", "The storage class you specified is not valid", {"StorageClassRequested": v.value})
        if v.path == "createBucketConfiguration.locationConstraint":
            return s3_error("InvalidLocationConstraint", "The specified location-constraint is not valid", {"LocationConstraint": v.value})
    for v in violations + [wire_violation(t) for t in type_errors]:
        if v.path.split(".")[0] in body_paths:
            return s3_error("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
    first = (violations + [wire_violation(t) for t in type_errors])[0]
    member = op.input_shape.members.get(upper_camel(first.path.split(".")[0]))
    header = member.serialization.get("name") if member is not None else first.path
    return s3_error("InvalidArgument", f"Invalid argument: {first.constraint}", {"ArgumentName": header, "ArgumentValue": render(first.value)})


def wire_violation(type_error):
    path, kind, value = type_error
    return Violation(path, value, f"Member must be of type {JAVA_TYPE.get(kind, kind)}", "type")


# -- the hook -------------------------------------------------------------------------------------------------

class Strict:
    """Validates each AWS request against its botocore model; check() answers a refusal or None."""

    def __init__(self):
        self.session = botocore.session.get_session()
        self.lock = threading.Lock()
        self.models = {}
        self.patterns = Patterns()
        self.refusals = []

    def refused(self):
        """The refusals since the last reset, newest last (at most 100), for tests to look at."""
        with self.lock:
            return list(self.refusals)

    def reset(self):
        with self.lock:
            self.refusals.clear()

    def models_for(self, signing_name):
        names = MODELS_BY_SIGNING_NAME.get(signing_name, [signing_name])
        found = []
        with self.lock:
            for name in names:
                if name not in self.models:
                    try:
                        self.models[name] = self.session.get_service_model(name)
                    except Exception:  # noqa: BLE001 - no botocore model: nothing to check against
                        self.models[name] = None
                if self.models[name] is not None:
                    found.append(self.models[name])
        return found

    def identify(self, request, signing_name):
        """The model, operation and input of a request, or None when no model has its operation."""
        for model in self.models_for(signing_name):
            protocol = model.metadata.get("protocol")
            if protocol == "json" and "X-Amz-Target" not in request.headers:
                continue
            if protocol != "json" and "X-Amz-Target" in request.headers:
                continue
            s3_path = None
            if protocol == "rest-xml" and model.service_name == "s3":
                s3_path = s3_request_path(request)
                if s3_path is None:
                    return None
            decoded = wire.decode(model, request, s3_path)
            if decoded is not None:
                return (model,) + decoded
        return None

    def check(self, request, signing_name, operation=None, region=None):
        """A refusal for a request its model does not allow, else None."""
        if not signing_name:
            return None
        try:
            found = self.identify(request, signing_name)
        except wire.Malformed as e:
            return self.malformed(signing_name, str(e))
        if found is None:
            return None
        model, op, params = found
        answer = self.s3_rules(model, op, params)
        if answer is not None:
            self.note(model.service_name, op.name, answer)
            return answer
        if op.input_shape is None:
            return None
        validator = Validator(self.patterns)
        validator.check(op.input_shape, params, "")
        if not validator.violations and not validator.type_errors:
            return None
        answer = self.refusal(model, op, params, validator)
        self.note(model.service_name, op.name, answer)
        return answer

    def note(self, service, operation, answer):
        with self.lock:
            self.refusals.append({"service": service, "operation": operation, "status": answer.status_code,
                                  "body": answer.get_data(as_text=True)})
            del self.refusals[:-100]

    @staticmethod
    def s3_rules(model, op, params):
        """S3's own rules, which its model does not carry: bucket names (on create) and key length."""
        if model.service_name != "s3":
            return None
        if op.name == "CreateBucket" and not bucket_name_ok(params.get("Bucket", "")):
            return s3_error("InvalidBucketName", "The specified bucket is not valid.", {"BucketName": params.get("Bucket", "")})
        if len(str(params.get("Key", "")).encode()) > 1024:
            return s3_error("KeyTooLongError", "Your key is too long", {"Size": len(params["Key"].encode()), "MaxSizeAllowed": 1024})
        return None

    def refusal(self, model, op, params, validator):
        violations, type_errors = validator.violations, validator.type_errors
        protocol = model.metadata.get("protocol")
        if model.service_name == "s3":
            return s3_refusal(op, params, violations, type_errors)
        if "awsQueryCompatible" in model.metadata:
            return sqs_refusal(model, violations, type_errors)
        if protocol == "query":
            all_violations = violations + [wire_violation(t) for t in type_errors]
            return query_error(model, "ValidationError", coral_message(all_violations))
        content_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}" if protocol == "json" else "application/json"
        if type_errors:
            path, kind, value = type_errors[0]
            return json_error(400, "SerializationException", serialization_message(kind, value), content_type)
        code = "ValidationError" if model.service_name == "sagemaker-runtime" else "ValidationException"
        return json_error(400, code, coral_message(violations), content_type)

    def malformed(self, signing_name, detail):
        if signing_name == "s3":
            return s3_error("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
        return json_error(400, "SerializationException", f"Could not parse the request body: {detail}", "application/json")


def s3_request_path(request):
    """The path-style path of an S3 request; virtual-hosted requests get their bucket put back in front.
    None when the host names a bucket in a way this cannot tell."""
    path, _ = wire.raw_path_and_query(request)
    host = (request.host or "").rsplit(":", 1)[0] if not (request.host or "").startswith("[") else "localhost"
    if host in ("localhost", "") or IP_ADDRESS.match(host) or host.startswith("s3.") or re.match(r"^s3[.-]", host):
        return path
    for suffix in (".s3.", ".s3-", ".localhost"):
        if suffix in host:
            return "/" + host.split(suffix, 1)[0] + path
    return None
