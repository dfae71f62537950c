"""State and behaviour of the fake Meta Graph API (WhatsApp Cloud API).

Everything here is plain data guarded by one lock (:attr:`FakeState.lock`); :mod:`.server` adds the
HTTP transport, the webhook worker and the public :class:`~.server.FakeGraphServer` API.

Wire formats follow ``shared/reference/meta-whatsapp-coexistence.md`` (§1 webhooks, §2 payloads,
§3.3/§3.4 onboarding, §4.1 send, §4.2 error codes).
"""

import copy
import secrets
import threading
import time
from collections import OrderedDict, deque

from .state_sending import SendingMixin
from .state_sync import SyncMixin
from .state_templates import TemplatesMixin
from .wire import (
    DEFAULT_CONFIG,
    DEFAULT_PHONE_FIELDS,
    DEFAULT_TEMPLATE_FIELDS,
    DEFAULT_WABA_FIELDS,
    PHONE_FIELDS,
    PHONE_SETTABLE,
    WABA_FIELDS,
    GraphError,
    check_config,
    digits,
    encode_cursor,
    envelope,
    invalid_param,
    load_seed,
    mask,
    new_numeric_id,
    new_wamid,
    normalise_fault,
    parse_fields,
    phone_metadata,
    unsupported,
)


class FakeState(TemplatesMixin, SendingMixin, SyncMixin):
    """All mutable state of one fake Graph server, behind one re-entrant lock.

    :param seed: ``None`` (demo seed), a dict, or a JSON file path; see ``seed_demo.json``.
    :param str app_id: overrides the seed's app id.
    :param str app_secret: overrides the seed's app secret.
    :param dict config: overrides of :data:`DEFAULT_CONFIG`.
    """

    def __init__(self, seed=None, app_id=None, app_secret=None, config=None):
        self.lock = threading.RLock()
        self._seed = load_seed(seed)
        if app_id:
            self._seed["app"]["app_id"] = str(app_id)
        if app_secret:
            self._seed["app"]["app_secret"] = str(app_secret)
        base = dict(DEFAULT_CONFIG)
        for values in (self._seed["config"], config or {}):
            check_config(values)
            base.update(values)
        self._base_config = base
        self.generation = 0
        self.reset()

    # -- seed / reset --------------------------------------------------------------------

    def reset(self):
        """Restore the seed and the construction-time config; forget requests, faults,
        messages and the webhook log."""
        with self.lock:
            seed = copy.deepcopy(self._seed)
            self.generation += 1
            self.config = copy.deepcopy(self._base_config)
            self.app = seed["app"]
            self.wabas = OrderedDict()
            self.phones = {}
            self.templates = {}
            for w in seed["wabas"]:
                waba = {k: v for k, v in w.items() if k not in ("phone_numbers", "templates")}
                waba["id"] = str(waba["id"])
                waba.setdefault("name", waba["id"])
                waba["phone_ids"] = []
                waba["template_ids"] = []
                waba["subscription"] = w.get("subscription")
                self.wabas[waba["id"]] = waba
                for p in w.get("phone_numbers", []):
                    phone = dict(p)
                    phone["id"] = str(phone["id"])
                    phone["waba_id"] = waba["id"]
                    phone.setdefault("contacts", [])
                    phone.setdefault("history", [])
                    phone["syncs"] = {}
                    phone["registrations"] = []
                    self.phones[phone["id"]] = phone
                    waba["phone_ids"].append(phone["id"])
                for t in w.get("templates", []):
                    tpl = self._new_template_record(waba["id"], t)
                    waba["template_ids"].append(tpl["id"])
            self.tokens = {}
            for t in seed["tokens"]:
                self.tokens[t["token"]] = {"token": t["token"], "source": "seed",
                                           "waba_ids": {str(x) for x in t.get("waba_ids", [])}}
            now = time.time()
            self.codes = {}
            for c in seed["codes"]:
                self.codes[c["code"]] = {
                    "code": c["code"], "waba_id": str(c["waba_id"]),
                    "phone_number_id": c.get("phone_number_id"), "issued_at": now,
                    "ttl": c.get("ttl", self.config["code_ttl"]), "used": False}
            self.wa_id_map = {digits(k): digits(v) for k, v in seed["wa_id_map"].items()}
            cap = int(self.config["max_records"])
            self.records = deque(maxlen=cap)
            self.messages = OrderedDict()
            self.faults = []
            self._fault_seq = 0
            self.webhook_log = deque(maxlen=1000)
            self._rate = {}
            self._pair = {}
            self.uploads = OrderedDict()

    def _new_template_record(self, waba_id, data):
        tpl = {
            "id": str(data.get("id") or new_numeric_id(self.templates)),
            "name": data["name"],
            "language": data["language"],
            "status": data.get("status", "APPROVED"),
            "category": data.get("category", "UTILITY").upper(),
            "parameter_format": data.get("parameter_format", "POSITIONAL").upper(),
            "components": copy.deepcopy(data.get("components", [])),
            "waba_id": waba_id,
        }
        self.templates[tpl["id"]] = tpl
        return tpl

    # -- config ---------------------------------------------------------------------------

    def configure(self, values):
        """Update the run-time config and return it.

        :raises ValueError: on unknown keys.
        :rtype: dict
        """
        check_config(values)
        with self.lock:
            self.config.update(values)
            if "max_records" in values:
                self.records = deque(self.records, maxlen=int(values["max_records"]))
            return copy.deepcopy(self.config)

    def cfg(self, key):
        """Return one config value (under the lock)."""
        with self.lock:
            return self.config[key]

    # -- auth & nodes ---------------------------------------------------------------------

    def authenticate(self, token):
        """Return the token record for ``token``.

        :raises GraphError: 401/190 for a missing, unknown, revoked or expired token.
        :rtype: dict
        """
        with self.lock:
            entry = self.tokens.get(token or "")
        if entry is None or entry.get("revoked"):
            raise GraphError(190)
        expires_at = entry.get("expires_at") or 0
        if expires_at and expires_at <= time.time():
            raise GraphError(190, "Error validating access token: Session has expired.",
                             subcode=463)
        return entry

    def node(self, node_id):
        """Return ``("waba"|"phone"|"template", record)`` or ``(None, None)``."""
        with self.lock:
            if node_id in self.wabas:
                return "waba", self.wabas[node_id]
            if node_id in self.phones:
                return "phone", self.phones[node_id]
            if node_id in self.templates:
                return "template", self.templates[node_id]
        return None, None

    def allowed(self, token_entry, waba_id):
        """Whether ``token_entry`` was issued/seeded for ``waba_id``."""
        return waba_id in token_entry["waba_ids"]

    def require(self, token_entry, node_id, kind, method):
        """Return the ``kind`` node ``node_id`` the token may touch.

        :raises GraphError: 100/33 when missing or of another kind, 403/200 when not allowed.
        """
        found, record = self.node(node_id)
        if found != kind:
            raise unsupported(method, node_id)
        waba_id = record["id"] if kind == "waba" else record["waba_id"]
        if not self.allowed(token_entry, waba_id):
            raise GraphError(200)
        return record

    # -- Embedded Signup codes & tokens ---------------------------------------------------

    def issue_code(self, waba_id=None, phone_number_id=None, ttl=None):
        """Issue a single-use Embedded Signup code for a WABA (default: the first one).

        :param str waba_id: WABA the resulting token is bound to.
        :param str phone_number_id: reported back (defaults to the WABA's first number).
        :param float ttl: lifetime in seconds; defaults to ``config["code_ttl"]``.
        :raises ValueError: for an unknown WABA.
        :rtype: dict
        """
        with self.lock:
            if waba_id is None and phone_number_id is not None:
                phone = self.phones.get(str(phone_number_id))
                waba_id = phone and phone["waba_id"]
            if waba_id is None:
                waba_id = next(iter(self.wabas), None)
            waba_id = str(waba_id)
            if waba_id not in self.wabas:
                raise ValueError(f"unknown waba_id {waba_id}")
            if phone_number_id is None:
                phone_ids = self.wabas[waba_id]["phone_ids"]
                phone_number_id = phone_ids[0] if phone_ids else None
            code = "AQD" + secrets.token_urlsafe(48)
            ttl = self.config["code_ttl"] if ttl is None else ttl
            self.codes[code] = {"code": code, "waba_id": waba_id,
                                "phone_number_id": phone_number_id, "issued_at": time.time(),
                                "ttl": ttl, "used": False}
            return {"code": code, "waba_id": waba_id, "phone_number_id": phone_number_id,
                    "expires_in": ttl}

    def exchange_code(self, client_id, client_secret, code):
        """Exchange an Embedded Signup code for a business token (§3.3).

        :raises GraphError: 101 bad client, 100/36007 used or expired, 100/36008 unknown.
        :rtype: dict
        """
        with self.lock:
            if str(client_id or "") != self.app["app_id"]:
                raise GraphError(101, "Error validating application. Invalid application ID.")
            if str(client_secret or "") != self.app["app_secret"]:
                raise GraphError(101, "Error validating client secret.")
            if not code:
                raise GraphError(1, "Missing authorization code")
            entry = self.codes.get(code)
            if entry is None:
                raise GraphError(100, "Invalid verification code format.", subcode=36008)
            expired = entry["ttl"] is not None and time.time() > entry["issued_at"] + entry["ttl"]
            if entry["used"] or expired:
                raise GraphError(100, "This authorization code has expired.", subcode=36007)
            entry["used"] = True
            token = "EAAG" + secrets.token_urlsafe(96).replace("-", "").replace("_", "")[:120]
            self.tokens[token] = {"token": token, "source": "code",
                                  "waba_ids": {entry["waba_id"]}}
            return {"access_token": token, "token_type": "bearer"}

    def debug_token(self, input_token):
        """Answer ``GET /debug_token`` for ``input_token`` (granular scopes list the WABAs).

        :rtype: dict
        """
        with self.lock:
            entry = self.tokens.get(input_token or "")
            if entry is None or entry.get("revoked"):
                return {"data": {"is_valid": False, "error": {
                    "code": 190, "message": "Invalid OAuth access token."}}}
            wabas = sorted(entry["waba_ids"])
            expires_at = int(entry.get("expires_at") or 0)
            if expires_at and expires_at <= time.time():
                return {"data": {"app_id": self.app["app_id"], "type": "USER",
                                 "is_valid": False, "expires_at": expires_at, "error": {
                                     "code": 190, "subcode": 463,
                                     "message": "Session has expired."}}}
            return {"data": {
                "app_id": self.app["app_id"],
                "type": "USER" if expires_at else "SYSTEM_USER",
                "application": self.app["name"], "data_access_expires_at": 0,
                "expires_at": expires_at, "is_valid": True,
                "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
                "granular_scopes": [
                    {"scope": "whatsapp_business_management", "target_ids": wabas},
                    {"scope": "whatsapp_business_messaging", "target_ids": wabas}]}}

    def add_token(self, token, waba_ids):
        """Issue ``token`` for ``waba_ids``, as a business generating a new System User token
        in Meta Business Settings would (the value is the caller's, so a browser test can
        type it).

        :raises ValueError: for an unknown WABA.
        """
        with self.lock:
            unknown = set(waba_ids) - set(self.wabas)
            if unknown:
                raise ValueError(f"unknown waba_id {sorted(unknown)}")
            self.tokens[token] = {"token": token, "source": "manual",
                                  "waba_ids": set(waba_ids)}

    def set_token(self, token, expires_at=None, revoked=None):
        """Change a token as Meta would: give it an expiry (a user token) or revoke it.

        A revoked token fails every call with 190 and ``debug_token`` calls it invalid; an
        expired one too. ``expires_at=0`` makes it a System User token again.

        :param float expires_at: Unix time; ``0`` never expires.
        :param bool revoked: revoke (``True``) or restore (``False``).
        :raises KeyError: for an unknown token.
        """
        with self.lock:
            entry = self.tokens[token]
            if expires_at is not None:
                entry["expires_at"] = int(expires_at)
            if revoked is not None:
                entry["revoked"] = bool(revoked)

    def set_phone(self, phone_id, **values):
        """Change fields of a phone number (``status``, ``quality_rating``, ``name_status``,
        ``messaging_limit_tier``...), as WhatsApp Manager would show them.

        :raises KeyError: for an unknown phone number or field.
        """
        unknown = sorted(set(values) - PHONE_SETTABLE)
        if unknown:
            raise KeyError("unknown phone fields: {}".format(", ".join(unknown)))
        with self.lock:
            self.phones[str(phone_id)].update(values)
            return dict(self.phones[str(phone_id)])

    def add_phone(self, waba_id, phone_id, display_phone_number, **values):
        """Add a phone number to a WABA, as a business adding a second number in WhatsApp
        Manager (a number change). ``values``: the :meth:`set_phone` fields.

        :raises KeyError: for an unknown WABA or field.
        :raises ValueError: for a phone number id already in use.
        :rtype: dict
        """
        unknown = sorted(set(values) - PHONE_SETTABLE)
        if unknown:
            raise KeyError("unknown phone fields: {}".format(", ".join(unknown)))
        with self.lock:
            waba = self.wabas[str(waba_id)]
            if str(phone_id) in self.phones:
                raise ValueError(f"phone number id {phone_id} is already in use")
            phone = dict(values, id=str(phone_id), waba_id=waba["id"],
                         display_phone_number=display_phone_number, contacts=[], history=[],
                         syncs={}, registrations=[])
            self.phones[phone["id"]] = phone
            waba["phone_ids"].append(phone["id"])
            return dict(phone)

    def number_change_webhook(self, phone_id, old_wa_id, new_wa_id, name=None):
        """Build the ``user_changed_number`` system message (System messages webhook
        reference): from the old number, the new ``wa_id`` in ``system``, no ``contacts``.

        :return: ``(waba_id, wamid, payload)``.
        """
        with self.lock:
            phone = self.phones[str(phone_id)]
            md = phone_metadata(phone)
        old, new = digits(old_wa_id), digits(new_wa_id)
        wamid = new_wamid(old)
        msg = {"from": old, "id": wamid, "timestamp": str(int(time.time())), "type": "system",
               "system": {"body": f"User {name or old} changed from {old} to {new}",
                          "wa_id": new, "type": "user_changed_number"}}
        value = {"messaging_product": "whatsapp", "metadata": md, "messages": [msg]}
        return phone["waba_id"], wamid, envelope(phone["waba_id"], "messages", value)

    def phone_event_webhook(self, phone_id, field, value):
        """Build a WABA-level phone webhook (``phone_number_quality_update``,
        ``phone_number_name_update``) for ``phone_id``: no ``metadata``, the number in
        ``display_phone_number`` (digits).

        :rtype: tuple[str, dict]
        """
        with self.lock:
            phone = self.phones[str(phone_id)]
            value = dict({"display_phone_number": digits(phone["display_phone_number"])},
                         **value)
            return phone["waba_id"], envelope(phone["waba_id"], field, value, with_time=True)

    # -- nodes -----------------------------------------------------------------------------

    def phone_view(self, phone, fields=None):
        """Return the requested fields of a phone number node (``id`` always included).

        :rtype: dict
        """
        names = (parse_fields(fields, PHONE_FIELDS, "WhatsAppBusinessPhoneNumber")
                 if fields else list(DEFAULT_PHONE_FIELDS))
        with self.lock:
            url = self.webhook_target(phone["waba_id"], check_subscription=False)
            values = {
                "id": phone["id"],
                "verified_name": phone.get("verified_name", ""),
                "display_phone_number": phone["display_phone_number"],
                "quality_rating": phone.get("quality_rating", "GREEN"),
                "code_verification_status": phone.get("code_verification_status", "VERIFIED"),
                "platform_type": phone.get("platform_type", "CLOUD_API"),
                "is_on_biz_app": bool(phone.get("is_on_biz_app", False)),
                "throughput": {"level": phone.get("throughput_level", "STANDARD")},
                "name_status": phone.get("name_status", "APPROVED"),
                "messaging_limit_tier": phone.get("messaging_limit_tier", "TIER_250"),
                "whatsapp_business_manager_messaging_limit":
                    phone.get("messaging_limit_tier", "TIER_250"),
                "account_mode": "LIVE",
                "status": phone.get("status", "CONNECTED"),
                "is_official_business_account": False,
                "webhook_configuration": {"application": url} if url else {},
                "last_onboarded_time": phone.get("last_onboarded_time",
                                                 "2026-01-15T12:00:00+0000"),
            }
        out = {name: values[name] for name in names if name != "id"}
        out["id"] = phone["id"]
        return out

    def waba_view(self, waba, fields=None):
        """Return the requested fields of a WABA node.

        :rtype: dict
        """
        names = (parse_fields(fields, WABA_FIELDS, "WhatsAppBusinessAccount")
                 if fields else list(DEFAULT_WABA_FIELDS))
        values = {
            "id": waba["id"], "name": waba["name"], "currency": waba.get("currency", "USD"),
            "timezone_id": waba.get("timezone_id", "1"),
            "message_template_namespace": waba.get("message_template_namespace", ""),
            "account_review_status": waba.get("account_review_status", "APPROVED"),
            "business_verification_status": waba.get("business_verification_status",
                                                     "verified"),
            "ownership_type": "CLIENT_OWNED",
        }
        out = {name: values[name] for name in names if name != "id"}
        out["id"] = waba["id"]
        return out

    def phone_numbers(self, waba, fields=None):
        """``GET /{waba_id}/phone_numbers``.

        :rtype: dict
        """
        with self.lock:
            data = [self.phone_view(self.phones[pid], fields) for pid in waba["phone_ids"]]
        out = {"data": data}
        if data:
            out["paging"] = {"cursors": {"before": encode_cursor(data[0]["id"]),
                                         "after": encode_cursor(data[-1]["id"])}}
        return out

    # -- subscriptions & webhook targets -------------------------------------------------

    def subscribe(self, waba, params):
        """``POST /{waba_id}/subscribed_apps``.

        :rtype: dict
        """
        uri = params.get("override_callback_uri")
        if uri and not params.get("verify_token"):
            raise invalid_param("verify_token is required with override_callback_uri")
        with self.lock:
            waba["subscription"] = {"override_callback_uri": uri or None,
                                    "verify_token": params.get("verify_token"),
                                    "time": time.time()}
        return {"success": True}

    def subscriptions(self, waba):
        """``GET /{waba_id}/subscribed_apps``.

        :rtype: dict
        """
        with self.lock:
            sub = waba.get("subscription")
            if not sub:
                return {"data": []}
            item = {"whatsapp_business_api_data": {"id": self.app["app_id"],
                                                   "name": self.app["name"]}}
            if sub.get("override_callback_uri"):
                item["override_callback_uri"] = sub["override_callback_uri"]
            return {"data": [item]}

    def unsubscribe(self, waba):
        """``DELETE /{waba_id}/subscribed_apps``."""
        with self.lock:
            waba["subscription"] = None
        return {"success": True}

    def webhook_target(self, waba_id, check_subscription=True):
        """Return the URL webhooks for ``waba_id`` go to, or ``None``.

        A WABA's ``override_callback_uri`` wins over ``config["webhook_url"]``; with
        ``require_subscription`` an unsubscribed WABA gets nothing (Meta only calls subscribed
        apps, the commonest "webhooks never arrive" cause, §5.7).
        """
        with self.lock:
            waba = self.wabas.get(waba_id)
            sub = waba and waba.get("subscription")
            if check_subscription and self.config["require_subscription"] and not sub:
                return None
            if sub and sub.get("override_callback_uri"):
                return sub["override_callback_uri"]
            return self.config["webhook_url"]

    # -- faults ----------------------------------------------------------------------------

    def add_faults(self, faults):
        """Append faults (dicts, see :func:`normalise_fault`); return their ids.

        :rtype: list
        """
        faults = faults if isinstance(faults, list) else [faults]
        with self.lock:
            ids = []
            staged = []
            for fault in faults:
                self._fault_seq += 1
                staged.append(normalise_fault(fault, self._fault_seq))
                ids.append(self._fault_seq)
            self.faults.extend(staged)
            return ids

    def take_fault(self, method, path):
        """Consume and return the first live fault matching the request, or ``None``."""
        with self.lock:
            for fault in self.faults:
                match = fault["match"]
                if match["method"] and match["method"] != method:
                    continue
                if match["path"] and match["path"] not in path:
                    continue
                fault["hits"] += 1
                if fault["times"] is not None:
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        self.faults.remove(fault)
                return dict(fault)
        return None

    def clear_faults(self):
        """Forget every fault."""
        with self.lock:
            self.faults = []

    def list_faults(self):
        """Return copies of the live faults.

        :rtype: list
        """
        with self.lock:
            return copy.deepcopy(self.faults)

    # -- records -----------------------------------------------------------------------------

    def record(self, entry):
        """Append one recorded request."""
        with self.lock:
            self.records.append(entry)

    def list_requests(self, path_contains=None, method=None):
        """Return recorded requests, oldest first, optionally filtered.

        :rtype: list
        """
        with self.lock:
            items = list(self.records)
        if path_contains:
            items = [r for r in items if path_contains in r["path"]]
        if method:
            items = [r for r in items if r["method"] == method.upper()]
        return copy.deepcopy(items)

    def clear_requests(self):
        """Forget recorded requests."""
        with self.lock:
            self.records.clear()

    def log_webhook(self, entry):
        """Append one webhook delivery outcome."""
        with self.lock:
            self.webhook_log.append(entry)

    def list_messages(self, phone_number_id=None):
        """Return the recorded sent messages, oldest first.

        :rtype: list
        """
        with self.lock:
            items = [copy.deepcopy(m) for m in self.messages.values()
                     if phone_number_id is None or m["phone_number_id"] == str(phone_number_id)]
        for item in items:
            item.pop("plan", None)
        return items

    def snapshot(self):
        """Return the whole state as JSON-able data, secrets masked.

        :rtype: dict
        """
        with self.lock:
            wabas = []
            for waba in self.wabas.values():
                w = {k: copy.deepcopy(v) for k, v in waba.items()
                     if k not in ("phone_ids", "template_ids")}
                if w.get("subscription") and w["subscription"].get("verify_token"):
                    w["subscription"]["verify_token"] = mask(w["subscription"]["verify_token"])
                w["phone_numbers"] = [
                    dict({k: copy.deepcopy(v) for k, v in self.phones[p].items()
                          if k not in ("history", "contacts")},
                         contacts=len(self.phones[p]["contacts"]),
                         history_threads=len(self.phones[p]["history"]))
                    for p in waba["phone_ids"]]
                w["templates"] = [self.template_view(self.templates[t], DEFAULT_TEMPLATE_FIELDS)
                                  for t in waba["template_ids"]]
                wabas.append(w)
            return {
                "app": {"app_id": self.app["app_id"], "name": self.app["name"],
                        "app_secret": mask(self.app["app_secret"])},
                "config": copy.deepcopy(self.config),
                "wabas": wabas,
                "tokens": [{"token": mask(t["token"]), "source": t["source"],
                            "waba_ids": sorted(t["waba_ids"])} for t in self.tokens.values()],
                "codes": [{"code": mask(c["code"]), "waba_id": c["waba_id"],
                           "phone_number_id": c["phone_number_id"], "used": c["used"],
                           "ttl": c["ttl"]} for c in self.codes.values()],
                "messages": self.list_messages()[-100:],
                "faults": copy.deepcopy(self.faults),
                "webhook_log": list(self.webhook_log),
                "requests": len(self.records),
            }
