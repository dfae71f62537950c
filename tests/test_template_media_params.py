"""Templates with an image/document/video header and URL buttons with a variable: what the
spec reads, how a send's components are built (Meta's wire format), and the URL variable's
cleaning."""

import json
import unicodedata
import urllib.parse

import pytest
from hypothesis import given

from strategies import texts
from wa_cloud.template_params import URL_LIMIT, TemplateSpec, url_suffix

IMAGE_HEADER = [
    {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1h"]}},
    {"type": "BODY", "text": "Olá {{1}}, sua consulta é {{2}}."},
    {"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": "Confirmar"},
        {"type": "URL", "text": "Ver consulta", "url": "https://clinica.example/c/{{1}}"},
        {"type": "PHONE_NUMBER", "text": "Ligar", "phone_number": "+5511987654321"},
    ]},
]
DOCUMENT_NAMED = [
    {"type": "HEADER", "format": "DOCUMENT"},
    {"type": "BODY", "text": "Olá {{customer_name}}, segue o preparo."},
    {"type": "BUTTONS", "buttons": [
        {"type": "URL", "text": "Agenda", "url": "https://clinica.example/a?id={{1}}"}]},
]


def test_image_header_and_url_button_are_read_without_problems():
    spec = TemplateSpec.from_components("confirm_img", "pt_BR", IMAGE_HEADER, "POSITIONAL")
    assert spec.problems == ()
    assert spec.header_media == "image"
    assert spec.param_keys == ["body:1", "body:2", "button:1"]
    button = spec.params[-1]
    assert button.limit == URL_LIMIT - len("https://clinica.example/c/")


def test_named_template_keeps_the_positional_button_variable():
    spec = TemplateSpec.from_components("prep", "pt_BR", DOCUMENT_NAMED)
    assert spec.parameter_format == "NAMED"
    assert spec.problems == ()
    assert (spec.header_media, spec.param_keys) == ("document", ["body:customer_name",
                                                                 "button:0"])


def test_components_carry_the_media_header_and_the_url_variable_in_meta_format():
    spec = TemplateSpec.from_components("confirm_img", "pt_BR", IMAGE_HEADER, "POSITIONAL")
    components = spec.build_components(
        {"body:1": "Maria", "body:2": "amanhã", "button:1": "42"}, {0: "CONFIRM:42"},
        header_media={"id": "1234", "filename": "ignored.png"})
    assert components == [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "1234"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Maria"},
                                        {"type": "text", "text": "amanhã"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "CONFIRM:42"}]},
        {"type": "button", "sub_type": "url", "index": "1",
         "parameters": [{"type": "text", "text": "42"}]},
    ]
    json.dumps(components)


def test_document_header_keeps_its_file_name():
    spec = TemplateSpec.from_components("prep", "pt_BR", DOCUMENT_NAMED)
    components = spec.build_components(
        {"body:customer_name": "Maria", "button:0": "7"},
        header_media={"id": "99", "filename": "preparo.pdf"})
    assert components[0] == {"type": "header", "parameters": [
        {"type": "document", "document": {"id": "99", "filename": "preparo.pdf"}}]}
    assert components[-1]["sub_type"] == "url" and components[-1]["index"] == "0"


def test_missing_header_file_or_button_value_is_a_key_error():
    spec = TemplateSpec.from_components("confirm_img", "pt_BR", IMAGE_HEADER, "POSITIONAL")
    with pytest.raises(KeyError, match="image header needs a file"):
        spec.build_components({"body:1": "a", "body:2": "b", "button:1": "1"})
    with pytest.raises(KeyError):
        spec.build_components({"body:1": "a", "body:2": "b"}, header_media={"id": "1"})


@pytest.mark.parametrize("raw, clean", [
    ("42", "42"), (" 42 \n", "42"), ("consulta 42", "consulta%2042"),
    ("João", "Jo%C3%A3o"), ("a?b=c&d#e", "a%3Fb%3Dc%26d%23e"), ("x/y-z_1.2~", "x/y-z_1.2~"),
    ("50%", "50%25"), ("a%20b", "a%20b"), ("\u200b7\u200d", "7"),
])
def test_url_suffix_is_one_valid_url_part(raw, clean):
    assert url_suffix(raw) == clean


@pytest.mark.parametrize("raw", ["", "   ", None, False, "\u200b"])
def test_empty_url_variable_is_refused_not_replaced(raw):
    with pytest.raises(ValueError, match="empty"):
        url_suffix(raw)


def test_too_long_url_variable_is_refused_not_cut():
    assert url_suffix("a" * 10, limit=10) == "a" * 10
    with pytest.raises(ValueError, match="room for 10"):
        url_suffix("a" * 11, limit=10)


@given(texts())
def test_url_suffix_is_ascii_without_white_space_and_idempotent(value):
    try:
        clean = url_suffix(value)
    except ValueError:
        return
    assert clean.isascii()
    assert not any(c.isspace() for c in clean)
    assert url_suffix(clean) == clean
    if "%" not in value and all(unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp")
                                for c in value):
        decoded = urllib.parse.unquote(clean)
        assert decoded == decoded.strip() and decoded in unicodedata.normalize("NFC", value)
