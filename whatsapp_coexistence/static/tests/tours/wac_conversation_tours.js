/** @odoo-module **/

import { registry } from "@web/core/registry";
import { inputFiles } from "@web/../tests/utils";

// The quote the receptionist sends: the test compares these bytes with what Meta received.
const QUOTE_URL = "/whatsapp_coexistence/static/tests/files/orcamento.pdf";

// A receptionist opens the customer's thread from the appointment, sees the photo the
// customer sent, and answers with text and a PDF.
registry.category("web_tour.tours").add("whatsapp_coexistence_conversation_reply", {
    steps: () => [
        {
            content: "Open the customer's WhatsApp thread from the appointment",
            trigger: "button[name=action_wa_conversation]",
            run: "click",
        },
        {
            content: "The customer's photo is in the thread",
            trigger: ".o_wac_thread .o_data_row:contains('Foto da receita'):contains('receita.png')",
        },
        {
            content: "The window is open",
            trigger: ".o_form_view .o_wac_window_open",
        },
        {
            content: "Reply",
            trigger: ".o_form_view button[name=action_reply]",
            run: "click",
        },
        {
            content: "The composer shows the time left",
            trigger: ".modal .alert-success:contains('left to answer freely')",
        },
        {
            content: "It says automation switches do not stop a person",
            trigger: ".modal:contains('a person answering a customer is not stopped by them')",
        },
        {
            content: "Write the answer",
            trigger: ".modal div[name=body] textarea",
            run: "edit Recebi a receita, pode vir às 15h.",
        },
        {
            content: "Attach the quote through the file input, as a person picks a file",
            trigger: ".modal div[name=attachment_ids] button.o_attach",
            async run() {
                const blob = await (await fetch(QUOTE_URL)).blob();
                const pdf = new File([blob], "orcamento.pdf", { type: "application/pdf" });
                await inputFiles(".modal div[name=attachment_ids] input.o_input_file", [pdf]);
            },
        },
        {
            content: "The quote is uploaded and listed in the composer",
            trigger: ".modal div[name=attachment_ids] .o_attachment[title='orcamento.pdf']:not(.o_attachment_uploading)",
        },
        {
            content: "Send",
            trigger: ".modal button[name=action_send]",
            run: "click",
        },
        {
            content: "Sent",
            trigger: ".o_notification:contains('Reply sent')",
        },
        {
            content: "The answer is in the thread, from Odoo",
            trigger: ".o_wac_thread .o_data_row:contains('pode vir às 15h'):contains('Reply from Odoo')",
        },
        {
            content: "The quote is in the thread, from Odoo, as its own message",
            trigger: ".o_wac_thread .o_data_row:contains('orcamento.pdf'):contains('Reply from Odoo')",
        },
    ],
});

// After Meta's status webhooks the receptionist sees that the customer read the answer.
registry.category("web_tour.tours").add("whatsapp_coexistence_conversation_read", {
    steps: () => [
        {
            content: "The answer shows Read",
            trigger: ".o_wac_thread .o_data_row:contains('pode vir às 15h') .badge:contains('Read')",
        },
        {
            content: "The quote shows Read",
            trigger: ".o_wac_thread .o_data_row:contains('orcamento.pdf') .badge:contains('Read')",
        },
        {
            content: "The chatter answers on WhatsApp and keeps Log note: no e-mail to the customer",
            trigger: ".o-mail-Chatter-topbar:has(.o-mail-Chatter-logNote):not(:has(.o-mail-Chatter-sendMessage)) .o-wac-Chatter-reply",
            run: "click",
        },
        {
            content: "It opens the WhatsApp composer",
            trigger: ".modal .alert-success:contains('left to answer freely')",
        },
    ],
});
