"""Pure Python layer of ``whatsapp_coexistence``: Graph client, errors, webhook parsing,
signatures, token vault, phone identities and rate math.

Dependencies: the standard library, ``requests``, ``cryptography``, ``phonenumbers`` and
``ijson``. Nothing here imports Odoo, so the package is tested with plain pytest and reusable
elsewhere.
Submodules are imported explicitly (``from .wa_cloud import webhook``); only the error classes
and the client are re-exported here for convenience.
"""

from .client import GraphClient, SendResult
from .errors import (
    AuthError,
    PermanentError,
    RecipientError,
    RetryableError,
    TemplateError,
    TenantBlockingError,
    ThrottlingError,
    TransportError,
    WaCloudError,
)

__all__ = [
    "AuthError",
    "GraphClient",
    "PermanentError",
    "RecipientError",
    "RetryableError",
    "SendResult",
    "TemplateError",
    "TenantBlockingError",
    "ThrottlingError",
    "TransportError",
    "WaCloudError",
]
