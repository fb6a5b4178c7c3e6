"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1 with STARTTLS
required before AUTH, AUTH required before mail, and every accepted message
stored in a directory as <n>.eml plus <n>.json (envelope and login).

Usage: smtp_server.py PORT CERT KEY USER PASSWORD OUTDIR [plain]
With "plain", the server offers no STARTTLS at all and takes AUTH in plain
text: a client that must never send its password so is checked against it.
Every AUTH attempt is appended to OUTDIR/auth.log.
Prints "READY" on stdout once it accepts connections; runs until killed.
"""

import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    port, cert, key, user, password, outdir = sys.argv[1:7]
    plain = sys.argv[7:8] == ["plain"]
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        with open(os.path.join(outdir, "auth.log"), "a") as f:
            f.write(f"{mechanism} tls={session.ssl is not None}\n")
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    class Store:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Store.count += 1
            base = os.path.join(outdir, f"{Store.count:04d}")
            meta = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "login": login_of(session),
                "tls": session.ssl is not None,
            }
            with open(base + ".tmp", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            with open(base + ".json", "w") as f:
                json.dump(meta, f)
            # The .eml appears last and whole: readers wait for it.
            os.rename(base + ".tmp", base + ".eml")
            return "250 Message accepted for delivery"

    controller = Controller(
        Store(),
        hostname="127.0.0.1",
        port=int(port),
        tls_context=None if plain else tls,
        require_starttls=not plain,
        auth_required=True,
        auth_require_tls=not plain,
        authenticator=authenticator,
        data_size_limit=64 * 1024 * 1024,
    )
    controller.start()
    print("READY", flush=True)
    threading.Event().wait()


def login_of(session):
    data = getattr(session, "auth_data", None)
    return data.login.decode() if isinstance(data, LoginPassword) else None


if __name__ == "__main__":
    main()
