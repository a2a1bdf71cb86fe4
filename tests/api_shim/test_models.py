"""The body models derive from the field declarations, in the order the bodies print."""

from __future__ import annotations

from pydantic import BaseModel

from api_shim import queries
from api_shim.models import BestPlay, Hiscore, StatsSnapshot, UpdateDiff
from osutrack.fields import DIFF_FIELD_ORDER


def _properties(model: type[BaseModel]) -> dict[str, str]:
    schema = model.model_json_schema()
    return {name: spec.get("type", "ref") for name, spec in schema["properties"].items()}


def test_stats_snapshot_has_the_history_keys_scores_as_strings() -> None:
    properties = _properties(StatsSnapshot)
    assert tuple(properties) == queries.SNAPSHOT_KEYS
    assert properties["ranked_score"] == properties["total_score"] == "string"
    assert properties["count300"] == "integer"
    assert properties["accuracy"] == "number"
    assert properties["timestamp"] == "string"


def test_play_models_have_the_printed_keys() -> None:
    assert tuple(_properties(Hiscore)) == queries.HISCORE_KEYS
    assert tuple(_properties(BestPlay)) == queries.BEST_PLAY_KEYS
    assert _properties(BestPlay)["score_time"] == "string"
    assert _properties(Hiscore)["pp"] == "number"


def test_update_diff_lists_the_stats_in_body_order() -> None:
    properties = _properties(UpdateDiff)
    assert list(properties) == [
        "username", "mode", *DIFF_FIELD_ORDER, "levelup", "first", "exists", "newhs",
    ]  # fmt: skip
    assert {properties[name] for name in DIFF_FIELD_ORDER} == {"number"}
    assert UpdateDiff.model_config.get("extra") == "allow"
    assert UpdateDiff.__doc__ == "The change in a user's stats since their previous update."
