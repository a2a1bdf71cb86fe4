"""Pydantic models of the query strings and bodies, for spectree.

Query models run the rules of `api_shim.params` (`parse`), in the original check order.
Requests are parsed with `from_params`, which runs those rules and builds the model without
pydantic's validation (`api_shim.query_parsing` routes spectree's request validation there): the
rules only ever produce values the fields accept, so validating them again would only cost
time on every request. The before-validator runs the same rules for anything that does
validate a model. Body models only document the responses: bodies are built as plain
dicts to keep the legacy key order and types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from api_shim import params
from osutrack.fields import DIFF_FIELD_ORDER, HISCORE_FIELDS, PLAY_COLUMNS, STATS

PARAM_ERROR_TYPE = "osutrack_param"

T = TypeVar("T")

Mode = Annotated[
    Literal[0, 1, 2, 3],
    WithJsonSchema(
        {"type": "integer", "enum": [0, 1, 2, 3]},
    ),
    Field(description="Game mode: 0=osu!, 1=taiko, 2=ctb, 3=mania"),
]
UserId = Annotated[
    int,
    Field(ge=1, le=params.MAX_USER_ID, description="osu! user id"),
]
Bound = Annotated[
    datetime | None,
    WithJsonSchema({"type": "string"}),
]
FROM_DESCRIPTION = (
    "Start (inclusive): a UTC date like 2020-01-01 (from its first moment) or an "
    "ISO 8601 instant; unbounded when absent. Times are compared as printed (whole "
    "seconds): a fraction rounds `from` up to the next second"
)
TO_DESCRIPTION = (
    "End (inclusive): a UTC date like 2021-01-01 (up to its last moment) or an "
    "ISO 8601 instant, with its whole second (a printed time includes the rows printed "
    "with it); unbounded when absent"
)


def _checked(parse: Callable[[], T]) -> T:
    """Run one rule, reporting its failure as a pydantic error carrying our message."""
    try:
        return parse()
    except params.ParamError as err:
        raise PydanticCustomError(PARAM_ERROR_TYPE, "{message}", {"message": str(err)}) from None


def _raw(data: Any) -> Mapping[str, Any]:
    return data if isinstance(data, Mapping) else {}


class QueryModel(BaseModel):
    """A query string's parameters; subclasses give their rules in `parse`."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The field values (by alias) of the raw parameters; `ParamError` on the first bad one."""
        raise NotImplementedError

    @classmethod
    def from_params(cls, raw: Mapping[str, Any]) -> Self:
        """The query of Falcon's `req.params`; raises `ParamError` with the client's message."""
        return cls.model_construct(**cls.parse(raw))

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> dict[str, Any]:
        return _checked(lambda: cls.parse(_raw(data)))


class UserModeQuery(QueryModel):
    """`user` and `mode`, both required."""

    user: UserId
    mode: Mode

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "user": params.parse_user_id(raw.get("user")),
            "mode": params.parse_mode(raw.get("mode")),
        }


class UpdateQuery(QueryModel):
    """POST /update: `user`, `mode`, and the raw `wait` (its bound is a setting)."""

    user: UserId
    mode: Mode
    wait: Annotated[
        str | list[str] | None,
        WithJsonSchema({"type": "number", "minimum": 0}),
        Field(
            description=(
                "Seconds to wait for the update before answering 202 with the job "
                "(default UPDATE_WAIT_SECONDS, at most UPDATE_WAIT_MAX_SECONDS)"
            )
        ),
    ] = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "user": params.parse_user_id(raw.get("user")),
            "mode": params.parse_mode(raw.get("mode")),
            "wait": raw.get("wait"),
        }


class StatsHistoryQuery(QueryModel):
    """GET /stats_history."""

    user: UserId
    mode: Mode
    from_: Annotated[Bound, Field(alias="from", description=FROM_DESCRIPTION)] = None
    to: Annotated[Bound, Field(description=TO_DESCRIPTION)] = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        user = params.parse_user_id(raw.get("user"))
        mode = params.parse_mode(raw.get("mode"))
        window = params.parse_window(raw.get("from"), raw.get("to"))
        return {"user": user, "mode": mode, "from": window.start, "to": window.end}

    @property
    def window(self) -> params.DateWindow:
        return params.DateWindow(self.from_, self.to)


class HiscoresQuery(QueryModel):
    """GET /hiscores: `mode` defaults to 0, `user` is an id or (userMode) a name."""

    user: Annotated[
        int | str,
        WithJsonSchema({"type": "string"}),
        Field(description="osu! user id, or a username when userMode=username"),
    ]
    mode: Annotated[Mode, Field(description="Game mode (default 0): 0=osu!, 1, 2, 3")] = 0
    from_: Annotated[Bound, Field(alias="from", description=FROM_DESCRIPTION)] = None
    to: Annotated[Bound, Field(description=TO_DESCRIPTION)] = None
    userMode: Annotated[  # noqa: N815 - the original API's parameter name
        Literal["id", "username"],
        Field(description="How to read `user`: `id` (default) or `username`"),
    ] = "id"

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        by_name = raw.get("userMode") == params.USER_MODE_USERNAME
        parse_user = params.parse_username if by_name else params.parse_user_id
        user = parse_user(raw.get("user"))
        mode = params.parse_mode(raw.get("mode"), default=0)
        window = params.parse_window(raw.get("from"), raw.get("to"))
        user_mode = params.parse_user_mode(raw.get("userMode"))
        return {
            "user": user,
            "mode": mode,
            "from": window.start,
            "to": window.end,
            "userMode": user_mode,
        }

    @property
    def window(self) -> params.DateWindow:
        return params.DateWindow(self.from_, self.to)


class BestPlaysQuery(QueryModel):
    """GET /bestplays."""

    mode: Mode
    from_: Annotated[Bound, Field(alias="from", description=FROM_DESCRIPTION)] = None
    to: Annotated[Bound, Field(description=TO_DESCRIPTION)] = None
    limit: Annotated[
        int,
        Field(ge=1, le=params.MAX_LIMIT, description="How many plays to return (1-10000)"),
    ] = params.DEFAULT_LIMIT

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        mode = params.parse_mode(raw.get("mode"))
        limit = params.parse_row_limit(raw.get("limit"))
        window = params.parse_window(raw.get("from"), raw.get("to"))
        return {"mode": mode, "limit": limit, "from": window.start, "to": window.end}

    @property
    def window(self) -> params.DateWindow:
        return params.DateWindow(self.from_, self.to)


class ErrorBody(BaseModel):
    """Every error answer."""

    error: str


class JobError(ErrorBody):
    """A failed update job."""

    job_id: str


class NewHiscore(BaseModel):
    """One new top play in an update diff: osu! API v1 `get_user_best` fields as strings."""

    model_config = ConfigDict(extra="allow")

    beatmap_id: str
    score_id: str
    score: str
    maxcombo: str
    count50: str
    count100: str
    count300: str
    countmiss: str
    countkatu: str
    countgeki: str
    perfect: str
    enabled_mods: str
    user_id: str
    date: str
    rank: str
    pp: str
    replay_available: str
    ranking: int


# The bodies of the stats and plays derive from their declaration (`osutrack.fields`);
# to mypy they are plain models.
if TYPE_CHECKING:
    UpdateDiff = BaseModel
    StatsSnapshot = BaseModel
    Hiscore = BaseModel
    BestPlay = BaseModel
else:
    UpdateDiff = create_model(
        "UpdateDiff",
        __doc__="The change in a user's stats since their previous update.",
        __config__=ConfigDict(extra="allow"),
        __module__=__name__,
        username=(str, ...),
        mode=(int, ...),
        **dict.fromkeys(DIFF_FIELD_ORDER, (float, ...)),
        levelup=(bool, ...),
        first=(bool, ...),
        exists=(bool, ...),
        newhs=(list[NewHiscore], ...),
    )


class Job(BaseModel):
    """An update job (202 from POST /update, and GET /jobs/{job_id})."""

    job_id: str
    status: Literal["queued", "running", "finished", "failed"]
    user: int
    mode: int
    position: int | None = Field(
        description="0-based place in the update queue while queued (0 = next), else null"
    )
    eta: str | None = Field(
        description="Estimated start while queued, from the osu! API budget and the jobs ahead"
    )
    enqueued_at: str | None
    started_at: str | None
    finished_at: str | None
    result: UpdateDiff | None
    error: str | None
    last_upstream_error: str | None = Field(
        description="The transient osu! API failure the job is waiting to retry after"
    )
    next_attempt_at: str | None = Field(
        description="While queued after a transient failure: when the next attempt may start"
    )
    attempt: int = Field(description="0 for the first attempt, then one more per retry")


if not TYPE_CHECKING:
    StatsSnapshot = create_model(
        "StatsSnapshot",
        __doc__="One stored stats update.",
        __module__=__name__,
        **{stat.name: (str if stat.history_as_text else stat.kind, ...) for stat in STATS},
        timestamp=(str, ...),
    )
    # A play's columns as a body prints them: times as strings.
    _PLAY_BODY = {
        column.name: (str if column.kind is datetime else column.kind, ...)
        for column in PLAY_COLUMNS
        if column.name in HISCORE_FIELDS
    }
    Hiscore = create_model(
        "Hiscore",
        __doc__="One recorded top play of a user.",
        __module__=__name__,
        **_PLAY_BODY,
    )
    BestPlay = create_model(
        "BestPlay",
        __doc__="One top play of any user.",
        __module__=__name__,
        user=(int, ...),
        **_PLAY_BODY,
    )


class Peak(BaseModel):
    """A user's best global rank and accuracy, with when they last held them."""

    best_global_rank: int | None
    best_rank_timestamp: str | None
    best_accuracy: float | None
    best_acc_timestamp: str | None


class Health(BaseModel):
    """Whether Postgres, Redis and at least one worker are up, and whether osu! accepts
    our credentials."""

    status: Literal["ok", "degraded", "down"]
    postgres: Literal["ok", "down"]
    redis: Literal["ok", "down"]
    workers: int
    osu_api: str = Field(
        description='"ok", or why no update can succeed (osu! refused the credentials)'
    )
    error: str | None = None


class Ping(BaseModel):
    """The API process answers."""

    status: Literal["alive"]
