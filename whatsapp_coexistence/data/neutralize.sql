-- A neutralized copy of a production database must neither send WhatsApp messages nor hold
-- credentials that let it act for the businesses.
UPDATE wac_account
   SET access_token_enc = NULL,
       automation_mode = 'disabled',
       state = CASE WHEN state = 'connected' THEN 'needs_reauth' ELSE state END;
DELETE FROM ir_config_parameter WHERE key = 'whatsapp_coexistence.app_secret_enc';
INSERT INTO ir_config_parameter (key, value) VALUES ('whatsapp_coexistence.kill_switch', 'True')
    ON CONFLICT (key) DO UPDATE SET value = 'True';
