"""Parsing of the WABA-level health webhooks (quality, display name, messaging limit)."""

from wa_cloud import health, webhook


def test_health_fields_are_handled():
    assert health.HEALTH_FIELDS <= webhook.HANDLED_FIELDS


def test_quality_update_flagged_and_limit_change():
    update = health.quality_update({"display_phone_number": "15550783881", "event": "flagged",
                                    "current_limit": "TIER_1K", "old_limit": "TIER_10K"})
    assert update == health.QualityUpdate("15550783881", "FLAGGED", "TIER_1K", "TIER_10K")
    assert health.quality_update(None) == health.QualityUpdate(None, None, None, None)


def test_name_update():
    update = health.name_update({"display_phone_number": "15550783881", "decision": "DECLINED",
                                 "requested_verified_name": "Clínica Sorriso",
                                 "rejection_reason": "NAME_FORMAT_UNACCEPTABLE"})
    assert update.decision in health.NAME_REFUSED
    assert update.requested_verified_name == "Clínica Sorriso"
    assert health.name_update({"decision": "APPROVED"}).rejection_reason is None


def test_capability_update_new_and_old_shapes():
    new = health.capability_update({"max_daily_conversations_per_business": "TIER_2K",
                                    "max_phone_numbers_per_business": 2})
    assert new == health.CapabilityUpdate("TIER_2K", 2)
    old = health.capability_update({"max_daily_conversation_per_phone": 1000,
                                    "max_phone_numbers_per_business": "x"})
    assert old == health.CapabilityUpdate("1000", None)
