/** @odoo-module **/

import { registry } from "@web/core/registry";

// A WhatsApp manager of one company opens the overview and drills from a figure to its list.
registry.category("web_tour.tours").add("whatsapp_coexistence_overview", {
    steps: () => [
        {
            content: "The card of the manager's company is there",
            trigger: ".o_wac_overview .o_kanban_record:contains('Clínica A')",
        },
        {
            content: "Only that card: the other company is not shown",
            trigger: ".o_wac_overview:not(:has(.o_kanban_record:contains('Salão B')))",
        },
        {
            content: "Readiness is shown as n/10",
            trigger: ".o_kanban_record a[name=action_wac_open_readiness]:contains('/10')",
        },
        {
            content: "Open the failed messages of the last 7 days",
            trigger: ".o_kanban_record .o_wac_fig_failed_7d:contains('1')",
            run: "click",
        },
        {
            content: "The list is titled after the figure",
            trigger: ".o_breadcrumb:contains('Failed (7 days)')",
        },
        {
            content: "It holds the one failed message",
            trigger: ".o_list_view .o_data_row:contains('Failed')",
        },
        {
            content: "and nothing else",
            trigger: ".o_list_view:not(:has(.o_data_row:nth-child(2)))",
        },
    ],
});

// The go-live gate: refused with the open items named, accepted after the attestations.
registry.category("web_tour.tours").add("whatsapp_coexistence_golive_gate", {
    steps: () => [
        {
            content: "Choose Enabled",
            trigger: "div[name=automation_mode] input[data-value=enabled]",
            run: "click",
        },
        {
            content: "Save",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "Refused, naming the open items",
            trigger: ".o_error_dialog:contains('cannot switch automation on yet'):contains('Support process')",
        },
        {
            content: "Close the message",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Discard the change",
            trigger: ".o_form_button_cancel",
            run: "click",
        },
        {
            content: "Open the readiness tab",
            trigger: "a.nav-link[name=readiness]",
            run: "click",
        },
        {
            content: "The support item is open",
            trigger: ".o_wac_readiness li[data-key=support] .fa-times-circle",
        },
        {
            content: "As the browser built it: ten lines, one icon each, no icon inside another",
            trigger: ".o_wac_readiness:has(li:nth-child(10)):not(:has(i i, i li, li li))",
        },
        {
            content: "Attest the support process",
            trigger: "button[name=action_wac_attest_support]",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Attest policy compliance",
            trigger: "button[name=action_wac_attest_compliance]",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Both items are met, with who attested them",
            trigger: ".o_wac_readiness li[data-key=compliance]:contains('Attested by') .fa-check-circle",
        },
        {
            content: "Back to the automation tab",
            trigger: "a.nav-link[name=automation]",
            run: "click",
        },
        {
            content: "Choose Enabled again",
            trigger: "div[name=automation_mode] input[data-value=enabled]",
            run: "click",
        },
        {
            content: "Save",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "Saved: no error, nothing left to save",
            trigger: ".o_form_view:not(:has(.o_form_button_save:visible)):not(:has(.o_error_dialog))",
        },
    ],
});
