/** @odoo-module **/

import { Chatter } from "@mail/chatter/web_portal/chatter";
import { Thread } from "@mail/core/common/thread_model";
import { patch } from "@web/core/utils/patch";

// A thread whose customer is answered on WhatsApp (the server sets it: wac.conversation).
// Its chatter offers "Reply on WhatsApp" where "Send message" would e-mail the followers.
patch(Thread.prototype, {
    setup() {
        super.setup(...arguments);
        /** @type {boolean} */
        this.wacReplyOnWhatsApp = false;
    },
});

patch(Chatter.prototype, {
    /** Open the thread's WhatsApp reply composer; show the reply in the form once it closes. */
    async onClickWacReply() {
        await this.env.services.action.doActionButton({
            type: "object",
            name: "action_reply",
            resModel: this.props.threadModel,
            resId: this.props.threadId,
            onClose: () => this.reloadParentView(),
        });
    },
});
