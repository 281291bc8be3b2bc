"""The pair-at-a-time JSON reading of safetensors headers and indexes (hub.json_object_items)
gives what json.loads gives, and refuses what it refuses; a tensor named twice in a header is
refused rather than counted twice."""

from __future__ import annotations

import json
import struct

import pytest

from checkpoints import config, sharded, tensors_of
from standin import safetensors_blob
from vramtop.fit import hub
from vramtop.fit.specs import SpecError


def test_a_published_header_and_index_read_as_json_loads_reads_them():
    tensors = tensors_of(config("openai/gpt-oss-20b"))
    header = safetensors_blob(tensors).prefix[8:].decode()
    assert dict(hub.json_object_items(header)) == json.loads(header)
    index = sharded(tensors, 3, first=0)["model.safetensors.index.json"].prefix.decode()
    assert dict(hub.json_object_items(index, frozenset({"weight_map"}))) == json.loads(index)


@pytest.mark.parametrize("text", [
    "", " ", "[]", '"a"', "{", "}", '{"a":1,}', '{"a" 1}', '{"a":1 "b":2}', '{"a":1}x', '{"a":1}{}',
    '{a:1}', '{"a":}', '{"a":1', '{"w":{"x":1,}}', '{"w":{"x":1}', '{"w":{"x" 1}}',
    '{"a":1} ', ' {} ', '{"w":{}}', '{"w":{"x":"f"},"m":{"t":[1,2]}}', '{"a":"\\u00e9\\n"}',
])
def test_it_refuses_exactly_what_json_loads_refuses(text):
    try:
        expected = json.loads(text)
    except ValueError:
        expected = None
    if not isinstance(expected, dict):
        with pytest.raises(ValueError):
            dict(hub.json_object_items(text, frozenset({"w"})))
    else:
        assert dict(hub.json_object_items(text, frozenset({"w"}))) == expected


def test_a_tensor_named_twice_is_refused():
    body = b'{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},' \
           b'"w":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}}'
    data = struct.pack("<Q", len(body)) + body + bytes(8)
    with pytest.raises(SpecError, match=r"^x.safetensors: malformed safetensors header \(tensor 'w' twice\)$"):
        hub.remote_safetensors_tensors(lambda lo, hi: data[lo:hi + 1], "x.safetensors", len(data),
                                       hub._Budget(hub.MAX_HEADERS))


def test_the_headers_of_one_repository_share_one_budget():
    # Two headers at safetensors' 100 MB limit (one tensor, padded with spaces as safetensors pads)
    # take 200 MB of the 256 MiB a resolution may read; the third is refused before its body is read.
    body = b'{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}'
    length = hub.MAX_HEADER
    reads: list[tuple[int, int]] = []

    def read(lo: int, hi: int) -> bytes:
        reads.append((lo, hi))
        data = struct.pack("<Q", length) + body
        return (data[lo:hi + 1] + b" " * (hi + 1 - lo))[:hi + 1 - lo]

    budget = hub._Budget(hub.MAX_HEADERS)
    for name in ("a.safetensors", "b.safetensors"):
        assert hub.remote_safetensors_tensors(read, name, 8 + length + 4, budget) == [("w", "BF16", (2,))]
    reads.clear()
    with pytest.raises(SpecError, match=r"^c.safetensors: the safetensors headers of this repository pass "
                                        r"256 MiB together; not read$"):
        hub.remote_safetensors_tensors(read, "c.safetensors", 8 + length + 4, budget)
    assert reads == [(0, hub.FIRST_READ - 1)]  # the first read only
