"""An SMTP server on 127.0.0.1 for citypulse's tests (aiosmtpd, a real SMTP implementation).

Prints `port N` once listening, then one JSON line per message received: envelope, the login
used, the headers tests check, and the text/plain and text/html parts decoded (Python's email
package undoes the transfer encodings, so a test sees what a mail client shows).

  python smtp_sink.py [--auth USER:PASSWORD] [--refuse-first N]

--auth requires that login (AUTH PLAIN/LOGIN; allowed without TLS, this is 127.0.0.1 only).
--refuse-first N answers the first N messages `451 4.3.0 try again later` (greylisting), so a
test sees the sender retry.
"""

import argparse
import asyncio
import json
import logging
import sys
import warnings
from email import message_from_bytes, policy

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, refuse_first):
        self.refuse_left = refuse_first

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_left > 0:
            self.refuse_left -= 1
            return "451 4.3.0 try again later"
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        parts = {}
        for part in msg.walk():
            if part.get_content_type() in ("text/plain", "text/html") and not part.is_multipart():
                parts[part.get_content_type()] = part.get_content()
        login = session.login_data.decode() if session.login_data else None
        print(json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "subject": str(msg["subject"]),
            "message_id": str(msg["message-id"]),
            "content_type": msg.get_content_type(),
            "text": parts.get("text/plain"),
            "html": parts.get("text/html"),
        }, ensure_ascii=False), flush=True)
        return "250 2.0.0 OK queued"


def authenticator(expected):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(), auth_data.password.decode()) == expected
        # handled=False: aiosmtpd answers 235 or 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=auth_data)
    return check


async def main():
    # AUTH without TLS is what these tests want (127.0.0.1 only); the warnings would be noise.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    args = argparse.ArgumentParser()
    args.add_argument("--auth")
    args.add_argument("--refuse-first", type=int, default=0)
    a = args.parse_args()
    handler = Sink(a.refuse_first)
    kwargs = {}
    if a.auth:
        user, password = a.auth.split(":", 1)
        kwargs = dict(authenticator=authenticator((user, password)), auth_required=True,
                      auth_require_tls=False)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="sink.test", **kwargs), "127.0.0.1", 0)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    # Ends when the test closes stdin (or dies): no server outlives its test.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
