"""Sticker size limits: static 100 KB, animated 500 KB, the larger bound when the webhook does
not say (``media_limits.max_bytes``), from Meta's inbound sticker payload to the check."""

import pytest

from wa_cloud import webhook
from wa_cloud.media import MediaRefused, check_allowed, size_limit
from wa_cloud.media_limits import STATIC_STICKER_BYTES, max_bytes

KB = 1024


def sticker_message(**sticker):
    """An inbound sticker message as Meta sends it (``messages`` webhook value)."""
    body = {"mime_type": "image/webp", "sha256": "abc", "id": "2754859441498128"}
    body.update(sticker)
    return {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540"},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5511987651234"}],
            "messages": [{"from": "5511987651234", "id": "wamid.sticker",
                          "timestamp": "1749416383", "type": "sticker", "sticker": body}]}


@pytest.mark.parametrize("animated,limit", [
    (False, 100 * KB), (True, 500 * KB), (None, 500 * KB)])
def test_each_sticker_kind_has_its_limit(animated, limit):
    assert max_bytes("sticker", animated) == size_limit("sticker", animated) == limit
    assert STATIC_STICKER_BYTES == 100 * KB


def test_the_flag_only_matters_for_stickers():
    assert max_bytes("image", False) == max_bytes("image") == 5 * 1024 * KB
    assert max_bytes("text", False) is None


def test_a_static_sticker_of_200_kb_is_too_large_an_animated_one_is_not():
    with pytest.raises(MediaRefused) as refused:
        check_allowed("sticker", "image/webp", 200 * KB, animated=False)
    assert refused.value.reason == "too_large"
    assert "102400" in refused.value.message
    check_allowed("sticker", "image/webp", 200 * KB, animated=True)
    check_allowed("sticker", "image/webp", 200 * KB)  # not said: the larger bound
    with pytest.raises(MediaRefused):
        check_allowed("sticker", "image/webp", 501 * KB, animated=True)


@pytest.mark.parametrize("value,parsed", [
    (True, True), (False, False), ("false", None), (1, None), ("missing", None)])
def test_the_webhook_says_whether_a_sticker_is_animated(value, parsed):
    extra = {} if value == "missing" else {"animated": value}
    (msg,) = webhook.inbound_messages(sticker_message(**extra))
    assert msg.media["type"] == "sticker"
    assert msg.media["animated"] is parsed


def test_other_media_carry_no_animated_key():
    value = sticker_message()
    value["messages"][0].update(type="image", image={"mime_type": "image/jpeg", "id": "9"})
    (msg,) = webhook.inbound_messages(value)
    assert "animated" not in msg.media
