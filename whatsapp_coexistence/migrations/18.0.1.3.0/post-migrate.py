def migrate(cr, version):
    """18.0.1.3.0: each message keeps the business number it was sent or received on.

    Until now a company had one number for good: every stored message was sent or received on
    its account's current number, which is what it gets.
    """
    cr.execute("""
        UPDATE wac_message m SET phone_number_id = a.phone_number_id
          FROM wac_account a
         WHERE m.account_id = a.id AND m.phone_number_id IS NULL
           AND a.phone_number_id IS NOT NULL
    """)
