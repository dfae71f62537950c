"""Fixtures of the operator console tests: a company ready but for its attestations,
messages in every state, and screenshots of what a person sees."""

import base64
import os
import pathlib
from contextlib import contextmanager
from datetime import timedelta

from werkzeug.urls import url_join

from odoo import fields, tools
from odoo.tests.common import ChromeBrowser

MESSAGE_TYPES = ("confirmation", "reminder", "reschedule", "cancellation")


class ConsoleMixin:
    def make_ready(self, account):
        """Everything measurable: approved templates mapped for the four types, a signed
        webhook, the history requested. The two attestations stay open."""
        Template = self.env["wac.template"]
        for kind in MESSAGE_TYPES:
            template = Template.create({
                "company_id": account.company_id.id, "account_id": account.id,
                "name": "appointment_%s" % kind, "language": "pt_BR", "status": "APPROVED",
                "category": "UTILITY", "parameter_format": "NAMED",
                "components": '[{"type": "BODY", "text": "Olá"}]'})
            self.env["wac.template.mapping"].create({
                "company_id": account.company_id.id, "message_type": kind,
                "template_id": template.id})
        self.signed_webhook(account)
        account.write({"history_state": "requested", "last_check_ok": True})

    def signed_webhook(self, account, age=timedelta(0)):
        """A webhook event of ``account``'s company, as stored after a valid signature."""
        delivery = self.env["wac.webhook.delivery"].create({
            "body": "{}", "body_sha256": "%s-%s" % (account.id, age),
            "received_at": fields.Datetime.now() - age})
        return self.env["wac.webhook.event"].create({
            "delivery_id": delivery.id, "company_id": account.company_id.id,
            "account_id": account.id, "field": "messages", "state": "done"})

    def outbound(self, account, status, age=timedelta(hours=1), **vals):
        """An outbound message of ``account`` in ``status``, sent ``age`` ago."""
        self._outbound_seq = getattr(self, "_outbound_seq", 0) + 1
        return self.env["wac.message"].create(dict({
            "company_id": account.company_id.id, "account_id": account.id,
            "direction": "out", "source": "api", "status": status,
            "wamid": "wamid.console%d" % self._outbound_seq,
            "message_at": fields.Datetime.now() - age, "body": "Lembrete"}, **vals))


class ScreenshotMixin:
    """Pages opened in headless Chromium as a given user, saved as PNG for a person to look
    at: in ``$WAC_SHOTS_DIR`` when set, else in Odoo's screenshots directory."""

    @contextmanager
    def page(self, login, url):
        browser = ChromeBrowser(self)
        try:
            self.http_request_key = self.canonical_tag + "_browser_js"
            self.authenticate(login, login, browser=browser)
            self.http_request_strict_check = True
            self.cr.flush()
            self.cr.clear()
            browser.navigate_to(url_join(self.base_url(), url), wait_stop=True)
            yield browser
        finally:
            browser.stop()
            self._wait_remaining_requests()
            self.http_request_key = self.canonical_tag

    def wait_for(self, browser, selector):
        """Wait until ``selector`` matches; fail the test otherwise."""
        found = browser._wait_ready("!!document.querySelector(%r)" % selector, timeout=30)
        self.assertTrue(found, "%s never appeared" % selector)

    def click(self, browser, selector):
        self.wait_for(browser, selector)
        browser._websocket_request("Runtime.evaluate", params={
            "expression": "document.querySelector(%r).click()" % selector})

    def shoot(self, browser, name, selector, height=None):
        """Save the page as ``name``.png once ``selector`` is there (and fonts are loaded).

        :param int height: a taller window than Chromium's default 768 pixels
        """
        if height:
            browser._websocket_request("Emulation.setDeviceMetricsOverride", params={
                "width": 1366, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.wait_for(browser, selector)
        browser._wait_ready("document.fonts.status === 'loaded'", timeout=10)
        # Let Bootstrap's fades (tabs, dialogs) end: a capture mid-fade is half transparent.
        browser._wait_ready("new Promise((done) => setTimeout(() => done(true), 500))")
        data = browser._websocket_request("Page.captureScreenshot",
                                          params={"format": "png"})["data"]
        folder = pathlib.Path(os.environ.get("WAC_SHOTS_DIR") or pathlib.Path(
            tools.config["screenshots"]) / self.env.cr.dbname / "screenshots")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / ("%s.png" % name)
        path.write_bytes(base64.b64decode(data))
        return path
