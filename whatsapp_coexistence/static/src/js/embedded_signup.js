/* Embedded Signup page of whatsapp_coexistence (a plain script: the page is not the web client).
 *
 * Meta hands the browser two things, in either order (reference §3.2): the exchangeable code
 * (FB.login callback, valid 30 seconds) and the session info (a WA_EMBEDDED_SIGNUP message
 * with the WABA and phone number ids). Both go to the server as soon as both are known, or as
 * soon as the code is known and the session info is late.
 */
(function () {
    "use strict";
    const config = JSON.parse(document.getElementById("wac_es_config").textContent);
    const statusBox = document.getElementById("wac_es_status");
    let code = null;
    let session = null;
    let sent = false;
    let lateTimer = null;
    // Translated by Odoo in the page, kept out of sight until needed.
    const label = (name) => document.getElementById("wac_es_label_" + name).textContent;

    function show(text, kind, link) {
        statusBox.className = "alert alert-" + kind;
        statusBox.textContent = text;
        if (link) {
            const anchor = document.createElement("a");
            anchor.href = link;
            anchor.className = "d-block mt-2";
            anchor.textContent = label("back");
            statusBox.appendChild(anchor);
        }
    }

    async function finish() {
        if (sent || code === null || (!session && !lateTimer)) {
            return;
        }
        sent = true;
        clearTimeout(lateTimer);
        show(label("connecting"), "info");
        try {
            const response = await fetch("/whatsapp_coexistence/onboarding/finish", {
                method: "POST",
                headers: { "Content-Type": "application/json" },
                body: JSON.stringify({
                    jsonrpc: "2.0",
                    method: "call",
                    params: { onboarding_id: config.onboarding_id, code: code, session: session },
                }),
            });
            const data = await response.json();
            if (data.error) {
                show(data.error.data ? data.error.data.message : data.error.message, "danger");
            } else {
                const result = data.result;
                show(result.message, result.ok ? "success" : "danger", result.account_url);
            }
        } catch (error) {
            show(String(error), "danger");
        }
    }

    function received(newCode, newSession) {
        if (newCode !== undefined) {
            code = newCode;
        }
        if (newSession !== undefined) {
            session = newSession;
        }
        if (code !== null && !session && !lateTimer) {
            // The session info may come after the code; the code dies in 30 s: wait 3 s.
            lateTimer = setTimeout(() => {
                lateTimer = true;
                finish();
            }, 3000);
            return;
        }
        finish();
    }

    window.addEventListener("message", (event) => {
        if (!event.origin.endsWith("facebook.com")) {
            return;
        }
        try {
            const data = JSON.parse(event.data);
            if (data.type === "WA_EMBEDDED_SIGNUP") {
                // A cancelled flow sends no code: report the step where it stopped.
                received(data.event === "CANCEL" ? "" : undefined, data);
            }
        } catch {
            // Not one of Meta's JSON messages.
        }
    });

    window.fbAsyncInit = function () {
        window.FB.init({
            appId: config.app_id,
            autoLogAppEvents: true,
            xfbml: true,
            version: config.graph_version,
        });
    };

    const launch = document.getElementById("wac_es_launch");
    if (launch) {
        launch.addEventListener("click", () => {
            if (!window.FB) {
                show(label("no_sdk"), "danger");
                return;
            }
            // Embedded Signup v4: the configuration decides the flow; extras stay empty.
            window.FB.login(
                (response) => {
                    if (response.authResponse && response.authResponse.code) {
                        received(response.authResponse.code, undefined);
                    } else if (!session) {
                        received("", { event: "CANCEL", data: {} });
                    }
                },
                {
                    config_id: config.config_id,
                    response_type: "code",
                    override_default_response_type: true,
                    extras: { setup: {} },
                }
            );
        });
    }

    const sandbox = document.getElementById("wac_es_sandbox");
    if (sandbox) {
        sandbox.addEventListener("submit", (event) => {
            event.preventDefault();
            const form = new FormData(sandbox);
            received(form.get("code"), {
                type: "WA_EMBEDDED_SIGNUP",
                event: form.get("coexistence") ? "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING" : "FINISH",
                data: { waba_id: form.get("waba_id"), phone_number_id: form.get("phone_number_id") },
            });
        });
    }
})();
