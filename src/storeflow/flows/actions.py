"""Action parameter models and the action registry.

An action step is ``{action: <name>, <param>: <value>, ...}``: the keys beside ``action`` (other
than the step's ``id`` and ``name``) are validated by the params model registered for that name.
Channels added later register their own actions with :func:`register_action`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from storeflow.flows.durations import Duration, format_duration
from storeflow.flows.paths import FieldPath, FieldPathError, parse_field_path
from storeflow.flows.problems import SLUG, SLUG_HINT, Loc, Problems, add_pydantic_errors, custom_error
from storeflow.flows.values import as_decimal, decimal_to_json, is_number
from storeflow.flows.vocabulary import FIELD_ROOTS, did_you_mean

STEP_KEYS: Final[frozenset[str]] = frozenset({"action", "id", "name"})
"""Keys of an action step that are not parameters."""

RESERVED_ACTIONS: Final[Mapping[str, str]] = MappingProxyType({"push": "push"})
"""Actions of channels that this version does not ship; a clear problem until one registers them."""


class ActionParams(BaseModel):
    """Base for action parameter models: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keep_null: ClassVar[frozenset[str]] = frozenset()
    """Fields whose explicit null is meaningful and kept by :func:`params_to_document`."""

    @classmethod
    def document_problems(cls, params: Mapping[str, Any]) -> list[tuple[Loc, str, str | None]]:
        """Problems in the raw ``params`` that pydantic cannot list one by one (a template can have
        several), as (location relative to the step, message, hint). A pydantic error at one of these
        locations, or with one of these messages, is left out so nothing is reported twice."""
        return []


NonEmptyText = Annotated[StrictStr, Field(min_length=1)]


def _number(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    amount = as_decimal(value) if is_number(value) else None
    if amount is None:
        raise custom_error("must be a number", "e.g. 1 or 12.50")
    return amount


Number = Annotated[
    Decimal,
    BeforeValidator(_number),
    PlainSerializer(decimal_to_json, when_used="json"),
    WithJsonSchema({"type": "number"}),
]


def _product_ref(value: Any) -> FieldPath | str:
    if isinstance(value, FieldPath):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise custom_error("must be a field path or a product id", "e.g. event.product_id or 8412345")
    root = value.split(".", 1)[0]
    if "." in value and root in FIELD_ROOTS:
        try:
            return parse_field_path(value)
        except FieldPathError as exc:
            raise custom_error(exc.message, exc.hint) from None
    return value


ProductRef = Annotated[
    FieldPath | str,
    BeforeValidator(_product_ref),
    PlainSerializer(str, when_used="json"),
    WithJsonSchema({"type": ["string", "integer"], "description": "a field path (event.product_id) or a product id"}),
]


class TagParams(ActionParams):
    """``tag`` and ``untag``: add or remove tags on the profile, the order or the product."""

    target: Literal["profile", "order", "product"] = "profile"
    tags: tuple[NonEmptyText, ...] = Field(min_length=1)


class SetPropertyParams(ActionParams):
    """``set_property``: set a profile property to ``value``, or add ``increment`` to it."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["value"]}, {"required": ["increment"]}]},
    )
    keep_null: ClassVar[frozenset[str]] = frozenset({"value"})

    property: NonEmptyText
    value: JsonValue = None
    increment: Number | None = None
    target: Literal["profile"] = "profile"

    @model_validator(mode="after")
    def _one_of_value_or_increment(self) -> SetPropertyParams:
        given = {"value", "increment"} & self.model_fields_set
        if "increment" in given and self.increment is None:
            raise custom_error("increment must be a number", "e.g. increment: 1")
        if len(given) != 1:
            raise custom_error(
                "set_property needs exactly one of value, increment", "e.g. value: gold, or increment: 1"
            )
        return self


class ProductParams(ActionParams):
    """``hide_product`` and ``publish_product``. Without ``product``: the product of the trigger event."""

    product: ProductRef | None = None


class NoteParams(ActionParams):
    """``note``: record a note on the run's timeline."""

    text: NonEmptyText


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
MAX_WEBHOOK_TIMEOUT: Final = timedelta(seconds=60)


class WebhookParams(ActionParams):
    """``webhook``: send an HTTP request; ``secret`` names a configured signing secret."""

    url: StrictStr = Field(json_schema_extra={"pattern": "^https?://"})
    method: Literal["POST", "PUT", "PATCH"] = Field(
        default="POST", json_schema_extra={"enum": ["POST", "PUT", "PATCH", "post", "put", "patch"]}
    )
    headers: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    body: JsonValue = None
    timeout: Duration = Field(default=timedelta(seconds=10), json_schema_extra={"default": "10s"})
    secret: StrictStr | None = Field(default=None, json_schema_extra={"pattern": f"^{SLUG.pattern}$"})

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            raise custom_error(f'"{url}" is not a valid URL', "e.g. https://example.com/hooks/cart") from None
        if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in url):
            raise custom_error(f'"{url}" is not an http or https URL', "e.g. https://example.com/hooks/cart")
        return url

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, method: Any) -> Any:
        return method.upper() if isinstance(method, str) else method

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise custom_error(f'"{name}" is not a valid header name')
            if "\r" in value or "\n" in value:
                raise custom_error(f'the value of header "{name}" contains a line break')
        return headers

    @field_validator("timeout")
    @classmethod
    def _short_timeout(cls, timeout: timedelta) -> timedelta:
        if timeout > MAX_WEBHOOK_TIMEOUT:
            raise custom_error(f'"{format_duration(timeout)}" is too long', "webhooks time out after at most 60s")
        return timeout

    @field_validator("secret")
    @classmethod
    def _secret_name(cls, secret: str | None) -> str | None:
        if secret is not None and not SLUG.fullmatch(secret):
            raise custom_error(
                f'"{secret}" is not a secret name',
                "secret is the name of a signing secret configured in storeflow, not the secret itself",
            )
        return secret


_ACTIONS: dict[str, type[BaseModel]] = {
    "tag": TagParams,
    "untag": TagParams,
    "set_property": SetPropertyParams,
    "hide_product": ProductParams,
    "publish_product": ProductParams,
    "note": NoteParams,
    "webhook": WebhookParams,
}

ACTIONS: Final[Mapping[str, type[BaseModel]]] = MappingProxyType(_ACTIONS)
"""Action name -> params model. Read-only; add actions with :func:`register_action`."""


def register_action(name: str, model: type[BaseModel], *, replace: bool = False) -> None:
    """Make ``name`` usable as an action whose parameters ``model`` validates.

    The model should be frozen with ``extra="forbid"``; its fields cannot be named action, id or name
    (those are step keys). Raises ValueError for a bad name, a clash, or an existing action unless
    ``replace`` is true.
    """
    if not SLUG.fullmatch(name):
        raise ValueError(f"action name {name!r} is not valid: {SLUG_HINT}")
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError("the params model must be a pydantic BaseModel subclass")
    clash = STEP_KEYS & set(model.model_fields)
    if clash:
        raise ValueError(f"params of {name!r} cannot use the step keys {sorted(clash)}")
    if name in _ACTIONS and not replace:
        raise ValueError(f"action {name!r} is already registered")
    _ACTIONS[name] = model


def unregister_action(name: str) -> None:
    """Remove an action added with :func:`register_action` (tests and plugin unloading)."""
    _ACTIONS.pop(name, None)


def read_action_params(step: Mapping[str, Any], loc: Loc, problems: Problems) -> BaseModel | None:
    """Validate the params of the action step ``step`` found at ``loc``; None after adding problems.

    The params are the keys of the step other than action, id and name.
    """
    name = step.get("action")
    params = {key: value for key, value in step.items() if key not in STEP_KEYS}
    if not isinstance(name, str) or not name:
        problems.add((*loc, "action"), "must be the name of an action", "known actions: " + ", ".join(sorted(_ACTIONS)))
        return None
    model = _ACTIONS.get(name)
    if model is None:
        known = "known actions: " + ", ".join(sorted(_ACTIONS))
        if name in RESERVED_ACTIONS:
            channel = RESERVED_ACTIONS[name]
            problems.add(
                (*loc, "action"),
                f'"{name}" is not available: the {channel} channel is not configured in this version',
                known,
            )
            return None
        close = did_you_mean(name, _ACTIONS, cutoff=0.6)
        problems.add((*loc, "action"), f'unknown action "{name}"', f"{close} {known}" if close else known)
        return None
    checked = model.document_problems(params) if issubclass(model, ActionParams) else []
    for rel, message, hint in checked:
        problems.add((*loc, *rel), message, hint)
    try:
        validated = model.model_validate(params)
    except ValidationError as exc:
        before = len(problems)
        keys = {field.alias or key for key, field in model.model_fields.items()}
        add_pydantic_errors(problems, loc, exc, known_keys=keys | STEP_KEYS)
        covered = {(*loc, *rel) for rel, _, _ in checked}
        said = {message for _, message, _ in checked}
        problems.items[before:] = [
            item for item in problems.items[before:] if item[0] not in covered and item[1] not in said
        ]
        if name == "set_property" and "name" in step and "property" not in step:
            problems.items[before:] = [
                item for item in problems.items[before:] if item[1] != 'missing required key "property"'
            ]
            problems.add(
                (*loc, "name"),
                'set_property takes the property name in "property"',
                '"name" is the label of the step; write property: <property name>',
            )
        return None
    return None if checked else validated


def params_to_document(params: BaseModel) -> dict[str, Any]:
    """The canonical JSON-able document of action params, defaults included, optional nulls left out."""
    data = params.model_dump(mode="json")
    keep: frozenset[str] = getattr(type(params), "keep_null", frozenset())
    return {
        key: value
        for key, value in data.items()
        if value is not None or (key in keep and key in params.model_fields_set)
    }


# The message actions (email, sms, notify_team) build on ActionParams; importing them registers them.
import storeflow.flows.channel_actions  # noqa: E402, F401
