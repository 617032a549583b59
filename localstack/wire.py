"""Requests off the wire: which operation of a botocore service model a request calls, and its input.

Each protocol is the reverse of botocore's serialize.py for it:
  * json (awsJson1_0/1_1: SQS, Athena, Glue, SageMaker): the operation from `X-Amz-Target: <targetPrefix>.<Op>`,
    the input from the JSON body, members under their locationName where the model gives one.
  * rest-json (Lambda, Lake Formation, Security Lake, SageMaker runtime) and rest-xml (S3): the operation
    from the HTTP method and the model's requestUri (path labels `{Name}` and greedy `{Name+}`, literal query
    keys such as `?tagging`); members from the path, the query string, headers (and `headers` maps by
    prefix), and the body: the payload member, or the other members as a JSON object (rest-json) or an XML
    document (rest-xml).
  * query (IAM, STS): the operation from `Action`, the input from the form body and query string, with
    `Name.member.N` lists (`Name.N` when flattened), `Name.entry.N.key/value` maps and `Name.Sub` structures.

Values keep their wire type where it cannot be converted (a query or header integer that is not a number
stays a string), so that validation reports the type mismatch. A blob payload (an object's body, an
inference request) is not decoded: only its size is kept.
"""

import base64
import json
import re
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.etree import ElementTree

MISSING = object()


class Malformed(ValueError):
    """A body that is not the protocol's format at all (not JSON, not XML)."""


def raw_path_and_query(request):
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        parts = urlsplit(raw)
        return parts.path or "/", parts.query
    return request.environ.get("PATH_INFO", "/"), request.environ.get("QUERY_STRING", "")


def scalar(shape, text):
    """A query, header or XML text value as the shape's type; the text itself when it does not convert."""
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
    except ValueError:
        return text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    return text


# -- json ------------------------------------------------------------------------------------------------

def from_json(shape, value):
    """JSON as botocore's JSONSerializer writes it: members under their locationName."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            if key in value:
                out[name] = from_json(member, value[key])
        return out
    if kind == "list" and isinstance(value, list):
        return [from_json(shape.member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: from_json(shape.value, v) for k, v in value.items()}
    return value


def json_body(data):
    if not data.strip():
        return {}
    try:
        return json.loads(data)
    except ValueError as e:
        raise Malformed(str(e)) from e


def decode_json(model, request):
    target = request.headers.get("X-Amz-Target", "")
    prefix, _, name = target.rpartition(".")
    if prefix != model.metadata.get("targetPrefix") or name not in model.operation_names:
        return None
    op = model.operation_model(name)
    body = json_body(request.get_data())
    params = from_json(op.input_shape, body) if op.input_shape is not None else {}
    return op, params


# -- query -----------------------------------------------------------------------------------------------

def query_params(request):
    _, query = raw_path_and_query(request)
    params = dict(parse_qsl(query, keep_blank_values=True))
    if "x-www-form-urlencoded" in (request.content_type or ""):
        # request.form, not get_data(): the emulator may have parsed the form already (for `Action`).
        params.update(request.form.items())
    return params


def from_query(shape, prefix, params):
    kind = shape.type_name
    if kind == "structure":
        if prefix and not any(k.startswith(prefix + ".") for k in params):
            return MISSING
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            value = from_query(member, f"{prefix}.{key}" if prefix else key, params)
            if value is not MISSING:
                out[name] = value
        return out
    if kind == "list":
        if params.get(prefix) == "":
            return []
        if shape.serialization.get("flattened"):
            named = shape.member.serialization.get("name")
            base = ".".join(prefix.split(".")[:-1] + [named]) if named else prefix
        else:
            base = f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        items, i = [], 1
        while f"{base}.{i}" in params or any(k.startswith(f"{base}.{i}.") for k in params):
            items.append(from_query(shape.member, f"{base}.{i}", params))
            i += 1
        return items if items else MISSING
    if kind == "map":
        base = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out, i = {}, 1
        while f"{base}.{i}.{key_name}" in params:
            value = from_query(shape.value, f"{base}.{i}.{value_name}", params)
            out[params[f"{base}.{i}.{key_name}"]] = None if value is MISSING else value
            i += 1
        return out if out else MISSING
    if prefix not in params:
        return MISSING
    return scalar(shape, params[prefix])


def decode_query(model, request):
    params = query_params(request)
    name = params.get("Action")
    if not name or name not in model.operation_names:
        return None
    op = model.operation_model(name)
    return op, (from_query(op.input_shape, "", params) if op.input_shape is not None else {})


# -- rest-json and rest-xml ------------------------------------------------------------------------------

class Route:
    """One operation's requestUri as a matcher."""

    LABEL = re.compile(r"\{([^}]+?)(\+?)\}")

    def __init__(self, op):
        self.op = op
        uri = op.http["requestUri"]
        path, _, query = uri.partition("?")
        self.labels = []
        regex, last = "", 0
        for m in self.LABEL.finditer(path):
            regex += re.escape(path[last:m.start()])
            regex += f"(?P<g{len(self.labels)}>.+)" if m.group(2) else f"(?P<g{len(self.labels)}>[^/]+)"
            self.labels.append(m.group(1))
            last = m.end()
        regex += re.escape(path[last:])
        self.path = re.compile("^" + regex + "$")
        self.query = dict(parse_qsl(query, keep_blank_values=True))
        self.literal = len(path) - sum(len(m.group(0)) for m in self.LABEL.finditer(path))

    def match(self, method, path, query):
        """The label values when this route serves the request, else None."""
        if method != self.op.http["method"]:
            return None
        found = self.path.match(path) or (self.path.match(path.rstrip("/")) if path.endswith("/") and path != "/" else None)
        if not found:
            return None
        for key, value in self.query.items():
            if key == "x-id":
                # The SDKs' operation hint: it need not be sent, but when sent it names the operation.
                if key in query and query[key][0] != value:
                    return None
            elif key not in query or (value and query[key][0] != value):
                return None
        return {self.labels[int(k[1:])]: unquote(v) for k, v in found.groupdict().items()}


def routes(model):
    return [Route(model.operation_model(name)) for name in model.operation_names]


def member_present(member, request, query):
    location = member.serialization.get("location")
    key = member.serialization.get("name")
    if location == "header":
        return key in request.headers
    if location == "querystring":
        return key in query
    return True


def best_route(table, request, path, query):
    """The operation a REST request calls: the route that matches with the most literal query keys, then
    the most literal path, then the fewest of its required header and query members missing (S3's
    PutObject, CopyObject and UploadPart share one path and differ by those)."""
    method = request.method
    candidates = []
    for route in table:
        labels = route.match(method, path, query)
        if labels is None:
            continue
        shape = route.op.input_shape
        missing = 0
        present = 0
        if shape is not None:
            for name in shape.required_members:
                member = shape.members[name]
                if member.serialization.get("location") in ("header", "querystring"):
                    if member_present(member, request, query):
                        present += 1
                    else:
                        missing += 1
        candidates.append(((len(route.query), route.literal, -missing, present), route, labels))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0], reverse=True)
    return candidates[0][1], candidates[0][2]


def from_xml(shape, elem):
    kind = shape.type_name
    if kind == "structure":
        out = {}
        children = list(elem)
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            if member.serialization.get("xmlAttribute"):
                for attr, value in elem.attrib.items():
                    if attr.rsplit("}", 1)[-1] == key.rsplit(":", 1)[-1]:
                        out[name] = value
                continue
            if member.type_name == "list" and member.serialization.get("flattened"):
                item_key = member.member.serialization.get("name", key)
                items = [c for c in children if local(c.tag) == item_key]
                if items:
                    out[name] = [from_xml(member.member, c) for c in items]
                continue
            found = next((c for c in children if local(c.tag) == key), None)
            if found is not None:
                out[name] = from_xml(member, found)
        return out
    if kind == "list":
        item_key = shape.member.serialization.get("name", "member")
        return [from_xml(shape.member, c) for c in elem if local(c.tag) == item_key]
    if kind == "map":
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        entries = elem if shape.serialization.get("flattened") else [c for c in elem if local(c.tag) == "entry"]
        out = {}
        for entry in entries:
            k = next((c.text or "" for c in entry if local(c.tag) == key_name), "")
            v = next((c for c in entry if local(c.tag) == value_name), None)
            out[k] = from_xml(shape.value, v) if v is not None else None
        return out
    return scalar(shape, elem.text or "")


def local(tag):
    return tag.rsplit("}", 1)[-1]


def payload_value(member, request, xml):
    data = request.get_data()
    if member.type_name in ("blob", "string"):
        # An object's or an inference's body: its size is what the model constrains.
        return Blob(len(data)) if data else MISSING
    if not data.strip():
        return MISSING
    if xml:
        try:
            return from_xml(member, ElementTree.fromstring(data))
        except ElementTree.ParseError as e:
            raise Malformed(str(e)) from e
    return from_json(member, json_body(data))


class Blob:
    """A payload seen only by its size."""

    def __init__(self, size):
        self.size = size

    def __repr__(self):
        return f"<{self.size} bytes>"


def decode_rest(model, request, path=None, xml=False):
    raw_path, raw_query = raw_path_and_query(request)
    path = path or raw_path
    query = {}
    for k, v in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(k, []).append(v)
    found = best_route([r for r in routes_of(model)], request, path, query)
    if found is None:
        return None
    route, labels = found
    op = route.op
    shape = op.input_shape
    if shape is None:
        return op, {}
    params = {}
    body_members = {}
    payload = shape.serialization.get("payload")
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        key = member.serialization.get("name", name)
        if location == "uri":
            if key in labels:
                params[name] = scalar(member, labels[key])
        elif location == "querystring":
            if member.type_name == "map":
                bound = {m.serialization.get("name") for m in shape.members.values()}
                rest = {k: v[0] for k, v in query.items() if k not in bound}
                if rest:
                    params[name] = rest
            elif key in query:
                values = query[key]
                params[name] = [scalar(member.member, v) for v in values] if member.type_name == "list" else scalar(member, values[0])
        elif location == "header":
            if key in request.headers:
                text = request.headers[key]
                if member.type_name == "list":
                    params[name] = [scalar(member.member, v.strip()) for v in text.split(",")]
                else:
                    params[name] = scalar(member, text)
        elif location == "headers":
            found_headers = {k[len(key):]: v for k, v in request.headers.items() if k.lower().startswith(key.lower())}
            if found_headers:
                params[name] = found_headers
        elif name == payload:
            value = payload_value(member, request, xml)
            if value is not MISSING:
                params[name] = value
        else:
            body_members[name] = member
    if body_members and not payload:
        data = request.get_data()
        if xml:
            if data.strip():
                try:
                    params.update(from_xml(shape, ElementTree.fromstring(data)))
                except ElementTree.ParseError as e:
                    raise Malformed(str(e)) from e
        else:
            document = json_body(data)
            if not isinstance(document, dict):
                raise Malformed("the body is not a JSON object")
            for name, member in body_members.items():
                key = member.serialization.get("name", name)
                if key in document:
                    params[name] = from_json(member, document[key])
    return op, params


_ROUTES = {}


def routes_of(model):
    key = model.service_name
    if key not in _ROUTES:
        _ROUTES[key] = routes(model)
    return _ROUTES[key]


def decode(model, request, s3_path=None):
    """(operation model, input) for a request to this service, or None when no operation matches."""
    protocol = model.metadata.get("protocol")
    if protocol == "json":
        return decode_json(model, request)
    if protocol == "query":
        return decode_query(model, request)
    if protocol == "rest-json":
        return decode_rest(model, request)
    if protocol == "rest-xml":
        return decode_rest(model, request, path=s3_path, xml=True)
    return None


def blob_size(value):
    """The size in bytes of a blob input: a Blob, raw bytes, or base64 text (JSON protocols)."""
    if isinstance(value, Blob):
        return value.size
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    try:
        return len(base64.b64decode(value, validate=True))
    except (ValueError, TypeError):
        return len(value)
