"""Another process working on the same token ("other tools"): list, create and destroy data objects.

Usage: SOFTHSM2_CONF=... python token_tool.py LABEL PIN COMMAND [ARGS]; prints JSON. Commands: list;
create APPLICATION LABEL HEX; write PATH VERSION KEY=VALUE...; write-as PATH VERSION GENERATION KEY=VALUE...;
destroy APPLICATION LABEL.
"""

from __future__ import annotations

import json
import sys

import pkcs11

from hsm_agent.store import codec, layout
from hsm_common import checksum, times

A = pkcs11.Attribute


def main(label: str, pin: str, command: str, *args: str) -> None:
    lib = pkcs11.lib("/usr/lib/softhsm/libsofthsm2.so")
    session = lib.get_token(token_label=label).open(rw=True, user_pin=pin)
    data_class = {A.CLASS: pkcs11.ObjectClass.DATA}
    if command == "list":
        objects = [
            {
                "app": obj[A.APPLICATION].decode()
                if isinstance(obj[A.APPLICATION], bytes)
                else obj[A.APPLICATION],
                "label": obj[A.LABEL],
            }
            for obj in session.get_objects(data_class)
        ]
        print(json.dumps(sorted(objects, key=lambda o: (o["app"], o["label"]))))
    elif command == "create":
        application, object_label, value = args
        attrs = {
            **data_class,
            A.TOKEN: True,
            A.PRIVATE: True,
            A.APPLICATION: application,
            A.LABEL: object_label,
        }
        session.create_object({**attrs, A.VALUE: bytes.fromhex(value)})
    elif command in ("write", "write-as"):
        # write-as names the generation: a record rewritten under the label of one the agent read before.
        path, version, *pairs = args
        generation = pairs.pop(0) if command == "write-as" else layout.new_generation()
        data = {key: value.encode() for key, value in (pair.split("=", 1) for pair in pairs)}
        head = layout.Head(
            path,
            int(version),
            generation,
            (),
            checksum.checksum(data),
            False,
            layout.Metadata(),
            "other-tool",
            times.now(),
        )
        _, objects, _ = codec.plan_record(head, data, 65536)
        for i, (object_label, value) in enumerate(objects):
            last = i == len(objects) - 1
            application = layout.APPLICATION_RECORD if last else layout.APPLICATION_CHUNK
            session.create_object(
                {
                    **data_class,
                    A.TOKEN: True,
                    A.PRIVATE: True,
                    A.APPLICATION: application,
                    A.LABEL: object_label,
                    A.VALUE: value,
                }
            )
    elif command == "destroy":
        application, object_label = args
        for obj in list(
            session.get_objects({**data_class, A.APPLICATION: application, A.LABEL: object_label})
        ):
            obj.destroy()
    else:
        raise SystemExit(f"unknown command {command}")
    session.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
