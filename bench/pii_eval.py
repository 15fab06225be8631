"""Recall and precision of the built-in PII detectors on public data (``bench/pii_data/``).

Run: ``python bench/pii_eval.py [--split held-out|tuning|all] [--json] [--misses]``.

- **recall per kind**: a labelled span is found when a finding of the same entity
  overlaps it;
- **precision**: findings that overlap a labelled span of their entity, over all
  findings (a finding on a span the data labels as something the gateway does
  not claim, e.g. a street address, counts neither way);
- **clean prompts flagged**: the share of benchmark prompts with no personal data
  (``clean.jsonl``) in which any personal-data detector finds something
  (secrets are another evaluation's business).

``--misses`` prints the missed and spurious spans of the *tuning* split only
(kinds, offsets and the case's source; the held-out split is never shown).
Where the data comes from, its licences and the split: ``bench/pii_data/README.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.judging.sensitivity import SECRET_ENTITIES, Scanner

DATA = Path(__file__).resolve().parent / "pii_data"


def _rows(name: str, split: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (DATA / name).read_text().split("\n") if line]
    return [r for r in rows if split == "all" or r["split"] == split]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def evaluate(split: str, misses: bool = False) -> dict[str, Any]:
    scanner = Scanner()
    pii = frozenset(scanner.entities - SECRET_ENTITIES - {"unjudged"})
    labelled: Counter[str] = Counter()
    found: Counter[str] = Counter()
    true_pos = false_pos = 0
    spurious: Counter[str] = Counter()
    for case in _rows("cases.jsonl", split):
        text = case["text"]
        findings = scanner.find(text, pii)
        gold = [(e["type"], (e["start"], e["end"])) for e in case["entities"]]
        ignore = [tuple(span) for span in case.get("ignore", ())]
        for kind, span in gold:
            labelled[kind] += 1
            if any(f.entity == kind and _overlaps((f.start, f.end), span) for f in findings):
                found[kind] += 1
            elif misses and case["split"] == "tuning":
                print(f"MISS {kind} {span} {case['source']}: {text!r}")
        for f in findings:
            span = (f.start, f.end)
            if any(kind == f.entity and _overlaps(span, g) for kind, g in gold):
                true_pos += 1
            elif not any(_overlaps(span, g) for g in ignore) and not any(
                _overlaps(span, g) for _, g in gold
            ):
                false_pos += 1
                spurious[f.entity] += 1
                if misses and case["split"] == "tuning":
                    print(f"SPURIOUS {f.entity} {span} {case['source']}: {text!r}")
    clean = _rows("clean.jsonl", split)
    flagged: Counter[str] = Counter()
    flagged_prompts = 0
    for row in clean:
        kinds = {f.entity for f in scanner.find(row["text"], pii)}
        if kinds:
            flagged_prompts += 1
            flagged.update(kinds)
            if misses and row["split"] == "tuning":
                print(f"FLAGGED {sorted(kinds)} {row['source']}")
    total = sum(labelled.values())
    return {
        "split": split,
        "recall": {k: round(found[k] / n, 4) for k, n in sorted(labelled.items())},
        "labelled": dict(sorted(labelled.items())),
        "recall_overall": round(sum(found.values()) / total, 4) if total else None,
        "precision": round(true_pos / (true_pos + false_pos), 4) if true_pos + false_pos else None,
        "spurious": dict(spurious),
        "clean_prompts": len(clean),
        "clean_flagged_rate": round(flagged_prompts / len(clean), 4) if clean else None,
        "clean_flagged_by_entity": dict(flagged),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("held-out", "tuning", "all"), default="held-out")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--misses", action="store_true", help="tuning split only")
    args = parser.parse_args(argv)
    result = evaluate(args.split, args.misses)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"split: {result['split']}")
    print(f"{'entity':<20} {'labelled':>8} {'recall':>8}")
    for kind, n in result["labelled"].items():
        print(f"{kind:<20} {n:>8} {result['recall'][kind]:>8.1%}")
    print(f"{'overall':<20} {sum(result['labelled'].values()):>8} {result['recall_overall']:>8.1%}")
    print(f"precision: {result['precision']:.1%}  spurious: {result['spurious']}")
    print(
        f"clean prompts flagged: {result['clean_flagged_rate']:.2%} of {result['clean_prompts']}"
        f"  {result['clean_flagged_by_entity']}"
    )


if __name__ == "__main__":
    main()
