"""Runs Athena SQL for real: sqlglot reads the Trino dialect, the Glue catalog names the data, DuckDB computes.

A query is parsed (read dialect "athena"), its tables resolved through the emulator's Glue (moto) to their S3
locations, its columns checked against the Glue schema, and its comparisons type-checked as Trino does (DuckDB
would quietly cast a string literal to a number or a timestamp; Trino rejects that). Each table becomes a DuckDB
view over copies of its Parquet objects, read from moto's S3 in-process, with the Hive partition values taken from
the object keys (`region=.../accountId=.../eventDay=...`) and cast to the types Glue declares: every partition
present under the location counts as registered. Objects whose partition values fail the query's partition-only
predicates are not read (pruning).

What is measured as scanned: the compressed size of the Parquet column chunks of the top-level columns the query
references, in the objects left after pruning, as Athena bills Parquet (columnar reads, partition pruning). A query
that references no column reads none.

Failures carry Trino's error codes and wording (SYNTAX_ERROR, COLUMN_NOT_FOUND, TABLE_NOT_FOUND, SCHEMA_NOT_FOUND,
TYPE_MISMATCH, FUNCTION_NOT_FOUND, HIVE_PATH_ALREADY_EXISTS, ...). Anything the emulator cannot translate or run
faithfully fails with NOT_SUPPORTED naming the construct; no query ever answers rows it did not compute.
"""

import datetime
import decimal
import gzip
import logging
import os
import re
import tempfile
import uuid

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

logging.getLogger("sqlglot").setLevel(logging.ERROR)

CATALOG = "awsdatacatalog"
STATEMENTS = {"ALTER", "CREATE", "DESCRIBE", "DROP", "EXPLAIN", "INSERT", "MERGE", "MSCK", "SHOW", "UPDATE",
              "DELETE", "PREPARE", "EXECUTE", "DEALLOCATE", "VACUUM", "OPTIMIZE", "USE", "VALUES", "WITH", "SELECT"}


class QueryError(Exception):
    """A failed query: Trino's error code and message, and the AthenaError category and type.
    Categories (Athena error catalog): 1 SYSTEM, 2 USER, 3 OTHER. Types: 1006 syntax error, 1008 query rejected,
    1100 invalid argument, 1200 query not supported, 1301 entity not found, 1303 function not found,
    1001 data error, 200 engine internal error."""

    def __init__(self, code, message, error_type=1006, category=2, scanned=0):
        super().__init__(f"{code}: {message}")
        self.code, self.category, self.error_type, self.scanned = code, category, error_type, scanned

    @property
    def reason(self):
        return str(self)


class Result:
    def __init__(self, kind, columns=(), rows=(), scanned=0, written=(), manifest=None):
        self.kind = kind  # "SELECT" or "UNLOAD"
        self.columns, self.rows, self.scanned = list(columns), list(rows), scanned
        self.written, self.manifest = list(written), manifest


# -- source positions ----------------------------------------------------------------------------------------

class Source:
    """The query text (`text`, found at `base` in the whole statement `sql`), so that errors name Trino's
    `line L:C` of the original statement."""

    def __init__(self, sql, base=0, text=None):
        self.sql, self.base = sql, base
        self.text = sql if text is None else text

    def at(self, offset):
        offset += self.base
        line = self.sql.count("\n", 0, offset) + 1
        col = offset - (self.sql.rfind("\n", 0, offset) + 1) + 1
        return f"line {line}:{col}"

    def of(self, node):
        starts = [n.meta["start"] for n in node.walk() if isinstance(n, (exp.Identifier, exp.Literal)) and "start" in n.meta]
        return self.at(min(starts)) if starts else "line 1:1"


# -- UNLOAD --------------------------------------------------------------------------------------------------

UNLOAD_WITH = re.compile(r"\s*TO\s*'((?:[^']|'')*)'\s*WITH\s*\((.*)\)\s*;?\s*$", re.S | re.I)
PROPERTY = re.compile(r"\s*(\w+)\s*=\s*(?:'((?:[^']|'')*)'|(ARRAY\s*\[[^\]]*\]))\s*(?:,|$)", re.S | re.I)


def split_unload(sql):
    """(select text, its offset, target, properties) for `UNLOAD (select) TO '...' WITH (...)`, else None."""
    head = re.match(r"\s*UNLOAD\s*\(", sql, re.I)
    if not head:
        return None
    depth, i, quote = 1, head.end(), None
    while i < len(sql) and depth:
        c = sql[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    if depth:
        raise QueryError("SYNTAX_ERROR", f"{Source(sql).at(len(sql.rstrip()))}: mismatched input '<EOF>'. Expecting: ')'")
    tail = UNLOAD_WITH.match(sql[i:])
    if not tail:
        raise QueryError("SYNTAX_ERROR", f"{Source(sql).at(i)}: UNLOAD needs TO 's3://...' WITH (format = '...')")
    props, rest = {}, tail.group(2)
    while rest.strip():
        prop = PROPERTY.match(rest)
        if not prop:
            raise QueryError("SYNTAX_ERROR", f"{Source(sql).at(i)}: cannot read the WITH properties of UNLOAD: {rest.strip()}")
        props[prop.group(1).lower()] = prop.group(2).replace("''", "'") if prop.group(2) is not None else prop.group(3)
        rest = rest[prop.end():]
    return sql[head.end():i - 1], head.end(), tail.group(1).replace("''", "'"), props


# -- parsing and analysis ------------------------------------------------------------------------------------

def parse(source):
    try:
        tree = sqlglot.parse_one(source.text, read="athena")
    except ParseError as e:
        err = (e.errors or [{}])[0]
        lines = source.text.split("\n")
        line, col = max(1, err.get("line") or 1), max(1, err.get("col") or 1)
        offset = sum(len(text) + 1 for text in lines[: line - 1]) + col - 1
        raise QueryError("SYNTAX_ERROR", f"{source.at(offset)}: {err.get('description', str(e))}") from None
    except TokenError as e:
        raise QueryError("SYNTAX_ERROR", f"line 1:1: {e}") from None
    if isinstance(tree, exp.Command) or not isinstance(tree, exp.Query):
        word = (source.text.split() or [""])[0].upper()
        if word in STATEMENTS:
            raise QueryError("NOT_SUPPORTED", f"the emulator runs SELECT and UNLOAD only, not {word}", 1200)
        raise QueryError("SYNTAX_ERROR", f"{source.at(len(source.text) - len(source.text.lstrip()))}: mismatched input '{word.lower()}'")
    return tree


def glue(account, region):
    from moto.glue.models import glue_backends

    return glue_backends[account][region]


class Table:
    """One Glue table a query reads."""

    def __init__(self, spec):
        sd = spec.get("StorageDescriptor", {})
        self.columns = [(c["Name"].lower(), c["Type"]) for c in sd.get("Columns", [])]
        self.partitions = [(c["Name"].lower(), c["Type"]) for c in spec.get("PartitionKeys", [])]
        self.location = sd.get("Location", "")
        fmt = (sd.get("SerdeInfo", {}).get("SerializationLibrary", "") + sd.get("InputFormat", "")).lower()
        self.parquet = "parquet" in fmt


def resolve(tree, source, account, region, database):
    """Fully qualifies every table reference and returns {(db, name): Table}; CTE names are left alone."""
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    catalog, found = glue(account, region), {}
    for table in tree.find_all(exp.Table):
        if not table.name or (not table.db and table.name.lower() in ctes):
            continue
        where = source.of(table)
        if table.catalog and table.catalog.lower() != CATALOG:
            raise QueryError("CATALOG_NOT_FOUND", f"{where}: Catalog '{table.catalog.lower()}' does not exist", 1301)
        db, name = (table.db or database or "default").lower(), table.name.lower()
        if db not in catalog.databases:
            raise QueryError("SCHEMA_NOT_FOUND", f"{where}: Schema '{db}' does not exist", 1301)
        spec = catalog.databases[db].tables.get(name)
        if spec is None:
            raise QueryError("TABLE_NOT_FOUND", f"{where}: Table '{CATALOG}.{db}.{name}' does not exist", 1301)
        found[(db, name)] = Table(spec.as_dict())
        table.set("catalog", None)
        table.set("db", exp.to_identifier(db))
        table.set("this", exp.to_identifier(name))
    return found


def analyse(tree, source, tables):
    """Qualifies columns (an unknown one fails as in Trino) and annotates types."""
    schema = {}
    for (db, name), t in tables.items():
        schema.setdefault(db, {})[name] = dict(t.columns + t.partitions)
    try:
        qualified = qualify(tree.copy(), schema=schema, dialect="athena", validate_qualify_columns=True,
                            quote_identifiers=True)
    except OptimizeError as e:
        missing = re.search(r"Column '(.+?)' could not be resolved", str(e))
        if missing:
            name = missing.group(1)
            column = next((c for c in tree.find_all(exp.Column) if c.name.lower() == name.lower()), None)
            where = source.of(column) if column else "line 1:1"
            raise QueryError("COLUMN_NOT_FOUND", f"{where}: Column '{name}' cannot be resolved or requester is not "
                             "authorized to access requested resources", 1006) from None
        raise QueryError("NOT_SUPPORTED", f"the emulator cannot analyse this query: {e}", 1200) from None
    try:
        return annotate_types(qualified, schema=schema, dialect="athena")
    except Exception as e:  # noqa: BLE001 - sqlglot cannot type it: no type check, DuckDB still binds
        logging.getLogger(__name__).debug("no type annotation: %s", e)
        return qualified


TYPE_CLASS = [
    ("text", {"VARCHAR", "CHAR", "TEXT", "NVARCHAR", "NCHAR", "STRING"}),
    ("number", {"TINYINT", "SMALLINT", "INT", "BIGINT", "DOUBLE", "FLOAT", "DECIMAL", "BIGDECIMAL", "REAL"}),
    ("boolean", {"BOOLEAN"}),
    ("time", {"DATE", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMPLTZ", "DATETIME", "TIMESTAMP_S", "TIMESTAMP_MS"}),
]
TRINO_NAMES = {"VARCHAR": "varchar", "TEXT": "varchar", "INT": "integer", "BIGINT": "bigint", "SMALLINT": "smallint",
               "TINYINT": "tinyint", "DOUBLE": "double", "FLOAT": "real", "BOOLEAN": "boolean", "DATE": "date",
               "TIMESTAMP": "timestamp(3)", "DECIMAL": "decimal"}
OPERATORS = {exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}


def type_class(node):
    kind = node.type.this.name if node.type is not None else None
    return next((c for c, kinds in TYPE_CLASS if kind in kinds), None), kind


def trino_name(node, kind):
    if isinstance(node, exp.Literal) and node.is_string:
        return f"varchar({len(node.this)})"
    if isinstance(node, exp.Cast) and kind == "TIMESTAMP":
        return "timestamp(0)"
    return TRINO_NAMES.get(kind, (kind or "unknown").lower())


def check_types(tree, source):
    """Trino compares only values of compatible types: a string is not a number nor a timestamp."""
    for node in tree.walk():
        pairs = []
        if type(node) in OPERATORS:
            pairs = [(node.left, node.right, OPERATORS[type(node)])]
        elif isinstance(node, exp.In) and node.expressions:
            pairs = [(node.this, item, "IN") for item in node.expressions]
        for left, right, op in pairs:
            (lc, lk), (rc, rk) = type_class(left), type_class(right)
            if lc and rc and lc != rc:
                where = source.of(left)
                if op == "IN":
                    raise QueryError("TYPE_MISMATCH", f"{where}: IN value and list items must be the same type: "
                                     f"{trino_name(left, lk)}", 1006)
                raise QueryError("TYPE_MISMATCH", f"{where}: Cannot apply operator: {trino_name(left, lk)} {op} "
                                 f"{trino_name(right, rk)}", 1006)


# -- Glue types in DuckDB ------------------------------------------------------------------------------------

SCALARS = {"string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "int": "INTEGER", "integer": "INTEGER",
           "bigint": "BIGINT", "smallint": "SMALLINT", "tinyint": "TINYINT", "boolean": "BOOLEAN",
           "double": "DOUBLE", "float": "FLOAT", "timestamp": "TIMESTAMP", "date": "DATE", "binary": "BLOB"}


def duck_type(glue_type):
    """A Hive type string (`struct<a:int,b:array<string>>`) as a DuckDB type."""
    t = glue_type.strip()
    low = t.lower()
    if low.startswith("array<"):
        return duck_type(t[6:-1]) + "[]"
    if low.startswith("map<"):
        k, v = split_top(t[4:-1])
        return f"MAP({duck_type(k)}, {duck_type(v)})"
    if low.startswith("struct<"):
        fields = []
        for field in split_top(t[7:-1]):
            name, _, kind = field.partition(":")
            fields.append(f'"{name.strip()}" {duck_type(kind)}')
        return f"STRUCT({', '.join(fields)})"
    base = re.match(r"(\w+)(\(.*\))?$", low)
    if base and base.group(1) == "decimal":
        return f"DECIMAL{base.group(2) or '(10,0)'}"
    if base and base.group(1) in SCALARS:
        return SCALARS[base.group(1)]
    raise QueryError("NOT_SUPPORTED", f"the emulator cannot read Glue type {glue_type}", 1200)


def split_top(text):
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += c in "<("
        depth -= c in ">)"
        if c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


# -- S3 ------------------------------------------------------------------------------------------------------

def s3(account):
    from moto.s3.models import s3_backends

    return s3_backends[account]["aws"]


def split_s3(url):
    match = re.match(r"s3a?://([^/]+)/?(.*)$", url)
    if not match:
        raise QueryError("INVALID_ARGUMENT", f"not an S3 location: {url}", 1100)
    return match.group(1), match.group(2)


def objects(account, url):
    """(key, bytes) of the live objects under an S3 prefix, skipping Hive's hidden files and folder markers."""
    bucket_name, prefix = split_s3(url)
    try:
        bucket = s3(account).get_bucket(bucket_name)
    except Exception:  # noqa: BLE001 - moto's MissingBucket
        raise QueryError("HIVE_FILESYSTEM_ERROR", f"The specified bucket does not exist: {bucket_name}", 1306) from None
    found = []
    for name in list(bucket.keys):
        key = bucket.keys.get(name)
        value = getattr(key, "value", None)
        if not name.startswith(prefix) or value is None or name.endswith("/"):
            continue
        if any(part.startswith(("_", ".")) for part in name[len(prefix):].split("/")):
            continue
        found.append((name, value))
    return sorted(found)


def partition_values(relative_key, partitions):
    """The partition values a key's path names, matched to Glue's lowercased keys; None if a key is missing."""
    given = {}
    for part in relative_key.split("/")[:-1]:
        name, sep, value = part.partition("=")
        if sep:
            given[name.lower()] = value
    if any(p not in given for p, _ in partitions):
        return None
    return [given[p] for p, _ in partitions]


# -- loading, pruning and measuring --------------------------------------------------------------------------

def quote(text):
    return "'" + text.replace("'", "''") + "'"


def conjuncts(where):
    if where is None:
        return []
    node = where.this if isinstance(where, exp.Where) else where
    return list(node.flatten()) if isinstance(node, exp.And) else [node]


def pruning_predicates(table_node, partition_names):
    """The conjuncts of the enclosing WHERE that only read this table's partition columns."""
    alias = table_node.alias_or_name
    select = table_node.find_ancestor(exp.Select)
    keep = []
    for c in conjuncts(select.args.get("where") if select else None):
        columns = list(c.find_all(exp.Column))
        if columns and not c.find(exp.Query) and all(
            col.table == alias and col.name in partition_names for col in columns
        ):
            keep.append(c)
    return keep


def referenced(tree, alias):
    """The top-level columns of one table alias that the query reads."""
    names = set()
    for col in tree.find_all(exp.Column):
        if col.table == alias:
            names.add(col.name)
    return names


def load(conn, workdir, view, table, table_node, tree, account):
    """Creates `view` over the table's objects left after pruning; returns the bytes that reading it scans."""
    if not table.parquet:
        raise QueryError("NOT_SUPPORTED", f"the emulator reads Parquet tables only ({table.location})", 1200)
    base = table.location if table.location.endswith("/") else table.location + "/"
    _, prefix = split_s3(base)
    candidates = []
    for key, data in objects(account, base):
        values = partition_values(key[len(prefix):], table.partitions)
        if values is not None:
            candidates.append((key, data, values))
    names = [p for p, _ in table.partitions]
    predicates = pruning_predicates(table_node, set(names))
    if predicates and candidates:
        candidates = prune(conn, candidates, table, table_node.alias_or_name, predicates)
    wanted = referenced(tree, table_node.alias_or_name)
    parts, scanned = [], 0
    for i, (key, data, values) in enumerate(candidates):
        path = os.path.join(workdir, f"{view}_{i}.parquet")
        with open(path, "wb") as f:
            f.write(data)
        try:
            present = {r[0].lower(): r[0] for r in conn.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()}
            chunks = conn.execute(f"SELECT path_in_schema, total_compressed_size FROM parquet_metadata('{path}')").fetchall()
        except duckdb.Error as e:
            raise QueryError("HIVE_CANNOT_OPEN_SPLIT", f"Error opening Hive split s3://{split_s3(base)[0]}/{key}: "
                             f"{first_line(e)}", 1001) from None
        scanned += sum(size for p, size in chunks if p.split(",")[0].strip().lower() in wanted)
        select = [
            f'CAST("{present[n]}" AS {duck_type(t)}) AS "{n}"' if n in present else f'CAST(NULL AS {duck_type(t)}) AS "{n}"'
            for n, t in table.columns
        ] + [f"CAST({quote(v)} AS {duck_type(t)}) AS \"{n}\"" for (n, t), v in zip(table.partitions, values)]
        parts.append(f"SELECT {', '.join(select)} FROM read_parquet('{path}')")
    if not parts:
        empty = [f'CAST(NULL AS {duck_type(t)}) AS "{n}"' for n, t in table.columns + table.partitions]
        parts = [f"SELECT {', '.join(empty)} WHERE false"]
    conn.execute(f'CREATE TEMP VIEW "{view}" AS ' + " UNION ALL ".join(parts))
    return scanned


def prune(conn, candidates, table, alias, predicates):
    """Keeps the objects whose partition values satisfy the predicates, evaluated by DuckDB on the values alone."""
    names = [p for p, _ in table.partitions]
    rows = ", ".join(
        "(" + ", ".join([str(i)] + [f"CAST({quote(v)} AS {duck_type(t)})" for v, (_, t) in zip(values, table.partitions)]) + ")"
        for i, (_, _, values) in enumerate(candidates)
    )
    where = " AND ".join(p.sql("duckdb") for p in predicates)
    columns = ", ".join(['"__i"'] + [f'"{n}"' for n in names])
    try:
        keep = {r[0] for r in conn.execute(f'SELECT "__i" FROM (VALUES {rows}) AS "{alias}"({columns}) WHERE {where}').fetchall()}
    except duckdb.Error:
        return candidates  # the full query reports the problem
    return [c for i, c in enumerate(candidates) if i in keep]


# -- errors from DuckDB --------------------------------------------------------------------------------------

def first_line(error):
    return str(error).strip().splitlines()[0]


def engine_error(error, tree, source, scanned):
    text = str(error)
    key = re.search(r'Could not find key "(.+?)" in struct', text)
    if key:
        node = next((d for d in tree.find_all(exp.Dot, exp.Column) if d.name.lower() == key.group(1).lower()), None)
        name = node.sql("athena") if node else key.group(1)
        where = source.of(node) if node else "line 1:1"
        return QueryError("COLUMN_NOT_FOUND", f"{where}: Column '{name}' cannot be resolved or requester is not "
                          "authorized to access requested resources", 1006, scanned=scanned)
    function = re.search(r"Function with name (\w+) does not exist", text)
    if function:
        call = re.search(rf"\b{re.escape(function.group(1))}\s*\(", source.text, re.I)
        where = source.at(call.start()) if call else "line 1:1"
        return QueryError("FUNCTION_NOT_FOUND", f"{where}: Function '{function.group(1)}' not registered", 1303, scanned=scanned)
    call = re.search(r"No function matches the given name and argument types '(.+?)'", text)
    if call:
        return QueryError("TYPE_MISMATCH", f"line 1:1: Unexpected parameters for function call {call.group(1)}", 1006,
                          scanned=scanned)
    if isinstance(error, (duckdb.ConversionException, duckdb.InvalidInputException)):
        return QueryError("INVALID_CAST_ARGUMENT", first_line(error), 1001, scanned=scanned)
    if isinstance(error, duckdb.BinderException):
        return QueryError("NOT_SUPPORTED", f"the emulator's engine rejected the translated query: {first_line(error)}",
                          1200, scanned=scanned)
    return QueryError("GENERIC_INTERNAL_ERROR", first_line(error), 200, category=1, scanned=scanned)


# -- values as Athena renders them ---------------------------------------------------------------------------

def render(value):
    """A value as Athena's result set and CSV show it (Trino's text form); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return text + " UTC" if value.tzinfo is not None else text
    if isinstance(value, (datetime.date, decimal.Decimal, int)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join("null" if v is None else render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={'null' if v is None else render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def trino_type(duck):
    """A DuckDB result type as Athena's ColumnInfo.Type names it."""
    name = str(duck).upper()
    if name.endswith("[]"):
        return f"array({trino_type(name[:-2])})"
    if name.startswith("STRUCT"):
        return "row"
    if name.startswith("MAP"):
        return "map"
    if name.startswith("DECIMAL"):
        return "decimal"
    return {"VARCHAR": "varchar", "BIGINT": "bigint", "HUGEINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint",
            "TINYINT": "tinyint", "DOUBLE": "double", "FLOAT": "real", "BOOLEAN": "boolean", "DATE": "date",
            "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp with time zone", "BLOB": "varbinary",
            "UBIGINT": "bigint", "UINTEGER": "bigint"}.get(name, name.lower())


# -- UNLOAD output -------------------------------------------------------------------------------------------

def unload(conn, final_sql, target, props, account, engine_id):
    """Writes the result under the TO prefix as Athena's UNLOAD does; returns the written S3 URLs."""
    fmt = (props.get("format") or "").upper()
    if not fmt:
        raise QueryError("INVALID_TABLE_PROPERTY", "UNLOAD requires the format property", 1103)
    if fmt not in ("ORC", "PARQUET", "AVRO", "JSON", "TEXTFILE"):
        raise QueryError("INVALID_TABLE_PROPERTY", f"Unsupported format: {fmt}", 1103)
    if fmt not in ("TEXTFILE", "PARQUET"):
        raise QueryError("NOT_SUPPORTED", f"the emulator writes UNLOAD as TEXTFILE or PARQUET only, not {fmt}", 1200)
    if "partitioned_by" in props:
        raise QueryError("NOT_SUPPORTED", "the emulator does not write partitioned_by UNLOAD output", 1200)
    compression = (props.get("compression") or "GZIP").upper()
    bucket, prefix = split_s3(target if target.endswith("/") else target + "/")
    if objects(account, f"s3://{bucket}/{prefix}"):
        raise QueryError("HIVE_PATH_ALREADY_EXISTS", f"Target directory for table 'unload_{engine_id}' already exists: "
                         f"{target}. You may need to manually clean the data at location '{target}' before retrying. "
                         "Athena will not delete data in your account.", 1000)
    name = f"{prefix}{engine_id}_{uuid.uuid4()}"
    if fmt == "PARQUET":
        codecs = {"GZIP": "gzip", "SNAPPY": "snappy", "ZSTD": "zstd", "NONE": "uncompressed"}
        if compression not in codecs:
            raise QueryError("NOT_SUPPORTED", f"the emulator does not write Parquet with {compression}", 1200)
        with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
            conn.execute(f"COPY ({final_sql}) TO '{f.name}' (FORMAT PARQUET, COMPRESSION {codecs[compression]})")
            data = open(f.name, "rb").read()
            rows = conn.execute(f"SELECT count(*) FROM read_parquet('{f.name}')").fetchone()[0]
        if not rows:
            return []
    else:
        delimiter = props.get("field_delimiter", "\x01")
        if len(delimiter) != 1:
            raise QueryError("INVALID_TABLE_PROPERTY", f"field_delimiter must be a single character: '{delimiter}'", 1103)
        if compression not in ("GZIP", "NONE"):
            raise QueryError("NOT_SUPPORTED", f"the emulator does not write TEXTFILE with {compression}", 1200)
        rows = conn.execute(final_sql).fetchall()
        if not rows:
            return []
        text = "".join(delimiter.join("\\N" if v is None else render(v) for v in row) + "\n" for row in rows).encode()
        data = gzip.compress(text) if compression == "GZIP" else text
        name += ".gz" if compression == "GZIP" else ""
    s3(account).put_object(bucket, name, data)
    return [f"s3://{bucket}/{name}"]


# -- the whole query -----------------------------------------------------------------------------------------

def run(sql, account, region, database, engine_id, cutoff=None):
    """Runs one query; returns a Result or raises QueryError."""
    split = split_unload(sql)
    if split:
        inner, offset, target, props = split
        source = Source(sql, offset, inner)
    else:
        source = Source(sql)
    tree = parse(source)
    tables = resolve(tree, source, account, region, database)
    analysed = analyse(tree, source, tables)
    check_types(analysed, source)
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")  # Athena's session time zone
    scanned = 0
    with tempfile.TemporaryDirectory() as workdir:
        for i, node in enumerate(list(analysed.find_all(exp.Table))):
            key = (node.db.lower(), node.name.lower())
            if key not in tables:
                continue
            view = f"__table_{i}"
            scanned += load(conn, workdir, view, tables[key], node, analysed, account)
            alias = node.alias_or_name
            node.replace(exp.Table(this=exp.to_identifier(view, quoted=True),
                                   alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True))))
        if cutoff is not None and scanned > cutoff:
            raise QueryError("EXCEEDED_SCANNED_LIMIT", "Bytes scanned limit was exceeded", 1008, scanned=scanned)
        final_sql = analysed.sql("duckdb")
        try:
            if split:
                written = unload(conn, final_sql, target, props, account, engine_id)
                return Result("UNLOAD", scanned=scanned, written=written)
            cursor = conn.execute(final_sql)
            # Trino names an unnamed column _col0, _col1, ...
            columns = [(re.sub(r"^_col_(\d+)$", r"_col\1", d[0]), trino_type(d[1])) for d in cursor.description]
            rows = [tuple(render(v) for v in row) for row in cursor.fetchall()]
            return Result("SELECT", columns, rows, scanned)
        except duckdb.Error as e:
            raise engine_error(e, tree, source, scanned) from None
        finally:
            conn.close()
