"""Prices come from litellm's shipped cost map, read without importing litellm."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.judging.prices import ModelPrice, PriceBook, litellm_prices_path, parse_cost_map


@pytest.fixture(scope="module")
def cost_map() -> dict[str, Any]:
    path = litellm_prices_path()
    assert path is not None, "litellm is a runtime dependency and ships its cost map"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.from_litellm()


def _expected(entry: dict[str, Any]) -> tuple[float, float]:
    return entry["input_cost_per_token"] * 1e6, entry["output_cost_per_token"] * 1e6


@pytest.mark.parametrize(
    ("model", "provider", "key"),
    [
        ("gpt-4o", None, "gpt-4o"),
        ("gpt-4o-mini", None, "gpt-4o-mini"),
        ("gpt-4o", "openai", "gpt-4o"),
        ("gpt-4o", "azure", "azure/gpt-4o"),
        ("azure/gpt-4o", None, "azure/gpt-4o"),
        ("claude-sonnet-4-5", None, "claude-sonnet-4-5"),
        ("anthropic/claude-sonnet-4-5", None, "claude-sonnet-4-5"),
        ("claude-haiku-4-5", "anthropic", "claude-haiku-4-5"),
        ("gemini/gemini-2.5-flash", None, "gemini/gemini-2.5-flash"),
        ("gemini-2.5-pro", "gemini", "gemini/gemini-2.5-pro"),
        ("mistral/mistral-large-latest", None, "mistral/mistral-large-latest"),
    ],
)
def test_real_entries_match_the_file(
    book: PriceBook, cost_map: dict[str, Any], model: str, provider: str | None, key: str
) -> None:
    price = book.lookup(model, provider)
    assert price is not None
    want_in, want_out = _expected(cost_map[key])
    assert price.input_per_mtok == pytest.approx(want_in)
    assert price.output_per_mtok == pytest.approx(want_out)
    assert price.context_window == cost_map[key]["max_input_tokens"]


def test_gpt_4o_mini_is_cheaper_than_gpt_4o(book: PriceBook) -> None:
    mini, full = book.lookup("gpt-4o-mini"), book.lookup("gpt-4o")
    assert mini is not None and full is not None
    assert 0 < mini.input_per_mtok < full.input_per_mtok
    assert 0 < mini.output_per_mtok < full.output_per_mtok


def test_unknown_model_is_none(book: PriceBook) -> None:
    assert book.lookup("my-private-llama-70b") is None
    assert book.lookup("vllm/my-private-llama-70b", "openai") is None


def test_schema_entry_is_not_a_model(book: PriceBook) -> None:
    assert book.lookup("sample_spec") is None
    assert len(book) > 100


def test_lookup_ignores_case(book: PriceBook) -> None:
    assert book.lookup("GPT-4o") == book.lookup("gpt-4o")


def test_parse_skips_non_prices_and_defaults_output() -> None:
    parsed = parse_cost_map(
        {
            "sample_spec": {"input_cost_per_token": 0.0},
            "free-text": {"input_cost_per_token": "cheap"},
            "flag": {"input_cost_per_token": True},
            "no-cost": {"max_tokens": 10},
            "embed": {"input_cost_per_token": 1e-07, "max_tokens": 8191},
            "chat": {
                "input_cost_per_token": 3e-06,
                "output_cost_per_token": 1.5e-05,
                "max_input_tokens": 200000,
                "max_tokens": 8192,
            },
            "not-a-dict": [1, 2],
        }
    )
    assert set(parsed) == {"embed", "chat"}
    assert parsed["embed"] == ModelPrice(0.1, 0.0, 8191)
    assert parsed["chat"] == ModelPrice(3.0, 15.0, 200000)


def test_missing_file_is_an_empty_book(tmp_path: Path) -> None:
    book = PriceBook.from_file(tmp_path / "absent.json")
    assert book.lookup("gpt-4o") is None
    assert len(book) == 0


def test_malformed_file_is_an_empty_book(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    assert PriceBook.from_file(path).lookup("gpt-4o") is None
    path.write_text("[1, 2, 3]")
    assert len(PriceBook.from_file(path)) == 0


def test_file_is_read_lazily(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    book = PriceBook.from_file(path)
    # written after the book was made: nothing was read at construction
    path.write_text(
        json.dumps({"m": {"input_cost_per_token": 2e-06, "output_cost_per_token": 4e-06}})
    )
    assert book.lookup("m") == ModelPrice(2.0, 4.0, None)
    path.write_text("{}")
    assert book.lookup("m") == ModelPrice(2.0, 4.0, None), "parsed once, then kept"


def test_provider_prefixed_name_is_tried_first() -> None:
    book = PriceBook({"m": ModelPrice(1.0, 1.0, None), "p/m": ModelPrice(2.0, 2.0, None)})
    assert book.lookup("m", "p") == ModelPrice(2.0, 2.0, None)
    assert book.lookup("m", "q") == ModelPrice(1.0, 1.0, None)
    assert book.lookup("q/m") == ModelPrice(1.0, 1.0, None)


def test_loading_prices_does_not_import_litellm() -> None:
    code = (
        "import sys\n"
        "from gateway.judging.prices import PriceBook\n"
        "assert PriceBook.from_litellm().lookup('gpt-4o') is not None\n"
        "print('litellm' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
