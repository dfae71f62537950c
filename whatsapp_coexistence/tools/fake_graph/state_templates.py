"""The message templates of the fake Graph API: list (paged), create, delete, review."""

import copy
from urllib.parse import urlencode

from .wire import (
    DEFAULT_TEMPLATE_FIELDS,
    TEMPLATE_FIELDS,
    TEMPLATE_STATUSES,
    GraphError,
    decode_cursor,
    encode_cursor,
    invalid_param,
    parse_fields,
    template_draft,
)


class TemplatesMixin:
    """Templates of a WABA; mixed into :class:`~.state.FakeState` (its lock and records)."""

    # -- templates -------------------------------------------------------------------------

    def template_view(self, tpl, names):
        """Return the requested fields of a template record.

        :rtype: dict
        """
        values = dict(tpl)
        values.setdefault("quality_score", {"score": "UNKNOWN"})
        out = {}
        for name in names:
            if name in values and name != "waba_id":
                out[name] = copy.deepcopy(values[name])
        if "id" not in out:
            out["id"] = tpl["id"]
        return out

    def list_templates(self, waba, params, base_url):
        """``GET /{waba_id}/message_templates`` with cursor pagination.

        :param dict params: query parameters (``limit``, ``after``, ``before``, ``fields``,
            filters ``name``, ``status``, ``language``, ``category``).
        :param str base_url: the request's URL without query, for ``paging.next``.
        :rtype: dict
        """
        names = (parse_fields(params.get("fields"), TEMPLATE_FIELDS, "WhatsAppMessageTemplate")
                 if params.get("fields") else list(DEFAULT_TEMPLATE_FIELDS))
        try:
            limit = int(params.get("limit") or 25)
        except ValueError:
            raise invalid_param("limit must be an integer") from None
        if limit < 1:
            raise invalid_param("limit must be positive")
        with self.lock:
            items = [self.templates[t] for t in waba["template_ids"]]
            for key in ("name", "status", "language", "category"):
                wanted = params.get(key)
                if wanted:
                    items = [t for t in items if str(t[key]).lower() == wanted.lower()
                             or (key == "name" and wanted.lower() in t["name"])]
            ids = [t["id"] for t in items]
            start, end = 0, min(limit, len(items))
            if params.get("after"):
                cursor_id = decode_cursor(params["after"])
                if cursor_id not in ids:
                    raise invalid_param("Invalid cursor: {}".format(params["after"]))
                start = ids.index(cursor_id) + 1
                end = min(start + limit, len(items))
            elif params.get("before"):
                cursor_id = decode_cursor(params["before"])
                if cursor_id not in ids:
                    raise invalid_param("Invalid cursor: {}".format(params["before"]))
                end = ids.index(cursor_id)
                start = max(0, end - limit)
            page = items[start:end]
            data = [self.template_view(t, names) for t in page]
        out = {"data": data}
        if page:
            cursors = {"before": encode_cursor(page[0]["id"]),
                       "after": encode_cursor(page[-1]["id"])}
            paging = {"cursors": cursors}
            keep = {k: v for k, v in params.items()
                    if k not in ("after", "before", "access_token")}
            keep["limit"] = str(limit)
            if end < len(items):
                paging["next"] = _url(base_url, dict(keep, after=cursors["after"]))
            if start > 0:
                paging["previous"] = _url(base_url, dict(keep, before=cursors["before"]))
            out["paging"] = paging
        return out

    def create_template(self, waba, params):
        """``POST /{waba_id}/message_templates``: validate and store a PENDING template.

        :raises GraphError: code 100 (invalid field) or 100/2388023 (duplicate).
        :rtype: dict
        """
        draft = template_draft(params)
        name, language = draft["name"], draft["language"]
        with self.lock:
            for tid in waba["template_ids"]:
                tpl = self.templates[tid]
                if tpl["name"] == name and tpl["language"] == language:
                    raise GraphError(
                        100, "Message template with this name and language already exists",
                        subcode=2388023, user_title="Message template already exists",
                        user_msg=f"There is already {language} content for this template. You can "
                                 "create a new template and try again.")
            tpl = self._new_template_record(waba["id"], dict(draft, status="PENDING"))
            waba["template_ids"].append(tpl["id"])
            return {"id": tpl["id"], "status": "PENDING", "category": draft["category"]}

    def delete_template(self, waba, name, hsm_id=None):
        """``DELETE /{waba_id}/message_templates?name=`` (all languages, or one ``hsm_id``).

        :rtype: dict
        """
        with self.lock:
            doomed = [t for t in waba["template_ids"] if self.templates[t]["name"] == name
                      and (not hsm_id or t == str(hsm_id))]
            if not doomed:
                raise invalid_param(f"Message template {name!r} not found",
                                    subcode=2593002)
            for tid in doomed:
                waba["template_ids"].remove(tid)
                del self.templates[tid]
        return {"success": True}

    def set_template_status(self, template_id, status):
        """Change a template's status; return ``(waba_id, template copy)``.

        :raises KeyError: unknown template id.
        :raises ValueError: unknown status.
        """
        status = str(status).upper()
        if status not in TEMPLATE_STATUSES:
            raise ValueError("status must be one of {}".format(", ".join(TEMPLATE_STATUSES)))
        with self.lock:
            tpl = self.templates[str(template_id)]
            tpl["status"] = status
            return tpl["waba_id"], dict(tpl)

    def find_template(self, waba_id=None, name=None, language=None):
        """Return the id of a template found by name (and language/WABA when given)."""
        with self.lock:
            for tpl in self.templates.values():
                if tpl["name"] == name and (language is None or tpl["language"] == language) \
                        and (waba_id is None or tpl["waba_id"] == str(waba_id)):
                    return tpl["id"]
        raise KeyError(f"no template {name}/{language}")


def _url(base_url, params):
    return base_url + "?" + urlencode(params)
