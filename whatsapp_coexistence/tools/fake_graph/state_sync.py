"""Coexistence sync (contacts and history) and the simulated inbound webhooks of the fake
Graph API."""

import copy
import secrets
import time
from typing import NamedTuple

from .wire import (
    ERROR_MESSAGES,
    SYNC_TYPES,
    digits,
    envelope,
    invalid_param,
    new_wamid,
    phone_metadata,
)


class SyncMixin:
    """The webhooks Meta would send; mixed into :class:`~.state.FakeState`."""

    # -- coexistence sync (§3.4) -------------------------------------------------------------

    def request_sync(self, phone, payload):
        """``POST /{phone_number_id}/smb_app_data``; each ``sync_type`` only once per number.

        :return: ``(response, sync_type)``.
        """
        payload = payload if isinstance(payload, dict) else {}
        if payload.get("messaging_product") != "whatsapp":
            raise invalid_param("messaging_product is required",
                                "(#100) The parameter messaging_product is required.")
        sync_type = payload.get("sync_type")
        if sync_type not in SYNC_TYPES:
            raise invalid_param("sync_type", '(#100) Param sync_type must be one of '
                                f'{{SMB_APP_STATE_SYNC, HISTORY}} - got "{sync_type}".')
        with self.lock:
            if not phone.get("is_on_biz_app"):
                raise invalid_param(
                    "This phone number is not connected to the WhatsApp Business app "
                    "(coexistence); smb_app_data is only available for coexistence numbers.")
            if sync_type in phone["syncs"]:
                raise invalid_param(
                    "sync_type {} was already requested for this phone number (request_id "
                    "{}). It can only be requested once; the business must offboard and "
                    "complete Embedded Signup again to repeat it.".format(
                        sync_type, phone["syncs"][sync_type]["request_id"]),
                    f"(#100) Synchronization of {sync_type} was already requested for this phone "
                    "number")
            request_id = str(secrets.randbelow(9 * 10**15) + 10**15)
            phone["syncs"][sync_type] = {"request_id": request_id, "time": time.time()}
        return {"messaging_product": "whatsapp", "request_id": request_id}, sync_type

    def contacts_webhooks(self, phone):
        """Build the §2.4 ``smb_app_state_sync`` webhooks for a number's seeded contacts.

        :rtype: list
        """
        with self.lock:
            size = max(1, int(self.config["contacts_chunk_size"]))
            contacts = copy.deepcopy(phone["contacts"])
            md = phone_metadata(phone)
        stamp = str(int(time.time()))
        items = [{"type": "contact", "contact": c, "action": "add",
                  "metadata": {"timestamp": stamp}} for c in contacts]
        payloads = []
        for i in range(0, len(items), size):
            value = {"messaging_product": "whatsapp", "metadata": md,
                     "state_sync": items[i:i + size]}
            payloads.append(envelope(phone["waba_id"], "smb_app_state_sync", value))
        return payloads

    def contact_webhook(self, phone_id, phone_number, action="add", full_name=None,
                        first_name=None):
        """Build one later address-book change (``add`` = added or edited, ``remove``).

        :rtype: tuple
        """
        with self.lock:
            phone = self.phones[str(phone_id)]
            md = phone_metadata(phone)
        contact = {"phone_number": digits(phone_number)}
        if action != "remove":
            # Meta leaves the names out on remove (§2.4).
            contact = {"full_name": full_name or phone_number,
                       "first_name": first_name or (full_name or "").split(" ")[0],
                       "phone_number": digits(phone_number)}
        value = {"messaging_product": "whatsapp", "metadata": md, "state_sync": [{
            "type": "contact", "contact": contact, "action": action,
            "metadata": {"timestamp": str(int(time.time()))}}]}
        return phone["waba_id"], envelope(phone["waba_id"], "smb_app_state_sync", value)

    def history_webhooks(self, phone):
        """Build the §2.3 ``history`` webhooks: chunks per phase 0..2, progress up to 100,
        then media follow-ups for placeholders younger than 14 days; or the 2593109 error.

        :rtype: list
        """
        with self.lock:
            md = phone_metadata(phone)
            threads = copy.deepcopy(phone["history"])
            per_chunk = max(1, int(self.config["history_chunk_threads"]))
            declined = bool(phone.get("history_declined"))
        waba_id = phone["waba_id"]
        if declined:
            title = ERROR_MESSAGES[2593109]
            value = {"messaging_product": "whatsapp", "metadata": md, "history": [{"errors": [{
                "code": 2593109, "title": title, "message": title,
                "error_data": {"details": "History sharing is turned off by the business"}}]}]}
            return [envelope(waba_id, "history", value)]
        phases = {0: [], 1: [], 2: []}
        followups = []
        onboard = time.time()
        for thread in threads:
            by_phase = _history_thread(phone, md["display_phone_number"], thread, onboard,
                                       followups)
            for phase, msgs in by_phase.items():
                if msgs:
                    phases[phase].append({"id": thread["id"], "messages": msgs})
        payloads = []
        chunks = _history_chunks(phases, per_chunk)
        for n, (phase, order, group) in enumerate(chunks, start=1):
            value = {"messaging_product": "whatsapp", "metadata": md, "history": [{
                "metadata": {"phase": phase, "chunk_order": order,
                             "progress": round(100.0 * n / len(chunks))},
                "threads": group}]}
            payloads.append(envelope(waba_id, "history", value))
        for item in followups:
            value = {"messaging_product": "whatsapp", "metadata": md, "messages": [item]}
            payloads.append(envelope(waba_id, "history", value))
        return payloads

    # -- simulated inbound events ---------------------------------------------------------

    def inbound_webhook(self, phone_id, sender, text=None, name=None, button=None,
                        context_id=None):
        """Build a §2.1 inbound message (text, or a template quick-reply ``button``).

        :param dict button: ``{"payload": ..., "text": ...}`` for a quick-reply tap.
        :param str context_id: wamid the user replied to (``context.id``).
        :return: ``(waba_id, wamid, payload)``.
        """
        with self.lock:
            phone = self.phones[str(phone_id)]
            md = phone_metadata(phone)
        sender = digits(sender)
        wamid = new_wamid(sender)
        msg = {"from": sender, "id": wamid, "timestamp": str(int(time.time()))}
        if context_id:
            msg["context"] = {"from": md["display_phone_number"], "id": context_id}
        if button:
            msg["type"] = "button"
            msg["button"] = {"payload": button.get("payload", ""),
                             "text": button.get("text", button.get("payload", ""))}
        else:
            msg["type"] = "text"
            msg["text"] = {"body": text or ""}
        value = {"messaging_product": "whatsapp", "metadata": md,
                 "contacts": [{"profile": {"name": name or sender}, "wa_id": sender}],
                 "messages": [msg]}
        return phone["waba_id"], wamid, envelope(phone["waba_id"], "messages", value)

    def echo_webhook(self, phone_id, to, text):
        """Build a §2.5 ``smb_message_echoes`` webhook (the business replied from the app).

        :return: ``(waba_id, wamid, payload)``.
        """
        with self.lock:
            phone = self.phones[str(phone_id)]
            md = phone_metadata(phone)
        wamid = new_wamid(digits(to))
        value = {"messaging_product": "whatsapp", "metadata": md, "message_echoes": [{
            "from": md["display_phone_number"], "to": str(to), "id": wamid,
            "timestamp": str(int(time.time())), "type": "text", "text": {"body": text or ""}}]}
        return phone["waba_id"], wamid, envelope(phone["waba_id"], "smb_message_echoes", value)

    def template_status_webhook(self, waba_id, tpl, reason="NONE"):
        """Build a §2.7 ``message_template_status_update`` webhook.

        :rtype: dict
        """
        value = {"event": tpl["status"], "message_template_id": int(tpl["id"]),
                 "message_template_name": tpl["name"],
                 "message_template_language": tpl["language"], "reason": reason or "NONE",
                 "message_template_category": tpl["category"]}
        if tpl["status"] == "DISABLED":
            value["disable_info"] = {"disable_date": str(int(time.time()))}
        return envelope(waba_id, "message_template_status_update", value, with_time=True)


def _history_thread(phone, business, thread, onboard, followups):
    """One thread's messages as history items, by phase (0: the last day, 1: up to 90 days,
    2: up to 180 days; older ones are not synced), its media follow-ups appended to
    ``followups``.

    :rtype: dict
    """
    by_phase = {0: [], 1: [], 2: []}
    for index, m in enumerate(thread.get("messages", [])):
        age = float(m.get("age_seconds", 0))
        if age > 180 * 86400:
            continue  # Meta syncs 180 days only
        phase = 0 if age <= 86400 else 1 if age <= 90 * 86400 else 2
        sender = business if m.get("from_me") else thread["id"]
        wamid = new_wamid(thread["id"], f"{phone['id']}/{thread['id']}/{index}")
        item = {"from": sender, "id": wamid, "timestamp": str(int(onboard - age)),
                "type": m.get("type", "text")}
        if item["type"] == "text":
            item["text"] = {"body": m.get("text", "")}
        item["history_context"] = {"status": m.get("status", "READ")}
        by_phase[phase].append(item)
        media = m.get("media")
        if item["type"] == "media_placeholder" and media and age <= 14 * 86400:
            kind = media.get("type", "image")
            followups.append({"from": sender, "id": wamid,
                              "timestamp": item["timestamp"], "type": kind,
                              kind: {k: v for k, v in media.items() if k != "type"}})
    return by_phase


class HistoryChunk(NamedTuple):
    """One ``history`` webhook's threads, and where it stands in the sync."""

    phase: int
    order: int
    threads: list


def _history_chunks(phases, per_chunk):
    """Every :class:`HistoryChunk`, phase by phase, at most ``per_chunk`` threads each; one
    empty chunk when nothing is shared.

    :rtype: list[HistoryChunk]
    """
    chunks = []
    for phase in (0, 1, 2):
        group = phases[phase]
        for order, i in enumerate(range(0, len(group), per_chunk), start=1):
            chunks.append(HistoryChunk(phase, order, group[i:i + per_chunk]))
    if not chunks:
        # Nothing to share still has to end the sync at 100 %.
        chunks.append(HistoryChunk(2, 1, []))
    return chunks
