"""The configuration file (``capspread.config``): what a malformed universe gets."""

from __future__ import annotations

import re
import tomllib

import pytest

from capspread.config import DEFAULT_CONFIG, Config


def test_the_shipped_configuration_lists_each_symbol_once():
    config = Config.load(DEFAULT_CONFIG)
    raw = tomllib.loads(DEFAULT_CONFIG.read_text())
    assert [s.symbol for s in config.universe] == [u["symbol"] for u in raw["universe"]]
    assert len({s.symbol for s in config.universe}) == len(raw["universe"]) > 5


def test_a_symbol_listed_twice_is_refused_naming_the_file_and_the_symbol(tmp_path):
    text = DEFAULT_CONFIG.read_text()
    raw = tomllib.loads(text)
    first = raw["universe"][0]
    again = "\n[[universe]]\n" + "".join(
        f'{k} = "{v}"\n' if isinstance(v, str) else f"{k} = {str(v).lower()}\n" for k, v in first.items())
    bad = tmp_path / "capspread.toml"
    bad.write_text(text + again)
    with pytest.raises(ValueError, match=re.escape(bad.name) + r".*lists " + re.escape(repr(first["symbol"])) + " twice"):
        Config.load(bad)
