"""Campaigns: one message to an audience of segments, frozen when sending starts and sent through
the outbox (see docs/campaigns.md)."""

from storeflow.campaigns.definition import (
    CampaignDefinition,
    CampaignValidationError,
    Schedule,
    Variant,
    load_campaign,
    parse_campaign,
)

__all__ = ["CampaignDefinition", "CampaignValidationError", "Schedule", "Variant", "load_campaign",
           "parse_campaign"]
