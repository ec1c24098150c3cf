"""Another process on a test agent's SoftHSM2 token: count its objects, or add one as another tool would.

Usage: SOFTHSM2_CONF=... python token_objects.py LABEL count|add, with the PIN on stdin; prints the count.
"""

from __future__ import annotations

import sys
import uuid

import pkcs11

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def main(label: str, command: str) -> None:
    pin = sys.stdin.read().strip()
    session = pkcs11.lib(MODULE).get_token(token_label=label).open(rw=True, user_pin=pin)
    try:
        if command == "add":
            session.create_object(
                {
                    pkcs11.Attribute.CLASS: pkcs11.ObjectClass.DATA,
                    pkcs11.Attribute.TOKEN: True,
                    pkcs11.Attribute.PRIVATE: True,
                    pkcs11.Attribute.APPLICATION: "another-tool",
                    pkcs11.Attribute.LABEL: uuid.uuid4().hex,
                    pkcs11.Attribute.VALUE: b"not ours",
                }
            )
        print(len(list(session.get_objects())))
    finally:
        session.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
