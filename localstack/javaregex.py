"""Java regular expressions, as AWS service models write them, for Python's re.

The `pattern` of a botocore shape is the Java regex the service checks its input with. Python's re reads
most of them the same way; these are the differences met in the models, and what is done about each:

  * `\\p{L}`, `\\p{N}`, `\\p{Z}`, `\\p{P}`, `\\p{S}`, `\\p{M}`, `\\p{C}` and the two-letter categories
    (`\\p{Lu}` ...): Unicode general categories, which re lacks. They become explicit code point ranges
    built from unicodedata (Python's Unicode version may differ slightly from the service's Java).
  * POSIX classes `\\p{Alpha}`, `\\p{Alnum}`, `\\p{ASCII}`, `\\p{Print}`, `\\p{Punct}` ...: in Java these
    are US-ASCII only; they become their ASCII ranges. `\\P{...}` outside a class becomes `[^...]`.
  * `\\uD800\\uDC00-\\uDBFF\\uDFFF`: Java strings are UTF-16, so a surrogate pair names one supplementary
    code point; the pair becomes that code point (`\\U00010000-\\U0010FFFF`).
  * `\\x{h...h}` becomes `\\Uhhhhhhhh`; `\\Q...\\E` is quoted; `\\z` becomes `\\Z`, and Java's `\\Z` (end
    before a final line terminator) becomes `(?=[\\n\\r\\u0085\\u2028\\u2029]?\\Z)`.
  * `.` outside a class excludes every Java line terminator (`\\n \\r \\u0085 \\u2028 \\u2029`), not only `\\n`.
  * `\\w`, `\\d`, `\\s`, `\\b` are ASCII in Java by default: patterns compile with re.ASCII.
  * a quantifier on `$` (`${1,128}`, meaningless in Java too) is dropped.

Not translated, and so logged once and left unchecked: nested classes and class intersection (`[a[b]]`,
`&&`), `\\P{...}` inside a class, `\\G`, `\\R`, `\\X`, `\\h`, `\\v`, named classes other than those above.
None of these occurs in the models of the services the emulator serves (checks/test_strict.py compiles
every pattern of them).

Matching uses fullmatch: AWS's validation (Coral) checks with Java's Matcher.matches(), so an unanchored
pattern such as IAM's `[\\w+=,.@-]+` must match the whole value.
"""

import logging
import re
import sys
import threading
import unicodedata

log = logging.getLogger("lakesight.strict")

POSIX = {
    "Lower": "a-z", "Upper": "A-Z", "ASCII": "\\x00-\\x7F", "Alpha": "a-zA-Z", "Digit": "0-9",
    "Alnum": "a-zA-Z0-9", "Punct": "!-/:-@\\[-`{-~", "Graph": "!-~", "Print": " -~", "Blank": " \\t",
    "Cntrl": "\\x00-\\x1F\\x7F", "XDigit": "0-9a-fA-F", "Space": " \\t\\n\\x0B\\f\\r",
}
LINE_TERMINATORS = "\\n\\r\\u0085\\u2028\\u2029"
SURROGATE_PAIR = re.compile(r"\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})", re.I)


class Untranslatable(ValueError):
    pass


class Categories:
    """Unicode general categories as character-class ranges, computed once on first use."""

    _lock = threading.Lock()
    _ranges = None

    @classmethod
    def ranges(cls, name):
        with cls._lock:
            if cls._ranges is None:
                cls._ranges = cls._build()
        if name not in cls._ranges:
            raise Untranslatable(f"unknown Unicode category {name}")
        return cls._ranges[name]

    @staticmethod
    def _build():
        spans = {}
        for code in range(sys.maxunicode + 1):
            category = unicodedata.category(chr(code))
            for key in (category, category[0]):
                runs = spans.setdefault(key, [])
                if runs and runs[-1][1] == code - 1:
                    runs[-1][1] = code
                else:
                    runs.append([code, code])
        return {k: "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in v) for k, v in spans.items()}


def property_class(name):
    """The class body (without brackets) of \\p{name}."""
    name = name[2:] if name.startswith("Is") and name[2:] in POSIX else name
    if name in POSIX:
        return POSIX[name]
    if re.fullmatch(r"[A-Z][a-z]?", name):
        return Categories.ranges(name)
    raise Untranslatable(f"\\p{{{name}}}")


def translate(pattern):
    """The Python equivalent of a Java pattern, or Untranslatable."""
    pattern = SURROGATE_PAIR.sub(
        lambda m: "\\U%08x" % (0x10000 + ((int(m.group(1), 16) - 0xD800) << 10) + (int(m.group(2), 16) - 0xDC00)),
        pattern,
    )
    out, i, in_class, n = [], 0, False, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            if e in "pP":
                end = pattern.find("}", i)
                if i + 2 >= n or pattern[i + 2] != "{" or end < 0:
                    raise Untranslatable("\\p without {name}")
                body = property_class(pattern[i + 3:end])
                if in_class:
                    if e == "P":
                        raise Untranslatable("\\P inside a character class")
                    out.append(body)
                else:
                    out.append(("[^" if e == "P" else "[") + body + "]")
                i = end + 1
                continue
            if e == "x" and i + 2 < n and pattern[i + 2] == "{":
                end = pattern.index("}", i)
                out.append("\\U%08x" % int(pattern[i + 3:end], 16))
                i = end + 1
                continue
            if e == "Q":
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end
                out.append(re.escape(pattern[i + 2:end]))
                i = end + 2
                continue
            if e == "z":
                out.append("\\Z")
            elif e == "Z":
                out.append(f"(?=[{LINE_TERMINATORS}]?\\Z)")
            elif e in "GRXhvVHk":
                raise Untranslatable(f"\\{e}")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "[" or pattern.startswith("&&", i):
                raise Untranslatable("nested class or class intersection")
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            # A ']' right after '[' or '[^' is a literal in both dialects.
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("\\]")
                i += 1
            continue
        if c == "$" and pattern.startswith("{", i + 1):
            end = pattern.find("}", i)
            if end > 0 and re.fullmatch(r"\{\d+(,\d*)?\}", pattern[i + 1:end + 1]):
                out.append("$")
                i = end + 1
                continue
        out.append(f"[^{LINE_TERMINATORS}]" if c == "." else c)
        i += 1
    return "".join(out)


class Patterns:
    """Compiled model patterns; an untranslatable one is logged once and then skipped."""

    def __init__(self):
        self.lock = threading.Lock()
        self.compiled = {}
        self.skipped = {}

    def get(self, pattern):
        """The compiled pattern, or None when it cannot be translated."""
        with self.lock:
            if pattern in self.compiled:
                return self.compiled[pattern]
        try:
            compiled = re.compile(translate(pattern), re.ASCII)
        except (Untranslatable, re.error, ValueError) as e:
            compiled = None
            with self.lock:
                if pattern not in self.skipped:
                    self.skipped[pattern] = str(e)
                    log.warning("strict: pattern %r is not checked: %s", pattern, e)
        with self.lock:
            self.compiled[pattern] = compiled
        return compiled
