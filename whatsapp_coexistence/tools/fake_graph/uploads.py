"""Media uploads of the fake Graph server: ``POST /{phone_number_id}/media`` (multipart).

Meta's answers, as clients meet them:

* a type outside the supported list: code 100, ``(#100) Param file must be a file with one of
  the following types: … Received file of type '…'.``;
* a file over its kind's limit: code 131053 (media upload error), with the limit in the
  details;
* ``messaging_product`` other than ``whatsapp`` or no ``file`` part: code 100.

The limits are Meta's own table (image 5 MB, audio/video 16 MB, document 100 MB, sticker
500 KB), kept here apart from the addon's so the fake judges the client independently.
"""

import email.parser
import email.policy
import hashlib

from .wire import GraphError, invalid_param

MB = 1024 * 1024
#: MIME type → (message kind, size limit in bytes).
SUPPORTED = {
    "audio/aac": ("audio", 16 * MB), "audio/mp4": ("audio", 16 * MB),
    "audio/mpeg": ("audio", 16 * MB), "audio/amr": ("audio", 16 * MB),
    "audio/ogg": ("audio", 16 * MB), "audio/opus": ("audio", 16 * MB),
    "application/vnd.ms-powerpoint": ("document", 100 * MB),
    "application/msword": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
        ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation":
        ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("document", 100 * MB),
    "application/pdf": ("document", 100 * MB), "text/plain": ("document", 100 * MB),
    "application/vnd.ms-excel": ("document", 100 * MB),
    "image/jpeg": ("image", 5 * MB), "image/png": ("image", 5 * MB),
    "image/webp": ("sticker", 500 * 1024),
    "video/mp4": ("video", 16 * MB), "video/3gpp": ("video", 16 * MB),
}


def parse_multipart(content_type, body):
    """Split a ``multipart/form-data`` body into form fields and files.

    :returns: ``(fields, files)``: ``{name: text}`` and ``{name: {"filename", "content_type",
        "content"}}``
    :raises GraphError: code 100 when the body is not multipart
    """
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise invalid_param("The request body is not multipart/form-data")
    fields, files = {}, {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        content = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is None:
            fields[name] = content.decode("utf-8", "replace")
        else:
            files[name] = {"filename": filename, "content_type": part.get_content_type(),
                           "content": content}
    return fields, files


def check_upload(fields, files):
    """Judge an upload like Meta.

    :returns: ``(kind, file)``: the message kind the file fits and the file part
    :raises GraphError: what Meta answers for a refused upload
    """
    product = fields.get("messaging_product")
    if product != "whatsapp":
        raise invalid_param("messaging_product must be \"whatsapp\"",
                            "(#100) The parameter messaging_product is required.")
    upload = files.get("file")
    if upload is None:
        raise invalid_param("file is required", "(#100) The parameter file is required.")
    mime = upload["content_type"]
    if mime not in SUPPORTED:
        raise invalid_param(
            "unsupported type",
            "(#100) Param file must be a file with one of the following types: "
            f"{', '.join(SUPPORTED)}. Received file of type '{mime}'.")
    kind, limit = SUPPORTED[mime]
    size = len(upload["content"])
    if not size:
        raise invalid_param("file is empty", "(#100) The parameter file is required.")
    if size > limit:
        raise GraphError(131053, details=f"{kind} file is {size} bytes; the limit for "
                         f"{mime} is {limit} bytes")
    return kind, upload


def summary(upload):
    """What the request log keeps of a file part: never its bytes.

    :rtype: dict
    """
    content = upload["content"]
    return {"filename": upload["filename"], "content_type": upload["content_type"],
            "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def loggable(data):
    """The request data as the request log keeps it: file parts summarised.

    :returns: ``data`` itself unless it holds files (``"_files"``)
    """
    if not isinstance(data, dict) or "_files" not in data:
        return data
    fields = {k: v for k, v in data.items() if k != "_files"}
    return dict(fields, files={name: summary(f) for name, f in data["_files"].items()})
