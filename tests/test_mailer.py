from openphone_pipelines.mailer import SmtpSettings, send_email
def test_send_email_reaches_real_smtp_server(smtp_server):
    send_email(SmtpSettings(smtp_server.host, smtp_server.port, "a@x", ["ops@example.com"]), "subj", "body")
    [m] = smtp_server.wait_for(1)
    assert m["Subject"] == "subj" and "body" in m.get_payload()
