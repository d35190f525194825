"""Flow definitions as validated, frozen data, separate from their execution.

Load and validate::

    from storeflow.flows import load_flow
    flow = load_flow(text, source="flows/cart.yaml")     # raises FlowValidationError with every problem
    flow.digest, flow.to_document()

Walk (the engine)::

    path = first_path(flow); step = step_at(flow, path); path = next_path(flow, path)

Evaluate conditions::

    ctx = EvalContext(record={"profile": {...}}, now=clock.now(), history=port, profile_id=pid)
    evaluate(flow.exit_when, ctx)

Render message templates (email, sms, notify_team) in the sandbox::

    context = build_context(record, locale="id_ID", timezone="Asia/Jakarta", currency="IDR",
                            flow={"id": flow.id, "name": flow.name}, links={"unsubscribe": url})
    render(step.params.html, context, autoescape=True, part="html")  # TemplateError on failure

The document format and the condition language are described in docs/flows.md.
"""

from storeflow.flows.actions import (
    ACTIONS,
    ActionParams,
    NoteParams,
    ProductParams,
    SetPropertyParams,
    TagParams,
    WebhookParams,
    params_to_document,
    register_action,
    unregister_action,
)
from storeflow.flows.channel_actions import (
    EmailParams,
    MessageParams,
    NotifyTeamParams,
    SmsParams,
    render_recipient,
)
from storeflow.flows.condition_parser import parse_condition
from storeflow.flows.conditions import (
    Aggregate,
    AllOf,
    AnyOf,
    Comparison,
    ComparisonOp,
    Condition,
    CountAggregate,
    ExistsAggregate,
    History,
    HistoryWindow,
    LastSeenAggregate,
    Not,
    SumAggregate,
    condition_to_document,
    iter_conditions,
)
from storeflow.flows.cursor import (
    StepPath,
    branch_path,
    choose_variant,
    find_step,
    first_path,
    format_path,
    iter_steps,
    next_path,
    parse_path,
    step_at,
    step_key,
)
from storeflow.flows.definition import FlowDefinition, FlowStatus, Reentry, parse_flow
from storeflow.flows.durations import Duration, DurationError, format_duration, parse_duration
from storeflow.flows.evaluate import EvalContext, HistoryPort, evaluate
from storeflow.flows.loader import load_flow
from storeflow.flows.paths import FieldPath, parse_field_path, resolve
from storeflow.flows.schema import flow_json_schema
from storeflow.flows.steps import (
    ActionStep,
    ExitStep,
    IfStep,
    SplitStep,
    Step,
    Variant,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
)
from storeflow.flows.templates import (
    TEMPLATE_ROOTS,
    RecordView,
    TemplateError,
    build_context,
    check_template,
    render,
)
from storeflow.flows.timing import (
    next_date_trigger_time,
    next_schedule_time,
    wait_until_deadline,
    zone_for,
)
from storeflow.flows.triggers import DateTrigger, EventTrigger, ScheduleTrigger, SegmentTrigger, Trigger
from storeflow.flows.vocabulary import FIELD_ROOTS, KNOWN_EVENT_TYPES

__all__ = [
    "ACTIONS",
    "FIELD_ROOTS",
    "KNOWN_EVENT_TYPES",
    "TEMPLATE_ROOTS",
    "ActionParams",
    "ActionStep",
    "Aggregate",
    "AllOf",
    "AnyOf",
    "Comparison",
    "ComparisonOp",
    "Condition",
    "CountAggregate",
    "DateTrigger",
    "Duration",
    "DurationError",
    "EmailParams",
    "EvalContext",
    "EventTrigger",
    "ExistsAggregate",
    "ExitStep",
    "FieldPath",
    "FlowDefinition",
    "FlowStatus",
    "History",
    "HistoryPort",
    "HistoryWindow",
    "IfStep",
    "LastSeenAggregate",
    "MessageParams",
    "Not",
    "NoteParams",
    "NotifyTeamParams",
    "ProductParams",
    "RecordView",
    "Reentry",
    "ScheduleTrigger",
    "SegmentTrigger",
    "SetPropertyParams",
    "SmsParams",
    "SplitStep",
    "Step",
    "StepPath",
    "SumAggregate",
    "TagParams",
    "TemplateError",
    "Trigger",
    "Variant",
    "WaitForStep",
    "WaitStep",
    "WaitUntilStep",
    "WebhookParams",
    "branch_path",
    "build_context",
    "check_template",
    "choose_variant",
    "condition_to_document",
    "evaluate",
    "find_step",
    "first_path",
    "flow_json_schema",
    "format_duration",
    "format_path",
    "iter_conditions",
    "iter_steps",
    "load_flow",
    "next_date_trigger_time",
    "next_path",
    "next_schedule_time",
    "params_to_document",
    "parse_condition",
    "parse_duration",
    "parse_field_path",
    "parse_flow",
    "parse_path",
    "register_action",
    "render",
    "render_recipient",
    "resolve",
    "step_at",
    "step_key",
    "unregister_action",
    "wait_until_deadline",
    "zone_for",
]
