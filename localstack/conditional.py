"""S3 writes to one key that take effect one at a time, as S3's do, so that conditional writes are atomic.

moto 5.2.5 honours the conditional headers S3 documents: PutObject with `If-None-Match: *` or `If-Match: <etag>`,
and DeleteObject with `If-Match`, answering 412 `PreconditionFailed` when the condition does not hold and 404
`NoSuchKey` for `If-Match` on a missing key (S3 User Guide, "How to prevent object overwrites with conditional
writes" and "How to perform conditional deletes"). But it checks the condition and stores the object in two steps
without a lock between them, so two concurrent `If-None-Match: *` puts of one key can both succeed: the self-check
checks/test_conditional.py saw it about once in a hundred rounds of sixteen threads. S3 evaluates the condition and the write as one step: of
overlapping conditional writes to a key one succeeds, and the others get 412 `PreconditionFailed` or 409
`ConditionalRequestConflict` (the `IfNoneMatch` and `IfMatch` members of PutObject in the S3 API reference).

The emulator therefore runs the object writes (PUT and DELETE) to one bucket and key one at a time, conditional or
not, so that no write lands between another's check and its store. Each conditional write then gets the answer S3
gives when the writes do not overlap: the 409 never happens here. Only path-style addressing is read, as the
emulator's clients use; DeleteObjects (`POST ?delete`) is not serialised.
"""

import threading
from urllib.parse import unquote


class ObjectWrites:
    def __init__(self):
        self.lock = threading.Lock()
        self.keys = {}  # (bucket, key) -> lock

    def lock_for(self, request, service):
        """The lock that serialises this request's write, or None when it writes no single object."""
        if service != "s3" or request.method not in ("PUT", "DELETE"):
            return None
        bucket, _, key = request.path.lstrip("/").partition("/")
        if not key or request.args:  # a bucket call, or a subresource (?tagging, ?acl, ?uploadId=...)
            return None
        with self.lock:
            return self.keys.setdefault((bucket, unquote(key)), threading.Lock())

    def reset(self):
        with self.lock:
            self.keys.clear()
