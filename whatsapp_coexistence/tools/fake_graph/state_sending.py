"""Sending through the fake Graph API: the checks Meta makes on a message, its status plan,
media uploads."""

import copy
import hashlib
import re
import time
from collections import deque

from .wire import (
    MESSAGE_TYPES,
    GraphError,
    digits,
    envelope,
    error_item,
    invalid_param,
    mask,
    new_numeric_id,
    new_wamid,
    phone_metadata,
    placeholders,
)


class SendingMixin:
    """``POST /{phone_number_id}/messages`` and ``/media``; mixed into
    :class:`~.state.FakeState`."""

    # -- sending ---------------------------------------------------------------------------

    def wa_id_for(self, to):
        """Return the ``wa_id`` Meta would answer for the ``to`` of a send.

        :rtype: str
        """
        number = digits(to)
        with self.lock:
            if number in self.wa_id_map:
                return self.wa_id_map[number]
            legacy = self.config["br_legacy_wa_ids"]
        if legacy and len(number) == 13 and number.startswith("55") and number[4] == "9":
            return number[:4] + number[5:]
        return number

    def _check_template(self, waba_id, template):
        if not isinstance(template, dict):
            raise invalid_param("template must be an object",
                                "(#100) The parameter template is required.")
        name = template.get("name")
        language = template.get("language") or {}
        code = language.get("code") if isinstance(language, dict) else language
        if not name:
            raise invalid_param("template name is required",
                                "(#100) The parameter template['name'] is required.")
        if not code:
            raise invalid_param("template language is required",
                                "(#100) The parameter template['language'] is required.")
        with self.lock:
            waba = self.wabas[waba_id]
            tpl = next((self.templates[t] for t in waba["template_ids"]
                        if self.templates[t]["name"] == name
                        and self.templates[t]["language"] == code), None)
            tpl = copy.deepcopy(tpl)
        if tpl is None:
            raise GraphError(132001, details=f"template name ({name}) does not exist in {code}")
        if tpl["status"] == "PAUSED":
            raise GraphError(132015, details=f"Template {name} is paused")
        if tpl["status"] == "DISABLED":
            raise GraphError(132016, details=f"Template {name} is disabled")
        if tpl["status"] != "APPROVED":
            raise GraphError(132001, details=f"template name ({name}) does not exist in {code}")
        if not isinstance(template.get("components") or [], list):
            raise invalid_param("template components must be an array")
        sent = {}
        for comp in template.get("components") or []:
            if isinstance(comp, dict):
                sent.setdefault(str(comp.get("type", "")).lower(), comp.get("parameters") or [])
        self._check_url_buttons(tpl, template.get("components") or [])
        for comp in tpl["components"]:
            kind = str(comp.get("type", "")).lower()
            if kind not in ("body", "header"):
                continue
            if kind == "header" and str(comp.get("format", "TEXT")).upper() != "TEXT":
                self._check_media_header(comp, sent.get("header", []))
                continue
            expected = placeholders(comp.get("text", ""))
            given = sent.get(kind, [])
            if len(given) != len(expected):
                raise GraphError(
                    132000, details=f"{kind}: number of localizable_params ({len(given)}) does not "
                    f"match the expected number of params ({len(expected)})")
            for param in given:
                self._check_param(param, tpl["parameter_format"], expected)
        return tpl

    @staticmethod
    def _check_media_header(comp, given):
        """An IMAGE/DOCUMENT/VIDEO header takes one parameter of that type, by id or link."""
        fmt = str(comp.get("format")).lower()
        if len(given) != 1:
            raise GraphError(132000, details=f"header: number of localizable_params "
                             f"({len(given)}) does not match the expected number of params (1)")
        param = given[0] if isinstance(given[0], dict) else {}
        media = param.get(fmt) if isinstance(param.get(fmt), dict) else {}
        if param.get("type") != fmt or not (media.get("id") or media.get("link")):
            raise GraphError(132012, details=f"header: expected a {fmt.upper()} parameter "
                             "with an id or a link")

    @staticmethod
    def _check_url_buttons(tpl, components):
        """Each URL button whose link holds ``{{1}}`` takes one text parameter at its index."""
        sent = {str(c.get("index")): c for c in components
                if isinstance(c, dict) and str(c.get("type", "")).lower() == "button"
                and str(c.get("sub_type", "")).lower() == "url"}
        for comp in tpl["components"]:
            if str(comp.get("type", "")).upper() != "BUTTONS":
                continue
            for index, button in enumerate(comp.get("buttons") or []):
                if button.get("type") != "URL" or not placeholders(button.get("url", "")):
                    continue
                params = (sent.get(str(index)) or {}).get("parameters") or []
                if len(params) != 1:
                    raise GraphError(132000, details=f"button {index}: number of "
                                     f"localizable_params ({len(params)}) does not match the "
                                     "expected number of params (1)")
                text = params[0].get("text") if isinstance(params[0], dict) else None
                if not text or not str(text).strip():
                    raise GraphError(131008, details="Parameter of type text is missing text "
                                     "value")

    def _template_media_failure(self, phone, template):
        """131053 (as a failed status) when a media header names an id Meta does not hold."""
        for comp in template.get("components") or []:
            if not isinstance(comp, dict) or str(comp.get("type", "")).lower() != "header":
                continue
            for param in comp.get("parameters") or []:
                kind = param.get("type") if isinstance(param, dict) else None
                if kind in ("image", "document", "video") and isinstance(param.get(kind), dict):
                    failure = self._check_media_object(phone, kind, param[kind])
                    if failure:
                        return failure
        return None

    @staticmethod
    def _check_param(param, fmt, expected):
        if not isinstance(param, dict):
            raise invalid_param("Each parameter must be an object")
        if fmt == "NAMED":
            pname = param.get("parameter_name")
            if not pname:
                raise invalid_param("Parameter name is missing or empty")
            if pname not in expected:
                raise invalid_param(f"Parameter name {pname!r} does not exist in the template")
        if param.get("type", "text") == "text":
            text = param.get("text")
            if text is None or not str(text).strip():
                raise GraphError(131008, details="Parameter of type text is missing text value")
            if re.search(r"[\n\t]| {5,}", str(text)):
                raise GraphError(132018, details="Param text cannot have new-line/tab "
                                 "characters or more than 4 consecutive spaces")

    def send_message(self, phone, payload):
        """``POST /{phone_number_id}/messages``: validate, record and answer like Meta.

        :param dict phone: the sending phone record (already permission-checked).
        :param dict payload: the request JSON.
        :return: ``(response body, message record)``; the record's ``plan`` lists the status
            webhooks to send (``[(status, error_code or None), ...]``).
        :raises GraphError: validation, template and rate-limit errors.
        """
        to, msg_type = self._check_envelope(payload)
        wa_id = self.wa_id_for(to)
        if len(wa_id) < 8:
            raise invalid_param(f"Invalid WhatsApp recipient: {to!r}")
        if wa_id == digits(phone["display_phone_number"]):
            raise GraphError(131021)
        category, media_failure = self._check_content(phone, msg_type, payload)
        now = time.time()
        with self.lock:
            self._check_throughput(phone, wa_id, now)
            wamid = new_wamid(wa_id)
            while wamid in self.messages:
                wamid = new_wamid(wa_id)
            record = {
                "wamid": wamid, "phone_number_id": phone["id"], "waba_id": phone["waba_id"],
                "to": to, "wa_id": wa_id, "type": msg_type, "category": category,
                "biz_opaque_callback_data": payload.get("biz_opaque_callback_data"),
                "payload": copy.deepcopy(payload), "time": now, "statuses": [],
                "plan": self._status_plan(wa_id, media_failure),
            }
            self.messages[wamid] = record
            while len(self.messages) > int(self.config["max_records"]):
                self.messages.popitem(last=False)
        response = {"messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": wa_id}],
                    "messages": [{"id": wamid, "message_status": "accepted"}]}
        return response, record

    @staticmethod
    def _check_envelope(payload):
        """The fields every send needs, checked as Meta does; returns ``(to, type)``."""
        if not isinstance(payload, dict):
            raise invalid_param("The request body must be a JSON object")
        product = payload.get("messaging_product")
        if not product:
            raise invalid_param("messaging_product is required",
                                "(#100) The parameter messaging_product is required.")
        if product != "whatsapp":
            raise invalid_param('messaging_product must be "whatsapp"',
                                '(#100) Param messaging_product must be one of {WHATSAPP} - '
                                f'got "{product}".')
        to = payload.get("to")
        if not to:
            raise invalid_param("to is required", "(#100) The parameter to is required.")
        msg_type = payload.get("type", "text")
        if msg_type not in MESSAGE_TYPES:
            choices = ", ".join(t.upper() for t in MESSAGE_TYPES)
            raise invalid_param(
                "type", f'(#100) Param type must be one of {{{choices}}} - got "{msg_type}".')
        return to, msg_type

    def _check_content(self, phone, msg_type, payload):
        """The message's own object, checked by type; returns ``(category, media failure)``."""
        if msg_type == "text":
            body = (payload.get("text") or {}).get("body") if isinstance(
                payload.get("text"), dict) else None
            if not body:
                raise invalid_param("text body is required",
                                    "(#100) The parameter text['body'] is required.")
            if len(body) > 4096:
                raise invalid_param("text body too long", "(#100) Param text['body'] must be "
                                    "at most 4096 characters long.")
            return "service", None
        if msg_type == "template":
            tpl = self._check_template(phone["waba_id"], payload.get("template"))
            return tpl["category"].lower(), self._template_media_failure(
                phone, payload["template"])
        if not isinstance(payload.get(msg_type), dict):
            raise invalid_param(f"{msg_type} object is required",
                                f"(#100) The parameter {msg_type} is required.")
        return "service", self._check_media_object(phone, msg_type, payload[msg_type])

    def _check_throughput(self, phone, wa_id, now):
        """The number's messages per second (130429) and the pair spacing (131056); call
        with the lock held: a send that passes is counted."""
        limit = self.config["throughput_limit"]
        if limit:
            window = self._rate.setdefault(phone["id"], deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                raise GraphError(130429, details="Cloud API message throughput has been "
                                 "reached.")
            window.append(now)
        spacing = self.config["pair_limit_seconds"]
        if spacing:
            key = (phone["id"], wa_id)
            last = self._pair.get(key)
            if last is not None and now - last < spacing:
                raise GraphError(131056, details="Message failed to send because there "
                                 "were too many messages sent from this phone number to the "
                                 "same phone number in a short period of time.")
            self._pair[key] = now

    def _status_plan(self, wa_id, media_failure):
        """The status webhooks the send will get: ``[(status, error code or None), ...]``."""
        failure = self.config["recipient_failures"].get(wa_id) or media_failure
        if failure:
            return [("failed", int(failure))]
        return [(item.get("status", "failed"), item.get("code")) if isinstance(item, dict)
                else (str(item), None) for item in self.config["status_sequence"]]

    # -- media uploads (POST /{phone_number_id}/media) -----------------------------------

    def store_upload(self, phone, kind, upload):
        """Keep an uploaded file for ``phone`` and answer its new media id like Meta.

        :param dict upload: the checked file part (``filename``, ``content_type``, ``content``)
        :rtype: dict
        """
        with self.lock:
            media_id = new_numeric_id(self.uploads)
            self.uploads[media_id] = dict(upload, id=media_id, kind=kind,
                                          phone_number_id=phone["id"], time=time.time(),
                                          sha256=hashlib.sha256(upload["content"]).hexdigest())
            while len(self.uploads) > int(self.config["max_records"]):
                self.uploads.popitem(last=False)
        return {"id": media_id}

    def upload(self, media_id):
        """The uploaded file behind ``media_id`` (with its bytes), or ``None``.

        :rtype: dict | None
        """
        with self.lock:
            found = self.uploads.get(str(media_id))
            return dict(found) if found else None

    def _check_media_object(self, phone, msg_type, media):
        """Check the media object of an image/audio/video/document/sticker send.

        Meta accepts a send whose media id it cannot use and fails it afterwards with a
        ``failed`` status (131053): the returned code plans that status.

        :returns: an error code for the status plan, or ``None``
        :raises GraphError: code 100 when the object has neither ``id`` nor ``link``
        """
        if msg_type not in ("audio", "document", "image", "sticker", "video"):
            return None
        if not media.get("id") and not media.get("link"):
            raise invalid_param(f"{msg_type} needs an id or a link",
                                f"(#100) Param {msg_type} must contain either id or link.")
        if media.get("link"):
            return None
        with self.lock:
            upload = self.uploads.get(str(media["id"]))
        if upload is None or upload["phone_number_id"] != phone["id"]:
            return 131053
        return None

    def status_webhook(self, wamid, status, code=None):
        """Build a §2.2 status webhook for a sent message and remember the status.

        ``pricing`` goes with ``sent`` and with the first of ``delivered``/``read`` (Meta: "with
        sent and one of delivered/read, not both"). Returns ``(waba_id, payload)`` or
        ``(None, None)`` when the message is unknown (e.g. after a reset).
        """
        with self.lock:
            msg = self.messages.get(wamid)
            if msg is None:
                return None, None
            phone = self.phones.get(msg["phone_number_id"])
            if phone is None:
                return None, None
            item = {"id": wamid, "status": status, "timestamp": str(int(time.time())),
                    "recipient_id": msg["wa_id"]}
            if msg["biz_opaque_callback_data"] is not None:
                item["biz_opaque_callback_data"] = msg["biz_opaque_callback_data"]
            priced = status == "sent" or (
                status in ("delivered", "read")
                and not {"delivered", "read"} & set(msg["statuses"]))
            if priced:
                free = msg["category"] == "service"
                item["pricing"] = {"billable": not free, "pricing_model": "PMP",
                                   "type": "free_customer_service" if free else "regular",
                                   "category": msg["category"]}
            if status == "failed":
                item["errors"] = [error_item(int(code or 131026))]
            msg["statuses"].append(status)
            value = {"messaging_product": "whatsapp", "metadata": phone_metadata(phone),
                     "statuses": [item]}
            return msg["waba_id"], envelope(msg["waba_id"], "messages", value)

    def register(self, phone, payload):
        """``POST /{phone_number_id}/register``: recorded so tests can assert coexistence
        numbers are never registered (§3.3: "skip the phone number registration step")."""
        pin = str((payload or {}).get("pin") or "")
        if (payload or {}).get("messaging_product") != "whatsapp":
            raise invalid_param("messaging_product is required",
                                "(#100) The parameter messaging_product is required.")
        if not re.fullmatch(r"\d{6}", pin):
            raise invalid_param("pin must be 6 digits", "(#100) The parameter pin is required.")
        with self.lock:
            phone["registrations"].append({"time": time.time(), "pin": mask(pin)})
        return {"success": True}
