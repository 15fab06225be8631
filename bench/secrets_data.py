"""Extract the labelled secret samples of bench/secrets_eval.py from public repositories.

Run: ``python bench/secrets_data.py NOSEYPARKER_GIT GITLEAKS_GIT [GSM8K_GIT [HUMANEVAL_XL_GIT]]``
with the git directories of local mirrors of praetorian-inc/noseyparker (Apache-2.0),
gitleaks/gitleaks (MIT), openai/grade-school-math (MIT) and FloatAI/humaneval-xl (MIT). Writes ``bench/data/secrets/samples.jsonl``: one
object per sample, ``{"source", "rule", "label", "text"}``, ``label`` being ``secret`` (a
sample the source says holds a secret of its rule) or ``negative`` (a sample the source says
its rule must not match), and ``bench/data/secrets/clean.jsonl`` (benchmark prompts with no
secret). Only the samples are taken, never a rule's pattern. Provenance and licences:
``bench/data/secrets/README.md``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent / "data" / "secrets"
NP_RULES = "crates/noseyparker/data/default/builtin/rules"
GL_RULES = "cmd/generate/config/rules"
MAX_TEXT = 4000


def _git(repo: str, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", repo, *args], check=True, capture_output=True, text=True
    ).stdout


def _files(repo: str, folder: str, suffix: str) -> Iterator[tuple[str, str]]:
    for path in _git(repo, "ls-tree", "-r", "--name-only", "HEAD", folder).split():
        if path.endswith(suffix) and not path.endswith("_test.go"):
            yield path, _git(repo, "show", f"HEAD:{path}")


def noseyparker(repo: str) -> Iterator[dict[str, str]]:
    for _, source in _files(repo, NP_RULES, ".yml"):
        for rule in yaml.safe_load(source).get("rules") or ():
            for label, field in (("secret", "examples"), ("negative", "negative_examples")):
                for text in rule.get(field) or ():
                    yield {"source": "noseyparker", "rule": rule["id"], "label": label,
                           "text": text}  # fmt: skip


_GO_TOKEN = re.compile(
    r'//[^\n]*|/\*.*?\*/|`(?P<raw>[^`]*)`|"(?P<str>(?:[^"\\\n]|\\.)*)"|(?P<word>[A-Za-z_][\w.]*)'
    r"|(?P<sym>[+(),{}\[\]])",
    re.S,
)
_RULE_ID = re.compile(r'RuleID:\s*"([^"]+)"')


def _go_string(m: re.Match[str]) -> str:
    if m.group("raw") is not None:
        return m.group("raw")
    decoded: str = json.loads('"' + m.group("str").replace("\\'", "'") + '"')
    return decoded


def gitleaks(repo: str) -> Iterator[dict[str, str]]:
    """The literal samples of each rule function: strings in its ``tps`` (true positives)
    and ``fps`` (false positives) lists; strings glued to generated parts (``+``,
    ``fmt.Sprintf``) and the identifier argument of the sample generators are skipped."""
    for _, source in _files(repo, GL_RULES, ".go"):
        for body in re.split(r"\nfunc ", source)[1:]:
            ids = _RULE_ID.findall(body)
            if not ids:
                continue
            rule = ids[0]
            label: str | None = None
            tokens = list(_GO_TOKEN.finditer(body))
            depth_skip: list[int] = []
            depth = 0
            for k, tok in enumerate(tokens):
                word, sym = tok.group("word"), tok.group("sym")
                if word in ("tps", "fps"):
                    label = "secret" if word == "tps" else "negative"
                elif word in ("return", "Validate"):
                    label = None
                elif sym == "(":
                    depth += 1
                    prev = tokens[k - 1].group("word") or ""
                    if prev.endswith(("Sprintf", "NewSecret", "Numeric", "AlphaNumeric", "Hex")):
                        depth_skip.append(depth)
                elif sym == ")":
                    if depth_skip and depth_skip[-1] == depth:
                        depth_skip.pop()
                    depth -= 1
                elif label and (tok.group("raw") is not None or tok.group("str") is not None):
                    if depth_skip:
                        continue
                    before = tokens[k - 1].group("sym") if k else None
                    after = tokens[k + 1].group("sym") if k + 1 < len(tokens) else None
                    if before == "+" or after == "+":
                        continue
                    prev2 = tokens[k - 2].group("word") or "" if k > 1 else ""
                    if before == "(" and prev2.startswith("utils.GenerateSample"):
                        continue  # the identifier argument
                    text = _go_string(tok)
                    if text.strip() and len(text) <= MAX_TEXT:
                        yield {"source": "gitleaks", "rule": rule, "label": label, "text": text}


GSM8K_MAX = 700
HUMANEVAL_FILES = (
    "python/English", "python/Chinese", "python/German", "python/Russian", "python/Spanish",
    "python/French", "python/Portuguese", "python/Turkish", "go/English", "java/English",
    "javascript/English", "php/English",
)  # fmt: skip
HUMANEVAL_PER_FILE = 25
HUMANEVAL_MAX_CHARS = 1500


def gsm8k(repo: str) -> Iterator[dict[str, str]]:
    lines = _git(repo, "show", "HEAD:grade_school_math/data/test.jsonl").splitlines()
    for line in lines[:GSM8K_MAX]:
        yield {"source": "gsm8k", "rule": "", "label": "clean",
               "text": json.loads(line)["question"]}  # fmt: skip


def humaneval_xl(repo: str) -> Iterator[dict[str, str]]:
    """Code prompts with their reference solutions (identifiers, literals, docstrings in
    several languages): the clean text a code assistant's traffic is made of."""
    for name in HUMANEVAL_FILES:
        lines = _git(repo, "show", f"HEAD:data/{name}.jsonl").splitlines()
        for line in lines[:HUMANEVAL_PER_FILE]:
            task = json.loads(line)
            text = (task["prompt"] + (task.get("canonical_solution") or ""))[:HUMANEVAL_MAX_CHARS]
            yield {"source": "humaneval-xl", "rule": name, "label": "clean", "text": text}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    samples = [*noseyparker(argv[0]), *gitleaks(argv[1])]
    seen: set[tuple[str, str, str]] = set()
    with (OUT / "samples.jsonl").open("w", encoding="utf-8") as out:
        for s in samples:
            key = (s["rule"], s["label"], s["text"])
            if key not in seen:
                seen.add(key)
                out.write(json.dumps(s, ensure_ascii=False) + "\n")
    print(f"{len(seen)} samples")
    if len(argv) > 2:
        clean = list(gsm8k(argv[2]))
        if len(argv) > 3:
            clean.extend(humaneval_xl(argv[3]))
        with (OUT / "clean.jsonl").open("w", encoding="utf-8") as out:
            for s in clean:
                out.write(json.dumps(s, ensure_ascii=False) + "\n")
        print(f"{len(clean)} clean prompts")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
