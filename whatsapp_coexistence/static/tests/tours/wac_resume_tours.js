/** @odoo-module **/

import { registry } from "@web/core/registry";

// A WhatsApp manager of one company, paused by an expired token, pastes a new one.
registry.category("web_tour.tours").add("whatsapp_coexistence_new_token", {
    steps: () => [
        {
            content: "The paused banner says why, the way out, and what is held",
            trigger: ".o_wac_paused_banner:contains('Automation is paused'):contains('Meta rejected the access token'):contains('message(s) held')",
        },
        {
            content: "Paste the new token",
            trigger: "div[name=access_token] input",
            run: "edit EAAGfakeclinicNEW00000000000000000000",
        },
        {
            content: "Save",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "Saved, and still paused: a new token does not resume by itself",
            trigger: ".o_form_renderer:not(.o_form_dirty) .o_wac_paused_banner:contains('Automation is paused')",
        },
    ],
});

// The same manager presses Resume: the checks pass, a reason, and automation runs again.
registry.category("web_tour.tours").add("whatsapp_coexistence_resume", {
    steps: () => [
        {
            content: "Press Resume in the banner",
            trigger: ".o_wac_paused_banner button[name=action_wac_resume]",
            run: "click",
        },
        {
            content: "Test connection and the checklist pass",
            trigger: ".modal .o_wac_resume_ready",
        },
        {
            content: "Say why",
            trigger: ".modal div[name=reason] textarea",
            run: "edit New System User token pasted after the 190",
        },
        {
            content: "Resume",
            trigger: ".modal button[name=action_confirm]",
            run: "click",
        },
        {
            content: "The wizard closed and the account's banner is gone",
            trigger: "body:not(:has(.modal)) .o_action_manager .o_form_view:not(:has(.o_wac_paused_banner)) .o_form_renderer:not(.o_form_dirty) button[name=action_test_connection]",
        },
    ],
});

// The held messages went: the message log shows them sent, and nothing is held any more.
registry.category("web_tour.tours").add("whatsapp_coexistence_held_sent", {
    steps: () => [
        {
            content: "Both appointment messages are sent",
            trigger: ".o_list_view .o_data_row:contains('Sent') ~ .o_data_row:contains('Sent')",
        },
        {
            content: "Open the filters",
            trigger: ".o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            content: "Filter on Held",
            trigger: ".o_filter_menu .o-dropdown-item:contains('Held')",
            run: "click",
        },
        {
            content: "Nothing is held any more",
            trigger: ".o_view_nocontent, .o_list_view:not(:has(.o_data_row))",
        },
    ],
});
