"""Build the public PII evaluation set in ``bench/pii_data/`` from mirrored public repositories.

Run: ``python bench/pii_extract.py PRESIDIO_GIT RESEARCH_GIT GSM8K_GIT HUMANEVAL_GIT``
(the git directories of microsoft/presidio, microsoft/presidio-research,
openai/grade-school-math and openai/human-eval). Reads each file with ``git show``
at the commit named in ``bench/pii_data/README.md`` and writes:

- ``cases.jsonl``: labelled texts, ``{"text", "entities": [{"type","start","end"}],
  "source", "split"}``. From Presidio's recogniser tests: the string of each
  parametrised case and its expected spans (a case expecting no finding is a
  negative). From presidio-research's synthetic sentences: the spans of the
  entity types the gateway claims.
- ``clean.jsonl``: benchmark prompts that hold no personal data (GSM8K questions,
  HumanEval's prompts), ``{"text", "source", "split"}``.

Split: ``held-out`` when the first byte of sha256(text) is below 128, else ``tuning``;
detectors were tuned on ``tuning`` only. Only literal test strings are read (by
``ast``), never the recognisers' code or patterns.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "pii_data"

#: Presidio recogniser test file -> the gateway's entity
PRESIDIO_TESTS = {
    "test_credit_card_recognizer.py": "payment_card",
    "test_email_recognizer.py": "email",
    "test_iban_recognizer.py": "iban",
    "test_ip_recognizer.py": "ip_address",
    "test_phone_recognizer.py": "phone",
    "test_us_ssn_recognizer.py": "us_ssn",
    "test_ca_sin_recognizer.py": "ca_sin",
    "test_es_nie_recognizer.py": "es_dni",
    "test_es_nif_recognizer.py": "es_dni",
    "test_in_aadhaar_recognizer.py": "in_aadhaar",
    "test_uk_nino_recognizer.py": "uk_nino",
    "test_it_fiscal_code_recognizer.py": "it_codice_fiscale",
    "test_pl_pesel_recognizer.py": "pl_pesel",
    "test_fi_personal_identity_code_recognizer.py": "fi_hetu",
    "test_kr_rrn_recognizer.py": "kr_rrn",
    "test_au_tfn_recognizer.py": "au_tfn",
    "test_de_tax_id_recognizer.py": "de_steuer_id",
    "test_za_id_number_recognizer.py": "za_id",
    "test_tr_national_id_recognizer.py": "tr_tc_kimlik",
    "test_sg_fin_recognizer.py": "sg_nric",
}
#: presidio-research synthetic span type -> the gateway's entity
SYNTH_TYPES = {
    "CREDIT_CARD": "payment_card",
    "PHONE_NUMBER": "phone",
    "EMAIL_ADDRESS": "email",
    "IBAN_CODE": "iban",
    "US_SSN": "us_ssn",
    "IP_ADDRESS": "ip_address",
}


#: the parameter naming a case's expected spans, by test file
_POSITIONS = ("expected_positions", "expected_res", "expected_position")
#: a span Presidio itself scores below this is a weak guess it does not claim: not counted
_CLAIMED_SCORE = 0.5


def git_show(repo: str, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", repo, "show", f"HEAD:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def split_of(text: str) -> str:
    return "held-out" if hashlib.sha256(text.encode()).digest()[0] < 128 else "tuning"


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None


def presidio_cases(source: str, entity: str, name: str) -> list[dict[str, Any]]:
    """The ``(text, expected_len, expected_positions, ...)`` cases of one test file."""
    cases = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "parametrize"):
            continue
        if len(node.args) < 2 or not isinstance(node.args[1], ast.List | ast.Tuple):
            continue
        argnames = _literal(node.args[0])
        if not isinstance(argnames, str):
            continue
        names = [a.strip() for a in argnames.split(",")]
        where = [n for n in _POSITIONS if n in names]
        if names[0] not in ("text", "iban") or "expected_len" not in names or not where:
            continue
        i_len, i_pos = names.index("expected_len"), names.index(where[0])
        i_score = names.index("expected_score_ranges") if "expected_score_ranges" in names else -1
        for element in node.args[1].elts:
            row = _literal(element)
            if not isinstance(row, tuple) or len(row) != len(names) or not isinstance(row[0], str):
                continue
            text, count, positions = row[0], row[i_len], row[i_pos]
            if (
                isinstance(positions, tuple | list)
                and len(positions) == 2
                and all(isinstance(p, int) for p in positions)
            ):
                positions = (positions,) if count else ()
            if not isinstance(positions, tuple | list) or not all(
                isinstance(p, tuple | list) and len(p) == 2 for p in positions
            ):
                continue
            if not isinstance(count, int) or count != len(positions):
                continue
            scores = row[i_score] if i_score >= 0 else ()
            spans, ignore = [], []
            for k, (s, e) in enumerate(positions):
                weak = k < len(scores) and max(scores[k]) < _CLAIMED_SCORE
                (ignore if weak else spans).append([s, e])
            case: dict[str, Any] = {
                "text": text,
                "entities": [{"type": entity, "start": s, "end": e} for s, e in spans],
                "source": f"presidio:{name}",
            }
            if ignore:
                case["ignore"] = ignore
            cases.append(case)
    return cases


def synthetic_cases(data: str) -> list[dict[str, Any]]:
    cases = []
    for row in json.loads(data):
        spans = [s for s in row["spans"] if s["entity_type"] in SYNTH_TYPES]
        if not spans:
            continue
        cases.append(
            {
                "text": row["full_text"],
                "entities": [
                    {
                        "type": SYNTH_TYPES[s["entity_type"]],
                        "start": s["start_position"],
                        "end": s["end_position"],
                    }
                    for s in spans
                ],
                # the other spans (names, addresses...) are not claimed: not counted either way
                "ignore": [
                    [s["start_position"], s["end_position"]]
                    for s in row["spans"]
                    if s["entity_type"] not in SYNTH_TYPES
                ],
                "source": "presidio-research:synth_dataset_v2",
            }
        )
    return cases


def clean_prompts(gsm8k: str, humaneval: str) -> list[dict[str, Any]]:
    rows = []
    for part in ("test", "train"):
        for line in git_show(gsm8k, f"grade_school_math/data/{part}.jsonl").splitlines():
            rows.append({"text": json.loads(line)["question"], "source": f"gsm8k:{part}"})
    blob = subprocess.run(
        ["git", "--git-dir", humaneval, "show", "HEAD:data/HumanEval.jsonl.gz"],
        check=True,
        capture_output=True,
    ).stdout
    for line in gzip.decompress(blob).decode().splitlines():
        rows.append({"text": json.loads(line)["prompt"], "source": "humaneval"})
    return rows


def main(presidio: str, research: str, gsm8k: str, humaneval: str) -> None:
    cases: list[dict[str, Any]] = []
    for name, entity in PRESIDIO_TESTS.items():
        try:
            source = git_show(presidio, f"presidio-analyzer/tests/{name}")
        except subprocess.CalledProcessError:
            print(f"missing: {name}", file=sys.stderr)
            continue
        cases.extend(presidio_cases(source, entity, name))
    cases.extend(synthetic_cases(git_show(research, "data/synth_dataset_v2.json")))
    OUT.mkdir(exist_ok=True)
    with (OUT / "cases.jsonl").open("w") as out:
        for case in cases:
            case["split"] = split_of(case["text"])
            out.write(json.dumps(case, ensure_ascii=False) + "\n")
    with (OUT / "clean.jsonl").open("w") as out:
        for row in clean_prompts(gsm8k, humaneval):
            row["split"] = split_of(row["text"])
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases written to {OUT}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
