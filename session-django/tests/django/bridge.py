"""Drives real Django for the Rust tests: reads a JSON list of operations on stdin, runs each
with Django's own session and auth code, and prints a JSON list of results."""
import datetime
import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.http import HttpRequest  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

SessionStore = import_string(settings.SESSION_ENGINE + ".SessionStore")


def set_expiry(session, expiry):
    if expiry is None:
        return
    if expiry == "default":
        session.set_expiry(None)
    elif expiry == "browser_close":
        session.set_expiry(0)
    elif "seconds" in expiry:
        session.set_expiry(expiry["seconds"])
    elif "at" in expiry:
        session.set_expiry(datetime.datetime.fromisoformat(expiry["at"]))


def describe(session):
    data = dict(session.items())
    return {
        "key": session.session_key,
        "data": data,
        "expiry_age": session.get_expiry_age(),
        "expiry_date": session.get_expiry_date().isoformat(),
        "browser_close": session.get_expire_at_browser_close(),
    }


def run(op):
    kind = op["op"]
    if kind == "login":
        user = User.objects.filter(username=op["username"]).first()
        if user is None:
            user = User.objects.create_user(op["username"], password=op["password"])
        client = Client()
        assert client.login(username=op["username"], password=op["password"])
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        session = SessionStore(key)
        session.update(op.get("extra", {}))
        session.save()
        return {
            "key": session.session_key,
            "user_id": str(user.pk),
            "password_hash": user.password,
            "data": dict(session.items()),
        }
    if kind == "read":
        return describe(SessionStore(op["key"]))
    if kind == "write":
        session = SessionStore(op.get("key"))
        session.update(op.get("set", {}))
        for name in op.get("remove", []):
            session.pop(name, None)
        set_expiry(session, op.get("expiry"))
        session.save()
        return describe(session)
    if kind == "flush":
        session = SessionStore(op["key"])
        session.flush()
        return {"key": session.session_key}
    if kind == "cycle_key":
        session = SessionStore(op["key"])
        session.cycle_key()
        return {"key": session.session_key}
    if kind == "get_user":
        request = HttpRequest()
        request.session = SessionStore(op["key"])
        user = get_user(request)
        if request.session.modified and request.session.session_key:
            request.session.save()
        return {
            "user_id": None if user.is_anonymous else str(user.pk),
            "key": request.session.session_key,
        }
    if kind == "clearsessions":
        call_command("clearsessions")
        return {}
    if kind == "rows":
        from django.contrib.sessions.models import Session

        present = Session.objects.filter(session_key__in=op["keys"])
        return {"keys": sorted(row.session_key for row in present)}
    if kind == "encode":
        return {"data": SessionStore().encode(op["data"])}
    if kind == "decode":
        return {"data": SessionStore().decode(op["data"])}
    raise ValueError(f"unknown operation {kind!r}")


def main():
    ops = json.load(sys.stdin)
    results = [run(op) for op in ops]
    json.dump(results, sys.stdout, default=str)


if __name__ == "__main__":
    main()
