"""Does an OTLP trace request hold array or kvlist attribute values? One RE2 scan usually answers.

The native path (collector.native) stores scalar values only, so such requests take the Python
path. Walking every attribute in Python to find out costs a quarter of the receiver's time.
Instead, one RE2 scan of the serialized bytes looks for the shape every nested value has on the
wire: a KeyValue's value field (tag 0x12, a length) holding an AnyValue whose first field is
array_value (0x2a) or kvlist_value (0x32), whose own first field (0x0a) follows its length, or
an empty one (length 0). No match means no nested value; a match (which random id bytes can
produce now and then) is confirmed by walking the message.

Edge: an AnyValue encoded with two members, a scalar before the array (protobuf's last-wins), is
not seen here and its scalar is stored; conforming exporters never send one.
"""

from __future__ import annotations

from typing import Any

import re2

_VARINT = rb"[\x80-\xff]{0,4}[\x00-\x7f]"
_OPTIONS = re2.Options()
_OPTIONS.encoding = re2.Options.Encoding.LATIN1  # byte classes, not UTF-8 code points
_SHAPE = re2.compile(rb"\x12" + _VARINT + rb"[\x2a\x32](?:\x00|" + _VARINT + rb"\x0a)", options=_OPTIONS)
_NESTED = ("array_value", "kvlist_value")


def _any_nested(attributes: Any) -> bool:
    return any(kv.value.WhichOneof("value") in _NESTED for kv in attributes)


def walk_for_nested(message: Any) -> bool:
    """The exact answer, by walking every attribute list of the request."""
    for resource_spans in message.resource_spans:
        if _any_nested(resource_spans.resource.attributes):
            return True
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if (
                    _any_nested(span.attributes)
                    or any(_any_nested(e.attributes) for e in span.events)
                    or any(_any_nested(link.attributes) for link in span.links)
                ):
                    return True
    return False


def has_nested_values(message: Any, payload: bytes | None = None) -> bool:
    """True when an ExportTraceServiceRequest has an array or kvlist attribute value anywhere."""
    data = payload if payload is not None else message.SerializeToString()
    if _SHAPE.search(data) is None:
        return False
    return walk_for_nested(message)
