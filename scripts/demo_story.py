"""The demo's story, played against the running Odoo and fake Graph server (``odoo shell``).

Run by ``scripts/demo.sh`` once both servers are up; it does nothing when the story is
already there. Everything goes through the real paths: templates are submitted to the fake
WABA and approved there, sends go through queue_job's runner to the fake server, statuses,
replies, the Business App echo and the history come back as signed webhooks.

- both companies: the appointment templates approved and mapped, the connection tested;
- Clínica Sorriso (a coexistence number) in *dry run*: the contacts and history synced from
  the Business App, an answer the owner typed in the app, a week of appointments whose
  messages are prepared, not sent;
- Salão Bela live (a forced go-live, reason recorded: the attestations are left for the
  person trying the demo, so readiness shows 8/10): a week of appointments whose messages end
  sent, delivered, read, or failed with a Meta error; one customer confirms, one cancels.
  Then Meta refuses the salon's token (190) on the next booking: automation pauses and that
  confirmation is *held*, the banner on the account says how out (a new token, then Resume).

Needs in the environment: ``WAC_FAKE_URL`` (the fake server) and the shell's ``env``.
"""

import json
import os
import time
import urllib.request
from datetime import timedelta

from odoo import fields

FAKE = os.environ.get("WAC_FAKE_URL", "http://127.0.0.1:8765")
MARKER = "whatsapp_coexistence.demo_story"
CUSTOMERS = {
    "clinic": [("Maria Silva", "+55 11 99123-4567"), ("João Pereira", "+55 11 98765-1234"),
               ("Paulo Ramos", "+55 11 97654-3210")],
    "salon": [("Ana Costa", "+55 21 99876-1111"), ("Beatriz Lima", "+55 21 99876-2222"),
              ("Carla Souza", "+55 21 99876-3333"), ("Diana Rocha", "+55 21 99876-4444"),
              ("Elisa Martins", "+55 21 99876-5555")],
}
# Salão Bela's week: (customer index, days ahead, hour UTC, what Meta answers after the send)
SALON_WEEK = [
    (0, 1, 13, ["sent", "delivered", "read"]),
    (1, 2, 14, ["sent", "delivered", "read"]),
    (2, 3, 15, ["sent", "delivered"]),
    (3, 4, 16, ["sent"]),
    (4, 5, 17, [{"status": "failed", "code": 131026}]),
]


def fake(path, payload=None):
    """Call one of the fake server's control endpoints."""
    data = json.dumps(payload or {}).encode()
    request = urllib.request.Request(FAKE + "/_fake/" + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")


def wait_for_jobs(env, timeout=180):
    """Wait until queue_job's runner (in the Odoo server) has run every job that is due.

    A job planned for later (a reminder 24 h before an appointment of tomorrow: whether the
    story plans one depends on the hour it is played) is waiting for its time, not stuck.
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        env.cr.commit()
        env.invalidate_all()
        fake("wait", {"timeout": 5})
        if not env["queue.job"].search_count([
                ("state", "in", ("pending", "enqueued", "started")),
                "|", ("eta", "=", False), ("eta", "<=", fields.Datetime.now())]):
            return
        time.sleep(1)
    raise SystemExit("jobs still waiting after %d s" % timeout)


def templates(env, account):
    """Submit the appointment templates to the (fake) WABA, approve them there, sync."""
    account.action_create_appointment_templates()
    for template in account.template_ids.filtered(lambda t: t.status == "PENDING"):
        fake("templates/status", {"waba_id": account.waba_id, "name": template.name,
                                  "language": template.language, "status": "APPROVED",
                                  "webhook": False})
    account.action_sync_templates()
    account.action_test_connection()
    env.cr.commit()


def history(env, account):
    """Ask the Business App's contacts and history, as Embedded Signup does (coexistence
    numbers only: the salon's number is not on the Business App)."""
    if not account.is_on_biz_app:
        return
    client = account._wac_client()
    for sync_type in ("smb_app_state_sync", "history"):
        client.request_smb_app_data(account.phone_number_id, sync_type)
    account.history_state = "requested"
    env.cr.commit()


def customers(env, company, key):
    Partner = env["res.partner"]
    return [Partner.create({"name": name, "mobile": mobile, "lang": "pt_BR",
                            "company_id": company.id}) for name, mobile in CUSTOMERS[key]]


def appointment(env, company, partner, days, hour, title):
    start = (fields.Datetime.now() + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0)
    return env["calendar.event"].with_company(company).create({
        "name": title, "start": start, "stop": start + timedelta(hours=1),
        "wa_company_id": company.id,
        "partner_ids": [(4, partner.id)], "user_id": env.ref("base.user_admin").id})


def clinic_week(env, account):
    people = customers(env, account.company_id, "clinic")
    # The clinic pilots with a few customers: automation writes to these numbers only.
    account.pilot_allowlist = "\n".join(partner.mobile for partner in people)
    for days, partner in enumerate(people * 2, start=1):
        appointment(env, account.company_id, partner, days, 12 + days % 6, "Limpeza")
    env.cr.commit()
    wait_for_jobs(env)


def salon_week(env, account):
    account._wac_force_golive(
        "Demo: the salon's pilot runs against the sandbox; support and policy attestations "
        "are left for the person trying the demo.")
    env.cr.commit()
    people = customers(env, account.company_id, "salon")
    events = []
    for index, days, hour, statuses in SALON_WEEK:
        fake("config", {"status_sequence": statuses})
        events.append(appointment(env, account.company_id, people[index], days, hour,
                                  "Corte e escova"))
        env.cr.commit()
        wait_for_jobs(env)
    fake("config", {"status_sequence": ["sent", "delivered"]})
    return people, events


def token_expires(env, account, people):
    """Meta refuses the salon's token on the next booking's confirmation: the company pauses
    and the confirmation is held until someone pastes a new token and presses Resume."""
    fake("faults", {"match": {"path": "/messages"}, "status": 401, "code": 190})
    appointment(env, account.company_id, people[2], 6, 15, "Manicure")
    env.cr.commit()
    wait_for_jobs(env)


def replies(env, account, people, events):
    """Ana confirms with the button, Beatriz cancels with "2"."""
    Message = env["wac.message"]
    for partner, event, answer in ((people[0], events[0], "CONFIRM"),
                                   (people[1], events[1], "CANCEL")):
        sent = Message.search([("res_model", "=", "calendar.event"), ("res_id", "=", event.id),
                               ("wamid", "!=", False)], limit=1)
        number = "".join(c for c in partner.mobile if c.isdigit())
        if answer == "CONFIRM":
            fake("inbound", {"phone_number_id": account.phone_number_id, "from": number,
                             "name": partner.name, "context_id": sent.wamid,
                             "button": {"payload": "CONFIRM:%d" % event.id,
                                        "text": "Confirmar presença"}})
        else:
            fake("inbound", {"phone_number_id": account.phone_number_id, "from": number,
                             "name": partner.name, "context_id": sent.wamid, "text": "2"})
    wait_for_jobs(env)


def echo(env, account):
    """The clinic's owner answers Maria from the Business App on the phone."""
    fake("echo", {"phone_number_id": account.phone_number_id, "to": "5511991234567",
                  "text": "Oi Maria! Pode chegar 10 minutos antes, por favor."})
    wait_for_jobs(env)


def main(env):
    params = env["ir.config_parameter"].sudo()
    if params.get_param(MARKER):
        print("The demo story is already there.")
        return
    clinic = env.ref("whatsapp_coexistence.demo_account_clinic")
    salon = env.ref("whatsapp_coexistence.demo_account_salon")
    for account in (clinic, salon):
        templates(env, account)
        history(env, account)
    wait_for_jobs(env)
    clinic_week(env, clinic)
    people, events = salon_week(env, salon)
    replies(env, salon, people, events)
    token_expires(env, salon, people)
    echo(env, clinic)
    params.set_param(MARKER, fields.Datetime.to_string(fields.Datetime.now()))
    env.cr.commit()
    print("The demo story is played.")


main(globals()["env"])  # odoo shell provides env
