"""Build data/confidence/gold.jsonl: requests with gold answers, from the router's training pool.

Only sources whose records carry their data set's gold label (`meta.label`) qualify: banking77
and clinc150 (intent classification), poem_sentiment (tone of a verse). Each line is the format
`slmkit confidence eval` reads: {"prompt", "context", "references", ...}; an answer is right when
it contains one of the references (case-insensitive, "_" and space equivalent). The
poem_sentiment "tone" template names the neutral class "no impact", so both names are references.

Usage: python data/confidence/build_gold.py [--pool data/routing/train.jsonl.gz] [--out data/confidence/gold.jsonl]
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("banking77", "clinc150", "poem_sentiment")
# The words a template uses for a gold label, where they differ from the label (poem_sentiment_tone's list).
SYNONYMS = {("poem_sentiment_tone", "neutral"): ["no impact", "neutral"]}


def references(record: dict) -> list[str]:
    """The answers that count as right for a record: its gold label, or the template's words for it."""
    label = record["meta"]["label"]
    return SYNONYMS.get((record.get("template", ""), label), [label])


def build(pool: Path) -> list[dict]:
    """The gold lines of the pool (JSONL, .gz allowed): records of SOURCES that carry `meta.label`."""
    with gzip.open(pool, "rt", encoding="utf-8") if pool.suffix == ".gz" else open(pool, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    gold = []
    for record in records:
        if record["source"] in SOURCES and (record.get("meta") or {}).get("label"):
            gold.append({"id": record["id"], "source": record["source"], "license": record["license"],
                         "template": record.get("template", ""), "task_category": record["task_category"],
                         "prompt": record["prompt"], "context": record.get("context", ""),
                         "references": references(record)})
    return gold


def main() -> None:
    """Writes the gold file and prints how many lines each source gave."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=HERE.parent / "routing" / "train.jsonl.gz")
    parser.add_argument("--out", type=Path, default=HERE / "gold.jsonl")
    args = parser.parse_args()
    gold = build(args.pool)
    with open(args.out, "w", encoding="utf-8") as handle:
        for line in gold:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    counts = {s: sum(g["source"] == s for g in gold) for s in SOURCES}
    print(f"{len(gold)} requests with gold answers -> {args.out} ({', '.join(f'{s} {n}' for s, n in counts.items())})")


if __name__ == "__main__":
    main()
