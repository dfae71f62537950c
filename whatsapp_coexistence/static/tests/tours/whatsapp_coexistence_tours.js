/** @odoo-module **/

import { registry } from "@web/core/registry";

// The installation settings, as a system administrator sees them.
registry.category("web_tour.tours").add("whatsapp_coexistence_settings", {
    url: "/odoo/settings#whatsapp_coexistence",
    steps: () => [
        {
            content: "The WhatsApp Coexistence block is there",
            trigger: ".app_settings_block[data-key='whatsapp_coexistence']",
        },
        {
            content: "The callback URL to paste into Meta is shown",
            trigger: "[name=wac_callback_url]:contains('/whatsapp_coexistence/webhook')",
        },
        {
            content: "Type a new App Secret",
            trigger: "[name=wac_app_secret] input",
            run: "edit app-secret-typed-in-the-browser",
        },
        {
            content: "Save",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            // The info line already said "encrypted" before the save: wait for the reload,
            // which empties the typed secret, or the tour ends on a form still saving.
            content: "Saved: the typed secret is gone from the page",
            trigger: "[name=wac_app_secret] input:placeholder-shown",
        },
        {
            content: "The secret is reported as set, never shown back",
            trigger: ".o_form_renderer:not(.o_form_dirty) [name=wac_app_secret_info]:contains('encrypted')",
        },
    ],
});

// A WhatsApp manager tests the connection of the company's number.
registry.category("web_tour.tours").add("whatsapp_coexistence_test_connection", {
    steps: () => [
        {
            content: "The token is write-only: only its hint is shown",
            trigger: "[name=token_info]:contains('ends with')",
        },
        {
            content: "Test the connection",
            trigger: "button[name=action_test_connection]",
            run: "click",
        },
        {
            content: "Meta's verified name comes back",
            trigger: ".o_notification:contains('Connected to Clínica Sorriso')",
        },
        {
            content: "The state is connected",
            trigger: "[name=state] button[aria-checked=true]:contains('Connected')",
        },
    ],
});

// The Embedded Signup page in sandbox mode: Meta's window is replaced by a form.
registry.category("web_tour.tours").add("whatsapp_coexistence_onboarding", {
    steps: () => [
        {
            content: "Type the code the fake Graph server handed out",
            trigger: "#wac_es_code",
            run: "edit AQDfakedemocodeclinic0001",
        },
        {
            content: "Finish the signup",
            trigger: "#wac_es_sandbox button[type=submit]",
            run: "click",
        },
        {
            content: "The number is connected",
            trigger: "#wac_es_status.alert-success:contains('is connected to')",
        },
    ],
});

// A receptionist opens an appointment: what WhatsApp planned and sent, then the manual link.
registry.category("web_tour.tours").add("whatsapp_coexistence_appointment", {
    steps: () => [
        {
            content: "Open the WhatsApp tab of the appointment",
            trigger: ".o_notebook .nav-link:contains('WhatsApp')",
            run: "click",
        },
        {
            content: "The automation says what it planned",
            trigger: "[name=wa_automation_note]:contains('planned for 1 attendee')",
        },
        {
            content: "The customer is listed with the number WhatsApp writes to",
            trigger: "[name=wa_attendee_ids] td:contains('Maria Silva')",
        },
        {
            content: "The confirmation Odoo sent is listed",
            trigger: "[name=wa_message_ids] td:contains('5511991234567')",
        },
        {
            content: "Open WhatsApp by hand for the customer",
            trigger: "div[name=send_buttons] button[name=action_wa_manual]",
            run: "click",
        },
        {
            content: "wa.me opens in another tab; the chatter logs who opened it",
            trigger: ".o-mail-Message:contains('WhatsApp (manual) opened for Maria Silva')",
        },
    ],
});

// An administrator filters the raw deliveries, then the refused webhooks.
registry.category("web_tour.tours").add("whatsapp_coexistence_monitoring_filters", {
    steps: () => [
        {
            content: "The deliveries are listed",
            trigger: ".o_list_view .o_data_row",
        },
        {
            content: "Open the filters",
            trigger: ".o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            content: "Keep the deliveries that need attention",
            trigger: ".o_filter_menu .o-dropdown-item:contains('Needs attention')",
            run: "click",
        },
        {
            content: "A partly failed delivery is listed, a processed one is not",
            trigger: ".o_list_view:not(:has(.o_data_row:contains('Processed'))) .o_data_row:contains('Partly failed')",
        },
        {
            content: "Go to the refused webhooks",
            trigger: ".o_menu_sections button:contains('Monitoring')",
            run: "click",
        },
        {
            trigger: ".dropdown-item:contains('Refused Webhooks')",
            run: "click",
        },
        {
            content: "The refused webhooks are listed",
            trigger: ".o_breadcrumb:contains('Refused Webhooks')",
        },
        {
            content: "Open the filters",
            trigger: ".o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            content: "Keep the calls with a missing or wrong signature",
            trigger: ".o_filter_menu .o-dropdown-item:contains('Signature refused')",
            run: "click",
        },
        {
            content: "Wrong signatures are listed, invalid JSON is not",
            trigger: ".o_list_view:not(:has(.o_data_row:contains('Invalid JSON'))) .o_data_row:contains('Wrong signature')",
        },
    ],
});
