"""Ready-made appointment templates, submitted to a company's WABA for Meta's approval.

Four UTILITY templates (confirmation, reminder, reschedule, cancellation) in Brazilian
Portuguese and US English. They use NAMED parameters, so a mapping line says which appointment
value fills ``{{customer_name}}`` rather than ``{{1}}``.

Meta's template rules followed here (template fundamentals, reference §4.1; "Template
guidelines"): a body may not start or end with a variable, two variables may not touch, every
variable needs an example, a quick-reply label is at most 25 characters, a footer at most 60.
UTILITY is the right category for messages about an appointment the customer booked;
promotional wording would make Meta recategorise them as MARKETING (reference §6).
"""

MESSAGE_TYPES = ("confirmation", "reminder", "reschedule", "cancellation")
LANGUAGES = ("pt_BR", "en_US")
NAME_PREFIX = "odoo_appointment_"

#: Parameter name → appointment value that fills it (see the mapping's ``source`` list).
DEFAULT_SOURCES = {
    "customer_name": "attendee_first_name",
    "company_name": "company_name",
    "appointment_date": "appointment_date",
    "appointment_time": "appointment_time",
    "location": "location",
}

_EXAMPLES = {
    "pt_BR": {
        "customer_name": "Maria",
        "company_name": "Clínica Sorriso",
        "appointment_date": "terça-feira, 3 de fevereiro de 2026",
        "appointment_time": "14:30",
        "location": "Rua das Flores, 123, São Paulo",
    },
    "en_US": {
        "customer_name": "Mary",
        "company_name": "Bright Smile Clinic",
        "appointment_date": "Tuesday, February 3, 2026",
        "appointment_time": "2:30 PM",
        "location": "123 Main Street, Springfield",
    },
}

_FOOTERS = {
    "pt_BR": "Para não receber mais mensagens, responda SAIR.",
    "en_US": "Reply STOP to stop receiving these messages.",
}

# Button labels avoid the bare word "Cancelar": it is also an opt-out keyword by default.
_BUTTONS = {
    "pt_BR": {
        "confirmation": ("Confirmar presença", "Cancelar horário"),
        "reminder": ("Confirmar presença", "Cancelar horário"),
        "reschedule": ("Confirmar novo horário", "Cancelar horário"),
        "cancellation": (),
    },
    "en_US": {
        "confirmation": ("Confirm", "Cancel appointment"),
        "reminder": ("Confirm", "Cancel appointment"),
        "reschedule": ("Confirm new time", "Cancel appointment"),
        "cancellation": (),
    },
}

_BODIES = {
    "pt_BR": {
        "confirmation": (
            "Olá, {{customer_name}}! Seu horário com a equipe {{company_name}} está agendado "
            "para {{appointment_date}}, às {{appointment_time}}.\n\n"
            "Endereço: {{location}}\n\n"
            "Podemos confirmar a sua presença?"
        ),
        "reminder": (
            "Olá, {{customer_name}}! Passando para lembrar do seu horário com a equipe "
            "{{company_name}}, marcado para {{appointment_date}}, às {{appointment_time}}.\n\n"
            "Endereço: {{location}}\n\n"
            "Você confirma a sua presença?"
        ),
        "reschedule": (
            "Olá, {{customer_name}}! Seu horário com a equipe {{company_name}} foi remarcado "
            "para {{appointment_date}}, às {{appointment_time}}.\n\n"
            "Endereço: {{location}}\n\n"
            "O novo horário fica bom para você?"
        ),
        "cancellation": (
            "Olá, {{customer_name}}. Seu horário com a equipe {{company_name}}, marcado para "
            "{{appointment_date}}, às {{appointment_time}}, foi cancelado.\n\n"
            "Se quiser marcar um novo horário, é só responder a esta mensagem."
        ),
    },
    "en_US": {
        "confirmation": (
            "Hello {{customer_name}}, your appointment with {{company_name}} is booked for "
            "{{appointment_date}} at {{appointment_time}}.\n\n"
            "Address: {{location}}\n\n"
            "Can you confirm that you will attend?"
        ),
        "reminder": (
            "Hello {{customer_name}}, this is a reminder of your appointment with "
            "{{company_name}} on {{appointment_date}} at {{appointment_time}}.\n\n"
            "Address: {{location}}\n\n"
            "Will you be there?"
        ),
        "reschedule": (
            "Hello {{customer_name}}, your appointment with {{company_name}} has been moved to "
            "{{appointment_date}} at {{appointment_time}}.\n\n"
            "Address: {{location}}\n\n"
            "Does the new time work for you?"
        ),
        "cancellation": (
            "Hello {{customer_name}}, your appointment with {{company_name}} on "
            "{{appointment_date}} at {{appointment_time}} has been cancelled.\n\n"
            "To book a new time, just reply to this message."
        ),
    },
}


def template_name(message_type):
    """Name of the library template for a message type, e.g. ``odoo_appointment_reminder``.

    :rtype: str
    """
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"unknown message type {message_type!r}")
    return NAME_PREFIX + message_type


def message_type_of(name):
    """The message type of a library template name, or ``None`` for any other template.

    :rtype: str | None
    """
    if name and name.startswith(NAME_PREFIX) and name[len(NAME_PREFIX):] in MESSAGE_TYPES:
        return name[len(NAME_PREFIX):]
    return None


def components(message_type, language):
    """The ``components`` of a library template, with the examples Meta requires.

    :rtype: list[dict]
    """
    from .template_params import placeholders

    body = _BODIES[language][message_type]
    examples = _EXAMPLES[language]
    result = [
        {
            "type": "BODY",
            "text": body,
            "example": {"body_text_named_params": [
                {"param_name": name, "example": examples[name]}
                for name in placeholders(body)
            ]},
        },
        {"type": "FOOTER", "text": _FOOTERS[language]},
    ]
    buttons = _BUTTONS[language][message_type]
    if buttons:
        result.append({"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": text} for text in buttons]})
    return result


def creation_payload(message_type, language):
    """Body of ``POST /<WABA_ID>/message_templates`` for one library template.

    :rtype: dict
    """
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}")
    return {
        "name": template_name(message_type),
        "language": language,
        "category": "UTILITY",
        "parameter_format": "NAMED",
        "components": components(message_type, language),
    }


def entries():
    """Every ``(message_type, language)`` of the library, in a stable order.

    :rtype: list[tuple[str, str]]
    """
    return [(kind, lang) for kind in MESSAGE_TYPES for lang in LANGUAGES]
