"""Build bench/task_data/corpus.jsonl.xz from public labelled sources.

Run: ``python bench/task_data/extract.py MIRRORS`` where MIRRORS holds bare git
mirrors named ``owner+name/repo`` of the repositories in :data:`SOURCES` (read
with ``git show COMMIT:PATH``, so the exact bytes are pinned by commit). The
licence, provenance and label mapping of every source is in README.md beside
this file. Deterministic: the same mirrors give the same corpus.

Each line: ``{"id", "source", "lang", "label", "split", "messages", "template"}``.
``split`` is ``heldout`` for about a fifth of the source items, chosen by a hash
of the item's id (one item translated into several languages keeps its split
in all of them); templates marked by :func:`templates.held_out` appear in the
held-out split only, so the evaluation also measures wording never trained on.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import templates as T

OUT = Path(__file__).resolve().parent / "corpus.jsonl.xz"
SEED = 20261207
HELDOUT_PERCENT = 20

#: name -> (repository, commit)
SOURCES: dict[str, tuple[str, str]] = {
    "ntrex": ("MicrosoftTranslator/NTREX", "8561f6a622db9edad1217683e5c83daefd8bb2bf"),
    "xquad": ("deepmind/xquad", "60cac411649156efb6aab9dd4c9cde787a2c0345"),
    "jsquad": ("yahoojapan/JGLUE", "6f071c09316baae89c3d083a90985b4b1cb9968c"),
    "squad_it": ("crux82/squad-it", "86a19baebed654d07c4e790c07d39a02ceb6b15f"),
    "mgsm": ("google-research/url-nlp", "452a21ad3dae5668c06ceeac21ff073e1e40f9be"),
    "gsm8k": ("openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c"),
    "math500": ("jianzhnie/LLMEval", "66572ad3f66078c376d777866f6535d3f334b0c8"),
    "humaneval": ("openai/human-eval", "6d43fb980f9fee3c892a914eda09951f772ad10d"),
    "humaneval_xl": ("FloatAI/humaneval-xl", "ad93b7c7a399eb9f01885b5cfa23a317115e10fa"),
    "mbpp": ("Yogi-20MIS7040/DL", "d662033c07e0645e9334676c2e264beff68e5a8f"),
    "conala": ("shilliscmu/TranxConalaBaseline", "5520285387d946e826f4cc5a4a0a1bf7361355e5"),
}

NTREX_FILES = {
    "en": "eng-US",
    "zh": "zho-CN",
    "es": "spa",
    "de": "deu",
    "fr": "fra",
    "ja": "jpn",
    "ru": "rus",
    "pt": "por",
    "ar": "arb",
    "hi": "hin",
    "ko": "kor",
    "it": "ita",
}
XQUAD_LANGS = ("ar", "de", "en", "es", "hi", "ru", "zh", "ro", "tr", "vi", "el", "th")
MGSM_LANGS = ("en", "de", "es", "fr", "ja", "ru", "zh", "bn", "sw", "te", "th")
HEX_LANGS = {
    "English": "en",
    "Chinese": "zh",
    "Spanish": "es",
    "German": "de",
    "French": "fr",
    "Russian": "ru",
    "Portuguese": "pt",
    "Arabic": "ar",
    "Italian": "it",
    "Dutch": "nl",
    "Turkish": "tr",
    "Vietnamese": "vi",
}


class Mirrors:
    def __init__(self, root: Path) -> None:
        self.root = root

    def show(self, source: str, path: str) -> str:
        repo, commit = SOURCES[source]
        git_dir = self.root / repo.replace("/", "+") / "repo"
        out = subprocess.run(
            ["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
            check=True,
            capture_output=True,
        ).stdout
        if path.endswith(".gz"):
            out = gzip.decompress(out)
        return out.decode("utf-8")


def heldout(key: str) -> bool:
    digest = hashlib.sha256(f"{SEED}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELDOUT_PERCENT


def pick(rng: random.Random, options: list[str], split_heldout: bool) -> tuple[int, str]:
    """A template index and text: held-out items may use any template, training
    items only those not reserved for the evaluation."""
    allowed = [i for i in range(len(options)) if split_heldout or not T.held_out(i)]
    index = rng.choice(allowed)
    return index, options[index]


def item(
    key: str, source: str, lang: str, label: str, user: str, *, template: str = "", **extra: Any
) -> dict[str, Any]:
    return {
        "id": key,
        "source": source,
        "lang": lang,
        "label": label,
        "split": "heldout" if heldout(key.split("#")[0]) else "train",
        "messages": [{"role": "user", "content": user}],
        "template": template,
        **extra,
    }


def squad_questions(text: str) -> Iterator[tuple[str, str, str]]:
    """(id, question, context) of a SQuAD-format file."""
    for article in json.loads(text)["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                yield qa["id"], qa["question"], paragraph["context"]


def ntrex(m: Mirrors) -> tuple[dict[str, list[str]], list[tuple[str, int, int]]]:
    lines = {
        lang: m.show("ntrex", f"NTREX-128/newstest2019-ref.{code}.txt").splitlines()
        for lang, code in NTREX_FILES.items()
    }
    docs = m.show("ntrex", "DOCUMENT_IDS.tsv").splitlines()
    spans: list[tuple[str, int, int]] = []
    start = 0
    for i in range(1, len(docs) + 1):
        if i == len(docs) or docs[i] != docs[start]:
            spans.append((docs[start], start, i))
            start = i
    return lines, spans


def composed(m: Mirrors, rng: random.Random) -> Iterator[dict[str, Any]]:
    lines, docs = ntrex(m)
    langs = list(T.LANGS)
    targets = [*T.LANGS, "ro", "nl", "tr", "pl"]
    for doc, start, end in docs:
        split_heldout = heldout(f"ntrex:{doc}")
        for round_ in range(2):
            for lang in langs:
                key = f"ntrex:{doc}#{round_}:{lang}"
                # translation: 1-3 sentences in one language, asked in another or the same
                first = rng.randrange(start, end)
                src = rng.choice(langs)
                text = " ".join(lines[src][first : min(end, first + rng.choice((1, 1, 2, 3, 5)))])
                target = rng.choice(
                    [t for t in targets if t != src and t in T.LANGUAGE_NAMES[lang]]
                )
                index, tpl = pick(rng, T.TRANSLATION[lang], split_heldout)
                user = tpl.format(text=text, lang=T.LANGUAGE_NAMES[lang][target])
                yield item(
                    key + ":t",
                    "ntrex",
                    lang,
                    "translation",
                    user,
                    template=f"translation/{lang}/{index}",
                )
                # summarization: a run of sentences
                first = rng.randrange(start, max(start + 1, end - 4))
                body = lines[lang][first : min(end, first + rng.choice((1, 2, 3, 4, 6, 9)))]
                text = ("\n" if rng.random() < 0.5 else " ").join(body)
                index, tpl = pick(rng, T.SUMMARIZATION[lang], split_heldout)
                user = tpl.format(text=text, n=rng.choice((1, 2, 3, 5)))
                yield item(
                    key + ":s",
                    "ntrex",
                    lang,
                    "summarization",
                    user,
                    template=f"summarization/{lang}/{index}",
                )
                # extraction: a shorter run of sentences
                first = rng.randrange(start, end)
                text = " ".join(lines[lang][first : min(end, first + rng.randint(1, 6))])
                index, tpl = pick(rng, T.EXTRACTION[lang], split_heldout)
                yield item(
                    key + ":e",
                    "ntrex",
                    lang,
                    "extraction",
                    tpl.format(text=text),
                    template=f"extraction/{lang}/{index}",
                )
                # creative: a headline or sentence of the document as the topic
                topic = lines[lang][rng.choice((start, rng.randrange(start, end)))].rstrip(".。")
                index, tpl = pick(rng, T.CREATIVE[lang], split_heldout)
                yield item(
                    key + ":c",
                    "ntrex",
                    lang,
                    "creative",
                    tpl.format(topic=topic),
                    template=f"creative/{lang}/{index}",
                )
                # a short phrase to translate, a creative request without material
                sentence = lines[rng.choice(langs)][rng.randrange(start, end)]
                phrase = (
                    " ".join(sentence.split()[: rng.randint(2, 6)])
                    if " " in sentence
                    else sentence[:12]
                )
                index, tpl = pick(rng, T.PHRASE_TRANSLATION[lang], split_heldout)
                user = tpl.format(text=phrase, lang=T.LANGUAGE_NAMES[lang][rng.choice(targets)])
                yield item(
                    key + ":p",
                    "ntrex",
                    lang,
                    "translation",
                    user,
                    template=f"phrase/{lang}/{index}",
                )
                words_ = lines[lang][start].split()
                short = (
                    " ".join(words_[: rng.randint(2, 5)])
                    if len(words_) > 2
                    else lines[lang][start][:14]
                )
                index, tpl = pick(rng, T.MORE_CREATIVE[lang], split_heldout)
                yield item(
                    key + ":c2",
                    "ntrex",
                    lang,
                    "creative",
                    tpl.format(topic=short),
                    template=f"more_creative/{lang}/{index}",
                )
                if round_ == 0:
                    index, tpl = pick(rng, T.CHAT[lang], split_heldout)
                    yield item(
                        key + ":chat",
                        "ntrex",
                        lang,
                        "chat",
                        tpl.format(topic=short),
                        template=f"chat/{lang}/{index}",
                    )
                if round_ < 2 and lang in ("en", "zh", "es", "de", "fr", "ja", "ru"):
                    # a task-carrying system prompt and bare material
                    label = rng.choice(("translation", "summarization", "extraction"))
                    index, system = pick(rng, T.TASK_SYSTEM[label], split_heldout)
                    system = system.format(
                        lang=T.LANGUAGE_NAMES[system_lang(system)][rng.choice(langs)]
                    )
                    text = " ".join(lines[lang][start : min(end, start + rng.randint(1, 8))])
                    row = item(
                        key + ":sys", "ntrex", lang, label, text, template=f"system/{label}/{index}"
                    )
                    row["messages"].insert(0, {"role": "system", "content": system})
                    yield row


def system_lang(system: str) -> str:
    if re.search(r"[\u4e00-\u9fff]", system):
        return "zh"
    if "Tu es" in system:
        return "fr"
    if "Du bist" in system:
        return "de"
    return "en"


def questions(m: Mirrors, rng: random.Random) -> Iterator[dict[str, Any]]:
    files = [("xquad", lang, f"xquad.{lang}.json") for lang in XQUAD_LANGS]
    files += [
        ("jsquad", "ja", "datasets/jsquad-v1.3/valid-v1.3.json"),
        ("squad_it", "it", "SQuAD_it-test.json.gz"),
    ]
    for source, lang, path in files:
        rows = list(squad_questions(m.show(source, path)))
        rng.shuffle(rows)
        limit = 450 if source == "xquad" else 900
        for qid, question, context in rows[:limit]:
            key = f"{source}:{qid}"
            if rng.random() < 0.35:
                index, tpl = pick(rng, T.CLOSED_QA["any"], heldout(key))
                user = tpl.format(text=question, context=context[:700])
                yield item(key, source, lang, "chat", user, template=f"closed_qa/{index}")
            else:
                yield item(key, source, lang, "chat", question)


def contexts(m: Mirrors, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Wikipedia paragraphs (XQuAD, JSQuAD, SQuAD-it) as material to summarise,
    extract from and translate: dates, numbers and names, unlike news prose."""
    files = [("xquad", lang, f"xquad.{lang}.json") for lang in XQUAD_LANGS if lang in T.LANGS]
    files += [
        ("jsquad", "ja", "datasets/jsquad-v1.3/valid-v1.3.json"),
        ("squad_it", "it", "SQuAD_it-test.json.gz"),
    ]
    for source, lang, path in files:
        paragraphs: list[str] = []
        for article in json.loads(m.show(source, path))["data"]:
            paragraphs.extend(p["context"] for p in article["paragraphs"])
        limit = 240 if source == "xquad" else 200
        for i, context in enumerate(paragraphs[:limit]):
            key = f"{source}ctx:{i}" if source == "xquad" else f"{source}ctx:{i}:{lang}"
            task = ("summarization", "extraction", "translation")[i % 3]
            table = {
                "summarization": T.SUMMARIZATION,
                "extraction": T.EXTRACTION,
                "translation": T.TRANSLATION,
            }[task]
            index, tpl = pick(rng, table[lang], heldout(key))
            text = context[:900] if task != "translation" else context[:300]
            target = rng.choice([t for t in T.LANGS if t != lang])
            user = tpl.format(
                text=text, n=rng.choice((1, 2, 3)), lang=T.LANGUAGE_NAMES[lang][target]
            )
            yield item(f"{key}#{lang}", source, lang, task, user, template=f"{task}/{lang}/{index}")


def math(m: Mirrors, rng: random.Random) -> Iterator[dict[str, Any]]:
    for lang in MGSM_LANGS:
        for i, line in enumerate(m.show("mgsm", f"mgsm/mgsm_{lang}.tsv").splitlines()):
            question = line.split("\t")[0]
            tpls = T.MATH.get(lang, ["{text}"])
            index, tpl = pick(rng, tpls, heldout(f"mgsm:{i}"))
            yield item(
                f"mgsm:{i}#{lang}",
                "mgsm",
                lang,
                "math",
                tpl.format(text=question),
                template=f"math/{lang}/{index}",
            )
            if i % 2 == 0 and lang in T.NUMERIC_MATERIAL["extraction"]:
                # the same numbers under another instruction are not math
                task = "extraction" if i % 4 == 0 else "summarization"
                index, tpl = pick(rng, T.NUMERIC_MATERIAL[task][lang], heldout(f"mgsm:{i}"))
                yield item(
                    f"mgsm:{i}#{lang}:{task}",
                    "mgsm",
                    lang,
                    task,
                    tpl.format(text=question),
                    template=f"numeric/{task}/{lang}/{index}",
                )
    for name in ("train", "test"):
        rows = m.show("gsm8k", f"grade_school_math/data/{name}.jsonl").splitlines()
        rng.shuffle(rows)
        for i, row in enumerate(rows[:1500]):
            record = json.loads(row)
            key = f"gsm8k:{name}:{hashlib.sha1(record['question'].encode()).hexdigest()[:12]}"
            yield item(
                key,
                "gsm8k",
                "en",
                "math",
                record["question"],
                reply=record["answer"].split("####")[0].strip(),
                n=i,
            )
            if i % 2 == 0:
                task = "extraction" if i % 4 == 0 else "summarization"
                index, tpl = pick(rng, T.NUMERIC_MATERIAL[task]["en"], heldout(key))
                yield item(
                    f"{key}:{task}",
                    "gsm8k",
                    "en",
                    task,
                    tpl.format(text=record["question"]),
                    template=f"numeric/{task}/en/{index}",
                )
    for row in m.show("math500", "data/math500.jsonl").splitlines():
        record = json.loads(row)
        problem = record["prompt"]
        if rng.random() < 0.5:
            problem = problem.split("\nPlease reason step by step")[0]
        key = f"math500:{hashlib.sha1(problem[:200].encode()).hexdigest()[:12]}"
        yield item(key, "math500", "en", "math", problem)
        # its formulas, asked about in many languages
        for n, formula in enumerate(re.findall(r"\$([^$]{3,80})\$", problem)[:2]):
            lang = rng.choice(T.LANGS)
            index, tpl = pick(rng, T.FORMULA_MATH[lang], heldout(key))
            text = f"${formula}$" if rng.random() < 0.6 else formula
            yield item(
                f"{key}#f{n}",
                "math500",
                lang,
                "math",
                tpl.format(text=text),
                template=f"formula/{lang}/{index}",
            )


def code(m: Mirrors, rng: random.Random) -> Iterator[dict[str, Any]]:
    solutions: list[tuple[str, str]] = []
    for row in m.show("humaneval", "data/HumanEval.jsonl.gz").splitlines():
        record = json.loads(row)
        key = f"humaneval:{record['task_id']}"
        solutions.append((key, record["prompt"] + record["canonical_solution"]))
        prompt = record["prompt"]
        if rng.random() < 0.5:
            prompt = f"Complete this function:\n\n```python\n{prompt}```"
        yield item(key, "humaneval", "en", "code", prompt)
    for language, lang in HEX_LANGS.items():
        for pl in ("python", "javascript", "java", "go", "typescript", "php", "ruby"):
            rows = m.show("humaneval_xl", f"data/{pl}/{language}.jsonl").splitlines()
            chosen = rows if pl == "python" else rng.sample(rows, min(len(rows), 12))
            for n, row in enumerate(chosen):
                record = json.loads(row)
                task = record["task_id"].split("/")[-1]
                if pl != "python" or n % 6 == 0:
                    yield item(
                        f"humaneval_xl:{task}#{pl}:{lang}",
                        "humaneval_xl",
                        lang,
                        "code",
                        record["prompt"],
                    )
                found = re.search(r'"""\s*(.+?)(?:\n\s*\n|>>>|\Z)', record["prompt"], re.S)
                if pl == "python" and found and lang in T.CODE_REQUEST:
                    # the task described in words, asked as a request in that language
                    description = " ".join(found.group(1).split())[:300]
                    language_name = rng.choice(("Python", "JavaScript", "Go", "Java", "Rust", "C#"))
                    index, tpl = pick(rng, T.CODE_REQUEST[lang], heldout(f"humaneval_xl:{task}"))
                    yield item(
                        f"humaneval_xl:{task}#ask:{lang}",
                        "humaneval_xl",
                        lang,
                        "code",
                        tpl.format(text=description, pl=language_name),
                        template=f"code_request/{lang}/{index}",
                    )
    for row in m.show("mbpp", "mbpp.jsonl").splitlines():
        if not row.strip():
            continue
        record = json.loads(row)
        if "text" not in record or "code" not in record:
            continue
        key = f"mbpp:{hashlib.sha1(record['text'].encode()).hexdigest()[:12]}"
        text = record["text"]
        if rng.random() < 0.4:
            text += " Your code should pass these tests:\n" + "\n".join(
                record.get("test_list") or []
            )
        yield item(key, "mbpp", "en", "code", text)
        solutions.append((key, record["code"].replace("\r\n", "\n")))
    # programming questions people asked (StackOverflow titles, CoNaLa)
    seen: set[str] = set()
    for row in json.loads(m.show("conala", "conala-train.json")):
        intent = (row.get("intent") or "").strip()
        if not intent or intent in seen:
            continue
        seen.add(intent)
        key = f"conala:{row['question_id']}"
        lang = "en" if rng.random() < 0.8 else rng.choice(list(T.CODE_QUESTION))
        index, tpl = pick(rng, T.CODE_QUESTION[lang], heldout(key))
        yield item(
            f"{key}#{len(seen)}",
            "conala",
            lang,
            "code",
            tpl.format(text=intent),
            template=f"code_question/{lang}/{index}",
        )
    # code tasks asked in many languages around real code
    for key, solution in solutions:
        lang = rng.choice(T.LANGS)
        index, tpl = pick(rng, T.CODE[lang], heldout(key))
        yield item(
            f"{key}#task:{lang}",
            key.split(":")[0],
            lang,
            "code",
            tpl.format(text=solution.strip()),
            template=f"code/{lang}/{index}",
        )


def conversations(rows: list[dict[str, Any]], rng: random.Random) -> Iterator[dict[str, Any]]:
    """Two-turn conversations: a follow-up that keeps the first turn's task, or a
    new request (the last turn's task). Both turns come from the same split."""
    by_split: dict[str, list[dict[str, Any]]] = {"train": [], "heldout": []}
    for row in rows:
        if len(row["messages"]) == 1:
            by_split[row["split"]].append(row)
    for split, pool in by_split.items():
        for n in range(len(pool) // 8):
            first = rng.choice(pool)
            reply = first.get("reply") or rng.choice(pool)["messages"][-1]["content"][:400]
            opening = {"role": "user", "content": first["messages"][0]["content"][:700]}
            turns = [opening, {"role": "assistant", "content": reply[:300]}]
            if n % 2 == 0:
                label = first["label"]
                lang = first["lang"] if first["lang"] in T.FOLLOW_UPS["any"] else "en"
                group = T.FOLLOW_UPS[label] if rng.random() < 0.6 else T.FOLLOW_UPS["any"]
                options = group.get(lang) or group["en"]
                index, tpl = pick(rng, options, split == "heldout")
                names = T.LANGUAGE_NAMES.get(lang, T.LANGUAGE_NAMES["en"])
                text = tpl.format(lang=rng.choice(list(names.values())))
                source = "followup"
            else:
                second = rng.choice(pool)
                label, lang, text = (
                    second["label"],
                    second["lang"],
                    second["messages"][0]["content"],
                )
                source = "switch"
                index = -1
            yield {
                "id": f"conv:{split}:{n}",
                "source": source,
                "lang": lang,
                "label": label,
                "split": split,
                "messages": [*turns, {"role": "user", "content": text}],
                "template": f"{source}/{index}",
            }


def noise(row: dict[str, Any], rng: random.Random) -> None:
    """Formatting people use: trailing newlines, markdown, whitespace; and now
    and then an instruction whose material was attached elsewhere."""
    message = row["messages"][-1]
    text = message["content"]
    if (
        row["label"] in ("summarization", "extraction")
        and len(row["messages"]) == 1
        and "\n" in text
        and rng.random() < 0.1
    ):
        head, _, rest = text.partition("\n")
        text = head if len(head) > 12 else rest.strip().split("\n")[-1]
    roll = rng.random()
    if roll < 0.15:
        text += "\n" * rng.randint(1, 3)
    elif roll < 0.22:
        text = f"**{text.splitlines()[0]}**\n" + "\n".join(text.splitlines()[1:])
    elif roll < 0.27:
        text = "## Task\n" + text
    elif roll < 0.32:
        text = "  " + text.replace("\n", "\n\n") + "  "
    if row["label"] != "code" and rng.random() < 0.35:
        # people write instruction and material on one line as often as on several
        text = " ".join(text.split())
    message["content"] = text
    if rng.random() < 0.12 and row["messages"][0]["role"] != "system":
        row["messages"].insert(0, {"role": "system", "content": rng.choice(T.GENERIC_SYSTEM)})


def main() -> None:
    mirrors = Mirrors(Path(sys.argv[1]))
    rng = random.Random(SEED)
    rows: list[dict[str, Any]] = []
    for builder in (composed, questions, contexts, math, code):
        rows.extend(builder(mirrors, rng))
    rows.extend(list(conversations(rows, rng)))
    for row in rows:
        noise(row, rng)
        row.pop("reply", None)
        row.pop("n", None)
    with lzma.open(OUT, "wt", encoding="utf-8", preset=9 | lzma.PRESET_EXTREME) as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        counts[(row["split"], row["label"])] = counts.get((row["split"], row["label"]), 0) + 1
    for key in sorted(counts):
        print(*key, counts[key])
    print(f"{len(rows)} items -> {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
