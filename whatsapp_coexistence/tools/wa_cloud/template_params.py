"""Template parameters: read a template's components, check a mapping against them, clean the
values to Meta's rules, build the ``components`` of a send, and read customers' answers.

Pure Python (standard library only), so every rule here is tested with plain pytest.

Meta's rules that drive this module:

* a text parameter must not be empty, must not contain a newline or a tab, and must not hold
  more than four consecutive spaces, else the send fails (132018 / "Param text cannot have
  new-line/tab characters or more than 4 consecutive spaces", reference §4.1);
* a text parameter is at most 60 characters in a header and 1,024 characters in a body when the
  template has other components (Meta's "parameters object" reference:
  https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#parameter-object);
  the hydrated body is at most 1,024 characters (132005 "hydrated text too long");
* positional templates number their placeholders ``{{1}}..{{n}}`` per component; named
  templates (``parameter_format: NAMED``) use ``{{snake_case}}`` names and every parameter of a
  send must carry its ``parameter_name`` (reference §4.1);
* a quick-reply button may carry a developer payload, echoed back in the ``button`` webhook
  when the customer taps it (reference §2.1);
* an IMAGE, DOCUMENT or VIDEO header takes one media parameter (an uploaded media id) at each
  send; a URL button whose link ends with ``{{1}}`` takes a text parameter appended to the
  link, which Meta does not encode: it must already be a valid URL part, and the whole link
  stays within 2,000 characters (Meta's limit for a button URL,
  https://developers.facebook.com/docs/whatsapp/business-management-api/message-templates/components#url-buttons).
"""

import re
import unicodedata
import urllib.parse
from dataclasses import dataclass, field

#: Longest text parameter of a body we send (Meta: 1,024 when other components exist).
BODY_PARAM_LIMIT = 1024
#: Longest text parameter of a TEXT header (Meta: 60).
HEADER_PARAM_LIMIT = 60
#: Longest hydrated body (132005 beyond it).
BODY_TEXT_LIMIT = 1024
#: Longest quick-reply payload we send (Meta documents no lower bound; ours are ~20 chars).
PAYLOAD_LIMIT = 256
#: What an empty value becomes: Meta refuses empty parameters (131008).
FALLBACK = "-"
#: Longest link of a URL button, its variable included (Meta: 2,000 characters).
URL_LIMIT = 2000
#: Header formats filled by an uploaded file at each send, and the media kind of each.
MEDIA_HEADERS = {"IMAGE": "image", "DOCUMENT": "document", "VIDEO": "video"}

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_NAMED_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# Zero-width characters and other format/control characters that render as nothing.
_INVISIBLE_RE = re.compile(r"[\u200b-\u200f\u2028\u2029\u2060-\u2064\ufeff\x00-\x08\x0b-\x1f\x7f]")
_LINE_BREAK_RE = re.compile(r"\s*(?:\r\n|\r|\n|\u2028|\u2029)+\s*")
_SPACES_RE = re.compile(r"\s+")
_TEXT_KEY_RE = re.compile(r"\{([a-z_]+)\}")
_PAYLOAD_RE = re.compile(r"^(CONFIRM|CANCEL):(\d{1,18})$")
_NUMBERED_RE = re.compile(r"^(\d{1,2})\s*[-.):]?\s*(.*)$")
_STRAY_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")

CONFIRM = "confirm"
CANCEL = "cancel"


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


def sanitize_param(value, limit=BODY_PARAM_LIMIT, fallback=FALLBACK):
    """Return ``value`` as a text parameter Meta accepts.

    * line breaks become ``", "`` (a multi-line address stays readable on one line), without
      doubling a comma that ends a line;
    * tabs and every other run of white space become one space (Meta allows at most four
      consecutive spaces; one is what a person would type);
    * zero-width and control characters are removed;
    * an empty result becomes ``fallback`` (Meta refuses empty parameters);
    * a result longer than ``limit`` is cut and ends with ``"…"``.

    :param value: anything; ``None`` and ``False`` count as empty
    :param int limit: maximum length, :data:`BODY_PARAM_LIMIT` or :data:`HEADER_PARAM_LIMIT`
    :param str fallback: the value used when nothing is left
    :rtype: str
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    text = "" if value is None or value is False else str(value)
    text = unicodedata.normalize("NFC", text)
    parts = [p for p in _LINE_BREAK_RE.split(text) if p.strip()]
    text = ""
    for part in parts:
        if text:
            text = text.rstrip(",;") + ", "
        text += part
    text = _INVISIBLE_RE.sub("", text.replace("\t", " "))
    text = _SPACES_RE.sub(" ", text).strip()
    if not text:
        text = fallback
    if len(text) > limit:
        text = text[: max(1, limit - 1)].rstrip() + "…"
    return text


def fold(text):
    """Upper-case, accent-free, single-spaced form of a short answer (``"Não "`` → ``"NAO"``).

    The one fold of the addon: appointment answers and the opt-out / opt-in keywords
    (``wac.account``) both compare folded words, so ``"SIM!"`` and ``"STOP!"`` behave alike.

    :rtype: str
    """
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    text = re.sub(r"[*_~!?.,;]+", " ", text)
    return " ".join(text.upper().split())


def split_words(text):
    """A comma-separated list of answers as a set of :func:`fold`-ed words.

    :rtype: set[str]
    """
    return {fold(w) for w in (text or "").split(",")} - {""}


def parse_reply(text, confirm_words, cancel_words):
    """Tell whether a customer's message confirms or cancels an appointment.

    The whole message must be one of the words (accents, case and punctuation ignored), or a
    number option followed by nothing or by a word of the same action (``"1 - Confirmar"``, the
    numbered options of the manual message). Anything else is not an answer: a conversation
    must never confirm an appointment by accident.

    :param str text: the message text (or the tapped button's text)
    :param confirm_words: words that confirm (iterable, or a comma-separated string)
    :param cancel_words: words that cancel
    :returns: :data:`CONFIRM`, :data:`CANCEL` or ``None``
    """
    confirm = split_words(confirm_words) if isinstance(confirm_words, str) else {
        fold(w) for w in confirm_words}
    cancel = split_words(cancel_words) if isinstance(cancel_words, str) else {
        fold(w) for w in cancel_words}
    answer = fold(text)
    if not answer:
        return None
    for action, words in ((CONFIRM, confirm), (CANCEL, cancel)):
        if answer in words:
            return action
    match = _NUMBERED_RE.match(answer)
    if match:
        number, rest = match.groups()
        for action, words in ((CONFIRM, confirm), (CANCEL, cancel)):
            if number in words and (not rest or rest in words):
                return action
    return None


def make_payload(action, event_id):
    """Quick-reply payload of an appointment button: ``CONFIRM:<id>`` or ``CANCEL:<id>``.

    :rtype: str
    """
    return "%s:%d" % ({CONFIRM: "CONFIRM", CANCEL: "CANCEL"}[action], int(event_id))


def parse_payload(payload):
    """Read a payload made by :func:`make_payload`.

    :returns: ``(action, event_id)`` or ``None`` for anything else
    """
    match = _PAYLOAD_RE.match((payload or "").strip())
    if not match:
        return None
    return (CONFIRM if match.group(1) == "CONFIRM" else CANCEL), int(match.group(2))


_CONFIRM_LABEL_RE = re.compile(r"^(CONFIRM|SIM\b|YES\b|OK\b|VOU\b|ESTAREI|I WILL)")
_CANCEL_LABEL_RE = re.compile(r"^(CANCEL|DESMARC|NAO\b|NO\b|NOT\b|REMARC|RESCHEDULE)")


def button_action(text, confirm_words=(), cancel_words=()):
    """Guess what a quick-reply button of a template means from its label.

    Labels are matched by their first word (``"Confirmar presença"``, ``"Cancelar horário"``,
    ``"Não vou"``), then against the company's answer words.

    :returns: :data:`CONFIRM`, :data:`CANCEL` or ``None``
    """
    label = fold(text)
    if _CONFIRM_LABEL_RE.match(label):
        return CONFIRM
    if _CANCEL_LABEL_RE.match(label):
        return CANCEL
    return parse_reply(text, confirm_words, cancel_words)


def render_text(template, values):
    """Fill ``{key}`` placeholders of a free text (the manual wa.me message).

    Only lower-case keys present in ``values`` are replaced; anything else stays as typed. No
    attribute or index lookups happen, unlike ``str.format``, so a text typed by a user can
    never reach into Python objects.

    :param str template: text with ``{name}``, ``{date}``...
    :param dict values: key → text
    :rtype: str
    """
    return _TEXT_KEY_RE.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0),
        template or "")


def wa_me_link(number, text):
    """``https://wa.me/<digits>?text=<message>``: opens a chat with a prefilled message.

    https://faq.whatsapp.com/5913398998672934 ("Use click to chat"): the number in international
    format without ``+``, zeros or dashes, and the text URL-encoded (UTF-8).

    :param str number: E.164 number or digits
    :param str text: the message
    :rtype: str
    """
    digits = re.sub(r"\D", "", number or "")
    if not digits:
        raise ValueError("a number is required")
    url = "https://wa.me/" + digits
    if text:
        url += "?text=" + urllib.parse.quote(text, safe="")
    return url


# ---------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------


def url_suffix(value, limit=URL_LIMIT):
    """Return ``value`` as the variable part of a URL button's link.

    Meta appends it to the link as is, so it is made one valid URL part here: surrounding white
    space and invisible characters are removed, and everything but letters, digits, ``/`` and
    ``-._~`` is percent-encoded in UTF-8 (a space, an accent, and ``?&=#``, which would change
    what the link means); ``%XX`` sequences already encoded are kept. Unlike a text parameter
    it is never cut nor replaced: a shortened or placeholder link would open the wrong page.

    :param value: anything; ``None`` and ``False`` count as empty
    :param int limit: the longest result (what is left of :data:`URL_LIMIT` after the link)
    :raises ValueError: when nothing is left, or the result is longer than ``limit``
    :rtype: str
    """
    text = "" if value is None or value is False else str(value)
    text = _INVISIBLE_RE.sub("", unicodedata.normalize("NFC", text)).strip()
    text = urllib.parse.quote(_STRAY_PERCENT_RE.sub("%25", text), safe="/-._~%")
    if not text:
        raise ValueError("the link's variable is empty")
    if len(text) > limit:
        raise ValueError(f"the link's variable is {len(text)} characters long; the link "
                         f"leaves room for {limit}")
    return text


def placeholders(text):
    """Distinct ``{{n}}`` / ``{{name}}`` placeholders of ``text``, in order of appearance.

    :rtype: list[str]
    """
    seen = []
    for name in _PLACEHOLDER_RE.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


@dataclass(frozen=True)
class TemplateParam:
    """One parameter a template expects.

    :ivar component: ``"header"``, ``"body"`` or ``"button"`` (the variable of a URL button)
    :ivar name: ``"1"``, ``"2"``... (positional) or the parameter's name (named); for a button,
        its index among the template's buttons (``"0"`` for the first), as a send names it
    :ivar url: a button's link, with its placeholder
    """

    component: str
    name: str
    url: str = field(default="", compare=False)

    @property
    def key(self):
        """``"body:1"`` / ``"header:customer_name"`` / ``"button:0"``: how a mapping line
        names it."""
        return f"{self.component}:{self.name}"

    @property
    def limit(self):
        """Length limit of this parameter's value."""
        if self.component == "button":
            return max(1, URL_LIMIT - len(_PLACEHOLDER_RE.sub("", self.url)))
        return HEADER_PARAM_LIMIT if self.component == "header" else BODY_PARAM_LIMIT


@dataclass(frozen=True)
class TemplateButton:
    """One button of a template.

    :ivar index: position among the template's buttons (what a send's ``index`` refers to)
    :ivar type: ``QUICK_REPLY``, ``URL``, ``PHONE_NUMBER``...
    :ivar text: the button's label
    :ivar dynamic: a URL button whose link ends with a ``{{1}}`` placeholder
    :ivar url: the link of a URL button
    """

    index: int
    type: str
    text: str
    dynamic: bool = False
    url: str = ""


@dataclass(frozen=True)
class TemplateSpec:
    """What a send must provide for one template, read from its ``components``.

    Build it with :meth:`from_components`; ``problems`` lists what this addon cannot fill.
    ``header_media`` is the media kind (``image``, ``document``, ``video``) of a header filled
    with a file at each send, else ``None``.
    """

    name: str
    language: str
    parameter_format: str
    header_format: str | None
    header_text: str
    body_text: str
    footer_text: str
    buttons: tuple
    params: tuple
    problems: tuple = field(default=())
    header_media: str | None = None

    @classmethod
    def from_components(cls, name, language, components, parameter_format=None):
        """Read Meta's template ``components`` (as listed by ``GET message_templates``).

        :param list components: ``[{"type": "HEADER"|"BODY"|"FOOTER"|"BUTTONS", ...}]``
        :param str parameter_format: ``POSITIONAL`` or ``NAMED``; guessed from the body's
            placeholders when missing
        :rtype: TemplateSpec
        """
        parts = _TemplateParts.collect(components)
        names = placeholders(parts.header_text) + placeholders(parts.body_text)
        fmt = str(parameter_format or "").upper()
        if fmt not in ("POSITIONAL", "NAMED"):
            fmt = "NAMED" if any(not n.isdigit() for n in names) else "POSITIONAL"
        params = parts.params(fmt)
        return cls(name=name, language=language, parameter_format=fmt,
                   header_format=parts.header_format, header_text=parts.header_text,
                   body_text=parts.body_text, footer_text=parts.footer_text,
                   buttons=tuple(parts.buttons), params=params,
                   problems=tuple(parts.problems(fmt, params)),
                   header_media=MEDIA_HEADERS.get(parts.header_format))

    @property
    def param_keys(self):
        """Keys of the expected parameters, in send order.

        :rtype: list[str]
        """
        return [p.key for p in self.params]

    @property
    def quick_replies(self):
        """The quick-reply buttons.

        :rtype: list[TemplateButton]
        """
        return [b for b in self.buttons if b.type == "QUICK_REPLY"]

    def check_keys(self, keys):
        """Compare the keys a mapping fills with the keys the template expects.

        :param keys: iterable of ``"component:name"``
        :returns: a list of problems, empty when they match exactly
        :rtype: list[str]
        """
        given = list(keys)
        expected = self.param_keys
        problems = []
        duplicates = sorted({k for k in given if given.count(k) > 1})
        if duplicates:
            problems.append("filled twice: " + ", ".join(duplicates))
        missing = [k for k in expected if k not in given]
        extra = [k for k in dict.fromkeys(given) if k not in expected]
        if missing:
            problems.append("missing: " + ", ".join(missing))
        if extra:
            problems.append("not in the template: " + ", ".join(extra))
        if len(set(given)) != len(expected) and not (missing or extra or duplicates):
            problems.append(f"{len(given)} parameter(s) for {len(expected)} expected")
        return problems

    def hydrate(self, values):
        """The body as the customer will read it.

        :param dict values: key → text (see :attr:`TemplateParam.key`)
        :rtype: str
        """
        return _PLACEHOLDER_RE.sub(
            lambda m: values.get(f"body:{m.group(1)}", m.group(0)), self.body_text)

    def fit(self, values, limit=BODY_TEXT_LIMIT):
        """Shorten the longest body values until the hydrated body fits in ``limit``.

        :param dict values: key → sanitized text; a new dict is returned
        :rtype: dict
        """
        values = dict(values)
        for _round in range(64):
            excess = len(self.hydrate(values)) - limit
            body_keys = [k for k in values if k.startswith("body:")]
            if excess <= 0 or not body_keys:
                return values
            longest = max(body_keys, key=lambda k: len(values[k]))
            current = values[longest]
            if len(current) <= 8:
                return values
            keep = max(8, len(current) - excess)
            values[longest] = sanitize_param(current, limit=keep)
        return values

    def build_components(self, values, payloads=None, header_media=None):
        """The ``template.components`` of a send (reference §4.1).

        :param dict values: key → sanitized text, one per expected parameter (a URL button's
            variable cleaned by :func:`url_suffix`)
        :param dict payloads: quick-reply button index → payload
        :param dict header_media: the media object of a media header, e.g. ``{"id": "123"}``
            or ``{"id": "123", "filename": "guide.pdf"}`` for a document
        :raises KeyError: when a value or the header's media is missing
        :rtype: list[dict]
        """
        components = []
        if self.header_media:
            if not header_media:
                raise KeyError(f"the {self.header_media} header needs a file")
            media = dict(header_media)
            if self.header_media != "document":
                media.pop("filename", None)  # Meta names documents only
            components.append({"type": "header", "parameters": [
                {"type": self.header_media, self.header_media: media}]})
        for component in ("header", "body"):
            params = [p for p in self.params if p.component == component]
            if not params:
                continue
            parameters = []
            for param in params:
                item = {"type": "text", "text": values[param.key]}
                if self.parameter_format == "NAMED":
                    item = {"type": "text", "parameter_name": param.name,
                            "text": values[param.key]}
                parameters.append(item)
            components.append({"type": component, "parameters": parameters})
        buttons = {index: {
            "type": "button", "sub_type": "quick_reply", "index": str(index),
            "parameters": [{"type": "payload", "payload": payload[:PAYLOAD_LIMIT]}],
        } for index, payload in (payloads or {}).items()}
        for param in self.params:
            if param.component == "button":
                buttons[int(param.name)] = {
                    "type": "button", "sub_type": "url", "index": param.name,
                    "parameters": [{"type": "text", "text": values[param.key]}],
                }
        return components + [buttons[index] for index in sorted(buttons)]


@dataclass
class _TemplateParts:
    """The texts and buttons of a template's components, before they become a
    :class:`TemplateSpec`."""

    header_format: str | None = None
    header_text: str = ""
    body_text: str = ""
    footer_text: str = ""
    buttons: list = field(default_factory=list)

    @classmethod
    def collect(cls, components):
        """Collect ``components``, skipping what is not a component.

        :rtype: _TemplateParts
        """
        parts = cls()
        for comp in components or []:
            if not isinstance(comp, dict):
                continue
            kind = str(comp.get("type") or "").upper()
            if kind == "HEADER":
                parts.header_format = str(comp.get("format") or "TEXT").upper()
                parts.header_text = (comp.get("text") or "") \
                    if parts.header_format == "TEXT" else ""
            elif kind == "BODY":
                parts.body_text = comp.get("text") or ""
            elif kind == "FOOTER":
                parts.footer_text = comp.get("text") or ""
            elif kind == "BUTTONS":
                parts.buttons.extend(_read_buttons(comp.get("buttons") or []))
        return parts

    def params(self, fmt):
        """The parameters a send fills, in send order, for the parameter format ``fmt``.

        :rtype: tuple[TemplateParam]
        """
        def ordered(text):
            found = placeholders(text)
            # Positional parameters are matched by position: {{1}} first, whatever the text.
            if fmt == "POSITIONAL" and all(n.isdigit() for n in found):
                found.sort(key=int)
            return found

        return tuple(
            [TemplateParam("header", n) for n in ordered(self.header_text)]
            + [TemplateParam("body", n) for n in ordered(self.body_text)]
            # A URL button has one variable, {{1}}, whatever the template's parameter format.
            + [TemplateParam("button", str(b.index), b.url) for b in self.buttons if b.dynamic])

    def problems(self, fmt, params):
        """What this addon cannot fill in the template, in words.

        :rtype: list[str]
        """
        problems = []
        if self.header_format and self.header_format != "TEXT" \
                and self.header_format not in MEDIA_HEADERS:
            problems.append(f"a {self.header_format.lower()} header needs a parameter which "
                            "appointment messages do not provide")
        for param in params:
            if param.component == "button":
                continue
            if fmt == "POSITIONAL" and not param.name.isdigit():
                problems.append(f"{param.key} is named but the template is positional")
            if fmt == "NAMED" and not _NAMED_RE.match(param.name):
                problems.append(f"{param.key} is not a valid named parameter")
        if not self.body_text:
            problems.append("the template has no body")
        return problems


def _read_buttons(buttons):
    """The :class:`TemplateButton` of a ``BUTTONS`` component's list, by their index in it.

    :rtype: list[TemplateButton]
    """
    result = []
    for index, button in enumerate(buttons):
        if not isinstance(button, dict):
            continue
        btype = str(button.get("type") or "").upper()
        dynamic = btype == "URL" and bool(placeholders(button.get("url")))
        result.append(TemplateButton(index, btype, button.get("text") or "", dynamic,
                                     str(button.get("url") or "")))
    return result
