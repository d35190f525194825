"""Params of the message actions: ``email``, ``sms`` and ``notify_team``.

Their texts are templates (see ``templates``), checked when the flow is validated: every problem of
every template is reported with its document path (``steps[2].html``) and line, so a broken
template is refused by ``storeflow flows validate``, not found at send time. Sending is the
channels' job; these models only say what to send.

Importing this module registers the actions (``storeflow.flows.actions`` imports it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from storeflow.flows.actions import ActionParams, register_action
from storeflow.flows.paths import FieldPath, FieldPathError, parse_field_path, resolve
from storeflow.flows.problems import Loc, custom_error
from storeflow.flows.templates import check_template, render
from storeflow.flows.vocabulary import FIELD_ROOTS

MessageKind = Literal["marketing", "transactional"]
_ADDRESS = re.compile(r"[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:.]+")
_PHONE = re.compile(r"\+[1-9]\d{6,14}")
_SLACK_URL_KEYS: Final = frozenset({"url", "webhook", "webhook_url", "slack_url", "slack_webhook"})


def _template(value: str) -> str:
    problems = check_template(value)
    if problems:
        message, hint = problems[0]
        raise custom_error(message, hint)
    return value


Template = Annotated[
    StrictStr,
    Field(min_length=1),
    AfterValidator(_template),
    WithJsonSchema({"type": "string", "minLength": 1, "description": "a template, e.g. Hi {{ profile.first_name }}"}),
]
"""A message template (Jinja, in the sandbox); checked with check_template."""


def _one_line(value: str) -> str:
    if "\n" in value.strip() or "\r" in value:
        raise custom_error("must be one line", "a subject cannot contain line breaks")
    return value


SubjectTemplate = Annotated[Template, AfterValidator(_one_line)]


def _is_address(text: str) -> bool:
    _, address = parseaddr(text)
    return bool(address) and _ADDRESS.fullmatch(address) is not None and "\n" not in text and "\r" not in text


def _address(value: str) -> str:
    if not _is_address(value):
        raise custom_error(f'"{value}" is not an email address', "e.g. shop@example.com or Shop <shop@example.com>")
    return value


Address = Annotated[
    StrictStr,
    AfterValidator(_address),
    WithJsonSchema({"type": "string", "minLength": 3, "description": "an email address, e.g. Shop <shop@example.com>"}),
]


def is_field_path(text: str) -> bool:
    """Whether ``text`` reads as a field path (``profile.properties.work_email``), not a template."""
    text = text.strip()
    return "." in text and text.split(".", 1)[0] in FIELD_ROOTS and not any(c in text for c in "{@ ")


def _read_recipient(value: Any, channel: Literal["email", "sms"]) -> FieldPath | str:
    if isinstance(value, FieldPath):
        return value
    if not isinstance(value, str) or not value.strip():
        example = "profile.properties.work_email" if channel == "email" else "profile.properties.mobile"
        raise custom_error("must be a field path, an address or a template", f"e.g. {example}")
    if is_field_path(value):
        try:
            return parse_field_path(value.strip())
        except FieldPathError as exc:
            raise custom_error(exc.message, exc.hint) from None
    _template(value)
    if "{" not in value:  # a literal recipient
        if channel == "email":
            _address(value)
        elif not _PHONE.fullmatch(re.sub(r"[\s().-]", "", value)):
            raise custom_error(f'"{value}" is not a phone number', "use the international form, e.g. +6281234567890")
    return value


def _email_recipient(value: Any) -> FieldPath | str:
    return _read_recipient(value, "email")


def _phone_recipient(value: Any) -> FieldPath | str:
    return _read_recipient(value, "sms")


def _recipient_schema(what: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "description": f"a field path, a template or {what}"}


EmailRecipient = Annotated[
    FieldPath | str,
    BeforeValidator(_email_recipient),
    PlainSerializer(str, when_used="json"),
    WithJsonSchema(_recipient_schema("an email address; default: the profile's email")),
]
PhoneRecipient = Annotated[
    FieldPath | str,
    BeforeValidator(_phone_recipient),
    PlainSerializer(str, when_used="json"),
    WithJsonSchema(_recipient_schema("a phone number (+6281234567890); default: the profile's phone")),
]


class MessageParams(ActionParams):
    """Base of the message actions: template fields are checked one by one for the flow's problems."""

    template_fields: ClassVar[tuple[str, ...]] = ()
    """Document keys holding templates (a ``to`` that is not a field path counts as one)."""

    @classmethod
    def document_problems(cls, params: Mapping[str, Any]) -> list[tuple[Loc, str, str | None]]:
        found: list[tuple[Loc, str, str | None]] = []
        for key in cls.template_fields:
            value = params.get(key)
            if not isinstance(value, str) or not value.strip() or (key == "to" and is_field_path(value)):
                continue
            found.extend(((key,), message, hint) for message, hint in check_template(value))
        return found


class EmailParams(MessageParams):
    """``email``: a message to the profile (or ``to``). ``subject`` and at least one of ``html`` and
    ``text`` are templates. ``kind: transactional`` (order confirmations, shipping notices) ignores
    marketing unsubscribes but still respects hard bounces."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        serialize_by_alias=True,
        json_schema_extra={"anyOf": [{"required": ["html"]}, {"required": ["text"]}]},
    )
    template_fields: ClassVar[tuple[str, ...]] = ("subject", "html", "text", "to")

    subject: SubjectTemplate
    html: Template | None = None
    text: Template | None = None
    to: EmailRecipient | None = None
    from_: Address | None = Field(default=None, alias="from")
    reply_to: Address | None = None
    kind: MessageKind = "marketing"
    track_opens: StrictBool = True
    track_clicks: StrictBool = True
    utm: StrictBool = True

    @classmethod
    def document_problems(cls, params: Mapping[str, Any]) -> list[tuple[Loc, str, str | None]]:
        found = super().document_problems(params)
        if "html" not in params and "text" not in params:
            found.append(((), _NEEDS_BODY, _NEEDS_BODY_HINT))
        return found

    @model_validator(mode="after")
    def _html_or_text(self) -> EmailParams:
        if self.html is None and self.text is None:
            raise custom_error(_NEEDS_BODY, _NEEDS_BODY_HINT)
        return self


_NEEDS_BODY: Final = "email needs html or text (or both)"
_NEEDS_BODY_HINT: Final = "e.g. text: Hi {{ profile.first_name }}"


class SmsParams(MessageParams):
    """``sms``: a text message to the profile's phone (or ``to``)."""

    template_fields: ClassVar[tuple[str, ...]] = ("text", "to")

    text: Template
    to: PhoneRecipient | None = None
    kind: MessageKind = "marketing"


class NotifyTeamParams(MessageParams):
    """``notify_team``: tell the shop's team, by ``email`` (to ``to``, default the configured team
    addresses) or on ``slack`` (the webhook configured in settings; never a URL in the flow)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"via": {"const": "email"}}},
            "then": {"required": ["subject"]},
            "else": {"not": {"anyOf": [{"required": ["subject"]}, {"required": ["to"]}]}},
        },
    )
    template_fields: ClassVar[tuple[str, ...]] = ("subject", "text")

    via: Literal["email", "slack"]
    to: tuple[Address, ...] | None = Field(default=None, json_schema_extra={"minItems": 1})
    subject: SubjectTemplate | None = Field(default=None, validate_default=True)
    text: Template

    @classmethod
    def document_problems(cls, params: Mapping[str, Any]) -> list[tuple[Loc, str, str | None]]:
        found = super().document_problems(params)
        found.extend(
            (
                (key,),
                "the Slack webhook URL is not written in flows",
                "configure it in storeflow's settings; flows never hold secrets",
            )
            for key in params
            if key in _SLACK_URL_KEYS
        )
        return found

    @field_validator("to")
    @classmethod
    def _to_only_for_email(cls, to: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        if to is not None and info.data.get("via") == "slack":
            raise custom_error("to is only used with via: email", "Slack messages go to the webhook in settings")
        if to is not None and not to:  # checked here: a length rule would also count the invalid items
            raise custom_error("must have at least 1 item", "or leave out to for the configured team addresses")
        return to

    @field_validator("subject")
    @classmethod
    def _subject_for_email(cls, subject: str | None, info: ValidationInfo) -> str | None:
        via = info.data.get("via")
        if subject is None and via == "email":
            raise custom_error("notify_team with via: email needs a subject", "e.g. subject: Low stock")
        if subject is not None and via == "slack":
            raise custom_error("subject is only used with via: email", "write the whole Slack message in text")
        return subject


def render_recipient(
    to: FieldPath | str, record: Mapping[str, Any], context: Mapping[str, Any], *, part: str = "to"
) -> str | None:
    """The recipient a ``to`` param names for this run: a field path is resolved on ``record``, a
    template rendered (as text) with ``context``; None when it comes out empty. Raises TemplateError."""
    if isinstance(to, FieldPath):
        value = resolve(record, to)
        text = "" if value is None or isinstance(value, Mapping | list | tuple) else str(value)
    else:
        text = render(to, context, autoescape=False, part=part)
    return text.strip() or None


CHANNEL_ACTIONS: Final[Mapping[str, type[MessageParams]]] = {
    "email": EmailParams,
    "sms": SmsParams,
    "notify_team": NotifyTeamParams,
}
"""The message actions this module registers."""

for _name, _model in CHANNEL_ACTIONS.items():
    register_action(_name, _model, replace=True)
