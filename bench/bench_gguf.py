"""Reading a local GGUF file's spec: the header walk that skips the tokenizer's tables
(``specs.from_gguf``, as the Ollama store and local files are read) against the ``gguf``
package's reader on the whole file (``specs.from_gguf_reader``, how they were read before) as the
baseline, in the same run.

The file is written here with a Qwen-sized tokenizer (151,936 tokens and 151,387 merges, as in
Qwen2.5's GGUF files) and small tensors: the reader's cost is its parse of the string tables,
not the weights. Times are process CPU time, the median of ``--repeat`` rounds.

    python bench/bench_gguf.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from cpu import median_ms
from vramtop.fit.specs import from_gguf, from_gguf_reader

VOCAB, MERGES = 151_936, 151_387


def write(path: Path) -> None:
    w = GGUFWriter(str(path), "qwen2")
    w.add_name("Qwen-sized tokenizer")
    w.add_block_count(28)
    w.add_embedding_length(3584)
    w.add_head_count(28)
    w.add_head_count_kv(4)
    w.add_context_length(32768)
    w.add_feed_forward_length(18944)
    w.add_file_type(1)
    w.add_token_list([f"token{i}" for i in range(VOCAB)])
    w.add_token_types([1] * VOCAB)
    w.add_token_merges([f"a{i} b{i}" for i in range(MERGES)])
    w.add_tensor("output_norm.weight", np.zeros(3584, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "qwen-sized.gguf"
        write(path)
        assert from_gguf(path) == from_gguf_reader(path)
        base, _ = median_ms(lambda: from_gguf_reader(path), args.repeat)
        fast, _ = median_ms(lambda: from_gguf(path), args.repeat)
    print(f"baseline: gguf reader on the whole file   {base:9.1f} ms (median of {args.repeat})")
    print(f"header walk, tables skipped (from_gguf)   {fast:9.1f} ms  {base / fast:6.0f}x faster")


if __name__ == "__main__":
    main()
