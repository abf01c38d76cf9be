"""Read an offline W&B run file (``offline-run-*/run-*.wandb``) back, for tests.

The file is W&B's record log: a 7-byte header (``:W&B``, a 2-byte magic, a version byte), then LevelDB's log
format: 32 KiB blocks of chunks, each a 7-byte header (CRC, little-endian 2-byte length, type 1 = full, 2 = first,
3 = middle, 4 = last) and its bytes; a block's tail shorter than a header is zero padding. Each reassembled
payload is one ``wandb_internal_pb2.Record`` protobuf.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
FILE_HEADER = 7
CHUNK_HEADER = 7


def records(path: Path) -> list[Any]:
    """Every record of a ``.wandb`` file, in order (protobuf ``Record`` messages)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pending, pos = [], b"", FILE_HEADER
    while pos + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < CHUNK_HEADER:
            pos += left_in_block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        chunk = data[pos + CHUNK_HEADER:pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind == 0:  # zero padding at the end of the file
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def summary(path: Path) -> dict[str, Any]:
    """The run's name, group, job type, tags, config (``{key: value}`` as W&B stores it: JSON per top-level key)
    and history (a list of ``{key: value}`` rows) from a ``.wandb`` file."""
    run: dict[str, Any] = {"config": {}, "history": []}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(name=record.run.display_name, group=record.run.run_group, job_type=record.run.job_type,
                       tags=list(record.run.tags))
            for item in record.run.config.update:
                run["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                run["config"][item.key] = json.loads(item.value_json)
        elif kind == "history":
            run["history"].append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                   for item in record.history.item})
    return run
