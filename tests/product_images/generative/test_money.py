"""Templates, cache, ledger and budget: the parts that keep generation cheap."""

import pytest

from product_images.generative.base import Attempt, Usage
from product_images.generative.cache import GenerationCache, cache_key
from product_images.generative.configured_model import price_table
from product_images.generative.ledger import Ledger, entry_from, summarise
from product_images.generative.templates import load_template
from product_images.settings import Settings
from product_images.store import LocalStore


@pytest.mark.parametrize("variant", ["white", "scene", "detail"])
def test_builtin_templates_render_from_the_catalog_row(variant):
    template = load_template(variant)
    prompt = template.render({"name": "Trail Mug", "category": "kitchen", "scene_hint": "a cabin"})
    assert "Trail Mug" in prompt and "$" not in prompt
    assert len(template.sha256) == 64


def test_empty_fields_fall_back_to_neutral_words():
    prompt = load_template("scene").render({})
    assert "the product" in prompt and "$" not in prompt


def test_a_user_template_overrides_the_builtin_and_changes_the_hash(tmp_path):
    (tmp_path / "scene.txt").write_text("Put $name on a beach.")
    mine, builtin = load_template("scene", tmp_path), load_template("scene")
    assert mine.render({"name": "X"}) == "Put X on a beach."
    assert mine.sha256 != builtin.sha256
    assert load_template("white", tmp_path).sha256 == load_template("white").sha256


def test_cache_key_is_stable_and_sensitive_to_every_part():
    parts = {"source": "a", "prompt": "p", "model": "m"}
    assert cache_key(parts) == cache_key(dict(reversed(parts.items())))
    assert cache_key(parts) != cache_key({**parts, "model": "n"})


def test_cache_round_trip_and_miss(tmp_path):
    cache = GenerationCache(LocalStore(tmp_path))
    assert cache.get("ab" * 32) is None
    cache.put("ab" * 32, b"png", {"mime_type": "image/png", "model": "m"})
    hit = cache.get("ab" * 32)
    assert hit is not None and hit.data == b"png" and hit.meta["model"] == "m"


def _attempt(outcome="ok", output_tokens=1120, model="gemini-3.1-flash-image"):
    usage = Usage(
        prompt_tokens=1300, output_tokens=output_tokens, total_tokens=1300 + output_tokens
    )
    return Attempt("gemini", model, outcome, 200, usage, 1.5)


def test_ledger_prices_attempts_from_reported_tokens(tmp_path):
    ledger, prices = Ledger(LocalStore(tmp_path)), price_table(Settings())
    ledger.append(entry_from(_attempt(), "SKU-1", "scene", "spring", prices))
    ledger.append(entry_from(_attempt("rate_limited", 0), "SKU-1", "scene", "spring", prices))
    entries = ledger.entries()
    assert [e.outcome for e in entries] == ["ok", "rate_limited"]
    assert entries[0].cost_usd == pytest.approx((1300 * 0.5 + 1120 * 60) / 1e6)
    assert entries[1].cost_usd == pytest.approx(1300 * 0.5 / 1e6)
    assert summarise(entries, "tag") == {"spring": (2, round(sum(e.cost_usd for e in entries), 6))}
    assert set(summarise(entries, "model")) == {"gemini-3.1-flash-image"}


def test_an_image_answered_without_usage_costs_its_list_price():
    prices = price_table(Settings())
    entry = entry_from(_attempt(output_tokens=0), "SKU-1", "scene", "", prices)
    # The catalogue's dearest 3.1 Flash Image size (4K, $0.151) plus the input tokens.
    assert entry.cost_usd == pytest.approx(0.151 + 1300 * 0.5 / 1e6)
