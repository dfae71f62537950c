from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestDemoData(TransactionCase):
    """What a newcomer sees first in `make demo`."""

    def test_admin_opens_on_the_clinic_with_both_companies(self):
        """admin used to open on YourCompany, where every WhatsApp list was empty (#12)."""
        clinic = self.env.ref("whatsapp_coexistence.demo_company_clinic",
                              raise_if_not_found=False)
        if not clinic:
            self.skipTest("installed without demo data")
        salon = self.env.ref("whatsapp_coexistence.demo_company_salon")
        admin = self.env.ref("base.user_admin")
        self.assertEqual(admin.company_id, clinic)
        self.assertLessEqual(clinic | salon, admin.company_ids)
